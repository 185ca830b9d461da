"""The chart tier's mechanics: find the pinned Langfuse chart, render it with `helm template`,
and read the rendered Kubernetes objects (env, identities, services, requests, volumes).

The chart comes from `LFK8S_CHART_DIR` (an unpacked chart with its dependencies under
`charts/`), else from the project cache, else from the chart repository named in
terraform/03-app/helm.tf when that is reachable (`helm pull`, cached). Nothing fetched is
ever written into the repository (decision 16).
"""

from __future__ import annotations

import ast
import base64
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import yaml

from lfharness.core import hcl, redact, tf
from lfharness.core.wait import Stopwatch
from lfharness.testing import toolchain

LOG = logging.getLogger("lfharness.testing.chart")

CHART_DIR_ENV = "LFK8S_CHART_DIR"
HELM_FILE = tf.TERRAFORM_DIR / "03-app" / "helm.tf"
RENDER_TIMEOUT = 120.0
PULL_TIMEOUT = 180.0
PROBE_TIMEOUT = 3.0
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")

# Value keys (and env names) whose strings are secrets; helm may echo values in its errors.
_SECRET_KEY = re.compile(r"pass|secret|salt|token|key|url", re.IGNORECASE)


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


# --- finding the chart ------------------------------------------------------------------------

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
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):  # noqa: S310
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


# --- rendering --------------------------------------------------------------------------------

def _secret_strings(node: Any, under_secret_key: bool = False) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        # additionalEnv entries: {name: X_PASSWORD, value: ...}
        if isinstance(node.get("name"), str) and "value" in node and _SECRET_KEY.search(node["name"]):
            found |= _secret_strings(node["value"], True)
        for key, value in node.items():
            found |= _secret_strings(value, under_secret_key or bool(_SECRET_KEY.search(str(key))))
    elif isinstance(node, list):
        for value in node:
            found |= _secret_strings(value, under_secret_key)
    elif isinstance(node, str) and under_secret_key and len(node) >= 6:
        found.add(node)
    return found


def merged_values(values_docs: list[str]) -> dict:
    """The values as helm sees them after several -f files: maps merge, later files win."""
    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    result: dict = {}
    for doc in values_docs:
        result = merge(result, yaml.safe_load(doc) or {})
    return result


@contextlib.contextmanager
def values_files(values_docs: Sequence[str], prefix: str) -> Iterator[tuple[list[str], set[str]]]:
    """The values documents as 0600 files in a private temporary folder, as helm's `-f FILE ...`
    arguments, with the secret strings they hold (to mask what helm prints); gone on exit."""
    secrets: set[str] = set()
    for doc in values_docs:
        secrets |= _secret_strings(yaml.safe_load(doc) or {})
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        files: list[str] = []
        for index, doc in enumerate(values_docs):
            path = Path(tmp) / f"values-{index}.yaml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(doc)
            files += ["-f", str(path)]
        yield files, secrets


def render(values_docs: list[str], chart: Chart, pin: ReleasePin | None = None,
           timeout: float = RENDER_TIMEOUT, extra_secrets: Iterable[str] = ()) -> list[dict]:
    """`helm template <release> <chart dir> --namespace <ns> -f ...` parsed into objects.

    The chart is always an unpacked directory whose Chart.yaml version was checked by
    verify_chart_dir(), so no --version flag is passed. Values files are 0600 in a private
    temporary folder; helm's stderr is masked before it reaches an error message.
    """
    pin = pin or release_pin()
    with values_files(values_docs, "chart-values-") as (files, secrets):
        secrets |= set(extra_secrets)
        args = [str(helm_bin()), "template", pin.release, str(chart.path), "--namespace", pin.namespace, *files]
        try:
            with Stopwatch(f"helm template {pin.release} ({chart.origin}, {len(values_docs)} values files)",
                           logger=LOG):
                proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                      env=helm_env(toolchain.cache_dir()), check=False)
        except subprocess.TimeoutExpired as exc:
            raise ChartError(f"helm template of {chart.path} did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise ChartError(f"helm template {pin.release} {chart.path} --namespace {pin.namespace} exited "
                         f"{proc.returncode}:\n{redact.Redactor(secrets).mask(proc.stderr.strip())[-4000:]}")
    try:
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    except yaml.YAMLError as exc:
        raise ChartError(f"helm template output is not YAML: {redact.Redactor(secrets).mask(str(exc))[:2000]}") from exc


