"""The run's plan cache (issue 17): a workspace with the same inputs is planned once per run,
whatever the number of processes; any changed input plans again.

Stand-ins: the session's Workbench (provider stand-in, local Terraform Cloud fake serving
`plan.NETWORK_SAMPLE` / `plan.DEPS_SAMPLE`) with a cache of its own per test; for the two-process
test, two `python -m lfharness plan 03-app` processes, each with its own Workbench (other ports,
another CA), sharing one cache folder through LFK8S_PLAN_CACHE. 03-app calls no registry module,
so this file runs everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lfharness.core import tf
from lfharness.testing import plan, plancache

pytestmark = pytest.mark.plan

WORKSPACE = "03-app"
TWO_PROCESS_TIMEOUT = 600  # two whole Workbenches at once on a loaded 2-core machine


def _without_timestamp(raw: dict) -> dict:
    return {k: v for k, v in raw.items() if k != "timestamp"}


@pytest.fixture(scope="module")
def planned(workbench, tmp_path_factory) -> dict:
    """03-app planned with a fresh cache: once, again with the same inputs, then with another region;
    then the first two applied."""
    cache = plancache.PlanCache(tmp_path_factory.mktemp("own-plan-cache"))
    kept, workbench.plan_cache = workbench.plan_cache, cache
    try:
        folder = tmp_path_factory.mktemp("cached")
        first = workbench.plan(WORKSPACE, folder / "first")
        counts_after_first = (cache.misses, cache.hits)
        again = workbench.plan(WORKSPACE, folder / "again")
        counts_after_again = (cache.misses, cache.hits)
        other = workbench.plan(WORKSPACE, folder / "other", {"aws_region": "eu-west-1"})
        counts_after_other = (cache.misses, cache.hits)
        # 03-app generates no secret (issue 26): no state is applied before its plan.
        planned_states = [(p.folder / "terraform.tfstate").exists() for p in (first, again)]
        workbench.apply(first)
        workbench.apply(again)
        counts_after_applies = (cache.misses, cache.hits)
        again_changes = workbench.changes_after_apply(again)
    finally:
        workbench.plan_cache = kept
    return {"first": first, "again": again, "other": other, "again_changes": again_changes,
            "planned_states": planned_states,
            "counts": [counts_after_first, counts_after_again, counts_after_other, counts_after_applies]}


def test_the_same_inputs_again_are_read_from_the_cache_not_planned(planned):
    """Issue 17 goal 2: a second plan with identical inputs is a cache hit with the same document."""
    assert planned["counts"][:2] == [(1, 0), (1, 1)]
    assert _without_timestamp(planned["again"].raw) == _without_timestamp(planned["first"].raw)


def test_a_plan_read_from_the_cache_gets_the_state_of_its_generated_secrets(workbench, tmp_path_factory):
    """The copy of a cache hit holds the secrets its plan shows, so applying it keeps them (NFR11).
    02-deps is the workspace that generates secrets (issue 26), planned twice with the session's
    cache: the second copy is a hit and gets the first one's state."""
    reason = workbench.unavailable("02-deps")
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("cached-secrets")
    first = workbench.plan("02-deps", folder / "first")
    hits = workbench.plan_cache.hits if workbench.plan_cache is not None else None
    again = workbench.plan("02-deps", folder / "again")
    if hits is not None:
        assert workbench.plan_cache.hits == hits + 1
    states = [json.loads((p.folder / "terraform.tfstate").read_text()) for p in (first, again)]
    assert states[1]["resources"] == states[0]["resources"]
    secrets = again.of_type("random_password")
    assert secrets and secrets == first.of_type("random_password")


def test_a_workspace_without_generated_secrets_gets_no_state_before_its_plan(planned):
    """Issue 26: 03-app generates nothing, so neither a planned copy nor a cache hit's has a state."""
    assert planned["planned_states"] == [False, False]


def test_a_plan_read_from_the_cache_is_initialised_for_apply(planned):
    """Tests apply and plan the copy they got again: a cache hit's copy is initialised like a fresh one."""
    assert (planned["again"].folder / ".terraform").is_dir()


def test_a_changed_variable_plans_again(planned):
    """A changed input is never answered from the cache: another region is a miss, planned anew."""
    assert planned["counts"][2] == (2, 1)
    assert planned["other"].variables["aws_region"] == "eu-west-1"
    assert _without_timestamp(planned["other"].raw) != _without_timestamp(planned["first"].raw)


