"""`python -m lfharness connect`: the port-forwards of FR19-FR21 held until Ctrl-C.

Langfuse has no public URL (FR19): the UI and API, ClickHouse's HTTP interface and Redis are
reached through `kubectl port-forward svc/...`. A forward lives as long as the pod kubectl picked
when it started: when that pod is replaced, kubectl may exit ("lost connection to pod") or keep
running and fail every new connection. Each forward here runs in a loop that starts kubectl again
(after `restart_delay`) when it exits, and also ends it when none of the pods that backed its
Service at its start is still there, so the operator's local ports keep working across restarts.
"""

from __future__ import annotations

import errno
import logging
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lfharness.core import procs

LOG = logging.getLogger("lfharness.stack.connect")


@dataclass(frozen=True)
class Forward:
    """One local port forwarded to a Service port."""

    label: str
    service: str
    remote_port: int
    local_port: int

    def where(self) -> str:
        scheme = "http://" if self.remote_port in (3000, 8123) else ""
        return f"{self.label} on {scheme}localhost:{self.local_port}"


FORWARDS: tuple[Forward, ...] = (
    Forward("Langfuse UI and API", "langfuse-web", 3000, 3000),  # FR19
    Forward("ClickHouse HTTP", "langfuse-clickhouse", 8123, 8123),  # FR20
    Forward("Redis", "langfuse-redis-primary", 6379, 6379),  # FR21 (Valkey: -primary, decision 13)
)


class PortTaken(RuntimeError):
    """A local port the forwards need is already in use."""


def with_ports(forwards: Sequence[Forward], ports: dict[str, int]) -> tuple[Forward, ...]:
    """The forwards with local ports overridden by service name (`--port langfuse-web=13000`)."""
    unknown = sorted(set(ports) - {f.service for f in forwards})
    if unknown:
        raise ValueError(f"no forward for {', '.join(unknown)}; the services are "
                         f"{', '.join(f.service for f in forwards)}")
    return tuple(replace(f, local_port=ports.get(f.service, f.local_port)) for f in forwards)


def check_free(forwards: Iterable[Forward], host: str = "127.0.0.1") -> None:
    """PortTaken naming each local port that something else already listens on, before any kubectl runs."""
    taken = []
    for forward in forwards:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, forward.local_port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                taken.append(f"{forward.local_port} ({forward.label})")
    if taken:
        raise PortTaken(f"local port {', '.join(taken)} already in use: stop what listens there (`ss -ltnp`) or pick "
                        "another with --port SERVICE=PORT")


class Holder:
    """Runs `kubectl port-forward` for each forward and starts it again whenever it exits, until
    stop(). `restarts` counts the re-establishments per service."""

    def __init__(self, kube: Any, namespace: str, forwards: Sequence[Forward], *, restart_delay: float = 1.0,
                 pod_check_interval: float = 2.0) -> None:
        self.kube = kube
        self.pod_check_interval = pod_check_interval
        self.namespace = namespace
        self.forwards = tuple(forwards)
        self.restart_delay = restart_delay
        self.restarts: dict[str, int] = {f.service: 0 for f in self.forwards}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._procs: dict[str, subprocess.Popen[str]] = {}
        self._lock = threading.Lock()

    def _backing(self, forward: Forward) -> set[str] | None:
        """The pods behind the forward's Service now (None when the cluster cannot say)."""
        lookup = getattr(self.kube, "service_pods", None)
        if lookup is None:
            return None
        try:
            return set(lookup(self.namespace, forward.service))
        except Exception as exc:  # noqa: BLE001 (a failed lookup must not end the forward; kubectl's own exit still counts)
            LOG.debug("connect: pods behind svc/%s unknown: %s", forward.service, exc)
            return None

    def _hold(self, forward: Forward) -> None:
        while not self._stop.is_set():
            backing = self._backing(forward)
            started = time.monotonic()  # the warning's "dropped after" is this kubectl's life
            with tempfile.TemporaryFile("w+") as stderr:
                proc = procs.popen_tied(self.kube.port_forward_argv(self.namespace, forward.service,
                                                                    forward.local_port, forward.remote_port),
                                        stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                                        env=None if self.kube.env is None else dict(self.kube.env))
                with self._lock:
                    self._procs[forward.service] = proc
                checked = time.monotonic()
                replaced = False
                while proc.poll() is None and not self._stop.is_set():
                    time.sleep(0.2)
                    if backing and time.monotonic() - checked >= self.pod_check_interval:
                        checked = time.monotonic()
                        now = self._backing(forward)
                        if now is not None and not backing & now:
                            replaced = True
                            procs.end(proc)
                if self._stop.is_set():
                    procs.end(proc)  # started just as stop() ran: stop() may not have seen it
                    break
                stderr.seek(0)
                why = (["its pod was replaced"] if replaced
                       else stderr.read().strip().splitlines()[-1:] or ["(no output)"])
            self.restarts[forward.service] += 1
            LOG.warning("connect: the forward to svc/%s dropped after %.0fs (kubectl exited %s: %s); "
                        "re-establishing it on localhost:%d", forward.service, time.monotonic() - started,
                        proc.returncode, why[0], forward.local_port)
            self._stop.wait(self.restart_delay)

    def start(self) -> None:
        for forward in self.forwards:
            thread = threading.Thread(target=self._hold, args=(forward,), name=f"forward-{forward.service}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Ends every kubectl by its PID (SIGTERM, then SIGKILL after 10 s) and the loops."""
        self._stop.set()
        with self._lock:
            running = list(self._procs.values())
        for proc in running:
            procs.end(proc)
        for thread in self._threads:
            thread.join(timeout=15)

    def __enter__(self) -> Holder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def summary(forwards: Iterable[Forward]) -> str:
    """The one line saying what is where."""
    return "connected: " + "; ".join(f.where() for f in forwards) + " (Ctrl-C ends them)"
