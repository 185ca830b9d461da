"""The deployed stack: terraform per workspace against Terraform Cloud, in dependency order."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lfharness import envfile, tf

LOG = logging.getLogger("lfharness.stack")

ORDER = ("01-network", "02-deps", "03-app")


class Stack:
    """init / apply / plan / output / destroy per workspace, logs kept in the run folder."""

    def __init__(self, settings: envfile.Settings, run_dir: Path, terraform_dir: Path = tf.TERRAFORM_DIR,
                 extra_env: dict[str, str] | None = None) -> None:
        self.env = {**settings.terraform_env(), **(extra_env or {})}
        self.run_dir = run_dir
        self.terraform_dir = terraform_dir
        self.applied: list[str] = []

    def _cmd(self, workspace: str, *args: str, ok: tuple[int, ...] = (0,)) -> tf.Result:
        return tf.run(list(args), self.terraform_dir / workspace, self.env, self.run_dir / "terraform", ok)

    def init(self, workspace: str) -> None:
        self._cmd(workspace, "init", "-input=false", "-no-color")

    def apply(self, workspace: str) -> None:
        """Applies one workspace; its upstream workspaces must already be applied."""
        self.init(workspace)
        # Recorded before the apply: a half-applied workspace still needs its teardown.
        if workspace not in self.applied:
            self.applied.append(workspace)
        self._cmd(workspace, "apply", "-auto-approve", "-input=false", "-no-color")

    def plan_has_changes(self, workspace: str) -> bool:
        """`plan -detailed-exitcode`: exit 2 means changes, 0 none (FR29)."""
        result = self._cmd(workspace, "plan", "-detailed-exitcode", "-input=false", "-no-color", ok=(0, 2))
        return result.returncode == 2

    def destroy(self, workspace: str) -> None:
        self.init(workspace)
        self._cmd(workspace, "destroy", "-auto-approve", "-input=false", "-no-color")
        if workspace in self.applied:
            self.applied.remove(workspace)

    def outputs(self, workspace: str) -> dict:
        raw = json.loads(self._cmd(workspace, "output", "-json").stdout)
        return {k: v["value"] for k, v in raw.items()}

    def teardown(self) -> None:
        """Destroys what this run applied, downstream first (FR27)."""
        for workspace in reversed(ORDER):
            if workspace in self.applied:
                LOG.info("teardown: destroying %s", workspace)
                self.destroy(workspace)
