"""pytest plugin: no known secret in anything pytest shows or writes (NFR1).

pytest prints more than log records: the arguments of a call an assertion rewrote
(`where 2 = rds_migrations_applied(**{'password': ...})`), each frame's arguments in long
tracebacks (`env = {'AWS_SECRET_ACCESS_KEY': ...}`), exception messages, captured output and logs.
Every report is masked with the session's `Redactor` after it is made and before the terminal,
junit XML or any other reporter sees it; log records are masked as they are created (live log
included); warnings before they are recorded.

The root conftest.py loads this plugin (`pytest_plugins`); any other test run gets it with
`-p lfharness.testing.pytest_redact`. Fixtures: `redactor`, the session's registry, to which the harness
adds every secret it learns (the Stack, the e2e target).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import pytest

from lfharness.core.redact import MASK, Redactor, Secret, _announce_to_stdout, install_record_masking

REDACTOR = pytest.StashKey[Redactor]()


def _announcer(config: pytest.Config) -> Callable[[str], None]:
    """`::add-mask::` to the real stdout: inside a test, pytest captures fd 1, and the runner must
    see the command before the value shows up anywhere in the step's log."""

    def announce(value: str) -> None:
        capman = config.pluginmanager.getplugin("capturemanager")
        if capman is None:
            _announce_to_stdout(value)
            return
        with capman.global_and_fixture_disabled():
            _announce_to_stdout(value, sys.stdout)

    return announce


def pytest_configure(config: pytest.Config) -> None:
    redactor = Redactor(announce=_announcer(config))
    config.stash[REDACTOR] = redactor
    config.add_cleanup(install_record_masking(redactor))
    config.pluginmanager.register(_Masking(redactor, config), "lfharness-redact-masking")


def session_redactor(config: pytest.Config) -> Redactor:
    return config.stash[REDACTOR]


@pytest.fixture(scope="session")
def redactor(request: pytest.FixtureRequest) -> Redactor:
    """The session's secret registry: whatever is added here never shows in pytest's output."""
    return session_redactor(request.config)


def _masked(value: Any, mask: Callable[[str], str], seen: set[int]) -> Any:
    """value with every string inside masked; pytest's TerminalRepr objects (tracebacks, entries,
    function arguments, locals, crash lines, sections) are masked in place, so the terminal keeps
    their layout and junit its message attribute."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [_masked(v, mask, seen) for v in value]
    if isinstance(value, tuple):
        return tuple(_masked(v, mask, seen) for v in value)
    if isinstance(value, dict):
        return {k: _masked(v, mask, seen) for k, v in value.items()}
    if hasattr(value, "toterminal") and hasattr(value, "__dict__") and id(value) not in seen:
        seen.add(id(value))
        for name, attr in list(vars(value).items()):
            # Frozen dataclasses among them: set past their __setattr__.
            object.__setattr__(value, name, _masked(attr, mask, seen))
    return value


def mask_report(report: pytest.CollectReport | pytest.TestReport, redactor: Redactor) -> None:
    """Masks a report's traceback, captured sections and user properties in place."""
    if not len(redactor):
        return
    seen: set[int] = set()
    report.longrepr = _masked(report.longrepr, redactor.mask, seen)
    report.sections = [(title, redactor.mask(text)) for title, text in report.sections]
    if isinstance(report, pytest.TestReport):
        report.user_properties = [(name, _masked(v, redactor.mask, seen)) for name, v in report.user_properties]


# How deep a compared value is searched for secrets, and how long each side's masked repr may be.
_COMPARE_DEPTH = 4
_COMPARE_WIDTH = 120


def holds_secret(value: Any, redactor: Redactor, depth: int = _COMPARE_DEPTH) -> bool:
    """Whether value, or a string inside it (containers, dataclass fields), is or holds a secret."""
    if isinstance(value, Secret):
        return True
    if isinstance(value, str):
        return redactor.mask(value) != value
    if depth <= 0:
        return False
    if isinstance(value, Mapping):
        items: Any = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [getattr(value, f.name, None) for f in dataclasses.fields(value)]
    else:
        return False
    return any(holds_secret(item, redactor, depth - 1) for item in items)


def _shown(value: Any, redactor: Redactor) -> str:
    """value's repr masked first, then shortened (a cut after masking cannot split a secret)."""
    if isinstance(value, Secret):
        return repr(MASK)
    try:
        text = redactor.mask(repr(value))
    except Exception as exc:  # noqa: BLE001 (a broken __repr__ must not hide the failed assertion)
        text = f"<{type(value).__name__}: repr raised {type(exc).__name__}>"
    return text if len(text) <= _COMPARE_WIDTH else text[:_COMPARE_WIDTH - 3] + "..."


class _Masking:
    """The hooks, bound to one session's redactor."""

    def __init__(self, redactor: Redactor, config: pytest.Config) -> None:
        self.redactor = redactor
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """The interrupt (Ctrl-C, or SIGTERM through lfharness.core.procs) is printed at the end from the
        repr the terminal reporter keeps of it, outside every test report: masked here, once made.
        `_keyboardinterrupt_memo` is the reporter's own attribute (pytest 8-9); absent, nothing to mask."""
        if not len(self.redactor):
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        memo = getattr(reporter, "_keyboardinterrupt_memo", None)
        if memo is not None:
            _masked(memo, self.redactor.mask, set())

    @pytest.hookimpl(tryfirst=True)  # pytest takes the first explanation: ours, not its own diff
    def pytest_assertrepr_compare(self, config: pytest.Config, op: str, left: Any, right: Any) -> list[str] | None:
        """A comparison where either side holds a secret gets no diff: pytest's string diff skips the
        identical start of two strings and prints the rest, a piece of the secret no mask matches
        (dataclasses and containers drill down to such diffs too)."""
        if not (holds_secret(left, self.redactor) or holds_secret(right, self.redactor)):
            return None
        return [f"{_shown(left, self.redactor)} {op} {_shown(right, self.redactor)}",
                "a side holds a secret, so no diff is shown (NFR1): compare digests to see what differs"]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        mask_report(report, self.redactor)
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        report = yield
        mask_report(report, self.redactor)
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The junit XML once junitxml has written it: record_xml_attribute and
        record_testsuite_property put values straight into it, past every report."""
        xmlpath = getattr(session.config.option, "xmlpath", None)
        if not xmlpath or not len(self.redactor) or not Path(xmlpath).is_file():
            return
        text = Path(xmlpath).read_text(encoding="utf-8")
        masked = self.redactor.mask(text)
        if masked != text:
            Path(xmlpath).write_text(masked, encoding="utf-8")

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: Any) -> None:
        """The warnings summary prints each warning's message."""
        message = warning_message.message
        if isinstance(message, Warning):
            text = str(message)
            masked = self.redactor.mask(text)
            if masked != text:
                try:
                    warning_message.message = type(message)(masked)
                except TypeError:  # a warning class with other constructor arguments
                    warning_message.message = UserWarning(masked)