def _chart_values(chart_dir: Path, name: str) -> dict:
    """values.yaml of a subchart under charts/, unpacked or as the .tgz `helm pull` leaves."""
    unpacked = chart_dir / "charts" / name / "values.yaml"
    if unpacked.exists():
        return yaml.safe_load(unpacked.read_text()) or {}
    for tgz in sorted((chart_dir / "charts").glob(f"{name}-*.tgz")):
        with tarfile.open(tgz) as tar:
            member = tar.extractfile(f"{name}/values.yaml")
            if member is not None:
                return yaml.safe_load(member.read()) or {}
    raise ChartError(f"{chart_dir} has no subchart {name} under charts/")


def subchart_values(chart: Chart, values_docs: list[str], name: str, alias: str | None = None) -> dict:
    """The values a subchart renders with: its defaults, under the parent chart's values.yaml
    for its key, under ours (helm's precedence)."""
    key = alias or name
    parent = yaml.safe_load((chart.path / "values.yaml").read_text()) or {}
    layers = [yaml.safe_dump(_chart_values(chart.path, name)), yaml.safe_dump(parent.get(key) or {}),
              yaml.safe_dump(merged_values(values_docs).get(key) or {})]
    return merged_values(layers)


def by_identity(objects: list[dict]) -> dict[str, str]:
    """Each object as canonical JSON, keyed apiVersion/kind/namespace/name: two renders with equal
    maps produced the same objects with the same content."""
    return {"/".join((o.get("apiVersion", ""), o.get("kind", ""), o.get("metadata", {}).get("namespace", ""),
                      o.get("metadata", {}).get("name", ""))): json.dumps(o, sort_keys=True) for o in objects}


# --- reading objects --------------------------------------------------------------------------

