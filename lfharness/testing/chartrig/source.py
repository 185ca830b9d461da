"""Which chart and where it comes from: the pin of 03-app's helm_release, the chart found in
`LFK8S_CHART_DIR` (an unpacked chart with its dependencies under `charts/`), else in the project
cache, else pulled from the chart repository named in terraform/03-app/helm.tf when that is
reachable (`helm pull`, cached), and the checks an unpacked chart must pass. Also the project's
helm and the environment it runs in. Nothing fetched is ever written into the repository
(decision 16).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lfharness.core import hcl, tf
from lfharness.core.wait import Stopwatch
from lfharness.testing import toolchain

LOG = logging.getLogger("lfharness.testing.chartrig.source")

CHART_DIR_ENV = "LFK8S_CHART_DIR"
HELM_FILE = tf.TERRAFORM_DIR / "03-app" / "helm.tf"
PULL_TIMEOUT = 180.0
PROBE_TIMEOUT = 3.0


# --- the pin --------------------------------------------------------------------------------

class ChartError(RuntimeError):
    """The chart could not be found, checked or rendered; the message says what to do."""


@dataclass(frozen=True)
class ReleasePin:
    """What helm.tf installs: read from the HCL so the pin lives in one place."""

    release: str
    repository: str
    chart: str
    version: str
    namespace: str


@dataclass(frozen=True)
class Chart:
    """An unpacked chart directory that passed the name, version and dependency checks."""

    path: Path
    origin: str
    version: str


def release_pin(helm_file: Path = HELM_FILE) -> ReleasePin:
    """The helm_release of 03-app, with `local.*` references resolved from the same file."""
    parsed = hcl.load(helm_file)
    local_values: dict[str, Any] = {}
    for block in parsed.get("locals", []):
        local_values.update(block)
    releases = [r["helm_release"] for r in parsed.get("resource", []) if "helm_release" in r]
    if len(releases) != 1 or len(releases[0]) != 1:
        raise ChartError(f"expected exactly one helm_release in {helm_file}, found {len(releases)}")
    release = next(iter(releases[0].values()))

    def resolve(value: str) -> str:
        match = re.fullmatch(r"\$\{local\.(\w+)\}", value)
        return str(local_values[match.group(1)]) if match else value

    return ReleasePin(release=resolve(release["name"]), repository=resolve(release["repository"]),
                      chart=resolve(release["chart"]), version=resolve(release["version"]),
                      namespace=str(local_values.get("namespace", "langfuse")))


def unavailable_reason(pin: ReleasePin) -> str:
    """The one line every chart test skips with when no chart can be had."""
    return (f"chart tier skipped: no chart {pin.version} (set {CHART_DIR_ENV} to an unpacked "
            f"{pin.chart} chart {pin.version} with its dependencies under charts/, or run where the "
            "chart repository is reachable)")


def helm_bin() -> Path:
    """The project's helm (installed by the set-up next to the venv's python), never PATH's."""
    candidate = Path(sys.executable).parent / "helm"
    if not candidate.exists():
        raise ChartError(f"expected the project's helm at {candidate}, found nothing: run `bash setup.sh` first")
    return candidate


# --- finding the chart ----------------------------------------------------------------------

def _dependency_present(charts_dir: Path, name: str, version: str) -> bool:
    unpacked = charts_dir / name / "Chart.yaml"
    if unpacked.exists():
        meta = yaml.safe_load(unpacked.read_text()) or {}
        # A range such as 2.x.x in a subchart's Chart.yaml is resolved by its Chart.lock; only
        # exact pins are compared here.
        return meta.get("name") == name and (not re.fullmatch(r"[\d.]+", version)
                                             or str(meta.get("version")) == version)
    return any(charts_dir.glob(f"{name}-{version}.tgz")) or (
        not re.fullmatch(r"[\d.]+", version) and any(charts_dir.glob(f"{name}-*.tgz")))


def missing_dependencies(chart_dir: Path) -> list[str]:
    """Dependencies of a chart (and, for unpacked ones, of its subcharts) absent under charts/."""
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}
    missing = []
    for dep in meta.get("dependencies") or []:
        name, version = dep["name"], str(dep.get("version", ""))
        if not _dependency_present(chart_dir / "charts", name, version):
            missing.append(f"{chart_dir.name}/charts/{name} {version}")
        elif (chart_dir / "charts" / name / "Chart.yaml").exists():
            missing.extend(f"{chart_dir.name}/charts/{m}" for m in missing_dependencies(chart_dir / "charts" / name))
    return missing


