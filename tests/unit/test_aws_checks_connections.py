"""How the data-store checks connect (issue 28: each kills mutants of lfharness/stack/aws_checks.py no
other test noticed): one attempt each, within the time limit the caller asks for, and the version a
Valkey server reports.

Stand-ins, named in each docstring: loopback sockets that accept and never answer (a stuck
port-forward), a loopback listener whose accept queue is full (a host that drops the connection
attempt, as a security group does), and a minimal RESP server answering INFO as Valkey 8 does (no
valkey-server here; Debian's redis-server reports no valkey_version).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from lfharness.stack import aws_checks

pytestmark = pytest.mark.static

# A check that waits past its own time limit fails these tests rather than hanging them: the stand-ins
# close every connection after this long.
_HOLD = 6.0


class _SilentServer:
    """Accepts connections on loopback, never answers, counts them, and drops them after _HOLD seconds."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        deadline = time.monotonic() + _HOLD
        while not self._stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self.accepted.append(self._listener.accept()[0])
        for conn in self.accepted:
            conn.close()
        self._listener.close()

    def __enter__(self) -> _SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def _dropping_host() -> Iterator[int]:
    """A loopback port whose accept queue is full: Linux drops further SYNs, so a connect hangs until
    the client's own limit, like a host behind a security group that drops the packets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def _elapsed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    with pytest.raises(aws_checks.CheckError):
        call()
    return time.monotonic() - started


_REDIS_CHECKS = [aws_checks.redis_ping, aws_checks.redis_server_version]


@pytest.mark.parametrize("check", _REDIS_CHECKS, ids=["ping", "version"])
def test_a_redis_that_never_answers_is_asked_once_within_the_time_limit(check):
    """FR21, issue 26 item 2: against a port-forward that accepts and never answers, the check makes one
    attempt (the caller's wait decides on more) and gives up after its own limit (0.5 s here), not
    redis-py's default 5 s (a loopback socket that never answers)."""
    with _SilentServer() as server:
        elapsed = _elapsed(lambda: check("127.0.0.1", server.port, "not-the-password", timeout=0.5))
        time.sleep(0.1)  # let the server take any further connection a retry made
        attempts = len(server.accepted)
    assert (attempts, elapsed < 2.5) == (1, True), (attempts, elapsed)


@pytest.mark.parametrize("check", _REDIS_CHECKS, ids=["ping", "version"])
def test_a_redis_host_that_drops_the_connection_fails_within_the_time_limit(check):
    """FR21, issue 26 item 2: a connection attempt nobody answers (packets dropped) fails after the
    check's own limit (0.5 s here), not redis-py's default 5 s (a loopback listener with a full accept
    queue)."""
    with _dropping_host() as port:
        elapsed = _elapsed(lambda: check("127.0.0.1", port, "not-the-password", timeout=0.5))
    assert elapsed < 2.5, elapsed


def test_an_rds_that_never_answers_fails_within_the_connection_timeout():
    """FR5, NFR3: a PostgreSQL endpoint that accepts and never answers fails within the connection's
    timeout (libpq's minimum, 2 s, here), as a CheckError, rather than hanging the check (a loopback
    socket that never answers)."""
    with _SilentServer() as server:
        conn = aws_checks.DbConn(host="127.0.0.1", port=server.port, user="langfuse", password="not-the-password",
                                 dbname="langfuse", sslmode="disable", timeout=1)
        elapsed = _elapsed(lambda: aws_checks.rds_select_one(conn))
    assert elapsed < 4.5, elapsed


def _bulk(text: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(text), text)


def _hello(protocol: int) -> bytes:
    """HELLO's answer as Valkey 8 gives it: its fields as a RESP3 map, or as a flat array in RESP2
    (redis-py 8.2 opens with HELLO 3 AUTH ..., 8.1 with AUTH)."""
    fields = [(b"server", _bulk(b"valkey")), (b"version", _bulk(b"8.1.1")), (b"proto", b":%d\r\n" % protocol)]
    body = b"".join(_bulk(name) + value for name, value in fields)
    return (b"%%%d\r\n" % len(fields) if protocol == 3 else b"*%d\r\n" % (2 * len(fields))) + body


class _InfoServer:
    """A minimal RESP server on loopback for one client: HELLO answered as Valkey 8 does, INFO with
    `info`, +OK to every other command (AUTH, CLIENT SETINFO)."""

    def __init__(self, info: str) -> None:
        self._info = info.encode()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(_HOLD)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        with contextlib.suppress(OSError), self._listener:
            conn = self._listener.accept()[0]
            conn.settimeout(_HOLD)
            with conn, conn.makefile("rb") as reader:
                while line := reader.readline():
                    args = [reader.read(int(reader.readline()[1:]) + 2)[:-2] for _ in range(int(line[1:]))]
                    command = args[0].upper()
                    if command == b"HELLO":
                        conn.sendall(_hello(int(args[1]) if len(args) > 1 else 2))
                    else:
                        conn.sendall(_bulk(self._info) if command == b"INFO" else b"+OK\r\n")

    def __enter__(self) -> _InfoServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._thread.join()


def test_a_valkey_servers_own_version_is_reported_not_its_redis_compatibility_version():
    """Issue 26 item 2: Valkey 8 answers INFO server with redis_version:7.2.4 (for Redis clients) and
    its own valkey_version; the check reports Valkey's own (a RESP stand-in answering as Valkey 8.1.1)."""
    with _InfoServer("# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\n") as server:
        assert aws_checks.redis_server_version("127.0.0.1", server.port, "pw") == "8.1.1"


def test_a_server_reporting_no_version_gives_an_empty_version():
    """Issue 26 item 2: a server whose INFO server names no version gives an empty version, nothing
    made up (a RESP stand-in answering without version fields)."""
    with _InfoServer("# Server\r\nserver_name:other\r\n") as server:
        assert aws_checks.redis_server_version("127.0.0.1", server.port, "pw") == ""
