"""The deployed stack: terraform per workspace against Terraform Cloud, in dependency order."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from lfharness import envfile, redact, tf
from lfharness.tfc import TfcClient

LOG = logging.getLogger("lfharness.stack")

ORDER = ("01-network", "02-deps", "03-app")
KEEP_ENV = "LFK8S_KEEP_STACK"  # "1": keep the stack after the run, for debugging (Terratest style)


class TeardownError(RuntimeError):
    """One or more workspaces could not be destroyed; each failure is listed, downstream first."""


def _var_args(variables: dict[str, str] | None) -> list[str]:
    """`-var k=v` arguments, in a stable order so the run logs compare."""
    return [f"-var={key}={value}" for key, value in sorted((variables or {}).items())]


# A lock still held by a Terraform that outlived its Python parent (a cancelled run) is waited
# for, not failed on at once.
LOCK_TIMEOUT = "-lock-timeout=20m"


# Subcommands that print values of the current state (a plan's or destroy's old values, among them
# helm_release.metadata.values, which the helm provider does not mark sensitive): the state's
# secrets are learned before they run. An apply also creates secrets: learned again after it.
PRINTS_STATE = ("plan", "apply", "destroy", "refresh")


class Stack:
    """init / apply / plan / output / destroy per workspace, logs kept in the run folder.

    `redactor` (default: a new one) learns the .env secrets, every sensitive output read here and
    the secrets of each workspace's state, and masks them in every run log and error (NFR1).
    """

    def __init__(self, settings: envfile.Settings, run_dir: Path, terraform_dir: Path = tf.TERRAFORM_DIR,
                 extra_env: dict[str, str] | None = None, redactor: redact.Redactor | None = None) -> None:
        self.redactor = redactor if redactor is not None else redact.Redactor()
        self.redactor.add(*settings.secrets)
        env = {**settings.terraform_env(), **(extra_env or {})}
        # Secret values: a traceback's argument list shows env = {..., 'TFE_TOKEN': '***'}.
        self.env = {k: self.redactor.secret(v) if self.redactor.knows(v) else v for k, v in env.items()}
        self.run_dir = run_dir
        self.terraform_dir = terraform_dir
        self.applied: list[str] = []

    def _cmd(self, workspace: str, *args: str, ok: tuple[int, ...] = (0,)) -> tf.Result:
        if args[0] in PRINTS_STATE:
            self._learn_state(workspace)

        def learn_new_secrets() -> None:
            self._learn_state(workspace)

        return tf.run(list(args), self.terraform_dir / workspace, self.env, self.run_dir / "terraform", ok,
                      redactor=self.redactor, before_log=learn_new_secrets if args[0] == "apply" else None)

    def _learn_state(self, workspace: str) -> None:
        """Registers the secrets the workspace's state holds (show -json; its stdout is never logged)."""
        try:
            shown = tf.run(["show", "-json", "-no-color"], self.terraform_dir / workspace, self.env,
                           self.run_dir / "terraform", redactor=self.redactor)
            found = self.redactor.learn_state(json.loads(shown.stdout or "{}"))
        except (tf.TerraformError, json.JSONDecodeError) as exc:
            LOG.warning("could not read the %s state to learn its secrets, so the next run log may hold some "
                        "the harness has not seen yet: %s", workspace, exc)
            return
        LOG.debug("%s: %d secret value(s) known from the state", workspace, found)

    def init(self, workspace: str) -> None:
        self._cmd(workspace, "init", "-input=false", "-no-color")

    def apply(self, workspace: str, *, variables: dict[str, str] | None = None) -> None:
        """Applies one workspace; its upstream workspaces must already be applied. `variables`
        become `-var k=v` (e.g. cluster_enabled=false for the pause)."""
        self.init(workspace)
        # Recorded before the apply: a half-applied workspace still needs its teardown.
        if workspace not in self.applied:
            self.applied.append(workspace)
        self._cmd(workspace, "apply", "-auto-approve", "-input=false", "-no-color", LOCK_TIMEOUT,
                  *_var_args(variables))

    def plan_has_changes(self, workspace: str, *, variables: dict[str, str] | None = None) -> bool:
        """`plan -detailed-exitcode`: exit 2 means changes, 0 none (FR29)."""
        result = self._cmd(workspace, "plan", "-detailed-exitcode", "-input=false", "-no-color", LOCK_TIMEOUT,
                           *_var_args(variables), ok=(0, 2))
        return result.returncode == 2

    def destroy(self, workspace: str, *, variables: dict[str, str] | None = None) -> None:
        self.init(workspace)
        self._cmd(workspace, "destroy", "-auto-approve", "-input=false", "-no-color", LOCK_TIMEOUT,
                  *_var_args(variables))
        if workspace in self.applied:
            self.applied.remove(workspace)

    def outputs(self, workspace: str) -> dict:
        """The workspace's outputs; each sensitive one is registered with the redactor as it is
        read, and its strings come back as redact.Secret (masked in reprs)."""
        raw = json.loads(self._cmd(workspace, "output", "-json").stdout)
        return {k: self.redactor.learn(v["value"]) if v.get("sensitive") else v["value"] for k, v in raw.items()}

    def teardown_unless_kept(self) -> None:
        """The finalizer registered before the first apply: teardown() unless LFK8S_KEEP_STACK=1.

        It also runs after Ctrl-C: tf.run lets Terraform write its state and exit first, then
        pytest unwinds its session and calls this.
        """
        if os.environ.get(KEEP_ENV) == "1":
            LOG.warning("teardown skipped: %s=1 keeps %s; run `python -m lfharness teardown` when done",
                        KEEP_ENV, ", ".join(self.applied) or "nothing")
            return
        self.teardown()

    def teardown(self, workspaces: tuple[str, ...] | None = None) -> None:
        """Destroys what this run applied (or `workspaces`), downstream first (FR27).

        Every workspace is tried even when one before it fails: a failed 03-app destroy must not
        leave RDS and EKS running. Each failure is logged as it happens and all are raised
        together at the end (TeardownError). Ctrl-C is not a failure: it ends the teardown.
        """
        chosen = self.applied if workspaces is None else list(workspaces)
        failures: list[str] = []
        for workspace in reversed(ORDER):
            if workspace not in chosen:
                continue
            LOG.info("teardown: destroying %s", workspace)
            try:
                self.destroy(workspace)
            except Exception as exc:  # noqa: BLE001 (any failure: note it, go on with the next workspace)
                LOG.error("teardown: destroying %s failed, continuing with the next workspace: %s", workspace, exc)
                failures.append(f"{workspace}: {exc}")
        if failures:
            raise TeardownError(f"teardown left {len(failures)} workspace(s) not destroyed (logs in "
                                f"{self.run_dir / 'terraform'}); destroy them by hand or re-run "
                                "`python -m lfharness teardown`:\n" + "\n".join(failures))


