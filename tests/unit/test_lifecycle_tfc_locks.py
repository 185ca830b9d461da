"""Issue 24, "the lifecycle rig must be able to see these", first bullet: Terraform Cloud's locks in
the lifecycle tier are real API calls. The three real workspaces keep their own `cloud` block,
aimed at the local Terraform Cloud fake (lfharness/testing/tfc_fake.py): Terraform itself takes
and releases each workspace's lock there and uploads its state as state versions; the harness's
client force-unlocks through the same API; a run on a locked workspace waits `-lock-timeout`.

Stand-ins (lfharness/testing/lifecycle.py): the local Terraform Cloud fake with its locks; the
provider stand-in for aws, helm, kubernetes and null with the real random, tls, time, tfe and
cloudinit providers and the real modules from LFK8S_MODULE_MIRROR; moto following the outputs.
A workspace "left locked" is locked by a real `terraform apply -destroy` that is SIGKILLed while it
holds the lock, before it changes anything (what a cancelled CI job's kill leaves in Terraform
Cloud); a lock "held" is that same Terraform still running, waiting at its approval prompt.

The lock waits are shortened to seconds (LocalStack's lock_timeout replaces the harness's 20
minutes), so a missing force-unlock fails a test in seconds instead of hanging it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lfharness import commands
from lfharness.core import tf
from lfharness.stack import workspaces
from lfharness.stack.stack import ORDER, TeardownError, teardown_workspaces
from lfharness.testing import lifecycle, plan

pytestmark = pytest.mark.lifecycle

# One line for the whole file where the module sources are missing (CI), not one per test.
_UNAVAILABLE = plan.modules_unavailable("01-network") or plan.modules_unavailable("02-deps")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

EMPTY = {workspace: [] for workspace in ORDER}
NAMES = dict(workspaces.TFC_NAMES)
LOCK_WAIT = 6  # seconds: the -lock-timeout every Terraform of this file gets
SHORT_LOCK = f"-lock-timeout={LOCK_WAIT}s"


@pytest.fixture(scope="module")
def rig(workbench, moto, tmp_path_factory) -> Iterator[lifecycle.LifecycleRig]:
    """The three workspaces with their cloud block against a fake of their own."""
    try:
        with lifecycle.LifecycleRig(workbench, tmp_path_factory.mktemp("locks"), moto, backend="cloud") as prepared:
            yield prepared
    except plan.PlanUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def deployed(rig, tmp_path_factory) -> lifecycle.Snapshot:
    """The three states of a running stack, applied 01 -> 02 -> 03 through the cloud block (every
    state Terraform uploaded to the fake as it applied), for each test to start from."""
    stack = rig.stack(tmp_path_factory.mktemp("deploy-run"), replan=False)
    for workspace in ORDER:
        stack.apply(workspace, variables={"cluster_enabled": "true"})
    assert all(stack.resources().values()), f"the deploy left an empty state: {stack.resources()}"
    return stack.snapshot()


@pytest.fixture
def running(rig, deployed, tmp_path) -> lifecycle.LocalStack:
    """A stack over the deployed states, every Terraform's lock wait LOCK_WAIT seconds."""
    stack = rig.stack(tmp_path / "run", replan=False, lock_timeout=SHORT_LOCK)
    stack.restore(deployed)
    return stack


@pytest.fixture
def warnings_of_the_stack() -> Iterator[list[str]]:
    """The WARNING and ERROR lines lfharness.stack.stack logs during the test."""
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("lfharness.stack.stack")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def force_unlocks(rig, running) -> Callable[[], list[str]]:
    """What lists the workspaces (Terraform Cloud names) the fake received a force-unlock for since
    the test's stack was made, in order."""
    assert rig.fake is not None
    fake, since = rig.fake, len(rig.fake.calls())
    ids = {fake.workspace(name)["id"]: name for name in NAMES.values()}

    def received() -> list[str]:
        return [ids.get(path.split("/")[4], path) for method, path in fake.calls()[since:]
                if method == "POST" and path.endswith("/actions/force-unlock")]
    return received


def _env_file(rig: lifecycle.LifecycleRig, folder: Path) -> Path:
    """A well-formed .env naming the rig's target (the client passed to the command is the fake's)."""
    settings = rig.settings()
    path = folder / ".env"
    path.write_text("\n".join(f"{key}={value}" for key, value in {
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id, "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key,
        "AWS_DEFAULT_REGION": lifecycle.REGION, "TFE_TOKEN": settings.tfe_token,
        "TFC_ORGANIZATION": settings.tfc_organization, "LANGFUSE_ADMIN_EMAIL": settings.admin_email,
        "LANGFUSE_ADMIN_NAME": settings.admin_name, "LANGFUSE_ADMIN_PASSWORD": settings.admin_password}.items()) + "\n")
    path.chmod(0o600)
    return path