def strings_in(node: Any) -> list[str]:
    """Every string (keys and values) inside an object, unescaped, e.g. to look for a leaked secret."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in [str(k), *strings_in(v)]]
    if isinstance(node, list):
        return [s for v in node for s in strings_in(v)]
    return [node] if isinstance(node, str) else []


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj.get("kind") == kind]


def get(objects: list[dict], kind: str, name: str) -> dict:
    """One object by kind and name, or a KeyError listing what there is."""
    for obj in of_kind(objects, kind):
        if obj["metadata"]["name"] == name:
            return obj
    names = sorted(obj["metadata"]["name"] for obj in of_kind(objects, kind))
    raise KeyError(f"no {kind} named {name!r}; rendered {kind}s: {names}")


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def replicas(workload: dict) -> int:
    # An absent replicas field means 1 for Deployments and StatefulSets.
    return int(workload["spec"].get("replicas", 1))


def workloads(objects: list[dict]) -> list[dict]:
    return [obj for obj in objects if obj.get("kind") in WORKLOAD_KINDS]


def secret_data(objects: list[dict]) -> dict[str, dict[str, str]]:
    """Decoded data and stringData of every rendered Secret, by name."""
    found: dict[str, dict[str, str]] = {}
    for secret in of_kind(objects, "Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        data.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
        found[secret["metadata"]["name"]] = data
    return found


def _configmap_data(objects: list[dict]) -> dict[str, dict[str, str]]:
    return {cm["metadata"]["name"]: {k: str(v) for k, v in (cm.get("data") or {}).items()}
            for cm in of_kind(objects, "ConfigMap")}


def _expand(value: str, env: Mapping[str, str | None]) -> str:
    # Kubernetes expands $(VAR) from variables defined earlier; $$ escapes a literal $.
    def sub(match: re.Match[str]) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]
        resolved = env.get(match.group(1))
        return resolved if resolved is not None else match.group(0)

    return re.sub(r"\$\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


def container_env(objects: list[dict], kind: str, name: str, container: str | None = None,
                  external: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str | None]:
    """The environment a container of a rendered workload starts with.

    envFrom first, then env in order (a later entry wins); `value` with $(VAR) expanded;
    secretKeyRef / configMapKeyRef resolved from the rendered Secrets and ConfigMaps, and from
    `external` Secrets (name -> data) that exist beside the release, such as 03-app's (None when
    the referenced object is nowhere, and for fieldRef / resourceFieldRef).
    """
    spec = pod_spec(get(objects, kind, name))
    containers = spec.get("containers") or []
    chosen = next((c for c in containers if c["name"] == (container or name)), None)
    if chosen is None:
        if container is not None or len(containers) != 1:
            raise KeyError(f"{kind}/{name} has containers {[c['name'] for c in containers]}, "
                           f"none named {container or name!r}")
        chosen = containers[0]
    secrets, configmaps = {**(external or {}), **secret_data(objects)}, _configmap_data(objects)
    env: dict[str, str | None] = {}
    for source in chosen.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            data = secrets.get(source["secretRef"]["name"], {})
        else:
            data = configmaps.get(source.get("configMapRef", {}).get("name"), {})
        env.update({prefix + k: v for k, v in data.items()})
    for entry in chosen.get("env") or []:
        ref = entry.get("valueFrom")
        if ref is None:
            env[entry["name"]] = _expand(str(entry.get("value", "")), env)
        elif "secretKeyRef" in ref:
            env[entry["name"]] = secrets.get(ref["secretKeyRef"]["name"], {}).get(ref["secretKeyRef"]["key"])
        elif "configMapKeyRef" in ref:
            env[entry["name"]] = configmaps.get(ref["configMapKeyRef"]["name"], {}).get(ref["configMapKeyRef"]["key"])
        else:
            env[entry["name"]] = None
    return env


def env_names(objects: list[dict]) -> dict[str, list[str]]:
    """Every env and envFrom-secret key name of every container (incl. init), by container path."""
    secrets = secret_data(objects)
    found: dict[str, list[str]] = {}
    for workload in workloads(objects):
        spec = pod_spec(workload)
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            names = [e["name"] for e in c.get("env") or []]
            for source in c.get("envFrom") or []:
                if "secretRef" in source:
                    names += [source.get("prefix", "") + k for k in secrets.get(source["secretRef"]["name"], {})]
            found[f"{workload['kind']}/{workload['metadata']['name']}/{c['name']}"] = names
    return found


def database_url(env: Mapping[str, str | None]) -> str | None:
    """The DATABASE_URL Langfuse ends up with: its own, else the one the image's entrypoint
    builds from DATABASE_HOST/_PORT/_USERNAME/_PASSWORD/_NAME plus `?DATABASE_ARGS`
    (langfuse web/worker entrypoint.sh; the port is appended when numeric, as newer ones do)."""
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    parts = [env.get(k) for k in ("DATABASE_HOST", "DATABASE_USERNAME", "DATABASE_PASSWORD", "DATABASE_NAME")]
    if not all(parts):
        return None
    host, user, password, name = parts
    port = env.get("DATABASE_PORT")
    if port and port.isdigit() and ":" not in str(host):
        host = f"{host}:{port}"
    url = f"postgresql://{user}:{password}@{host}/{name}"
    return f"{url}?{env['DATABASE_ARGS']}" if env.get("DATABASE_ARGS") else url


# --- secrets by reference (decision 20) ---------------------------------------------------------

# PSA baseline (Kubernetes Pod Security Standards): the capabilities a container may add.
BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
# Where chart 1.5.19 and its Bitnami subcharts (clickhouse 8.0.5, valkey 2.2.4) take an existing
# Secret's name and key from (_helpers.tpl of each): values path of the name, of the key.
EXISTING_SECRET_KEYS = (
    (("postgresql", "auth", "existingSecret"), ("postgresql", "auth", "secretKeys", "userPasswordKey")),
    (("clickhouse", "auth", "existingSecret"), ("clickhouse", "auth", "existingSecretKey")),
    (("redis", "auth", "existingSecret"), ("redis", "auth", "existingSecretPasswordKey")),
    (("s3", "auth", "existingSecret"), ("s3", "auth", "rootPasswordSecretKey")),
)


# The pod-template annotation holding a digest of 03-app's Secret (values.yaml.tpl): a changed
# secret changes the pod templates, so Helm rolls the pods that read the Secret at start.
SECRET_CHECKSUM_ANNOTATION = "checksum/langfuse-secrets"


def value_at(values: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a path of nested Helm values, None where any part is absent."""
    node: Any = values
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def secret_refs(values: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(Secret, key) of every reference in Helm values: any `secretKeyRef: {name, key}` (the
    chart's salt / encryptionKey / nextauth.secret keys and additionalEnv's valueFrom) and the
    subcharts' existingSecret pairs."""
    found: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            ref = node.get("secretKeyRef")
            if isinstance(ref, Mapping) and ref.get("name") and ref.get("key"):
                found.add((str(ref["name"]), str(ref["key"])))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(values)
    for name_path, key_path in EXISTING_SECRET_KEYS:
        name, key = value_at(values, name_path), value_at(values, key_path)
        if name:
            found.add((str(name), str(key or "")))
    return found


def containers(objects: list[dict]) -> dict[str, dict]:
    """Every container (init containers included) of every workload, by Kind/name/container."""
    found = {}
    for workload in workloads(objects):
        spec = pod_spec(workload)
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            found[f"{workload['kind']}/{workload['metadata']['name']}/{c['name']}"] = c
    return found


def literal_env_leaks(objects: list[dict], secrets: Mapping[str, str]) -> list[str]:
    """`container path: ENV (label)` for every env entry whose literal `value` holds a secret."""
    return [f"{path}: {entry['name']} ({label})"
            for path, c in containers(objects).items() for entry in c.get("env") or []
            for label, secret in secrets.items()
            if secret and "value" in entry and secret in str(entry["value"])]


def secret_key_refs(container: dict) -> dict[str, tuple[str, str]]:
    """env name -> (Secret, key) of a container's env entries that come from a secretKeyRef."""
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in container.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})}


