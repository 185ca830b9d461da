"""The package's import graph and its rule, read from the source (ast), nothing imported.

The rule (docs/development.md): operator code (`lfharness/core/`, `lfharness/stack/`,
`lfharness/commands.py`) never imports test machinery (`lfharness/testing/`); `core` imports
nothing above it (`stack`, `commands`, `testing`); `stack` does not import `commands`; and no two
modules import each other, directly or around a circle, lazy imports inside functions included.
`lfharness/__main__.py` is the one place where operator commands and the offline tools meet.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# Room -> the rooms it must never import.
FORBIDDEN: Mapping[str, tuple[str, ...]] = {
    "core": ("stack", "commands", "testing", "__main__"),
    "stack": ("commands", "testing", "__main__"),
    "commands": ("testing", "__main__"),
    "testing": ("__main__",),
}


@dataclass(frozen=True)
class Arrow:
    """`source` imports `target` (dotted module names) at `line`."""

    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def module_name(package_dir: Path, path: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room(module: str) -> str:
    """`lfharness.core.tf` -> "core"; `lfharness.commands` -> "commands"; the package itself -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _targets(node: ast.AST, source: str, package: str, known: set[str]) -> Iterator[tuple[str, int]]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == package:
                yield alias.name, node.lineno
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: resolved against the importing module's package
            anchor = source.split(".")[: -node.level] if not source.endswith("__init__") else source.split(".")
            base = ".".join([*anchor, *([base] if base else [])])
        if base.split(".")[0] != package:
            return
        for alias in node.names:
            full = f"{base}.{alias.name}"
            yield (full if full in known else base), node.lineno


def arrows(package_dir: Path) -> list[Arrow]:
    """Every import between the package's modules, at any depth of the code."""
    files = sorted(p for p in package_dir.rglob("*.py"))
    known = {module_name(package_dir, p) for p in files}
    package = package_dir.name
    found = []
    for path in files:
        source = module_name(package_dir, path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target, line in _targets(node, source, package, known):
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != source and target != package:
                    found.append(Arrow(source, target, line))
    return found


def forbidden(found: list[Arrow]) -> list[Arrow]:
    """Arrows that break the rule."""
    return [a for a in found if room(a.target) in FORBIDDEN.get(room(a.source), ())]


def cycles(found: list[Arrow]) -> list[list[str]]:
    """Each strongly connected group of two or more modules (Tarjan), sorted."""
    graph: dict[str, set[str]] = {}
    for a in found:
        graph.setdefault(a.source, set()).add(a.target)
        graph.setdefault(a.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)
