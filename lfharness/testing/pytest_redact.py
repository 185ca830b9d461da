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

Test ids (issue 26 item 5): pytest names a parametrized test after its values and prints that id
from collection on, so the registry learns the .env secrets when pytest starts, ids are masked once
collected (with what is known then: the .env, whatever a conftest registered while collecting) and
again as each test starts (what earlier tests learned). Under pytest-xdist each worker hands what it
learned to the controller, which writes the junit XML and the summary.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import pytest

from lfharness.core import envfile
from lfharness.core.redact import MASK, Redactor, Secret, _announce_to_stdout, install_record_masking

REDACTOR = pytest.StashKey[Redactor]()
# Where an item stands in the session's collection: the same in the controller and every xdist worker.
_POSITION = pytest.StashKey[int]()
# The key of a worker's `workeroutput` that carries its secrets to the controller (pytest-xdist).
HANDOVER_KEY = "lfharness_redact_secrets"


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


def _env_file_secrets() -> tuple[str, ...]:
    """The secrets of the .env the e2e suite reads ($LFK8S_ENV_FILE or the repository's), unvalidated:
    known before collection, they are masked in the ids of tests parametrized over them. A missing or
    unreadable file gives none; a malformed one is the e2e start-up check's to refuse (root conftest)."""
    try:
        values = envfile.read(envfile.default_path())
    except (OSError, ValueError):  # unreadable, or not text (UnicodeDecodeError)
        return ()
    return tuple(values.get(key, "") for key in envfile.SECRET_KEYS)


def pytest_configure(config: pytest.Config) -> None:
    redactor = Redactor(announce=_announcer(config))
    redactor.add(*_env_file_secrets())
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


def mask_test_id(item: pytest.Item, redactor: Redactor, taken: set[str], *, number: bool = False) -> None:
    """Masks the secrets in item's name and node id (what -v, the summary, junit, tmp_path and
    PYTEST_CURRENT_TEST show). Two ids that differ only in their secrets would become one, and junit
    would merge the two tests: a masked id already taken, or any late one (`number`, see
    _Masking.pytest_runtest_protocol), gets the item's place in the collection appended."""
    name, nodeid = redactor.mask(item.name), redactor.mask(item.nodeid)
    if (name, nodeid) == (item.name, item.nodeid):
        return
    if nodeid in taken or number:
        place = item.stash.get(_POSITION, 0)
        numbered = f"{name[:-1]}-{place}]" if name.endswith("]") else f"{name}-{place}"
        # The name ends the node id, unless a plugin appended to it (xdist's loadgroup: `@group`).
        head, found, tail = nodeid.rpartition(name)
        name, nodeid = numbered, (head + numbered + tail) if found else f"{nodeid}-{place}"
    # pytest has no setter for either: the collector sets them once. `location` (the -v line,
    # failure headers) is cached from the name on first use: dropped so it is made again.
    item.name = name
    _set_node_id(item, nodeid)
    vars(item).pop("location", None)
    taken.add(nodeid)


def _set_node_id(item: pytest.Item, nodeid: str) -> None:
    """item's node id replaced: pytest 9.2 keeps a structured NodeId (`item.id`, parsed back from the
    string form as pytest parses ids from files), earlier versions the string in `_nodeid`."""
    structured = getattr(item, "id", None)
    if structured is not None and callable(getattr(type(structured), "parse", None)):
        item._id = type(structured).parse(nodeid)  # noqa: SLF001 (the id's only storage; no setter)
    else:
        item._nodeid = nodeid  # noqa: SLF001 (likewise before pytest 9.2; pytest-xdist's loadgroup sets it too)


def _mask_reported(reporter: Any, redactor: Redactor) -> None:
    """Masks again every report the terminal keeps for its summary (failure sections, -rA lines), with
    what was learned after each was made: by a later test, or by a pytest-xdist worker."""
    for reports in getattr(reporter, "stats", {}).values():
        for report in reports:
            if isinstance(report, pytest.CollectReport | pytest.TestReport):
                mask_report(report, redactor)
                report.nodeid = redactor.mask(report.nodeid)
                if isinstance(report, pytest.TestReport):
                    report.location = _masked(report.location, redactor.mask, set())
            elif dataclasses.is_dataclass(report) and isinstance(getattr(report, "message", None), str):
                report.message = redactor.mask(report.message)  # the warnings summary's WarningReport
                if isinstance(report.nodeid, str):
                    report.nodeid = redactor.mask(report.nodeid)


# What pytest's cache keeps by test id (cacheprovider: --lf, --nf; stepwise: --sw), in .pytest_cache/.
_CACHE_KEYS = ("cache/nodeids", "cache/lastfailed", "cache/stepwise")


def _masked_keys_too(value: Any, mask: Callable[[str], str]) -> Any:
    """A JSON value with every string masked, the keys of its objects included (lastfailed maps ids)."""
    if isinstance(value, dict):
        return {mask(k) if isinstance(k, str) else k: _masked_keys_too(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_keys_too(v, mask) for v in value]
    return mask(value) if isinstance(value, str) else value


def _mask_cache(config: pytest.Config, redactor: Redactor) -> None:
    """The ids pytest's cache wrote at session finish: those it kept at collection hold what was learned
    only later in clear, and the cache is a file in the working tree."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return
    missing = object()
    for key in _CACHE_KEYS:
        value = cache.get(key, missing)
        if value is not missing and (masked := _masked_keys_too(value, redactor.mask)) != value:
            cache.set(key, masked)


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
        self.ids: set[str] = set()  # every node id of the session's items, masked or not

    @pytest.hookimpl(trylast=True)  # after -k, -m and --deselect matched the ids as written
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        """Ids masked with what is known once collected: `--collect-only` and pytest-xdist's collection
        (the workers' ids, which the controller prints) come after this."""
        self.ids = {item.nodeid for item in items}
        for position, item in enumerate(items):
            item.stash[_POSITION] = position
            mask_test_id(item, self.redactor, self.ids)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Ids masked again as each test starts, before its -v line: with what earlier tests learned.
        A pytest-xdist worker cannot see the ids the others rename now, so a late rename is numbered."""
        mask_test_id(item, self.redactor, self.ids, number=hasattr(self.config, "workerinput"))

    @pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: the controller, as a worker finishes
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """The secrets the worker learned, for the controller's summary and junit XML. xdist's channel
        carries them in memory; nothing writes them."""
        self.redactor.add(*getattr(node, "workeroutput", {}).get(HANDOVER_KEY, ()))

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
        """A pytest-xdist worker hands what it learned to the controller (its workeroutput goes with the
        `workerfinished` event, after this). The controller, or a session without xdist: the reports
        kept for the summary, which the terminal prints after this, the ids pytest's cache has just
        saved, and the junit XML once junitxml has written it (record_xml_attribute and
        record_testsuite_property put values straight into it, past every report) are masked with
        everything now known."""
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[HANDOVER_KEY] = self.redactor.handover()
            return
        if len(self.redactor):
            _mask_reported(session.config.pluginmanager.get_plugin("terminalreporter"), self.redactor)
            _mask_cache(session.config, self.redactor)
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
