"""Offline toolchain: modules through the registry stand-in, init + validate per workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

import json

from lfharness import hcl, tf
from lfharness.offline import localca, registry, toolchain

pytestmark = pytest.mark.plan

LOCAL_BACKEND = 'terraform {\n  backend "local" {}\n}\n'


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory) -> dict[str, str]:
    """CLI config + trusted CA for the registry stand-in, as environment variables."""
    folder = tmp_path_factory.mktemp("registry")
    ca = localca.make_ca(folder)
    cache = toolchain.cache_dir()
    with registry.ModuleRegistry(toolchain.modules_dir(cache), ca) as reg:
        config = registry.write_cli_config(folder / "terraform.rc", cache, reg.base_url)
        yield {"TF_CLI_CONFIG_FILE": str(config), "SSL_CERT_FILE": str(localca.write_ca_bundle(ca)),
               "TF_PLUGIN_CACHE_DIR": ""}


def _cached(module: str) -> dict:
    entry = toolchain.load_manifest()["modules"].get(module)
    if entry is None or entry["status"] != "ok":
        pytest.skip(f"{module} not in the offline cache ({(entry or {}).get('refusal', 'run bash setup.sh')})")
    return entry


def test_registry_stand_in_resolves_an_unchanged_module_source(tmp_path: Path, offline_env):
    """NFR9, issue 3: `terraform-aws-modules/iam/aws//modules/...` ~> 6.4 resolves offline, source unchanged."""
    entry = _cached("terraform-aws-modules/iam/aws")
    (tmp_path / "main.tf").write_text(
        'module "irsa" {\n'
        '  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"\n'
        '  version = "~> 6.4"\n}\n'
    )
    tf.run(["get", "-no-color"], tmp_path, offline_env)
    manifest = (tmp_path / ".terraform" / "modules" / "modules.json").read_text()
    assert f'"Version":"{entry["version"]}"' in manifest.replace(" ", "")
    assert (tmp_path / ".terraform/modules/irsa/modules/iam-role-for-service-accounts/main.tf").exists()


def test_registry_stand_in_refuses_a_module_it_does_not_hold(tmp_path: Path, offline_env):
    """Issue 3: a module missing from the cache fails init loudly instead of resolving something else."""
    (tmp_path / "main.tf").write_text(
        'module "x" {\n  source  = "terraform-aws-modules/no-such-module/aws"\n  version = "~> 1.0"\n}\n')
    with pytest.raises(tf.TerraformError, match="Module not found"):
        tf.run(["get", "-no-color"], tmp_path, offline_env)


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_workspace_inits_and_validates_offline(workspace: str, tmp_path: Path, offline_env):
    """Issue 3, NFR11: terraform init (local backend override, decision 7) and validate succeed offline."""
    missing = tf.missing_offline_pieces(workspace)
    if missing:
        pytest.skip(f"{workspace} cannot init offline, the Go module proxy refused: " + "; ".join(missing)
                    + ". Lifts when the proxy serves them (re-run bash setup.sh) or with internet access.")
    work = tf.copy_workspace(workspace, tmp_path, {"backend_override.tf": LOCAL_BACKEND})
    tf.run(["init", "-input=false", "-no-color"], work, offline_env)
    result = tf.run(["validate", "-no-color"], work, offline_env)
    assert "Success" in result.stdout


@pytest.mark.parametrize("workspace", ["01-network", "02-deps"])
def test_workspace_modules_resolve_offline_with_unchanged_sources(workspace: str, tmp_path: Path, offline_env):
    """NFR9, issue 3: `terraform get` fetches every module of the workspace (and the modules they
    call, such as kms from eks) through the registry stand-in, with the sources as committed."""
    sources = {b["source"].split("//")[0] for b in hcl.blocks(tf.TERRAFORM_DIR / workspace, "module").values()}
    refused = toolchain.missing([("modules", source) for source in sorted(sources)])
    if refused:
        pytest.skip(f"{workspace} modules not available offline: " + "; ".join(refused))
    work = tf.copy_workspace(workspace, tmp_path, {"backend_override.tf": LOCAL_BACKEND})
    tf.run(["get", "-no-color"], work, offline_env)
    resolved = {m["Key"]: m for m in json.loads((work / ".terraform/modules/modules.json").read_text())["Modules"]}
    expected = set(hcl.blocks(tf.TERRAFORM_DIR / workspace, "module"))
    assert expected <= set(resolved), f"unresolved: {expected - set(resolved)}"
    assert all((work / resolved[key]["Dir"] / "main.tf").exists() for key in expected)