def test_a_workspace_a_killed_terraform_left_locked_is_force_unlocked_by_the_teardown_which_says_so(
        rig, running, force_unlocks, warnings_of_the_stack):
    """Issue 24 items 1 and 2, FR27, NFR8: 03-app locked in Terraform Cloud by a Terraform killed
    while it held the lock; `python -m lfharness teardown`'s sequence (teardown_workspaces)
    force-unlocks it through the API, says so naming the workspace, and then destroys all three:
    every state ends empty and no workspace stays locked. Stand-in: the local Terraform Cloud fake,
    the lock taken by a real `terraform apply -destroy` SIGKILLed before it changed anything."""
    running.leave_locked("03-app")
    assert rig.fake.locked(NAMES["03-app"]), "the killed Terraform should have left its lock"
    teardown_workspaces(rig.tfc(), running)
    said = [line for line in warnings_of_the_stack if NAMES["03-app"] in line and "lock released" in line]
    assert (running.resources(), force_unlocks(), len(said)) == (EMPTY, [NAMES["03-app"]], 1)
    assert not any(rig.fake.locked(name) for name in NAMES.values())


def test_unlock_releases_the_locks_killed_terraforms_left_and_destroys_nothing(rig, running, force_unlocks, tmp_path):
    """Issue 24 item 2: with 01-network and 02-deps left locked by killed Terraforms, `python -m
    lfharness unlock` (commands.unlock_command, given the fake's client) exits 0 having force-unlocked
    exactly those two, the three states byte for byte as before; then a real Terraform plans 02-deps,
    getting its lock at the first ask (one POST .../actions/lock, no wait). Stand-in: the local Terraform Cloud fake, its locks taken by real
    `terraform apply -destroy` runs SIGKILLed while they held them."""
    for workspace in ("01-network", "02-deps"):
        running.leave_locked(workspace)
    before = running.snapshot()
    code = commands.unlock_command(_env_file(rig, tmp_path), running.terraform_dir, client=rig.tfc())
    locked = [name for name in NAMES.values() if rig.fake.locked(name)]
    assert (code, force_unlocks(), locked) == (0, [NAMES["01-network"], NAMES["02-deps"]], [])
    assert running.snapshot() == before
    lock_path = f"/api/v2/workspaces/{rig.fake.workspace(NAMES['02-deps'])['id']}/actions/lock"
    since = len(rig.fake.calls())
    running.plan_has_changes("02-deps", variables={"cluster_enabled": "true"})
    assert [path for method, path in rig.fake.calls()[since:] if (method, path) == ("POST", lock_path)] == [lock_path]


def test_a_refused_force_unlock_does_not_stop_the_teardown_of_the_others_and_every_failure_is_reported(
        rig, running):
    """Issue 24 item 7: 03-app and 02-deps left locked, Terraform Cloud refusing their force-unlock
    (403: a token without the lock permission; 503: an outage). The teardown still destroys
    01-network, leaves the two it could not unlock as they were (locked, states untouched), and
    raises one TeardownError naming both refusals with their statuses (which `python -m lfharness
    teardown` turns into exit 1, commands.teardown_command). Stand-in: the local Terraform Cloud
    fake told to refuse (refuse_force_unlock), locks left by killed real Terraforms."""
    for workspace in ("03-app", "02-deps"):
        running.leave_locked(workspace)
    rig.fake.refuse_force_unlock(NAMES["03-app"], 403)
    rig.fake.refuse_force_unlock(NAMES["02-deps"], 503)
    held = running.resources()
    with pytest.raises(TeardownError) as raised:
        teardown_workspaces(rig.tfc(), running)
    message = str(raised.value)
    reported = [ws for ws, status in (("03-app", "403"), ("02-deps", "503"))
                if f"{ws}: Terraform Cloud refused" in message and f"HTTP {status}" in message]
    assert (reported, running.resources()) == (["03-app", "02-deps"],
                                                {"01-network": [], "02-deps": held["02-deps"], "03-app": held["03-app"]})
    assert [name for name in NAMES.values() if rig.fake.locked(name)] == [NAMES["02-deps"], NAMES["03-app"]]


def test_a_terraform_on_a_workspace_another_holds_waits_its_lock_timeout_then_fails_with_the_lock_error(
        rig, running):
    """Issue 24 item 2, FR27: while a live Terraform holds 01-network's lock in Terraform Cloud, the
    harness's apply there (Stack.apply, which passes -lock-timeout) waits the lock timeout, asking
    Terraform Cloud for the lock again and again (more than one POST .../actions/lock), then fails
    with Terraform's own "Error acquiring the state lock" for that workspace's lock, and the
    harness's error says what holds it and how to release it (`python -m lfharness unlock`). The
    holder's state is untouched. Stand-in: the local Terraform Cloud fake answering 409 to every
    lock while a real `terraform apply -destroy` waits at its approval prompt."""
    name = NAMES["01-network"]
    before = running.snapshot()
    holder = running.hold_lock("01-network")
    lock_path = f"/api/v2/workspaces/{rig.fake.workspace(name)['id']}/actions/lock"
    since = len(rig.fake.calls())
    try:
        started = time.monotonic()
        with pytest.raises(tf.TerraformError) as raised:
            running.apply("01-network", variables={"cluster_enabled": "true"})
        waited = time.monotonic() - started
        asked = [path for method, path in rig.fake.calls()[since:] if (method, path) == ("POST", lock_path)]
    finally:
        lifecycle.release_holder(holder, rig.fake, name)
    message = " ".join(str(raised.value).split())
    said = [words for words in ("Error acquiring the state lock", "workspace already locked",
                                f'lock ID: "{rig.fake.organization}/{name}"', "python -m lfharness unlock")
            if words in message]
    assert (waited >= LOCK_WAIT, len(asked) > 1, len(said), running.snapshot() == before) == (
        True, True, 4, True), message
