"""`python -m lfharness connect` (FR19-FR21, issue 27): what the Holder does with kubectl and what
it tells the operator, case by case (static tier).

Stand-in for kubectl: a small Python program that prints kubectl's "Forwarding from" line, serves
the forward's local port, and exits with the error lines it is given when told to (as
`kubectl port-forward` exits when its pod goes). Stand-in for the cluster's pod lookup: a
FakeKube whose `service_pods` answers from a set the test changes. The kube tier holds the real
kubectl against a real API server.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lfharness.core.procs import free_port
from lfharness.core.wait import retry
from lfharness.stack import connect
from lfharness.testing.processes import alive

pytestmark = pytest.mark.static

NAMESPACE = "langfuse"

# argv: local port. Answers "ok <pid>", "env <LFK8S_FAKE_MARK>" to "env", and on "exit" writes the
# lines of FAKE_STDERR (split on "|") to stderr and exits 1.
_FAKE_KUBECTL = textwrap.dedent("""
    import os, socket, sys
    port = int(sys.argv[1])
    server = socket.create_server(("127.0.0.1", port))
    print(f"Forwarding from 127.0.0.1:{port} -> 3000", flush=True)
    while True:
        conn, _ = server.accept()
        with conn:
            message = conn.recv(16)
            if message.startswith(b"exit"):
                lines = os.environ.get("FAKE_STDERR", "")
                if lines:
                    sys.stderr.write("\\n".join(lines.split("|")) + "\\n")
                sys.exit(1)
            if message.startswith(b"env"):
                conn.sendall(f"env {os.environ.get('LFK8S_FAKE_MARK', '-')}".encode())
                continue
            conn.sendall(f"ok {os.getpid()}".encode())
""")


class FakeKube:
    """kubectl's argv and the pods behind each Service, as k8s.Kube gives them to the Holder."""

    def __init__(self, script: Path, env: dict[str, str] | None = None) -> None:
        self.script = script
        self.env = env
        self.asked: list[tuple[str, str, int, int]] = []

    def port_forward_argv(self, namespace: str, service: str, local_port: int, remote_port: int) -> list[str]:
        self.asked.append((namespace, service, local_port, remote_port))
        return [sys.executable, str(self.script), str(local_port)]


class PodsKube(FakeKube):
    """Also answers which pods back a Service now, from `pods` (an exception in it is raised)."""

    def __init__(self, script: Path, pods: set[str] | Exception) -> None:
        super().__init__(script)
        self.pods = pods
        self.lookups = 0

    def service_pods(self, namespace: str, service: str) -> list[str]:
        self.lookups += 1
        if (namespace, service) != (NAMESPACE, "svc-x"):
            raise LookupError(f"no service {service!r} in {namespace!r}")
        if isinstance(self.pods, Exception):
            raise self.pods
        return sorted(self.pods)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "fake_kubectl.py"
    path.write_text(_FAKE_KUBECTL)
    return path


def _ask(port: int, message: bytes = b"hello") -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(message)
        return conn.recv(64).decode()


def _up(port: int, what: str = "the forward", validator: Callable[[str], bool] = lambda _: True) -> str:
    return retry(lambda: _ask(port), timeout=10, interval=0.05, what=what, retry_on=(OSError,), validator=validator)


def _pid(answer: str) -> int:
    return int(answer.split()[1])



def _forward(port: int) -> connect.Forward:
    return connect.Forward("Langfuse UI and API", "svc-x", 3000, port)


def _drops(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "dropped" in r.getMessage()]


def test_kubectl_is_asked_for_the_service_port_in_the_namespace(script):
    """FR19: the forward targets svc/<service>:<remote port> in Langfuse's namespace, on the local port."""
    kube, port = FakeKube(script), free_port()
    with connect.Holder(kube, NAMESPACE, [connect.Forward("UI", "svc-x", 3000, port)]):
        _up(port)
    assert kube.asked == [(NAMESPACE, "svc-x", port, 3000)]


def test_kubectl_runs_with_the_clusters_environment(script):
    """FR19: kubectl gets the environment the cluster access gives (its kubeconfig and credentials)."""
    env = {"PATH": os.environ["PATH"], "LFK8S_FAKE_MARK": "from-the-cluster-access"}
    port = free_port()
    with connect.Holder(FakeKube(script, env), NAMESPACE, [_forward(port)]):
        _up(port)
        assert _ask(port, b"env") == "env from-the-cluster-access"


