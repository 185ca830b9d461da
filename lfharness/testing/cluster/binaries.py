"""The local cluster's programs: Go builds of etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok at pinned versions, cached under ``$LFK8S_CACHE/kube/bin``.

Each build is its own throwaway Go module; a stamp beside the binaries records what it was built
from, so a changed pin rebuilds and an unchanged one costs nothing. ``unavailable_reason`` is the
kube tier's one skip line when the binaries are not there.
``python -m lfharness.testing.cluster build`` (setup.sh with ``LFK8S_KUBE=1``) runs ``main``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lfharness.core.wait import Stopwatch
from lfharness.testing.toolchain import cache_dir

LOG = logging.getLogger("lfharness.testing.cluster.binaries")

SWITCH = "LFK8S_KUBE"
SWITCH_HINT = "LFK8S_KUBE=1 bash setup.sh"
KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.8"
KWOK_VERSION = "v0.8.0"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/...;
# a module that requires it must replace each with the matching release (the list is the replace
# block of k8s.io/kubernetes' own go.mod at v1.35.4).
_STAGING = ("api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime", "client-go",
            "cloud-provider", "cluster-bootstrap", "code-generator", "component-base", "component-helpers",
            "controller-manager", "cri-api", "cri-client", "csi-translation-lib", "dynamic-resource-allocation",
            "endpointslice", "externaljwt", "kms", "kube-aggregator", "kube-controller-manager", "kube-proxy",
            "kube-scheduler", "kubectl", "kubelet", "metrics", "mount-utils", "pod-security-admission",
            "sample-apiserver", "sample-cli-plugin", "sample-controller")


@dataclass(frozen=True)
class GoBuild:
    """One `go build` in its own throwaway module under <cache>/kube/src/<folder>."""

    folder: str
    go_mod: str
    packages: tuple[str, ...]
    outputs: tuple[str, ...]
    ldflags: str


def _version_ldflags() -> str:
    # Without these the server reports v0.0.0-master, which fails charts' kubeVersion checks.
    v = "k8s.io/component-base/version"
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    return (f"-s -w -X {v}.gitVersion={KUBERNETES_VERSION} -X {v}.gitMajor={major} -X {v}.gitMinor={minor} "
            f"-X {v}.gitTreeState=clean")


def go_builds() -> tuple[GoBuild, ...]:
    replace = "".join(f"\tk8s.io/{m} => k8s.io/{m} v0.{KUBERNETES_VERSION.split('.', 1)[1]}\n" for m in _STAGING)
    return (
        GoBuild("etcd", f"module lfk8s/etcd\n\ngo 1.25\n\nrequire go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n",
                ("go.etcd.io/etcd/server/v3",), ("etcd",), "-s -w"),
        GoBuild("kwok", f"module lfk8s/kwok\n\ngo 1.26.0\n\nrequire sigs.k8s.io/kwok {KWOK_VERSION}\n",
                ("sigs.k8s.io/kwok/cmd/kwok",), ("kwok",), "-s -w"),
        GoBuild("k8s", f"module lfk8s/kube\n\ngo 1.25\n\nrequire k8s.io/kubernetes {KUBERNETES_VERSION}\n\n"
                f"replace (\n{replace})\n",
                tuple(f"k8s.io/kubernetes/cmd/{c}" for c in BINARIES[1:4]), BINARIES[1:4], _version_ldflags()),
    )


def kube_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "kube"


def bin_dir(cache: Path | None = None) -> Path:
    return kube_dir(cache) / "bin"


def _stamp(build: GoBuild) -> str:
    return json.dumps({"go.mod": build.go_mod, "packages": build.packages, "ldflags": build.ldflags}, sort_keys=True)


def _stamp_file(cache: Path | None, build: GoBuild) -> Path:
    return bin_dir(cache) / f".{build.folder}.built"


def _reports_version(binary: Path, version: str) -> bool:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return version.lstrip("v") in out.stdout + out.stderr


_VERSIONS = {"etcd": ETCD_VERSION, "kwok": KWOK_VERSION, "k8s": KUBERNETES_VERSION}


def missing_binaries(cache: Path | None = None) -> list[str]:
    """Binaries absent, or built from other versions/flags than this module asks for. A binary
    without this module's stamp (built by hand with the same module) counts when `--version`
    reports the pinned version; the stamp is then written, so the check runs once."""
    missing = []
    for build in go_builds():
        stamp = _stamp_file(cache, build)
        binaries = [bin_dir(cache) / b for b in build.outputs]
        if stamp.is_file() and stamp.read_text() == _stamp(build) and all(b.is_file() for b in binaries):
            continue
        if all(b.is_file() and _reports_version(b, _VERSIONS[build.folder]) for b in binaries):
            stamp.write_text(_stamp(build))
            continue
        missing += [b.name for b in binaries]
    return missing


def unavailable_reason(cache: Path | None = None) -> str | None:
    """One line for the kube tier's skip, naming the switch that lifts it; None when ready."""
    missing = missing_binaries(cache)
    if not missing:
        return None
    return (f"kube tier: the local cluster's binaries ({', '.join(missing)}) are not built in {bin_dir(cache)}; "
            f"build them with `{SWITCH_HINT}` (about 20 min cold, seconds warm)")


