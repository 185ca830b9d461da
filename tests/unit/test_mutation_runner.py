"""The mutation benchmark's report (issue 28, benchmarks/mutation.py): a run still going, or stopped,
is never read as a finished score (static tier: the runner's own functions, no mutmut run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.static

RUNNER = Path(__file__).resolve().parents[2] / "benchmarks" / "mutation.py"


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _outcome(runner: ModuleType, statuses: dict[str, str]):
    return runner.Outcome("lfharness/stack/example.py", statuses=statuses, equivalent={"m4": "a reason"})


def test_mutants_without_a_verdict_are_counted_apart_and_not_as_survivors(runner):
    """Issue 28: the report of an unfinished run says how many mutants have no verdict yet, lists no
    survivor it has not seen survive, and marks the score incomplete."""
    outcome = _outcome(runner, {"m1": "killed", "m2": "not checked", "m3": "survived", "m4": "survived"})
    row = runner.table([outcome]).splitlines()[2]
    assert (outcome.survivors, outcome.not_run) == (["m3"], 1)
    assert row == "| lfharness/stack/example.py | 4 | 1 | 1 | 1 | 1 | 33.3% (run incomplete) | - |"


def test_an_unfinished_run_cannot_reach_the_minimum_score(runner):
    """Issue 28: mutants not run count against the score: a run stopped after its killed ones
    scores under 90%, so the runner's exit status cannot pass it."""
    statuses = {f"k{i}": "killed" for i in range(9)} | {f"n{i}": "not checked" for i in range(3)} | {"m4": "survived"}
    outcome = _outcome(runner, statuses)
    assert (round(outcome.score, 1), outcome.score >= 90.0) == (75.0, False)