def test_kubectls_own_lines_stay_off_the_operators_console(script, capfd):
    """Issue 27: the console shows the one summary line, not kubectl's "Forwarding from" chatter."""
    port = free_port()
    with connect.Holder(FakeKube(script), NAMESPACE, [_forward(port)]):
        _up(port)
    captured = capfd.readouterr()
    assert "Forwarding from" not in captured.out + captured.err


@pytest.mark.parametrize(("stderr", "shown"), [
    ("error: lost connection to pod", "error: lost connection to pod"),
    ("Handling connection for 3000|E1204 portforward.go:413] an error occurred|error: lost connection to pod",
     "error: lost connection to pod"),
    ("", "(no output)"),
], ids=["one line", "last of three", "silent"])
def test_a_dropped_forward_is_reported_with_kubectls_last_line_and_the_port_it_comes_back_on(
        script, caplog, monkeypatch, stderr, shown):
    """Issue 27: the warning names the Service, kubectl's exit code and last error line, and the
    local port the forward is established on again."""
    monkeypatch.setenv("FAKE_STDERR", stderr)
    caplog.set_level(logging.WARNING, logger="lfharness.stack.connect")
    port = free_port()
    holder = connect.Holder(FakeKube(script), NAMESPACE, [_forward(port)], restart_delay=0.05)
    with holder:
        first = _up(port)
        _ask(port, b"exit")
        _up(port, "the forward established again", lambda answer: answer != first)
    # How long the stand-in lived depends on the machine's load; test_each_drop_is_counted_and_timed... checks it.
    assert [re.sub(r"after \d+s", "after Ns", m) for m in _drops(caplog)] == [
        f"connect: the forward to svc/svc-x dropped after Ns (kubectl exited 1: {shown}); "
        f"re-establishing it on localhost:{port}"]


def test_each_drop_is_counted_and_timed_from_its_own_kubectl(script, caplog):
    """Issue 27: `restarts` counts every re-establishment, and each warning's duration is that
    kubectl's life, not the time since `connect` started (here 2 s of restart delay between: the
    second drop is not reported 2 s longer than the first)."""
    caplog.set_level(logging.WARNING, logger="lfharness.stack.connect")
    port = free_port()
    holder = connect.Holder(FakeKube(script), NAMESPACE, [_forward(port)], restart_delay=2.0)
    with holder:
        answer = _up(port)
        for n in (1, 2):
            _ask(port, b"exit")
            answer = retry(lambda: _ask(port), timeout=10, interval=0.05, what=f"forward {n + 1}",
                           retry_on=(OSError,), validator=lambda a, previous=answer: a != previous)
    assert holder.restarts == {"svc-x": 2}
    first, second = (int(re.search(r"dropped after (\d+)s", m).group(1)) for m in _drops(caplog))
    assert second - first <= 1


def test_a_forward_whose_pods_were_all_replaced_is_started_again_on_the_same_port(script, caplog):
    """Issue 27: kubectl may keep running after its pod goes (every new connection fails): when
    none of the pods behind the Service at its start is left, the forward is ended and started
    again, and the warning says why."""
    caplog.set_level(logging.WARNING, logger="lfharness.stack.connect")
    kube, port = PodsKube(script, {"web-1"}), free_port()
    holder = connect.Holder(kube, NAMESPACE, [_forward(port)], restart_delay=0.05, pod_check_interval=0.2)
    with holder:
        first = _up(port)
        kube.pods = {"web-2"}
        _up(port, "the forward to the new pod", lambda answer: answer != first)
        retry(lambda: alive(_pid(first)), timeout=5, interval=0.05, what="the old kubectl ended",
              validator=lambda running: not running)
    assert holder.restarts == {"svc-x": 1}
    assert [m for m in _drops(caplog) if "(kubectl exited" in m and ": its pod was replaced)" in m]


@pytest.mark.parametrize(("start", "later"), [
    ({"web-1", "web-2"}, {"web-2", "web-3"}),
    (set(), set()),
    ({"web-1"}, RuntimeError("the API server did not answer")),
], ids=["one pod stays", "no pods at its start", "lookup fails"])
def test_a_forward_is_kept_while_the_pods_do_not_say_it_is_dead(script, start, later):
    """Issue 27: a forward stays while one of its pods remains, while the Service had no pods to
    watch, or while the cluster cannot say; kubectl's own exit still brings it back."""
    kube, port = PodsKube(script, start), free_port()
    holder = connect.Holder(kube, NAMESPACE, [_forward(port)], restart_delay=0.05, pod_check_interval=0.1)
    with holder:
        first = _up(port)
        kube.pods = later
        time.sleep(0.6)  # six pod checks
        assert (_ask(port), holder.restarts) == (first, {"svc-x": 0})
        _ask(port, b"exit")
        _up(port, "the forward established again after kubectl exited", lambda answer: answer != first)
    assert holder.restarts == {"svc-x": 1}


