"""The provider stand-in as long-lived servers that Terraform reattaches to.

Terraform normally starts every provider anew for each command (and the aws schema is large).
Started once per session here, each stand-in writes its reattach configuration to a file, and
every Terraform command of the session connects to it through TF_REATTACH_PROVIDERS: the same
semantics, one process and one parsed schema per provider.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from lfharness.testing import toolchain

LOG = logging.getLogger("lfharness.testing.standin")

_PREFIX = "TF_REATTACH_PROVIDERS='"


class StandInError(RuntimeError):
    """A stand-in server that did not come up: says which and what it printed."""


class StandInServers:
    """One stand-in server per provider the set-up installed, for the lifetime of the context."""

    def __init__(self, folder: Path, fixtures: Path | None, cache: Path | None = None,
                 timeout: float = 30.0) -> None:
        self.folder = folder
        self.fixtures = fixtures
        self.cache = cache or toolchain.cache_dir()
        self.timeout = timeout
        self.reattach: dict[str, dict] = {}
        self._procs: list[subprocess.Popen] = []

    def __enter__(self) -> StandInServers:
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = toolchain.load_manifest(self.cache)["providers"]
        try:
            for name in toolchain.STANDIN_PROVIDERS:
                self._start(name, manifest[name]["version"])
        except BaseException:
            self.__exit__()
            raise
        LOG.info("provider stand-in servers up for %s", ", ".join(sorted(self.reattach)))
        return self

    def _start(self, name: str, version: str) -> None:
        binary = toolchain.provider_binary(self.cache, toolchain.Provider(name, version, "", None))
        env_file = self.folder / f"{name}.reattach"
        log_file = self.folder / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
        env["LFK8S_STANDIN_REATTACH_FILE"] = str(env_file)
        if self.fixtures is not None:
            env["LFK8S_STANDIN_FIXTURES"] = str(self.fixtures)
        with log_file.open("w") as log:
            proc = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs.append(proc)
        deadline = time.monotonic() + self.timeout
        while not (env_file.exists() and env_file.read_text().endswith("'\n")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StandInError(f"provider stand-in {name} {version} did not start ({binary}): "
                                   + log_file.read_text()[-2000:])
            time.sleep(0.05)
        text = env_file.read_text().strip()
        self.reattach.update(json.loads(text[len(_PREFIX):-1]))

    @property
    def env(self) -> dict[str, str]:
        return {"TF_REATTACH_PROVIDERS": json.dumps(self.reattach)}

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