def teardown_workspaces(settings: envfile.Settings, run_dir: Path, tfc: TfcClient,
                        terraform_dir: Path = tf.TERRAFORM_DIR, extra_env: dict[str, str] | None = None,
                        redactor: redact.Redactor | None = None) -> list[str]:
    """Destroys whatever the three workspaces' states still hold, 03 -> 02 -> 01; idempotent.

    A workspace that does not exist in Terraform Cloud holds nothing and is skipped (`terraform
    init` would create it, in remote execution mode). One that exists is put back into local
    execution mode first: a remote run would not have the .env credentials (decision 3).
    Destroying an empty state is a no-op, so running this twice is safe. Returns the workspaces tried.
    """
    for workspace in ORDER:  # before any force-unlock: a Terraform a cancelled run left must end first
        tf.wait_for_live_terraform(terraform_dir / workspace)
    present = []
    for workspace in ORDER:
        name = tf.WORKSPACES[workspace]
        if tfc.get_workspace(name) is None:
            LOG.info("teardown: %s (%s) does not exist in Terraform Cloud: nothing to destroy", workspace, name)
            continue
        tfc.ensure_workspace(name)
        if tfc.force_unlock_if_locked(name):
            LOG.warning("teardown: %s was locked by an interrupted run (a cancelled job kills Terraform "
                        "mid-apply); lock released so its state can be destroyed", name)
        present.append(workspace)
    Stack(settings, run_dir, terraform_dir, extra_env, redactor).teardown(tuple(present))
    return present


def teardown_command(env_file: Path, runs_dir: Path) -> int:
    """`python -m lfharness teardown`: the e2e suite's teardown as a command, reading .env like the suite.

    Exit 0 when everything is destroyed (or .env names no target), 1 when a workspace could not
    be destroyed, 2 when .env is malformed.
    """
    try:
        missing = envfile.missing_for_cloud(env_file)
    except envfile.EnvError as exc:
        LOG.error("%s", exc)
        return 2
    if missing:
        LOG.info("teardown: %s lacks %s, so there is no AWS / Terraform Cloud target: nothing to tear down",
                 env_file, ", ".join(missing))
        return 0
    settings = envfile.load(env_file)
    # NFR1: no secret in any log line, the state secrets the destroys learn included.
    redactor = redact.Redactor(settings.secrets)
    undo = redact.install_record_masking(redactor)
    try:
        run_dir = runs_dir / (time.strftime("%Y%m%d-%H%M%S") + "-teardown")
        run_dir.mkdir(parents=True, exist_ok=True)
        LOG.info("teardown: run folder %s", run_dir)
        try:
            teardown_workspaces(settings, run_dir, TfcClient(settings.tfe_token, settings.tfc_organization),
                                redactor=redactor)
        except TeardownError as exc:
            LOG.error("%s", exc)
            return 1
        LOG.info("teardown: done; every workspace's state is empty")
        return 0
    finally:
        undo()