def test_the_pods_are_looked_up_once_a_check_interval_not_at_every_poll(script):
    """Issue 27: each pod check costs the API server two calls (the Service, its pods), so a held
    forward asks once per `pod_check_interval` (here 1 s: at most 3 lookups in 2 s), not at every
    0.2 s look at kubectl."""
    kube, port = PodsKube(script, {"web-1"}), free_port()
    with connect.Holder(kube, NAMESPACE, [_forward(port)], pod_check_interval=1.0):
        _up(port)
        before = kube.lookups
        time.sleep(2.0)
        during = kube.lookups - before
    assert 1 <= during <= 3


def test_a_kubectl_started_as_connect_stops_is_ended_by_its_loop_without_a_traceback(script, monkeypatch):
    """Issue 27: Ctrl-C can land while a forward's kubectl is being started (stop() has already
    ended the ones it knew of); that kubectl is ended too, and no traceback reaches the console."""
    errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    port, stoppers = free_port(), []

    class StoppedWhileStarting(FakeKube):
        def port_forward_argv(self, namespace: str, service: str, local_port: int, remote_port: int) -> list[str]:
            stopper = threading.Thread(target=holder.stop)
            stopper.start()
            stoppers.append(stopper)  # only once started: the test joins what it finds here
            time.sleep(0.5)  # stop() has set its flag and ended the kubectls it knew of: none yet
            return super().port_forward_argv(namespace, service, local_port, remote_port)

    holder = connect.Holder(StoppedWhileStarting(script), NAMESPACE, [_forward(port)])
    holder.start()
    retry(lambda: stoppers, timeout=10, interval=0.05, what="kubectl being started", validator=bool)
    stoppers[0].join(timeout=20)
    assert errors == []
    with pytest.raises(OSError):
        _ask(port)


def test_a_failed_pod_lookup_is_in_the_run_log_with_its_reason(script, caplog):
    """Issue 27: why the pod check was skipped is in the run log (DEBUG), named by Service."""
    caplog.set_level(logging.DEBUG, logger="lfharness.stack.connect")
    kube, port = PodsKube(script, RuntimeError("the API server did not answer")), free_port()
    with connect.Holder(kube, NAMESPACE, [_forward(port)]):
        _up(port)
    assert "connect: pods behind svc/svc-x unknown: the API server did not answer" in caplog.messages


def test_ports_taken_are_all_named_with_the_way_out():
    """FR19-FR21: every local port in use is named with its forward, and the message says how to
    pick another, before any kubectl runs."""
    with socket.create_server(("127.0.0.1", 0)) as one, socket.create_server(("127.0.0.1", 0)) as two:
        forwards = [connect.Forward("UI", "a", 3000, one.getsockname()[1]),
                    connect.Forward("Redis", "b", 6379, two.getsockname()[1])]
        with pytest.raises(connect.PortTaken) as raised:
            connect.check_free(forwards)
    assert str(raised.value) == (
        f"local port {forwards[0].local_port} (UI), {forwards[1].local_port} (Redis) already in use: stop what "
        "listens there (`ss -ltnp`) or pick another with --port SERVICE=PORT")


def test_an_unknown_service_in_port_overrides_is_named_with_the_known_ones():
    """Issue 27: `--port` for a service that has no forward says which services there are."""
    with pytest.raises(ValueError) as raised:
        connect.with_ports(connect.FORWARDS, {"web": 1, "db": 2})
    assert str(raised.value) == ("no forward for db, web; the services are langfuse-web, langfuse-clickhouse, "
                                 "langfuse-redis-primary")


def test_the_summary_line_gives_each_forwards_address():
    """FR19-FR21: HTTP services as URLs to open, Redis as host:port, and how to end them."""
    assert connect.summary(connect.FORWARDS) == (
        "connected: Langfuse UI and API on http://localhost:3000; ClickHouse HTTP on http://localhost:8123; "
        "Redis on localhost:6379 (Ctrl-C ends them)")
