"""HCL reading for the static tier: python-hcl2, with its quoting normalised away."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import hcl2


def _clean(node: Any) -> Any:
    # python-hcl2 >= 7 keeps the quotes of labels and string literals, and marks blocks.
    if isinstance(node, dict):
        return {_clean(k): _clean(v) for k, v in node.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> str:
    # python-hcl2 (a pure-Python Lark parser) takes 0.05-0.5 s per file, and the plan and static
    # tiers read the same files again and again: each distinct text is parsed once per process.
    # Kept as JSON, so every caller gets its own copy to change.
    return json.dumps(_clean(hcl2.loads(text)))


def load(path: Path) -> dict:
    """One .tf file as plain dicts and lists."""
    return json.loads(_parsed(path.read_text()))


def blocks(folder: Path, kind: str) -> dict[str, Any]:
    """All blocks of one kind (module, output, variable...) across a workspace, by label."""
    found: dict[str, Any] = {}
    for path in sorted(folder.glob("*.tf")):
        for block in load(path).get(kind, []):
            found.update(block)
    return found


def admits(constraint: str, version: str) -> bool:
    """Terraform's version-constraint semantics for the operators used here (~>, >=, <, =)."""
    have = tuple(int(x) for x in version.split("."))
    for part in constraint.split(","):
        op, want_text = re.fullmatch(r"\s*(~>|>=|<=|<|>|=)?\s*([\d.]+)\s*", part).groups()
        want = tuple(int(x) for x in want_text.split("."))
        padded = want + (0,) * (3 - len(want))
        if op == "~>":
            upper = want[:-1][:-1] + (want[:-1][-1] + 1,) if len(want) > 1 else (want[0] + 1,)
            ok = have >= padded and have[: len(upper)] < upper
        else:
            ok = {">=": have >= padded, "<=": have <= padded, "<": have < padded, ">": have > padded,
                  "=": have == padded, None: have == padded}[op]
        if not ok:
            return False
    return True
