"""The package's rooms (docs/development.md): operator code never imports test machinery, the
layers point one way, and no module is part of an import circle. Read from the source with ast
(lfharness/testing/layout.py); the checker itself is proven on small packages written here."""

from __future__ import annotations

from pathlib import Path

import pytest

import lfharness
from lfharness.testing import layout

pytestmark = pytest.mark.static

PACKAGE = Path(lfharness.__file__).resolve().parent


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "lfharness"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)
    return package


def test_operator_code_never_imports_test_machinery():
    """Issue 22: core, stack and commands import nothing from lfharness.testing, not even lazily."""
    assert [str(a) for a in layout.forbidden(layout.arrows(PACKAGE))] == []


def test_the_package_has_no_import_circle():
    """Issue 22: no two modules import each other, directly or around a circle."""
    assert layout.cycles(layout.arrows(PACKAGE)) == []


def test_operator_code_stands_without_the_tests_folder():
    """Issue 22: operator code reads no file of tests/ (test data the package needs lives beside it)."""
    readers = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if layout.room(layout.module_name(PACKAGE, p)) in ("core", "stack", "commands")
               and '"tests"' in p.read_text()]
    assert readers == []


def test_the_checker_finds_a_lazy_import_of_test_machinery_in_operator_code(tmp_path):
    """The rule's check can fail: a function-level import from stack into testing is an arrow it names."""
    package = _package(tmp_path, {"stack/pause.py": "def f():\n    from lfharness.testing import plan\n",
                                  "testing/plan.py": ""})
    assert [str(a) for a in layout.forbidden(layout.arrows(package))] == [
        "lfharness.stack.pause -> lfharness.testing.plan (line 2)"]


def test_the_checker_finds_core_importing_upwards(tmp_path):
    """The rule's check can fail: core importing stack breaks the layering."""
    package = _package(tmp_path, {"core/tf.py": "from lfharness.stack.workspaces import ORDER\n",
                                  "stack/workspaces.py": "ORDER = ()\n"})
    assert [a.target for a in layout.forbidden(layout.arrows(package))] == ["lfharness.stack.workspaces"]


def test_the_checker_finds_a_circle_through_a_package_import(tmp_path):
    """The rule's check can fail: `from lfharness.stack import stack` one way and a plain import the
    other way make a circle."""
    package = _package(tmp_path, {"stack/pause.py": "from lfharness.stack import stack\n",
                                  "stack/stack.py": "import lfharness.stack.pause\n"})
    assert layout.cycles(layout.arrows(package)) == [["lfharness.stack.pause", "lfharness.stack.stack"]]
