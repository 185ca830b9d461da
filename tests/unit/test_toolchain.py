"""Offline toolchain: the module-registry stand-in over git clones, and init + validate with the
real providers and modules where a registry is reachable."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from lfharness import tf
from lfharness.offline import localca, registry, toolchain

pytestmark = pytest.mark.plan



def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> registry.ModuleMirror:
    """A mirror folder with one clone made here: tags v6.4.0 and v6.5.0 of a tiny iam-like module,
    an examples/ folder Terraform never loads, the namespace as a prefix of the folder name."""
    root = tmp_path_factory.mktemp("mirror")
    repo = root / "terraform-aws-modules+terraform-aws-iam"
    (repo / "modules" / "iam-role-for-service-accounts").mkdir(parents=True)
    (repo / "examples").mkdir()
    _git(repo, "init", "-q")
    for version in ("6.4.0", "6.5.0"):
        (repo / "modules" / "iam-role-for-service-accounts" / "main.tf").write_text(
            f'output "version" {{\n  value = "{version}"\n}}\n')
        (repo / "examples" / "main.tf").write_text("# not loaded\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", version)
        _git(repo, "tag", f"v{version}")
    return registry.ModuleMirror(root, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory, mirror) -> dict[str, str]:
    """CLI config + trusted CA for the module-registry stand-in, as environment variables."""
    folder = tmp_path_factory.mktemp("registry")
    ca = localca.make_ca(folder)
    with registry.ModuleRegistry(mirror, ca) as reg:
        config = registry.write_cli_config(folder / "terraform.rc", toolchain.cache_dir(), reg.base_url)
        yield {"TF_CLI_CONFIG_FILE": str(config), "SSL_CERT_FILE": str(localca.write_ca_bundle(ca)),
               "TF_PLUGIN_CACHE_DIR": ""}


def test_mirror_lists_the_clone_tags_as_module_versions(mirror):
    """Issue 8: the versions a clone offers are its vX.Y.Z tags."""
    assert mirror.versions(registry.ModuleRef("terraform-aws-modules", "iam", "aws")) == ["6.4.0", "6.5.0"]


def test_mirror_packs_a_tag_without_the_folders_terraform_never_loads(mirror):
    """Issue 8: a package holds the module's own files at that tag, not examples/."""
    archive = mirror.archive(registry.ModuleRef("terraform-aws-modules", "iam", "aws"), "6.4.0")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        body = tar.extractfile("modules/iam-role-for-service-accounts/main.tf").read().decode()
    assert "modules/iam-role-for-service-accounts/main.tf" in names
    assert not [n for n in names if n.startswith("examples/")]
    assert '"6.4.0"' in body


def test_registry_stand_in_resolves_an_unchanged_module_source(tmp_path: Path, offline_env):
    """NFR9, issue 8: `terraform-aws-modules/iam/aws//modules/...` ~> 6.4 resolves to the newest
    admitted tag of the clone, against the module-registry stand-in, with the source unchanged."""
    (tmp_path / "main.tf").write_text(
        'module "irsa" {\n'
        '  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"\n'
        '  version = "~> 6.4"\n}\n'
    )
    tf.run(["get", "-no-color"], tmp_path, offline_env)
    manifest = json.loads((tmp_path / ".terraform" / "modules" / "modules.json").read_text())
    assert {m["Key"]: m.get("Version") for m in manifest["Modules"]}["irsa"] == "6.5.0"
    assert (tmp_path / ".terraform/modules/irsa/modules/iam-role-for-service-accounts/main.tf").exists()


def test_registry_stand_in_refuses_a_module_the_mirror_does_not_hold(tmp_path: Path, offline_env):
    """Issue 8: a module with no clone fails init loudly instead of resolving something else."""
    (tmp_path / "main.tf").write_text(
        'module "x" {\n  source  = "terraform-aws-modules/no-such-module/aws"\n  version = "~> 1.0"\n}\n')
    with pytest.raises(tf.TerraformError, match="Module not found"):
        tf.run(["get", "-no-color"], tmp_path, offline_env)


def test_the_stand_in_serves_each_provider_at_its_schema_version():
    """Issue 8: set-up installed the stand-in as hashicorp/aws, helm, kubernetes and null, each at the
    version of the schema it serves, with that schema beside the binary."""
    manifest = toolchain.load_manifest()
    if not manifest.get("providers"):
        pytest.skip("no set-up manifest: run `bash setup.sh`")
    for name, (version, schema) in toolchain.schema_files(toolchain.schemas_dir()).items():
        entry = manifest["providers"][name]
        assert (entry["version"], entry["standin"]) == (version, True)
        binary = toolchain.provider_binary(toolchain.cache_dir(), toolchain.Provider(name, version, "", None))
        assert binary.exists() and (binary.parent / "schema.json.gz").read_bytes() == schema.read_bytes()


def test_stand_in_servers_offer_each_provider_for_reattach_and_stop_with_the_session(tmp_path: Path):
    """Issue 8 (speed): one long-lived stand-in per provider, announced in TF_REATTACH_PROVIDERS's
    format; leaving the context stops every process."""
    import os  # noqa: PLC0415

    from lfharness.offline import standin  # noqa: PLC0415

    if toolchain.missing([("providers", n) for n in toolchain.STANDIN_PROVIDERS]):
        pytest.skip("the provider stand-in is not installed: run `bash setup.sh`")
    with standin.StandInServers(tmp_path, None) as servers:
        announced = json.loads(servers.env["TF_REATTACH_PROVIDERS"])
        pids = [c["Pid"] for c in announced.values()]
        assert {a.rsplit("/", 1)[-1] for a in announced} == set(toolchain.STANDIN_PROVIDERS)
        assert all(c["ProtocolVersion"] == 6 and c["Addr"]["String"] for c in announced.values())
        assert all(Path(f"/proc/{pid}").exists() for pid in pids)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists() and
                "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
    assert os.environ.get("TF_REATTACH_PROVIDERS") is None