def _go_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The same caches and settings as the provider builds (toolchain.py): a second build is warm.
    env.update(GOFLAGS="-mod=mod", GOSUMDB="off", GOTOOLCHAIN="local", CGO_ENABLED="0",
               GOMODCACHE=str(cache / "gomod"), GOCACHE=str(cache / "gobuild"))
    return env


def build(cache: Path | None = None, *, log_dir: Path | None = None) -> dict[str, float]:
    """Builds the missing binaries into <cache>/kube/bin; returns seconds per build (0 = up to date).

    Progress and elapsed time are logged (a heartbeat every 30 s); go's output goes to a log file
    under log_dir (default <cache>/kube/build-logs), whose tail is raised on failure.
    """
    cache = cache or cache_dir()
    if shutil.which("go") is None:
        raise SystemExit("go is not on PATH: the cluster's binaries are built from their Go modules")
    log_dir = log_dir or kube_dir(cache) / "build-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    bin_dir(cache).mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    missing = set(missing_binaries(cache))
    for step in go_builds():
        if not missing.intersection(step.outputs):
            LOG.info("%s: up to date in %s", ", ".join(step.outputs), bin_dir(cache))
            times[step.folder] = 0.0
            continue
        src = kube_dir(cache) / "src" / step.folder
        src.mkdir(parents=True, exist_ok=True)
        if not (src / "go.mod").is_file() or (src / "go.mod").read_text() != step.go_mod:
            (src / "go.mod").write_text(step.go_mod)
        (src / "tools.go").write_text("package tools\n")
        out = str(bin_dir(cache) / step.outputs[0]) if len(step.outputs) == 1 else str(bin_dir(cache)) + "/"
        log_file = log_dir / f"{step.folder}.log"
        with log_file.open("w") as log, Stopwatch(f"go build {', '.join(step.outputs)}", logger=LOG) as watch:
            proc = subprocess.run(["go", "build", "-trimpath", "-ldflags", step.ldflags, "-o", out, *step.packages],
                                  cwd=src, env=_go_env(cache), stdout=log, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"go build {', '.join(step.packages)} failed (log {log_file}):\n{tail}")
        _stamp_file(cache, step).write_text(_stamp(step))
        times[step.folder] = round(watch.elapsed, 1)
    return times


def main(argv: list[str]) -> int:
    """`python -m lfharness.testing.cluster build`: the cluster's binaries into the project's cache."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if argv != ["build"]:
        print("usage: python -m lfharness.testing.cluster build", file=sys.stderr)
        return 2
    with Stopwatch("building etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok", logger=LOG):
        times = build()
    LOG.info("binaries in %s; seconds per build: %s", bin_dir(), times)
    return 0

