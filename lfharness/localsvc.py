"""Real local stand-ins on free loopback ports: PostgreSQL and Redis from Debian, moto server."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lfharness.wait import retry

LOG = logging.getLogger("lfharness.localsvc")


class StandInMissing(RuntimeError):
    """A stand-in's binary is not installed; the message says which Debian package to install."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def postgres_bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise StandInMissing("PostgreSQL stand-in needs Debian's postgresql package: apt-get install -y postgresql "
                             "(bash setup.sh does it as root)")
    return found[-1].parent


@dataclass(frozen=True)
class PgParams:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    sslmode: str = "disable"

    def conn(self) -> dict:
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password,
                "dbname": self.dbname, "sslmode": self.sslmode}


@contextlib.contextmanager
def local_postgres(password: str, timeout: float = 60) -> Iterator[PgParams]:
    """A throwaway PostgreSQL cluster with password (scram) auth over TCP on 127.0.0.1."""
    bindir = postgres_bin_dir()
    run_as: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="lfk8s-pg-"))
    if os.geteuid() == 0:
        # initdb refuses root: run the cluster as Debian's postgres user.
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(workdir, "postgres", "postgres")
    pwfile = workdir / "pw"
    pwfile.write_text(password)
    if run_as:
        shutil.chown(pwfile, "postgres", "postgres")
    data, port = workdir / "data", _free_port()
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "langfuse", "--auth=scram-sha-256",
                    f"--pwfile={pwfile}", "-E", "UTF8"], check=True, capture_output=True)
    proc = subprocess.Popen([*run_as, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                             "-h", "127.0.0.1", "-k", str(workdir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        retry(lambda: _port_open(port), timeout=timeout, interval=0.5, what=f"local PostgreSQL on {port}")
        yield PgParams("127.0.0.1", port, "langfuse", password, "postgres")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def local_redis(password: str, timeout: float = 30) -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise StandInMissing("Redis stand-in needs Debian's redis-server package: apt-get install -y redis-server")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="lfk8s-redis-") as tmp:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
                                 "--dir", tmp, "--save", "", "--appendonly", "no"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            retry(lambda: _port_open(port), timeout=timeout, interval=0.2, what=f"local Redis on {port}")
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
