"""kwok's configuration: the stages that move nodes and pods through their lives, the log files
kwok serves for `kubectl logs`, and where a `kubectl port-forward` lands.

The stages are YAML files under ``stages/`` (listed, in order, by its kustomization.yaml), read at
run time; ``${NAME}`` placeholders in them are filled from this module's constants, so a test and
the stage it drives name the same annotation or script ending. Each stage's rendered form is
committed under ``stages/testdata/<name>.output.yaml``: ``golden_differences`` compares the two
(tests/unit/test_kube_stages.py) and ``write_golden`` refreshes them after a deliberate change
(``python -m lfharness.testing.cluster golden``).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

STAGES_DIR = Path(__file__).resolve().parent / "stages"
GOLDEN_DIR = STAGES_DIR / "testdata"
GOLDEN_SUFFIX = ".output.yaml"

# A Job container whose `sh -c` script ends with this fails (exit code 1) under the pod-fail stage:
# kwok runs nothing, so the stand-in decides the outcome from the script.
FAILING_SCRIPT_SUFFIX = "exit 1"
RESTART_ANNOTATION = "lfharness.test/restart"  # "true": the container-restart stage restarts container 0
JOB_LOG_TEXT = "kwok stand-in log of the Job container (nothing ran)"
# A container named so gets its log from LocalCluster.write_scripted_log, which a test may call (kwok
# reads the file on each request): what a container "printed", e.g. a connection URL with a secret.
SCRIPTED_LOG_CONTAINER = "scripted-log"
POD_LOG_TEXT = "kwok stand-in log (no container runs under kwok)"
PREVIOUS_LOG_TEXT = "kwok stand-in log of the previous run (the container restarted by the stage)"

# What the stage files may name as ${NAME}; any other ${...} is a mistake, not left as it is.
PLACEHOLDERS: Mapping[str, str] = {"FAILING_SCRIPT_SUFFIX": FAILING_SCRIPT_SUFFIX,
                                   "RESTART_ANNOTATION": RESTART_ANNOTATION}
# `$now`, `$i` of the Go templates have no braces, so they never look like a placeholder.
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class StageError(ValueError):
    """A stage file that cannot be read as a kwok Stage; the message names the file."""


# --- the stages -------------------------------------------------------------------------------

def stage_files(folder: Path = STAGES_DIR) -> list[Path]:
    """The stage files in the order the folder's kustomization.yaml lists them."""
    index = folder / "kustomization.yaml"
    listed = (yaml.safe_load(index.read_text()) or {}).get("resources") or []
    if not listed:
        raise StageError(f"{index} lists no stage under resources")
    return [folder / name for name in listed]


def _fill(node: Any, where: Path) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, where) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, where) for value in node]
    if isinstance(node, str):
        def sub(match: re.Match[str]) -> str:
            if match.group(1) not in PLACEHOLDERS:
                raise StageError(f"{where}: unknown placeholder {match.group(0)} (known: {sorted(PLACEHOLDERS)})")
            return PLACEHOLDERS[match.group(1)]
        return _PLACEHOLDER.sub(sub, node)
    return node


def render_stage(path: Path) -> dict:
    """One stage file as kwok receives it: parsed, its placeholders filled. The file is named after
    the stage, so an expected file and a log line lead back to it."""
    stage = _fill(yaml.safe_load(path.read_text()), path)
    if not isinstance(stage, dict) or stage.get("kind") != "Stage":
        raise StageError(f"{path}: not a kwok Stage")
    if stage.get("metadata", {}).get("name") != path.stem:
        raise StageError(f"{path}: names the stage {stage.get('metadata', {}).get('name')!r}, not {path.stem!r}")
    return stage


def stages(folder: Path = STAGES_DIR) -> list[dict]:
    """The lifecycle kwok gives nodes and pods here (kwok itself has none built in)."""
    return [render_stage(path) for path in stage_files(folder)]


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the status templates) as `|` blocks: an expected file reads like the stage."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_BlockDumper.add_representer(str, _str)


def dump_stage(stage: dict) -> str:
    """A rendered stage in the expected files' form."""
    return yaml.dump(stage, Dumper=_BlockDumper, sort_keys=False, width=1000)


def golden_differences(folder: Path = STAGES_DIR, golden: Path = GOLDEN_DIR) -> dict[str, str]:
    """Stage name -> what differs between its rendered form and its expected file (a unified diff,
    or a note for a stage without expected file and an expected file without stage); empty when
    every stage renders as committed. Compared as data, so the YAML's layout alone never counts."""
    found: dict[str, str] = {}
    rendered = {path.stem: render_stage(path) for path in stage_files(folder)}
    for name, stage in rendered.items():
        expected_file = golden / f"{name}{GOLDEN_SUFFIX}"
        if not expected_file.is_file():
            found[name] = f"no expected file {expected_file}"
            continue
        expected = yaml.safe_load(expected_file.read_text())
        if expected != stage:
            found[name] = "".join(difflib.unified_diff(
                dump_stage(expected).splitlines(keepends=True), dump_stage(stage).splitlines(keepends=True),
                fromfile=str(expected_file), tofile=f"{folder / name}.yaml (rendered)"))
    for orphan in sorted(golden.glob(f"*{GOLDEN_SUFFIX}")):
        name = orphan.name.removesuffix(GOLDEN_SUFFIX)
        if name not in rendered:
            found[name] = f"{orphan} expects a stage {folder} does not list"
    return found


def write_golden(folder: Path = STAGES_DIR, golden: Path = GOLDEN_DIR) -> list[Path]:
    """The expected files rewritten from the stages as they render now (after a deliberate change)."""
    golden.mkdir(parents=True, exist_ok=True)
    written = []
    for stage in stages(folder):
        path = golden / f"{stage['metadata']['name']}{GOLDEN_SUFFIX}"
        path.write_text(dump_stage(stage))
        written.append(path)
    return written


# --- logs and port-forwards -------------------------------------------------------------------

def write_cri_log(path: Path, text: str) -> Path:
    """kwok serves log files in the CRI format the kubelet reads (time stream tag message)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path.write_text("".join(f"{stamp} stdout F {line}\n" for line in text.splitlines()))
    return path


@dataclass(frozen=True)
class Forwards:
    """Container port -> local address that `kubectl port-forward` to that port reaches."""

    targets: Mapping[int, tuple[str, int]]


def kwok_config(forwards: Forwards, logs_dir: Path) -> list[dict]:
    """kwok's --config documents: the stages, the port-forwards to local stand-ins, the log files."""
    pod_log = write_cri_log(logs_dir / "pod.log", POD_LOG_TEXT)
    job_log = write_cri_log(logs_dir / "job.log", JOB_LOG_TEXT)
    previous = write_cri_log(logs_dir / "previous.log", PREVIOUS_LOG_TEXT)
    docs = stages()
    docs.append({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterPortForward",
                 "metadata": {"name": "local-stand-ins"}, "spec": {"forwards": [
                     {"ports": [port], "target": {"address": host, "port": local}}
                     for port, (host, local) in sorted(forwards.targets.items())]}})
    docs.append({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs", "metadata": {"name": "stand-in-logs"},
                 "spec": {"logs": [{"containers": ["check"], "logsFile": str(job_log)},
                                   {"containers": [SCRIPTED_LOG_CONTAINER],
                                    "logsFile": str(write_cri_log(logs_dir / "scripted.log", "(nothing yet)"))},
                                   {"logsFile": str(pod_log), "previousLogsFile": str(previous)}]}})
    return docs
