"""What goes into `helm template` and what comes out: the values documents (merged as helm merges
several `-f` files, written as 0600 files in a private folder, the secret strings they hold so
helm's errors can be masked, the Secrets they reference), a subchart's effective values, the
render itself parsed into objects, and checkov's kubernetes framework over those objects.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lfharness.core import redact
from lfharness.core.wait import Stopwatch
from lfharness.testing import toolchain
from lfharness.testing.chartrig.source import Chart, ChartError, ReleasePin, helm_bin, helm_env, release_pin

LOG = logging.getLogger("lfharness.testing.chartrig.render")

RENDER_TIMEOUT = 120.0

# Value keys (and env names) whose strings are secrets; helm may echo values in its errors.
_SECRET_KEY = re.compile(r"pass|secret|salt|token|key|url", re.IGNORECASE)

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


# --- the values -----------------------------------------------------------------------------

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


# --- helm template, and checkov over what it rendered ---------------------------------------

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


def by_identity(objects: list[dict]) -> dict[str, str]:
    """Each object as canonical JSON, keyed apiVersion/kind/namespace/name: two renders with equal
    maps produced the same objects with the same content."""
    return {"/".join((o.get("apiVersion", ""), o.get("kind", ""), o.get("metadata", {}).get("namespace", ""),
                      o.get("metadata", {}).get("name", ""))): json.dumps(o, sort_keys=True) for o in objects}


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
