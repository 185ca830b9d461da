"""Real local stand-ins on free loopback ports: PostgreSQL and Redis from Debian, moto's server.

Each is a context manager that starts the real software in a temporary folder and stops it on
exit. A missing binary raises StandInMissing naming the Debian package; installing is
setup.sh's job, not this module's.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from lfharness.core import envfile
from lfharness.core.procs import free_port
from lfharness.core.wait import retry

LOG = logging.getLogger("lfharness.localsvc")

PG_OS_USER = "postgres"  # Debian's postgresql package creates it; initdb refuses to run as root


class StandInMissing(RuntimeError):
    """A stand-in's binary is not installed; the message says which Debian package to install."""


class StandInFailed(RuntimeError):
    """A stand-in is installed but would not start; the message carries its log's tail."""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


# --- PostgreSQL ----------------------------------------------------------------------------

def postgres_bin_dir() -> Path:
    """Newest /usr/lib/postgresql/<major>/bin holding initdb, pg_ctl and postgres together.

    Not $PATH: a stray postgres elsewhere (e.g. /usr/local/bin) may not match Debian's initdb.
    """
    def major(bindir: Path) -> int:
        return int(re.sub(r"\D", "", bindir.parent.name) or 0)

    complete = [d for d in Path("/usr/lib/postgresql").glob("*/bin")
                if all((d / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))]
    if not complete:
        raise StandInMissing("the local PostgreSQL stand-in needs Debian's postgresql package "
                             "(initdb, pg_ctl, postgres under /usr/lib/postgresql/*/bin): "
                             "apt-get update && apt-get install -y postgresql (bash setup.sh does it as root)")
    return max(complete, key=major)


def _pg_os_user() -> str:
    """The non-root account PostgreSQL runs as when we are root; created if Debian's is absent."""
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        # The package normally creates it; a half-installed image may not have.
        proc = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                               PG_OS_USER], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise StandInMissing(f"PostgreSQL cannot run as root and there is no '{PG_OS_USER}' user "
                                 f"(useradd failed: {proc.stderr.strip()}); reinstall Debian's postgresql "
                                 "package: apt-get install --reinstall -y postgresql-common") from None
    return PG_OS_USER


class LocalPostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port> with password (scram) auth over TCP.

    Its superuser `user` has `password` (random unless given) and owns database `dbname`.
    """

    def __init__(self, workdir: Path, *, user: str = "langfuse", password: str | None = None,
                 dbname: str = "langfuse", timeout: float = 60) -> None:
        self.workdir = Path(workdir)
        self.host = "127.0.0.1"
        self.port = 0
        self.user = user
        self.password = password or secrets.token_hex(16)
        self.dbname = dbname
        self.sslmode = "disable"  # the stand-in has no certificate; RDS checks use require
        self._timeout = timeout
        self._bindir: Path | None = None
        self._run_as: list[str] = []
        self._home: Path | None = None

    def conn(self) -> dict[str, Any]:
        """Keyword arguments for the aws_checks functions and psycopg.connect."""
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password,
                "dbname": self.dbname, "sslmode": self.sslmode}

    @property
    def data_dir(self) -> Path:
        assert self._home is not None, "LocalPostgres is not started"
        return self._home / "data"

    @property
    def log_file(self) -> Path:
        assert self._home is not None, "LocalPostgres is not started"
        return self._home / "postgres.log"

    def _make_home(self) -> Path:
        """A folder the server's OS user can write: under workdir if reachable, else the system temp dir."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self._run_as:
            return Path(tempfile.mkdtemp(prefix="pg-", dir=self.workdir))
        # pytest's tmp dirs are root-only (0700): the postgres user could not even traverse them.
        for parent in (self.workdir, Path(tempfile.gettempdir())):
            home = Path(tempfile.mkdtemp(prefix="lfh-pg-", dir=parent))
            shutil.chown(home, PG_OS_USER, PG_OS_USER)
            if subprocess.run([*self._run_as, "test", "-w", str(home)], check=False).returncode == 0:
                return home
            shutil.rmtree(home, ignore_errors=True)
        raise StandInFailed(f"no folder writable by the {PG_OS_USER} user under {self.workdir} "
                            f"or {tempfile.gettempdir()}")

    def _run(self, *args: str) -> None:
        proc = subprocess.run([*self._run_as, *args], capture_output=True, text=True, check=False,
                              timeout=self._timeout)
        if proc.returncode != 0:
            raise StandInFailed(f"{Path(args[0]).name} exited {proc.returncode}: "
                                f"{(proc.stderr or proc.stdout).strip()[-1500:]}\nlog:\n{_tail(self.log_file)}")

    def __enter__(self) -> Self:
        self._bindir = postgres_bin_dir()
        self._run_as = ["runuser", "-u", _pg_os_user(), "--"] if os.geteuid() == 0 else []
        if self._run_as and shutil.which("runuser") is None:
            raise StandInMissing("running PostgreSQL as root needs runuser (Debian's util-linux package): "
                                 "apt-get install -y util-linux")
        self._home = self._make_home()
        try:
            self._start()
        except BaseException:
            self._cleanup()
            raise
        LOG.info("local PostgreSQL (%s) on %s:%d, db %s", self._bindir.parent.name, self.host, self.port,
                 self.dbname)
        return self

    def _start(self) -> None:
        assert self._bindir is not None and self._home is not None
        pwfile = self._home / "pw"
        pwfile.touch(mode=0o600)  # private before the password is written into it
        pwfile.write_text(self.password)
        if self._run_as:
            shutil.chown(pwfile, PG_OS_USER, PG_OS_USER)
        # scram for local socket and TCP alike: every connection proves the password.
        self._run(str(self._bindir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                  "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        self.port = free_port()
        # pg_ctl hands -o to a shell: quote the socket folder.
        options = f"-p {self.port} -h {self.host} -k {shlex.quote(str(self._home))} -c fsync=off"
        self._run(str(self._bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                  "-o", options, "-w", "-t", str(int(self._timeout)), "start")
        if self.dbname != "postgres":
            self._create_database()

    def _create_database(self) -> None:
        import psycopg  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        with psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                             dbname="postgres", sslmode="disable", autocommit=True) as db:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))

    def _cleanup(self) -> None:
        if self._bindir is not None and self._home is not None and (self.data_dir / "postmaster.pid").exists():
            # fast: disconnect clients instead of waiting for them (smart mode would hang on a leaked one).
            proc = subprocess.run([*self._run_as, str(self._bindir / "pg_ctl"), "-D", str(self.data_dir),
                                   "-m", "fast", "-w", "-t", "30", "stop"], capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                LOG.warning("pg_ctl stop exited %d: %s", proc.returncode, proc.stderr.strip())
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._cleanup()


# --- Redis ---------------------------------------------------------------------------------

def redis_server_bin() -> Path:
    found = shutil.which("redis-server")
    if found is None:
        raise StandInMissing("the local Redis stand-in needs Debian's redis-server package: "
                             "apt-get update && apt-get install -y redis-server (bash setup.sh does it as root)")
    return Path(found)


def _redis_quote(value: str) -> str:
    # redis.conf reads "..." with backslash escapes: spaces or quotes in a value stay one argument.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class LocalRedis:
    """redis-server on 127.0.0.1:<free port> requiring `password`, no persistence, files in workdir."""

    def __init__(self, workdir: Path, password: str, *, timeout: float = 30) -> None:
        self.workdir = Path(workdir)
        self.host = "127.0.0.1"
        self.port = 0
        self.password = password
        self._timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.workdir / f"redis-{self.port}.log"

    def _ping(self) -> bool:
        import redis  # noqa: PLC0415

        if self._proc is not None and self._proc.poll() is not None:
            raise StandInFailed(f"redis-server exited {self._proc.returncode}:\n{_tail(self.log_file)}")
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        with redis.Redis(host=self.host, port=self.port, password=self.password, socket_timeout=2,
                         socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)) as client:
            return bool(client.ping())

    def __enter__(self) -> Self:
        import redis  # noqa: PLC0415

        binary = redis_server_bin()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        # A 0600 config file rather than flags: the password stays out of the process list.
        conf = self.workdir / f"redis-{self.port}.conf"
        conf.touch(mode=0o600)
        conf.write_text(f"port {self.port}\nbind {self.host}\nrequirepass {_redis_quote(self.password)}\n"
                        f"dir {_redis_quote(str(self.workdir))}\nlogfile {_redis_quote(str(self.log_file))}\n"
                        'save ""\nappendonly no\ndaemonize no\n')
        self._proc = subprocess.Popen([str(binary), str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        try:
            # Only "not listening yet" is retried: a crashed server fails at once with its log.
            retry(self._ping, timeout=self._timeout, interval=0.1, what=f"local Redis on {self.port}",
                  retry_on=(redis.exceptions.ConnectionError, OSError))
        except BaseException:
            self._stop()
            raise
        LOG.info("local Redis on %s:%d", self.host, self.port)
        return self

    def _stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()


# --- moto ----------------------------------------------------------------------------------

class EndpointSession:
    """A boto3 Session whose clients all talk to one endpoint (the stand-in), so code written for
    `session.client("s3")` runs unchanged against moto."""

    def __init__(self, endpoint_url: str, region_name: str = "us-east-1") -> None:
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        # Dummy credentials: moto accepts anything, and the operator's real ones must never be used here.
        self._session = envfile.boto3_session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                              region_name=region_name)
        self._clients = ClientCache(self._session, endpoint_url)

    def client(self, service_name: str, **kwargs: Any) -> Any:
        return self._clients.get(service_name, **kwargs)


class ClientCache:
    """One boto3 client per service and arguments for a session pointed at one endpoint: boto3
    clients are thread-safe, and making one costs far more than the moto call it is made for."""

    def __init__(self, session: Any, endpoint_url: str) -> None:
        self._session = session
        self._endpoint_url = endpoint_url
        self._made: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
        self._lock = threading.Lock()

    def get(self, service_name: str, **kwargs: Any) -> Any:
        kwargs.setdefault("endpoint_url", self._endpoint_url)
        # Under the lock: a boto3 Session is not thread-safe, its clients are.
        with self._lock:
            try:
                key = (service_name, tuple(sorted(kwargs.items())))
                hash(key)
            except TypeError:  # an unhashable argument: made each time
                key = None
            if key is None or "config" in kwargs:  # a botocore Config hashes by identity: made each time
                return self._session.client(service_name, **kwargs)
            if key not in self._made:
                self._made[key] = self._session.client(service_name, **kwargs)
            return self._made[key]


class MotoServer:
    """moto's ThreadedMotoServer on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.port = 0
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        assert self.port, "MotoServer is not started"
        return f"http://127.0.0.1:{self.port}"

    def session(self, region_name: str = "us-east-1") -> EndpointSession:
        """A session with dummy credentials whose clients point at this server."""
        return EndpointSession(self.endpoint_url, region_name)

    def reset(self) -> None:
        """Forget every resource (moto's reset API), for tests sharing one server."""
        import requests  # noqa: PLC0415

        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def __enter__(self) -> Self:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        LOG.info("moto server at %s", self.endpoint_url)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


# --- fake command-line tools -----------------------------------------------------------------

_FAKE_CLI = '''#!{python}
# Fake {name}: answers by the first rule whose regex matches the joined arguments; logs each call.
import json, os, re, sys, time
args = " ".join(sys.argv[1:])
with open({calls!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
for rule in json.loads({rules!r}):
    if re.search(rule["match"], args):
        time.sleep(rule.get("sleep", 0))
        if rule.get("echo_stdin"):
            sys.stdout.write(sys.stdin.read())
        if "echo_env" in rule:
            sys.stdout.write(json.dumps({{k: os.environ.get(k) for k in rule["echo_env"]}}))
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        sys.exit(rule.get("code", 0))
sys.stderr.write("fake {name}: no rule for: " + args + "\\n")
sys.exit(97)
'''


class FakeCli:
    """A stand-in for a command-line tool (kubectl, terraform) as an executable script.

    rules: (regex on the space-joined arguments, answer) in order, the first match wins; an answer
    has stdout, stderr, code (exit status), sleep (seconds before answering), echo_stdin (print what
    it read on stdin) and echo_env (names of environment variables to print as a JSON object: what
    the tool was given). Every call's
    argument list is recorded; `calls()` returns them in order.
    """

    def __init__(self, folder: Path, name: str, rules: list[tuple[str, dict[str, Any]]]) -> None:
        import json  # noqa: PLC0415
        import sys  # noqa: PLC0415

        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / name
        self._calls = folder / f"{name}.calls.jsonl"
        self._calls.write_text("")
        encoded = json.dumps([{"match": pattern, **answer} for pattern, answer in rules])
        self.path.write_text(_FAKE_CLI.format(python=sys.executable, name=name, calls=str(self._calls),
                                              rules=encoded))
        self.path.chmod(0o755)

    def calls(self) -> list[list[str]]:
        import json  # noqa: PLC0415

        return [json.loads(line) for line in self._calls.read_text().splitlines() if line]
