"""The Services, ports and Secrets that commands shown to people name: `kubectl port-forward
svc/...` and `kubectl get secret ... {.data.<key>}` in a text (the README, docs), and the
equivalent calls in a Python file (the e2e suite), read with regular expressions and ast.

The chart tier holds them against the rendered chart (tests/unit/test_chart.py): every Service,
port, Secret and key a reader is told to use exists in the release.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

_PORT_FORWARD = re.compile(r"port-forward\s+svc/([a-z0-9][a-z0-9-]*)\s+[^\n`'\"]*?\d+:(\d+)")
_GET_SECRET = re.compile(r"get\s+secret\s+([a-z0-9][a-z0-9-]*)\b[^\n]*?\{\.data\.([A-Za-z0-9_.-]+)\}")


def port_forward_targets(text: str) -> set[tuple[str, int]]:
    """(service, service port) of every `kubectl port-forward svc/<name> ... <local>:<port>` in a text."""
    return {(m.group(1), int(m.group(2))) for m in _PORT_FORWARD.finditer(text)}


def secret_keys_read(text: str) -> set[tuple[str, str]]:
    """(secret, key) of every `kubectl get secret <name> ... jsonpath='{.data.<key>}'` in a text."""
    return {(m.group(1), m.group(2)) for m in _GET_SECRET.finditer(text)}


def _constants(node: ast.Call) -> list[Any]:
    return [a.value for a in node.args if isinstance(a, ast.Constant)]


def python_port_forwards(path: Path) -> set[tuple[str, int]]:
    """(service, port) of every `<x>.port_forward(..., "<service>", <port>)` call in a Python file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "port_forward":
            consts = _constants(node)
            names = [c for c in consts if isinstance(c, str)]
            ports = [c for c in consts if isinstance(c, int) and not isinstance(c, bool)]
            if names and ports:
                found.add((names[-1], ports[-1]))
    return found


def python_secrets_read(path: Path) -> set[str]:
    """Secret names of every call passing kubectl's `"get", "secret", "<name>"` in a Python file
    (whatever the helper is called: kubectl(...), kube.run(...))."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            consts = _constants(node)
            for i, value in enumerate(consts[:-2]):
                if value == "get" and consts[i + 1] == "secret" and isinstance(consts[i + 2], str):
                    found.add(consts[i + 2])
    return found