def test_the_first_apply_of_the_same_plan_is_read_from_the_cache(planned):
    """The pause tier applies the running stage the plan tier applied: done once, its state shared."""
    assert planned["counts"][3] == (3, 2)
    first = json.loads((planned["first"].folder / "terraform.tfstate").read_text())
    again = json.loads((planned["again"].folder / "terraform.tfstate").read_text())
    assert again["resources"] == first["resources"]


def test_a_copy_applied_from_the_cache_plans_no_changes(planned):
    """The shared state is a real applied state for the copy that got it: a second plan is empty."""
    assert planned["again_changes"] == 0


@pytest.fixture
def base_key(workbench, tmp_path) -> str:
    folder = workbench.prepare(WORKSPACE, tmp_path / "base")
    return workbench.plan_key(WORKSPACE, folder, workbench.default_variables(WORKSPACE), True)


def test_the_same_inputs_in_another_folder_have_the_same_key(workbench, tmp_path, base_key):
    """The key depends on what is planned, not on where the copy lies."""
    folder = workbench.prepare(WORKSPACE, tmp_path / "elsewhere" / "copy")
    assert workbench.plan_key(WORKSPACE, folder, workbench.default_variables(WORKSPACE), True) == base_key


@pytest.mark.parametrize("change", ["edited file", "added file", "variable", "upstream outputs", "no secrets first"])
def test_any_changed_input_changes_the_key(workbench, tmp_path, base_key, change):
    """Each input of a plan is in its key: a file of the copy, a variable, what the fake serves, the
    secrets applied first or not."""
    outputs = (tf.TERRAFORM_DIR / WORKSPACE / "outputs.tf").read_text()
    edit = {"edited file": {"outputs.tf": outputs + "\n# one more line\n"},
            "added file": {"extra.tf": "# one more file\n"}}.get(change)
    folder = workbench.prepare(WORKSPACE, tmp_path / "changed", edit)
    variables = workbench.default_variables(WORKSPACE)
    if change == "variable":
        variables["aws_region"] = "eu-west-1"
    upstream = (plan.NETWORK_PAUSED, plan.DEPS_PAUSED) if change == "upstream outputs" else (
        plan.NETWORK_SAMPLE, plan.DEPS_SAMPLE)
    with workbench.upstream(*upstream):
        key = workbench.plan_key(WORKSPACE, folder, variables, change != "no secrets first")
    assert key != base_key


def test_two_processes_with_the_same_inputs_plan_once(tmp_path, request):
    """Issue 17 goal 2: two processes (other ports, other CA) planning 03-app at once share one
    cache entry; one plans, the other waits on the entry's lock and reads the plan."""
    cache = tmp_path / "shared-cache"
    env = {**os.environ, plancache.CACHE_ENV: str(cache)}
    procs: list[subprocess.Popen] = []

    def stop() -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    request.addfinalizer(stop)
    for n in (1, 2):
        procs.append(subprocess.Popen([sys.executable, "-m", "lfharness", "plan", WORKSPACE, "--json",
                                       str(tmp_path / f"plan-{n}.json")], cwd=tf.REPO_ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    logs = [proc.communicate(timeout=TWO_PROCESS_TIMEOUT)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], logs
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1
    assert sum("planned from the run's plan cache" in log for log in logs) == 1, logs
    first, second = (json.loads((tmp_path / f"plan-{n}.json").read_text()) for n in (1, 2))
    assert first["resource_changes"] == second["resource_changes"]
    hosts = [raw["configuration"]["provider_config"]["tfe"]["expressions"]["hostname"]["constant_value"]
             for raw in (first, second)]
    assert hosts[0] != hosts[1], "each process's plan names its own Terraform Cloud fake"


def test_what_terraform_leaves_in_a_copy_does_not_change_the_key(workbench, tmp_path, base_key):
    """`terraform get` (the on-demand provider check of prepare) and init write .terraform/ into the
    copy: not configuration, so the key of the same inputs stays the same."""
    folder = workbench.prepare(WORKSPACE, tmp_path / "used")
    (folder / ".terraform" / "modules").mkdir(parents=True, exist_ok=True)
    (folder / ".terraform" / "modules" / "modules.json").write_text('{"Modules": []}')
    (folder / ".terraform.lock.hcl").write_text("# lock\n")
    assert workbench.plan_key(WORKSPACE, folder, workbench.default_variables(WORKSPACE), True) == base_key
