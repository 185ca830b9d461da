"""What a write-only argument carried, as the provider stand-in saw it (digests, never values).

A real provider sends a write-only value (the Kubernetes Secret's `data_wo`) to its API and keeps
nothing: neither the plan nor the state holds it, so the offline tiers cannot read it there. The
stand-in writes one line per non-null write-only attribute of every ApplyResourceChange to its log
(`lfharness/testing/provider/writeonly.go`): the resource type, the attribute, and the SHA-256 of
each value (per key for a map). Tests compare those with the digests of the values they expect.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

PREFIX = "write-only: "


@dataclass(frozen=True)
class Sent:
    """One write-only attribute of one apply: digests by key ("" for a single value), null keys."""

    type: str
    attribute: str
    sha256: dict[str, str]
    null: tuple[str, ...]

    def matches(self, expected: dict[str, str]) -> dict[str, bool]:
        """For each expected key, whether the value sent under it was exactly this one."""
        return {k: self.sha256.get(k) == digest(v) for k, v in expected.items()}


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def records(log: Path) -> list[Sent]:
    """Every write-only record in a stand-in server's log, oldest first."""
    if not log.exists():
        return []
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(PREFIX):
            doc = json.loads(line[len(PREFIX):])
            found.append(Sent(doc["type"], doc["attribute"], dict(doc.get("sha256") or {}),
                              tuple(doc.get("null") or ())))
    return found


def last_sent(log: Path, type_name: str, attribute: str) -> Sent | None:
    """The most recent record for this resource type and attribute, or None."""
    return next((r for r in reversed(records(log)) if (r.type, r.attribute) == (type_name, attribute)), None)