def verify_chart_dir(path: Path, pin: ReleasePin, origin: str) -> Chart:
    """Name, version and dependencies of an unpacked chart, or a ChartError saying what is wrong."""
    chart_yaml = path / "Chart.yaml"
    if not chart_yaml.is_file():
        raise ChartError(f"{origin}: {path} has no Chart.yaml; expected an unpacked {pin.chart} chart {pin.version}")
    meta = yaml.safe_load(chart_yaml.read_text()) or {}
    found = (meta.get("name"), str(meta.get("version")))
    if found != (pin.chart, pin.version):
        raise ChartError(f"{origin}: {chart_yaml} is {found[0]} {found[1]}, expected {pin.chart} {pin.version} "
                         "(the version helm.tf pins)")
    missing = missing_dependencies(path)
    if missing:
        raise ChartError(f"{origin}: {path} lacks dependencies under charts/: {', '.join(missing)} "
                         "(each subchart needs its own charts/common too)")
    return Chart(path=path, origin=origin, version=pin.version)


def _cached_chart_dir(pin: ReleasePin, cache: Path) -> Path:
    return cache / "charts" / f"{pin.chart}-{pin.version}" / pin.chart


def repository_reachable(pin: ReleasePin, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when the chart repository's index answers; a short probe, no retries."""
    url = pin.repository.rstrip("/") + "/index.yaml"
    if urllib.parse.urlparse(url).scheme not in ("https", "http"):
        return False
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        # The server answered (perhaps refusing HEAD): reachable; helm pull reports any real refusal.
        return True
    except (OSError, ValueError):
        return False


def helm_env(cache: Path) -> dict[str, str]:
    # Helm's own config, cache and data under the project cache: nothing in the user's ~/.config.
    env = dict(os.environ)
    env.update(HELM_CACHE_HOME=str(cache / "helm" / "cache"), HELM_CONFIG_HOME=str(cache / "helm" / "config"),
               HELM_DATA_HOME=str(cache / "helm" / "data"))
    return env


def pull(pin: ReleasePin, cache: Path, timeout: float = PULL_TIMEOUT) -> Chart:
    """`helm pull --untar` of the pinned chart into the cache (atomically: a half pull never counts)."""
    target = _cached_chart_dir(pin, cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pull-", dir=target.parent) as tmp:
        args = [str(helm_bin()), "pull", pin.chart, "--repo", pin.repository, "--version", pin.version,
                "--untar", "--untardir", tmp]
        try:
            with Stopwatch(f"helm pull {pin.chart} {pin.version}", logger=LOG):
                proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                      env=helm_env(cache), check=False)
        except subprocess.TimeoutExpired as exc:
            raise ChartError(f"helm pull {pin.chart} {pin.version} did not finish within {timeout:.0f} s") from exc
        if proc.returncode != 0:
            raise ChartError(f"helm pull {pin.chart} {pin.version} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        pulled = verify_chart_dir(Path(tmp) / pin.chart, pin, "helm pull")
        if target.exists():
            shutil.rmtree(target)
        pulled.path.rename(target)
    return Chart(path=target, origin="chart repository (cached)", version=pin.version)


def locate(pin: ReleasePin | None = None, env: Mapping[str, str] | None = None,
           cache: Path | None = None, probe: bool = True) -> Chart | None:
    """The chart to render: LFK8S_CHART_DIR, else the cache, else a pull when the repository
    answers; None when there is none (callers skip with unavailable_reason()).

    A set but wrong LFK8S_CHART_DIR is an error, not a skip: the operator asked for it.
    """
    pin = pin or release_pin()
    env = os.environ if env is None else env
    cache = cache or toolchain.cache_dir()
    if env.get(CHART_DIR_ENV):
        return verify_chart_dir(Path(env[CHART_DIR_ENV]).expanduser().resolve(), pin, CHART_DIR_ENV)
    cached = _cached_chart_dir(pin, cache)
    if (cached / "Chart.yaml").exists():
        return verify_chart_dir(cached, pin, "chart cache")
    if probe and repository_reachable(pin):
        return pull(pin, cache)
    return None
