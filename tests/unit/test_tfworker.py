"""The in-process Terraform worker of the plan tier (issue 17 goal 3): the same plans and errors
as a terraform process per command, and a subprocess whenever the worker cannot serve.

Stand-ins: the session's Workbench (provider stand-in, local Terraform Cloud fake serving
`plan.NETWORK_SAMPLE` / `plan.DEPS_SAMPLE`); 03-app, which plans everywhere. Workers that a test
stops or times out are its own, never the session's.
"""

from __future__ import annotations

import json
import os

import pytest
import tftest

from lfharness.core import envfile, tf
from lfharness.testing import tfworker

pytestmark = pytest.mark.plan

WORKSPACE = "03-app"


def _comparable(raw: dict) -> dict:
    """A plan without its timestamp, relevant_attributes in a fixed order (Terraform's is not)."""
    key = lambda item: json.dumps(item, sort_keys=True)  # noqa: E731
    return {**{k: v for k, v in raw.items() if k != "timestamp"},
            "relevant_attributes": sorted(raw.get("relevant_attributes", []), key=key)}


@pytest.fixture
def copy(workbench, tmp_path):
    """A prepared and initialised 03-app copy, with the session's worker behind it."""
    if workbench.worker is None:
        pytest.skip(f"no in-process worker in this session ({tfworker.INPROCESS_ENV}=0 or it did not start: "
                    "see the workbench's tfworker.log); unset it to run these")
    folder = workbench.prepare(WORKSPACE, tmp_path / WORKSPACE)
    return workbench.terraform(folder)


@pytest.fixture
def own_worker(workbench, tmp_path):
    """A second worker with the session's environment, for tests that stop it."""
    worker = tfworker.TerraformWorker(envfile.child_env(workbench.env), tmp_path / "own-worker.log")
    with worker:
        yield worker


def _subprocess_handle(workbench, test: tftest.TerraformTest) -> tftest.TerraformTest:
    return tftest.TerraformTest(test.tfdir, binary=str(tf.terraform_bin()), env={**os.environ, **workbench.env})


def test_a_plan_in_the_worker_equals_the_plan_of_terraform_processes(workbench, copy):
    """Goal 3: `plan -out` + `show -json` in-process give the document two terraform processes give."""
    tf_vars = workbench.default_variables(WORKSPACE)
    before = workbench.worker.commands
    in_process = copy.plan(output=True, tf_vars=tf_vars)._raw
    assert workbench.worker.commands == before + 2  # plan -out and show -json, both in the worker
    by_processes = _subprocess_handle(workbench, copy).plan(output=True, tf_vars=tf_vars)._raw
    assert _comparable(in_process) == _comparable(by_processes)


def test_applying_a_planned_copy_runs_in_the_worker(workbench, tmp_path):
    """The stand-in applies and the plans after them (pause tier, second plan) run in-process too."""
    if workbench.worker is None:
        pytest.skip(f"no in-process worker in this session ({tfworker.INPROCESS_ENV}=0 or it did not start)")
    planned = workbench.plan(WORKSPACE, tmp_path / WORKSPACE, known_secrets=False)
    before = workbench.worker.commands
    workbench.apply(planned)
    assert workbench.changes_after_apply(planned) == 0
    assert workbench.worker.commands == before + 2
    assert "helm_release.langfuse[0]" in {r["address"] for r in workbench.state(planned)["values"]["root_module"]
                                          .get("resources", [])}


def test_a_failing_plan_in_the_worker_raises_what_tftest_raises(workbench, copy):
    """The negative tests match tftest's TerraformTestError: the worker raises it with the same error text."""
    tf_vars = {**workbench.default_variables(WORKSPACE), "aws_region": "us-east-9x"}
    with pytest.raises(tftest.TerraformTestError) as in_process:
        copy.plan(output=True, tf_vars=tf_vars)
    with pytest.raises(tftest.TerraformTestError) as by_process:
        _subprocess_handle(workbench, copy).plan(output=True, tf_vars=tf_vars)
    assert in_process.value.cmd_error == by_process.value.cmd_error
    assert "aws_region must be an AWS region name" in in_process.value.cmd_error


def test_a_command_wanting_another_environment_runs_as_a_subprocess(workbench, copy):
    """Go reads the environment once per process: another environment never runs in the worker."""
    other = tfworker.InProcessTest(copy.tfdir, workbench.worker, binary=str(tf.terraform_bin()),
                                   env={**os.environ, **workbench.env, "TF_VAR_extra": "1"})
    before = workbench.worker.commands
    assert other.execute_command("version").retcode == 0
    assert workbench.worker.commands == before


def test_a_dead_worker_is_replaced_by_a_subprocess(workbench, copy, own_worker):
    """A worker that died (killed by PID here) costs speed, not the run: the command runs as a subprocess."""
    handle = tfworker.InProcessTest(copy.tfdir, own_worker, binary=str(tf.terraform_bin()),
                                    env={**os.environ, **workbench.env})
    own_worker._proc.kill()
    own_worker._proc.wait(timeout=30)
    assert "Terraform v" in handle.execute_command("version").out


def test_a_command_past_its_timeout_stops_the_worker_and_says_so(copy, own_worker):
    """A hung in-process command fails fast naming the command, and its worker is stopped, not left running."""
    pid = own_worker._proc.pid
    with pytest.raises(tfworker.WorkerTimeout, match="terraform plan .* timed out"):
        own_worker.run(["plan", "-input=false", "-no-color"], copy.tfdir, timeout=0.01)
    assert not own_worker.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
