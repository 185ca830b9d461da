"""The GitHub workflows, read as YAML: the real teardown of a failed or cancelled e2e run is a
workflow of its own (issue 24 item 1), and the workflows are guarded: a protected environment holds
the secrets, every token reads only, every action is pinned to a commit, one e2e at a time
(issue 26 item 4). Static tier.

Stand-in: none; PyYAML reads the files as GitHub does, except that YAML 1.1 reads the key `on` as
the boolean True (`_triggers` takes either). Each test takes the folder it reads as an argument
defaulting to the repository's, so it can be pointed at another copy of the workflows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.static

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
E2E, TEARDOWN = "e2e.yml", "e2e-teardown.yml"
GROUP = "langfuse-e2e"
ENVIRONMENT = "e2e"
# GitHub stops a cancelled run's remaining steps 5 minutes after the cancel; the killed test step
# takes about 10 s (SIGINT, SIGTERM 7.5 s later, then SIGKILL) of them.
AFTER_CANCEL_MINUTES = 4
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
TAG_COMMENT = re.compile(r"#\s*v\d+(\.\d+)*\s*$")


def _load(workflows: Path, name: str) -> dict:
    return yaml.safe_load((workflows / name).read_text())


def _triggers(workflow: dict) -> dict:
    triggers = workflow.get("on", workflow.get(True))
    return {triggers: None} if isinstance(triggers, str) else dict(triggers or {})


def _all(workflows: Path) -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(workflows.glob("*.yml"))}


def _job_using(workflows: Path, name: str, command: str) -> dict:
    jobs = [job for job in _load(workflows, name)["jobs"].values()
            if any(command in step.get("run", "") for step in job["steps"])]
    assert len(jobs) == 1, f"{name}: expected one job running {command!r}, found {len(jobs)}"
    return jobs[0]


def _e2e_job(workflows: Path) -> dict:
    return _job_using(workflows, E2E, "pytest -m e2e")


def _teardown_job(workflows: Path) -> dict:
    return _job_using(workflows, TEARDOWN, "-m lfharness teardown")


def _env_step(job: dict) -> dict:
    steps = [s for s in job["steps"] if "secrets." in str(s.get("env", {})) and ".env" in s.get("run", "")]
    assert len(steps) == 1
    return steps[0]


# --- issue 24 item 1: the real teardown runs where a cancel cannot kill it --------------------------

def test_the_teardown_workflow_follows_every_e2e_run_and_can_be_started_by_hand(workflows=WORKFLOWS):
    """Issue 24 item 1: the e2e-teardown workflow starts when a run of the e2e workflow (named as the e2e
    workflow names itself) completes, and by hand (workflow_dispatch)."""
    triggers = _triggers(_load(workflows, TEARDOWN))
    assert (triggers.get("workflow_run"), "workflow_dispatch" in triggers) == (
        {"workflows": [_load(workflows, E2E)["name"]], "types": ["completed"]}, True)


def test_the_teardown_job_runs_unless_the_e2e_run_succeeded(workflows=WORKFLOWS):
    """Issue 24 item 1: the teardown job runs when started by hand and after every e2e conclusion but
    success (failure, cancelled, timed_out, ...); on success the suite tore itself down, its sweep included."""
    condition = " ".join(_teardown_job(workflows)["if"].split())
    assert condition == ("github.event_name == 'workflow_dispatch' || "
                         "github.event.workflow_run.conclusion != 'success'")


def test_the_teardown_checks_out_the_e2e_runs_commit(workflows=WORKFLOWS):
    """Issue 24 item 1: the teardown runs the harness of the commit the e2e run tested (by hand: the
    chosen branch's), not the default branch's, which workflow_run would check out otherwise."""
    checkout = next(s for s in _teardown_job(workflows)["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ github.event.workflow_run.head_sha || github.sha }}"


def test_the_teardown_workflow_writes_the_same_env_from_the_same_secrets(workflows=WORKFLOWS):
    """Issue 24 item 1: the teardown's .env is written by the very step the e2e job writes its own
    with: the same keys from the same secrets, the same script."""
    e2e, teardown = _env_step(_e2e_job(workflows)), _env_step(_teardown_job(workflows))
    assert (teardown["env"], teardown["run"]) == (e2e["env"], e2e["run"])


def test_the_teardown_job_sets_up_tears_down_and_uploads_its_run_folder(workflows=WORKFLOWS):
    """Issue 24 item 1: set-up, then `exec .venv/bin/python -m lfharness teardown` (exec: a cancel's
    signals reach the harness), then .runs/ uploaded whatever happened."""
    steps = _teardown_job(workflows)["steps"]
    runs = [s.get("run", "").strip() for s in steps]
    setup, teardown = runs.index("bash setup.sh"), runs.index("exec .venv/bin/python -m lfharness teardown")
    uploads = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert (setup < teardown, [(steps[i].get("if"), steps[i]["with"]["path"]) for i in uploads],
            all(i > teardown for i in uploads)) == (True, [("always()", ".runs/")], True)


def test_what_the_e2e_job_runs_after_its_test_step_fits_the_minutes_a_cancel_leaves(workflows=WORKFLOWS):
    """Issue 24 item 1: after a cancel GitHub stops the job's remaining steps 5 minutes later; every step
    after the test step has a timeout and together they fit in 4 minutes, and none of them starts a
    destroy (the e2e-teardown workflow's job), which could not end in that time."""
    steps = _e2e_job(workflows)["steps"]
    test_step = next(i for i, s in enumerate(steps) if "pytest -m e2e" in s.get("run", ""))
    after = steps[test_step + 1:]
    assert (sum(s.get("timeout-minutes", 360) for s in after) <= AFTER_CANCEL_MINUTES,
            [s.get("name") for s in after if "lfharness teardown" in s.get("run", "")],
            all(s.get("if") == "always()" for s in after)) == (True, [], True)


# --- issue 26 item 4: the workflows guarded --------------------------------------------------------

def test_every_workflow_token_only_reads(workflows=WORKFLOWS):
    """Issue 26 item 4: every workflow sets `permissions` with `contents: read`, and nothing in it (nor in
    any job's own `permissions`) grants more than read."""
    found = {}
    for name, workflow in _all(workflows).items():
        blocks = [workflow.get("permissions")] + [job.get("permissions") for job in workflow["jobs"].values()
                                                   if "permissions" in job]
        found[name] = (isinstance(blocks[0], dict) and blocks[0].get("contents") == "read",
                       sorted({v for b in blocks if isinstance(b, dict) for v in b.values()} - {"read", "none"}),
                       [b for b in blocks if not isinstance(b, dict)])
    assert found and {name: v for name, v in found.items() if v != (True, [], [])} == {}


def test_the_e2e_and_teardown_jobs_take_their_secrets_from_the_protected_environment(workflows=WORKFLOWS):
    """Issue 26 item 4: the jobs that read secrets are exactly the e2e and teardown jobs, and both run in
    the protected environment that holds them (its required reviewers approve each run)."""
    with_secrets = {(name, job_id): job.get("environment") for name, workflow in _all(workflows).items()
                    for job_id, job in workflow["jobs"].items() if "secrets." in yaml.safe_dump(job)}
    assert with_secrets == {(E2E, "e2e"): ENVIRONMENT, (TEARDOWN, "teardown"): ENVIRONMENT}


def test_one_e2e_or_teardown_at_a_time_and_none_is_cancelled_for_another(workflows=WORKFLOWS):
    """Issue 26 item 4: the e2e and teardown jobs share one concurrency group, never cancel a running
    member, and queue behind it (queue: max) rather than replacing a waiting one."""
    expected = {"group": GROUP, "cancel-in-progress": False, "queue": "max"}
    assert (_e2e_job(workflows).get("concurrency"), _teardown_job(workflows).get("concurrency")) == (
        expected, expected)


def test_every_action_is_pinned_to_a_full_commit_with_its_tag_in_a_comment(workflows=WORKFLOWS):
    """Issue 26 item 4: every `uses:` names a 40-hex commit, not a tag that can move, and its line says
    which release that commit is (`# vX.Y.Z`)."""
    loose = []
    for path in sorted(workflows.glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        uses = [s["uses"] for job in workflow["jobs"].values() for s in job.get("steps", []) if "uses" in s]
        lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
        loose += [(path.name, u) for u in uses if not PINNED.match(u)]
        loose += [(path.name, line.strip()) for line in lines if not TAG_COMMENT.search(line)]
        assert len(uses) == len(lines), f"{path.name}: a `uses:` the line check cannot see"
    assert loose == []
