"""`python -m lfharness connect` (FR19-FR21, issue 27): the forwards, their ports, and a forward
that drops being started again (static tier).

Stand-in for kubectl: a small Python program on the forward's local port that answers one line
and exits when told to (as `kubectl port-forward` exits when its pod goes); the Holder under test
is the harness's own. The kube tier holds the real kubectl against a real API server.
"""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lfharness.core.procs import free_port
from lfharness.core.wait import retry
from lfharness.stack import connect
from lfharness.testing.processes import alive

pytestmark = pytest.mark.static

# Listens on the port given, answers each connection with "ok <pid>", and exits when a connection
# sends "exit" (the pod it forwarded to went away).
_FAKE_FORWARD = textwrap.dedent("""
    import os, socket, sys
    server = socket.create_server(("127.0.0.1", int(sys.argv[1])), reuse_port=False)
    while True:
        conn, _ = server.accept()
        with conn:
            if conn.recv(16).startswith(b"exit"):
                sys.exit(1)
            conn.sendall(f"ok {os.getpid()}".encode())
""")


class FakeKube:
    env = None

    def __init__(self, script: Path) -> None:
        self.script = script

    def port_forward_argv(self, namespace: str, service: str, local_port: int, remote_port: int) -> list[str]:
        return [sys.executable, str(self.script), str(local_port)]


def _ask(port: int, message: bytes = b"hello") -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(message)
        return conn.recv(64).decode()


@pytest.fixture
def kube(tmp_path) -> FakeKube:
    script = tmp_path / "fake_forward.py"
    script.write_text(_FAKE_FORWARD)
    return FakeKube(script)


def test_the_three_forwards_are_ui_and_api_clickhouse_and_redis_on_their_ports():
    """FR19-FR21, decision 13: 3000 to langfuse-web, 8123 to langfuse-clickhouse, 6379 to
    langfuse-redis-primary (not -master), same port locally by default."""
    assert [(f.service, f.remote_port, f.local_port) for f in connect.FORWARDS] == [
        ("langfuse-web", 3000, 3000), ("langfuse-clickhouse", 8123, 8123), ("langfuse-redis-primary", 6379, 6379)]


def test_a_local_port_can_be_overridden_per_service():
    """Issue 27: ports overridable (another local program already uses 3000)."""
    moved = connect.with_ports(connect.FORWARDS, {"langfuse-web": 13000})
    assert [f.local_port for f in moved] == [13000, 8123, 6379]
    with pytest.raises(ValueError, match="no forward for langfuse-ui"):
        connect.with_ports(connect.FORWARDS, {"langfuse-ui": 1})


def test_a_port_already_taken_is_named_before_anything_runs():
    """Issue 27: a clear error naming the port and what it was for."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        forwards = connect.with_ports(connect.FORWARDS, {"langfuse-web": port, "langfuse-clickhouse": free_port(),
                                                         "langfuse-redis-primary": free_port()})
        with pytest.raises(connect.PortTaken, match=f"local port {port} \\(Langfuse UI and API\\) already in use"):
            connect.check_free(forwards)


def test_the_summary_says_what_is_where():
    """Issue 27: one line saying what is where."""
    line = connect.summary(connect.FORWARDS)
    assert "\n" not in line
    assert "Langfuse UI and API on http://localhost:3000" in line and "Redis on localhost:6379" in line


def test_a_forward_that_drops_is_established_again_on_the_same_port(kube):
    """Issue 27: when kubectl exits (its pod restarted), the forward comes back on the same local
    port, counted in `restarts`; stop() ends the last one by its PID."""
    port = free_port()
    forward = connect.Forward("Langfuse UI and API", "langfuse-web", 3000, port)
    holder = connect.Holder(kube, "langfuse", [forward], restart_delay=0.1)
    with holder:
        first = retry(lambda: _ask(port), timeout=10, interval=0.1, what="the first forward", retry_on=(OSError,))
        _ask(port, b"exit")
        second = retry(lambda: _ask(port), timeout=10, interval=0.1, what="the forward established again",
                       retry_on=(OSError,), validator=lambda answer: answer != first)
        pid = int(second.split()[1])
    assert holder.restarts == {"langfuse-web": 1}
    retry(lambda: alive(pid), timeout=5, interval=0.1, what="the last forward ended", validator=lambda a: not a)



def test_stopping_ends_every_forward_even_while_one_restarts(kube):
    """Issue 27: Ctrl-C leaves no kubectl behind, whatever each loop was doing."""
    ports = [free_port(), free_port()]
    forwards = [connect.Forward(f"f{i}", f"svc-{i}", 1, p) for i, p in enumerate(ports)]
    holder = connect.Holder(kube, "langfuse", forwards, restart_delay=0.05)
    holder.start()
    pids = [int(retry(lambda p=p: _ask(p), timeout=10, interval=0.1, what="forward up", retry_on=(OSError,)).split()[1])
            for p in ports]
    _ask(ports[0], b"exit")
    time.sleep(0.1)
    holder.stop()
    assert [p for p in pids if alive(p)] == []
    for port in ports:
        with pytest.raises(OSError):
            _ask(port)