def baseline_violations(objects: list[dict]) -> list[str]:
    """What Pod Security Admission `enforce: baseline` would refuse in the rendered workloads:
    host namespaces, hostPath volumes, host ports, privileged containers, added capabilities
    outside the baseline set, an Unconfined seccomp profile, a non-default procMount."""
    found = []
    for workload in workloads(objects):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        spec = pod_spec(workload)
        found += [f"{where}: {k}" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
        found += [f"{where}: hostPath volume {v['name']}" for v in spec.get("volumes") or [] if "hostPath" in v]
        if ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type") == "Unconfined":
            found.append(f"{where}: seccomp Unconfined")
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            ctx = c.get("securityContext") or {}
            path = f"{where}/{c['name']}"
            found += [f"{path}: hostPort {p['hostPort']}" for p in c.get("ports") or [] if p.get("hostPort")]
            if ctx.get("privileged"):
                found.append(f"{path}: privileged")
            added = set((ctx.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
            if added:
                found.append(f"{path}: adds capabilities {sorted(added)}")
            if (ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
                found.append(f"{path}: seccomp Unconfined")
            if ctx.get("procMount", "Default") != "Default":
                found.append(f"{path}: procMount {ctx['procMount']}")
    return found


def checkov_kubernetes(objects: list[dict], checkov: Path, config: Path,
                       timeout: float = 300.0) -> tuple[int, list[str]]:
    """checkov's kubernetes framework over the rendered objects: (checks passed, failures as
    `CHECK resource`). The objects go to a private temporary file; checkov reads only that."""
    with tempfile.TemporaryDirectory(prefix="chart-checkov-") as tmp:
        path = Path(tmp) / "rendered.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump_all(objects, fh, sort_keys=False)
        args = [str(checkov), "-f", str(path), "--framework", "kubernetes", "--config-file", str(config),
                "-o", "json"]
        try:
            with Stopwatch(f"checkov kubernetes over {len(objects)} rendered objects", logger=LOG):
                proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ChartError(f"checkov did not finish within {timeout:.0f} s") from exc
    try:
        reports = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ChartError(f"checkov exited {proc.returncode} without a JSON report: {proc.stderr.strip()[-2000:]}") from exc
    reports = reports if isinstance(reports, list) else [reports]
    failed = [f"{c['check_id']} {c['resource']}" for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    return sum(r.get("summary", {}).get("passed", 0) for r in reports), failed


def service_ports(objects: list[dict], name: str) -> list[int]:
    return [int(p["port"]) for p in get(objects, "Service", name)["spec"].get("ports") or []]


# --- resources --------------------------------------------------------------------------------

_BINARY = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10) ** 3,
            "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15,
            "E": Decimal(10) ** 18}


def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("250m", "1.5", "768Mi", "1e9", "8G") in base units."""
    text = str(value).strip()
    match = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]*)", text)
    if not match or match.group(2) not in {**_BINARY, **_DECIMAL}:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number, suffix = Decimal(match.group(1)), match.group(2)
    return number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


@dataclass(frozen=True)
class Requests:
    """CPU in millicores and memory in MiB: the units the capacity tests state their numbers in."""

    cpu_m: Decimal = Decimal(0)
    memory_mi: Decimal = Decimal(0)
    pods: int = 0

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.cpu_m + other.cpu_m, self.memory_mi + other.memory_mi, self.pods + other.pods)

    def __sub__(self, other: Requests) -> Requests:
        return Requests(self.cpu_m - other.cpu_m, self.memory_mi - other.memory_mi, self.pods - other.pods)

    def times(self, n: int) -> Requests:
        return Requests(self.cpu_m * n, self.memory_mi * n, self.pods * n)

    def fits_in(self, capacity: Requests) -> bool:
        return self.cpu_m <= capacity.cpu_m and self.memory_mi <= capacity.memory_mi and self.pods <= capacity.pods

    def __str__(self) -> str:
        return f"{self.cpu_m.normalize():f}m CPU, {self.memory_mi.normalize():f}Mi memory, {self.pods} pods"


def container_requests(container: dict) -> Requests:
    req = (container.get("resources") or {}).get("requests") or {}
    cpu = quantity(req["cpu"]) * 1000 if "cpu" in req else Decimal(0)
    mem = quantity(req["memory"]) / 2 ** 20 if "memory" in req else Decimal(0)
    return Requests(cpu, mem, 0)


def pod_requests(spec: dict) -> Requests:
    """What the scheduler reserves for one pod: the larger of the containers' sum and the largest
    init container (restartable init containers, i.e. sidecars, count in both)."""
    inits = spec.get("initContainers") or []
    sidecars = [c for c in inits if c.get("restartPolicy") == "Always"]
    sidecar_sum = sum((container_requests(c) for c in sidecars), Requests())
    main = sum((container_requests(c) for c in spec.get("containers") or []), Requests()) + sidecar_sum
    peak = main
    for c in inits:
        if c.get("restartPolicy") != "Always":
            one = container_requests(c) + sidecar_sum
            peak = Requests(max(peak.cpu_m, one.cpu_m), max(peak.memory_mi, one.memory_mi))
    return Requests(peak.cpu_m, peak.memory_mi, 1)


def workload_requests(objects: list[dict], nodes: int) -> dict[str, Requests]:
    """Requests of every workload times its pods (DaemonSets: one pod per node), by Kind/name."""
    out = {}
    for w in workloads(objects):
        count = nodes if w["kind"] == "DaemonSet" else replicas(w)
        out[f"{w['kind']}/{w['metadata']['name']}"] = pod_requests(pod_spec(w)).times(count)
    return out


def total_requests(objects: list[dict], nodes: int) -> Requests:
    return sum(workload_requests(objects, nodes).values(), Requests())


def containers_without_requests(objects: list[dict]) -> list[str]:
    """Container paths (incl. init containers) lacking a CPU or a memory request."""
    missing = []
    for w in workloads(objects):
        spec = pod_spec(w)
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            req = (c.get("resources") or {}).get("requests") or {}
            lacks = [r for r in ("cpu", "memory") if r not in req]
            if lacks:
                missing.append(f"{w['kind']}/{w['metadata']['name']}/{c['name']}: no {' or '.join(lacks)} request")
    return missing


def pods(objects: list[dict]) -> list[tuple[str, Requests]]:
    """One entry per pod the release runs (Deployments and StatefulSets), with its requests."""
    out = []
    for w in workloads(objects):
        if w["kind"] == "DaemonSet":
            continue
        for index in range(replicas(w)):
            out.append((f"{w['metadata']['name']}-{index}", pod_requests(pod_spec(w))))
    return out


def place(pods_to_place: list[tuple[str, Requests]], free: list[Requests]) -> dict[str, int] | None:
    """First-fit decreasing placement of pods onto nodes with the given free capacity.

    Returns pod -> node index, or None when some pod fits on no node. A heuristic: a None is
    conclusive only up to it, but a placement found is a real one.
    """
    remaining = list(free)
    placement: dict[str, int] = {}
    for name, req in sorted(pods_to_place, key=lambda p: (p[1].memory_mi, p[1].cpu_m), reverse=True):
        node = next((i for i, cap in enumerate(remaining) if req.fits_in(cap)), None)
        if node is None:
            return None
        remaining[node] = remaining[node] - req
        placement[name] = node
    return placement


# --- storage ----------------------------------------------------------------------------------

def pvc_templates(objects: list[dict]) -> dict[str, list[dict]]:
    """volumeClaimTemplates of every StatefulSet, by StatefulSet name."""
    return {s["metadata"]["name"]: list(s["spec"].get("volumeClaimTemplates") or [])
            for s in of_kind(objects, "StatefulSet")}


def gib(size: str) -> int:
    """A storage quantity in whole GiB, rounded up as the EBS CSI driver rounds a request."""
    return int((quantity(size) / 2 ** 30).to_integral_value(rounding=ROUND_CEILING))


def pvc_sizes(objects: list[dict]) -> dict[str, int]:
    """Every PVC the release creates, by the name Kubernetes gives it, in GiB (rounded up).

    StatefulSet claims are `<template>-<statefulset>-<ordinal>`; standalone PVCs keep their name.
    The chart tier holds the cost report's volume count (lfharness.stack.cost.chart_volumes) against this.
    """
    sizes = {}
    for sts in of_kind(objects, "StatefulSet"):
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            size = gib(template["spec"]["resources"]["requests"]["storage"])
            for ordinal in range(replicas(sts)):
                sizes[f"{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"] = size
    for pvc in of_kind(objects, "PersistentVolumeClaim"):
        sizes[pvc["metadata"]["name"]] = gib(pvc["spec"]["resources"]["requests"]["storage"])
    return sizes


# --- names other parts of the project use ------------------------------------------------------

_PORT_FORWARD = re.compile(r"port-forward\s+svc/([a-z0-9][a-z0-9-]*)\s+[^\n`'\"]*?\d+:(\d+)")
_GET_SECRET = re.compile(r"get\s+secret\s+([a-z0-9][a-z0-9-]*)\b[^\n]*?\{\.data\.([A-Za-z0-9_.-]+)\}")


def port_forward_targets(text: str) -> set[tuple[str, int]]:
    """(service, service port) of every `kubectl port-forward svc/<name> ... <local>:<port>` in a text."""
    return {(m.group(1), int(m.group(2))) for m in _PORT_FORWARD.finditer(text)}


def secret_keys_read(text: str) -> set[tuple[str, str]]:
    """(secret, key) of every `kubectl get secret <name> ... jsonpath='{.data.<key>}'` in a text."""
    return {(m.group(1), m.group(2)) for m in _GET_SECRET.finditer(text)}


def _constants(node: ast.Call) -> list[Any]:
    return [a.value for a in node.args if isinstance(a, ast.Constant)]


def python_port_forwards(path: Path) -> set[tuple[str, int]]:
    """(service, port) of every `<x>.port_forward(..., "<service>", <port>)` call in a Python file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "port_forward":
            consts = _constants(node)
            names = [c for c in consts if isinstance(c, str)]
            ports = [c for c in consts if isinstance(c, int) and not isinstance(c, bool)]
            if names and ports:
                found.add((names[-1], ports[-1]))
    return found


def python_secrets_read(path: Path) -> set[str]:
    """Secret names of every call passing kubectl's `"get", "secret", "<name>"` in a Python file
    (whatever the helper is called: kubectl(...), kube.run(...))."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            consts = _constants(node)
            for i, value in enumerate(consts[:-2]):
                if value == "get" and consts[i + 1] == "secret" and isinstance(consts[i + 2], str):
                    found.add(consts[i + 2])
    return found
