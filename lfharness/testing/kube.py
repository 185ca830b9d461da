"""A real Kubernetes 1.35 control plane on loopback, with kwok standing in for the kubelets.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real programs, built from
the Go module proxy (``python -m lfharness.testing.kube build``; ``LFK8S_KUBE=1 bash setup.sh``).
kwok (a kubelet simulator) plays two nodes shaped like 01-network's t3.medium nodes: it moves pods
through the stages this module writes (no container ever runs) and answers the kubelet API for
logs and port-forwards. What is a stand-in here, by name:

- the kubelets and containers: kwok and its stages (pods become Ready without running anything);
- the EBS CSI driver: ``PvStandIn``, a loop that binds a PV to each claim of the default class;
- what a port-forward reaches: local programs on loopback (``Forwards``), not a container;
- the EKS addon pods: placeholder images with the real addons' requests (they never run).

One ``LocalCluster`` per pytest session: fresh etcd in a temporary folder, free loopback ports,
throwaway CA, service-account key and admin token, every process stopped by its PID on exit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests
import yaml

from lfharness.core import procs, redact
from lfharness.core.procs import free_port
from lfharness.core.wait import Stopwatch, WaitTimeout, retry
from lfharness.testing import localca
from lfharness.testing.toolchain import cache_dir

LOG = logging.getLogger("lfharness.testing.kube")

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


# --- the nodes: 01-network's node group, 2x t3.medium on AL2023 -----------------------------
# t3.medium: 2 vCPU, 4 GiB (EC2 instance types). Kubelet reservations from nodeadm
# (awslabs/amazon-eks-ami, nodeadm/internal/kubelet/config.go): kube-reserved cpu 6% of the first
# core + 1% of the second = 70m; memory 11 MiB x max-pods + 255 MiB = 442 MiB; ephemeral-storage
# 1 GiB; evictionHard memory.available 100 MiB, nodefs.available 10%. max-pods 17
# (nodeadm eni-max-pods.txt: 3 ENIs x (6 - 1) + 2). Root volume 20 GiB (the EKS managed node
# group's default disk size; 01-network sets none). The same figures as the chart tier
# (tests/unit/test_chart.py); the kubelet counts MemTotal, a little under 4 GiB, so real nodes
# have slightly less memory than this.
NODE_CAPACITY = {"cpu": "2", "memory": "4096Mi", "pods": "17", "ephemeral-storage": "20Gi"}
NODE_ALLOCATABLE = {"cpu": "1930m", "memory": f"{4096 - (11 * 17 + 255) - 100}Mi", "pods": "17",
                    "ephemeral-storage": f"{20 * 1024 - 1024 - 2048}Mi"}
NODES = (("ip-10-0-1-10.ec2.internal", "us-east-1a", "10.0.1.0/24"),
         ("ip-10-0-2-10.ec2.internal", "us-east-1b", "10.0.2.0/24"))
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")

# --- the EKS addon pods those nodes carry, with their real requests (test_chart.py cites them) --
# aws-node: aws-node 25m + aws-eks-nodeagent 25m, no memory (amazon-vpc-cni-k8s aws-k8s-cni.yaml);
# kube-proxy: 100m, no memory; ebs-csi-node: 3 containers at 10m/40Mi (aws-ebs-csi-driver chart);
# coredns: 2 x 100m/70Mi (eksctl coredns-1.35.json); ebs-csi-controller: 2 x 6 containers at 10m/40Mi.
ADDON_DAEMONSETS: dict[str, list[tuple[str, str, str | None]]] = {
    "aws-node": [("aws-node", "25m", None), ("aws-eks-nodeagent", "25m", None)],
    "kube-proxy": [("kube-proxy", "100m", None)],
    "ebs-csi-node": [(c, "10m", "40Mi") for c in ("ebs-plugin", "node-driver-registrar", "liveness-probe")],
}
ADDON_DEPLOYMENTS: dict[str, tuple[int, list[tuple[str, str, str | None]]]] = {
    "coredns": (2, [("coredns", "100m", "70Mi")]),
    "ebs-csi-controller": (2, [(c, "10m", "40Mi") for c in ("ebs-plugin", "csi-provisioner", "csi-attacher",
                                                              "csi-snapshotter", "csi-resizer", "liveness-probe")]),
}
ADDON_IMAGE = "stand-in.invalid/eks-addon:never-pulled"  # kwok never pulls; the name says so

# The aws-ebs-csi-driver addon's default class (01-network eks.tf: defaultStorageClass.enabled).
STORAGE_CLASS = "ebs-csi-default-sc"
EBS_PROVISIONER = "ebs.csi.aws.com"

# A Job container whose `sh -c` script ends with this fails (exit code 1) under the pod-fail stage:
# kwok runs nothing, so the stand-in decides the outcome from the script.
FAILING_SCRIPT_SUFFIX = "exit 1"
RESTART_ANNOTATION = "lfharness.test/restart"  # "true": the container-restart stage restarts container 0
JOB_LOG_TEXT = "kwok stand-in log of the Job container (nothing ran)"
# A container named so gets its log from LocalCluster.scripted_log, which a test may write (kwok
# reads the file on each request): what a container "printed", e.g. a connection URL with a secret.
SCRIPTED_LOG_CONTAINER = "scripted-log"
POD_LOG_TEXT = "kwok stand-in log (no container runs under kwok)"
PREVIOUS_LOG_TEXT = "kwok stand-in log of the previous run (the container restarted by the stage)"


def _resources(cpu: str, memory: str | None) -> dict:
    requests_ = {"cpu": cpu, **({"memory": memory} if memory else {})}
    return {"requests": requests_}


def _addon_pod_spec(name: str, containers: list[tuple[str, str, str | None]], *, daemon: bool) -> dict:
    spec: dict[str, Any] = {
        "containers": [{"name": c, "image": ADDON_IMAGE, "resources": _resources(cpu, mem)} for c, cpu, mem in containers],
        "priorityClassName": "system-node-critical" if daemon else "system-cluster-critical",
        "tolerations": [{"operator": "Exists"}] if daemon else [],
        # The real controllers use their own service accounts; default keeps this free of RBAC.
        "automountServiceAccountToken": False,
    }
    if name in ("aws-node", "kube-proxy"):
        spec["hostNetwork"] = True
    return spec


def addon_manifests() -> list[dict]:
    """DaemonSets and Deployments in kube-system with the addons' names and requests."""
    objects = []
    for name, containers in ADDON_DAEMONSETS.items():
        labels = {"k8s-app": name}
        objects.append({"apiVersion": "apps/v1", "kind": "DaemonSet",
                        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
                        "spec": {"selector": {"matchLabels": labels}, "template": {
                            "metadata": {"labels": labels}, "spec": _addon_pod_spec(name, containers, daemon=True)}}})
    for name, (replicas, containers) in ADDON_DEPLOYMENTS.items():
        labels = {"k8s-app": name}
        objects.append({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
                        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
                            "metadata": {"labels": labels}, "spec": _addon_pod_spec(name, containers, daemon=False)}}})
    return objects


def node_manifests() -> list[dict]:
    objects = []
    for name, zone, cidr in NODES:
        objects.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": dict([KWOK_NODE_ANNOTATION]), "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "t3.medium", "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "us-east-1", "eks.amazonaws.com/nodegroup": "default",
                "eks.amazonaws.com/capacityType": "ON_DEMAND", "type": "kwok"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "providerID": f"kwok://{name}"},
            "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_ALLOCATABLE},
        })
    return objects


def storage_class_manifest() -> dict:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": EBS_PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete", "allowVolumeExpansion": True}


# --- kwok's configuration: the stages (written here, not copied), port-forwards, logs --------

def _stage(name: str, kind: str, selector: list[dict], template: str | None, *, delay_ms: int = 0,
           delete: bool = False) -> dict:
    nxt: dict[str, Any] = {"delete": True} if delete else {"statusTemplate": template}
    spec: dict[str, Any] = {"resourceRef": {"apiGroup": "v1", "kind": kind},
                            "selector": {"matchExpressions": selector}, "next": nxt}
    if delay_ms:
        spec["delay"] = {"durationMilliseconds": delay_ms}
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def _expr(key: str, op: str, *values: str) -> dict:
    return {"key": key, "operator": op, **({"values": list(values)} if values else {})}


_NODE_STATUS = """{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
- address: {{ NodeIP | Quote }}
  type: InternalIP
- address: {{ NodeName | Quote }}
  type: Hostname
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ NodePort }}
allocatable:
{{ YAML .status.allocatable 1 }}
capacity:
{{ YAML .status.capacity 1 }}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
  kernelVersion: ""
  kubeProxyVersion: ""
  osImage: "kwok stand-in for Amazon Linux 2023"
  machineID: ""
  systemUUID: ""
  bootID: ""
phase: Running
"""

_POD_RUNNING = """{{ $now := Now }}
conditions:
- {type: PodReadyToStartContainers, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
{{ with .spec.initContainers }}
initContainerStatuses:
{{ range . }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  restartCount: 0
  state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}
{{ end }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  started: true
  restartCount: 0
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""

_POD_FINISHED = """{{ $now := Now }}
conditions:
- {type: Ready, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 0
  state: {terminated: {exitCode: EXIT, reason: REASON, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}
{{ end }}
phase: PHASE
"""

_POD_RESTARTED = """{{ $now := Now }}
containerStatuses:
{{ range $i, $c := .spec.containers }}
- name: {{ $c.name | Quote }}
  image: {{ $c.image | Quote }}
  ready: true
  started: true
{{ if eq $i 0 }}
  restartCount: 1
  lastState: {terminated: {exitCode: 137, reason: OOMKilled, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}
{{ else }}
  restartCount: 0
{{ end }}
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ end }}
"""


def stages() -> list[dict]:
    """The lifecycle kwok gives nodes and pods here (kwok itself has none built in)."""
    live = _expr(".metadata.deletionTimestamp", "DoesNotExist")
    of_job = _expr(".metadata.ownerReferences.[].kind", "In", "Job")
    fails = f'(.spec.containers.[0].command.[2] // "") | endswith("{FAILING_SCRIPT_SUFFIX}")'
    running = _expr(".status.phase", "In", "Running")
    return [
        _stage("node-initialize", "Node",
               [_expr('.status.conditions.[] | select( .type == "Ready" ) | .status', "NotIn", "True")], _NODE_STATUS),
        _stage("node-heartbeat-with-lease", "Node",
               [_expr(".status.phase", "In", "Running"),
                _expr('.status.conditions.[] | select( .type == "Ready" ) | .status', "In", "True")],
               _NODE_STATUS, delay_ms=60_000),
        _stage("pod-ready", "Pod", [live, _expr(".status.phase", "In", "Pending"),
                                    _expr(".status.containerStatuses.[].state.running.startedAt", "DoesNotExist")],
               _POD_RUNNING, delay_ms=200),
        _stage("pod-complete", "Pod", [live, running, of_job, _expr(fails, "NotIn", "true")],
               _POD_FINISHED.replace("EXIT", "0").replace("REASON", "Completed").replace("PHASE", "Succeeded"),
               delay_ms=500),
        _stage("pod-fail", "Pod", [live, running, of_job, _expr(fails, "In", "true")],
               _POD_FINISHED.replace("EXIT", "1").replace("REASON", "Error").replace("PHASE", "Failed"),
               delay_ms=500),
        _stage("container-restart", "Pod",
               [live, running, _expr(f'.metadata.annotations["{RESTART_ANNOTATION}"]', "In", "true"),
                _expr(".status.containerStatuses.[0].lastState.terminated", "DoesNotExist")], _POD_RESTARTED),
        _stage("pod-delete", "Pod", [_expr(".metadata.deletionTimestamp", "Exists"),
                                     _expr(".metadata.finalizers", "DoesNotExist")], None, delete=True),
    ]


def _cri_log(path: Path, text: str) -> Path:
    """kwok serves log files in the CRI format the kubelet reads (time stream tag message)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path.write_text("".join(f"{stamp} stdout F {line}\n" for line in text.splitlines()))
    return path


@dataclass(frozen=True)
class Forwards:
    """Container port -> local address that `kubectl port-forward` to that port reaches."""

    targets: Mapping[int, tuple[str, int]]


def kwok_config(forwards: Forwards, logs_dir: Path) -> list[dict]:
    pod_log = _cri_log(logs_dir / "pod.log", POD_LOG_TEXT)
    job_log = _cri_log(logs_dir / "job.log", JOB_LOG_TEXT)
    previous = _cri_log(logs_dir / "previous.log", PREVIOUS_LOG_TEXT)
    docs = stages()
    docs.append({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterPortForward",
                 "metadata": {"name": "local-stand-ins"}, "spec": {"forwards": [
                     {"ports": [port], "target": {"address": host, "port": local}}
                     for port, (host, local) in sorted(forwards.targets.items())]}})
    docs.append({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs", "metadata": {"name": "stand-in-logs"},
                 "spec": {"logs": [{"containers": ["check"], "logsFile": str(job_log)},
                                   {"containers": [SCRIPTED_LOG_CONTAINER],
                                    "logsFile": str(_cri_log(logs_dir / "scripted.log", "(nothing yet)"))},
                                   {"logsFile": str(pod_log), "previousLogsFile": str(previous)}]}})
    return docs


# --- local stand-ins behind the port-forwards ------------------------------------------------

class _PingHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        pass

    def do_GET(self) -> None:  # http.server dispatches on do_<METHOD>
        body, status = (b"Ok.\n", 200) if self.path.split("?")[0] == "/ping" else (b"not found\n", 404)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ClickHousePing:
    """ClickHouse's HTTP /ping answer ("Ok.") on 127.0.0.1:<free port>: the stand-in for port 8123."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _PingHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="clickhouse-ping", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- the EBS CSI driver's stand-in -----------------------------------------------------------

class PvStandIn:
    """Stand-in for the EBS CSI driver: a PV for each pending claim of a class it provisions once the
    scheduler picked its node (WaitForFirstConsumer), and deletion of Released PVs (reclaim
    Delete), as the driver's provisioner would create and delete EBS volumes."""

    def __init__(self, api_client: Any, interval: float = 0.5) -> None:
        from kubernetes import client  # noqa: PLC0415

        self._core = client.CoreV1Api(api_client)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pv-stand-in", daemon=True)
        self.created: list[str] = []
        self.deleted: list[str] = []

    def _pv(self, pvc: Any) -> dict:
        node = pvc.metadata.annotations["volume.kubernetes.io/selected-node"]
        return {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"pvc-{pvc.metadata.uid}",
                             "annotations": {"pv.kubernetes.io/provisioned-by": EBS_PROVISIONER}},
                "spec": {"capacity": {"storage": pvc.spec.resources.requests["storage"]},
                         "accessModes": pvc.spec.access_modes,
                         "storageClassName": pvc.spec.storage_class_name or STORAGE_CLASS,
                         "persistentVolumeReclaimPolicy": "Delete", "volumeMode": pvc.spec.volume_mode or "Filesystem",
                         "hostPath": {"path": f"/stand-in/ebs/{pvc.metadata.uid}"},
                         "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": pvc.metadata.name,
                                      "namespace": pvc.metadata.namespace, "uid": pvc.metadata.uid},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}

    def _once(self) -> None:
        from kubernetes import client  # noqa: PLC0415
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        ebs = {c.metadata.name for c in client.StorageV1Api(self._core.api_client).list_storage_class().items
               if c.provisioner == EBS_PROVISIONER}
        for pvc in self._core.list_persistent_volume_claim_for_all_namespaces().items:
            annotations = pvc.metadata.annotations or {}
            if (pvc.status.phase == "Pending" and (pvc.spec.storage_class_name or STORAGE_CLASS) in ebs
                    and "volume.kubernetes.io/selected-node" in annotations and not pvc.spec.volume_name):
                try:
                    self._core.create_persistent_volume(self._pv(pvc))
                    self.created.append(f"{pvc.metadata.namespace}/{pvc.metadata.name}")
                except ApiException as exc:
                    if exc.status != 409:  # 409: made on an earlier pass, the PV controller binds it
                        raise
        for pv in self._core.list_persistent_volume().items:
            if pv.status.phase in ("Released", "Failed") and pv.spec.persistent_volume_reclaim_policy == "Delete":
                try:
                    self._core.delete_persistent_volume(pv.metadata.name)
                    self.deleted.append(pv.metadata.name)
                except ApiException as exc:
                    if exc.status != 404:
                        raise

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._once()
            except Exception as exc:  # noqa: BLE001 (an API hiccup must not end the stand-in; next pass retries)
                LOG.warning("PV stand-in pass failed: %s", exc)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# --- the cluster -----------------------------------------------------------------------------

def _import_client() -> None:
    import kubernetes.client  # noqa: F401, PLC0415
    import kubernetes.config  # noqa: F401, PLC0415
    import kubernetes.utils  # noqa: F401, PLC0415


class ClusterFailed(RuntimeError):
    """A control-plane process exited or never became ready; carries its log's tail."""


@dataclass
class _Process:
    name: str
    proc: subprocess.Popen
    log: Path


@dataclass
class LocalCluster:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on loopback.

    Use as a context manager; `kubeconfig` is an admin kubeconfig (static token, system:masters)
    that kubectl, helm and the kubernetes client all accept. `forwards` maps container ports to
    local addresses for port-forwards (kwok's ClusterPortForward).
    """

    workdir: Path
    forwards: Forwards = field(default_factory=lambda: Forwards({}))
    binaries: Path = field(default_factory=bin_dir)
    timeout: float = 60.0
    started_in: float = 0.0
    _procs: list[_Process] = field(default_factory=list)
    _pv: PvStandIn | None = None
    _api_client: Any = None

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def write_scripted_log(self, text: str) -> None:
        """What containers named SCRIPTED_LOG_CONTAINER log from now on (CRI format, as kwok reads it)."""
        _cri_log(self.workdir / "logs" / "scripted.log", text)

    @property
    def pids(self) -> dict[str, int]:
        return {p.name: p.proc.pid for p in self._procs}

    def api_client(self) -> Any:
        """A kubernetes ApiClient on the admin kubeconfig (one per cluster)."""
        if self._api_client is None:
            from kubernetes import config  # noqa: PLC0415

            self._api_client = config.new_client_from_config(str(self.kubeconfig))
        return self._api_client

    @property
    def pv_stand_in(self) -> PvStandIn:
        assert self._pv is not None, "LocalCluster is not started"
        return self._pv

    def _start(self, name: str, argv: list[str]) -> None:
        log = self.workdir / "logs" / f"{name}.log"
        with log.open("w") as out:
            # Its own session: a Ctrl-C in the terminal reaches pytest, whose teardown stops these by
            # PID. Tied to the harness with SIGKILL: a throwaway cluster has nothing to save, and an
            # API server whose etcd gets SIGTERM at the same moment takes ~40 s to give up.
            proc = procs.popen_tied(argv, death_signal=signal.SIGKILL, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs.append(_Process(name, proc, log))
        LOG.info("started %s (pid %d), log %s", name, proc.pid, log)

    def _check_alive(self) -> None:
        for p in self._procs:
            if p.proc.poll() is not None:
                tail = "\n".join(p.log.read_text(errors="replace").splitlines()[-20:])
                raise ClusterFailed(f"{p.name} exited {p.proc.returncode}; log {p.log}:\n{tail}")

    def _write_credentials(self) -> tuple[localca.CaFiles, str, Path]:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

        pki = self.workdir / "pki"
        ca = localca.make_ca(pki)  # serving cert for 127.0.0.1: the API server's and kwok's
        sa_key = ec.generate_private_key(ec.SECP256R1())
        key_file = pki / "sa.key"
        key_file.touch(mode=0o600)
        key_file.write_bytes(sa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
        (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        token = os.urandom(24).hex()
        tokens = pki / "tokens.csv"
        tokens.touch(mode=0o600)
        tokens.write_text(f'{token},admin,admin-uid,"system:masters"\n')
        return ca, token, tokens

    def _write_kubeconfig(self, server: str, ca: Path, token: str) -> None:
        import base64  # noqa: PLC0415

        config = {"apiVersion": "v1", "kind": "Config", "current-context": "local",
                  "clusters": [{"name": "local", "cluster": {
                      "server": server, "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode()}}],
                  "users": [{"name": "admin", "user": {"token": token}}],
                  "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}]}
        self.kubeconfig.touch(mode=0o600)
        self.kubeconfig.write_text(json.dumps(config))

    def _wait_ready(self, url: str, ca: Path, token: str) -> None:
        def ready() -> bool:
            self._check_alive()
            return requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=str(ca),
                                timeout=2).status_code == 200
        retry(ready, timeout=self.timeout, interval=0.1, what=f"{url} 200",
              retry_on=(requests.RequestException,), validator=bool)

    def __enter__(self) -> Self:
        missing = [b for b in BINARIES if not (self.binaries / b).is_file()]
        if missing:
            raise ClusterFailed(f"missing binaries in {self.binaries}: {', '.join(missing)} (build: {SWITCH_HINT})")
        started = time.monotonic()
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            try:
                self._boot()
                break
            except ClusterFailed as exc:
                self._stop_all()
                # A free port taken by another program between choosing and binding it: once more.
                if attempt == 2 or "address already in use" not in str(exc):
                    raise
                LOG.warning("a port was taken before the cluster bound it; starting again: %s", str(exc)[-200:])
            except BaseException:
                self._stop_all()
                raise
        self.started_in = round(time.monotonic() - started, 1)
        LOG.info("local cluster up in %.1fs (pids %s)", self.started_in, self.pids)
        return self

    def _boot(self) -> None:
        b = self.binaries
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)  # a second attempt starts from nothing too
        ca, token, tokens = self._write_credentials()
        pki = ca.ca.parent
        etcd_port, peer_port, api_port = (free_port() for _ in range(3))
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._start("etcd", [str(b / "etcd"), "--data-dir", str(self.workdir / "etcd"), "--name", "local",
                             "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                             "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-cluster", f"local=http://127.0.0.1:{peer_port}",
                             # A throwaway store: fsync would only slow the tests down.
                             "--unsafe-no-fsync", "--log-level", "warn"])
        server = f"https://127.0.0.1:{api_port}"
        self._start("kube-apiserver", [
            str(b / "kube-apiserver"), "--etcd-servers", etcd_url, "--bind-address", "127.0.0.1",
            "--advertise-address", "127.0.0.1", "--secure-port", str(api_port),
            "--tls-cert-file", str(ca.cert), "--tls-private-key-file", str(ca.key),
            "--token-auth-file", str(tokens), "--authorization-mode", "Node,RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            # EKS's default service range (kubernetes_network_config unset in 01-network).
            "--service-cluster-ip-range", "172.20.0.0/16",
            "--kubelet-certificate-authority", str(ca.ca), "--kubelet-preferred-address-types", "InternalIP",
            "--allow-privileged=true", "--profiling=false", "--v=1"])
        self._write_kubeconfig(server, ca.ca, token)
        # The client's import takes seconds on a busy machine: done while the API server boots.
        importer = threading.Thread(target=_import_client, name="import-kubernetes", daemon=True)
        importer.start()
        kubeconfig = str(self.kubeconfig)
        self._start("kube-controller-manager", [
            str(b / "kube-controller-manager"), "--kubeconfig", kubeconfig, "--leader-elect=false",
            "--secure-port=0", "--root-ca-file", str(ca.ca), "--use-service-account-credentials=false",
            "--service-account-private-key-file", str(pki / "sa.key"), "--cluster-name", "langfuse",
            "--profiling=false", "--v=1"])
        self._start("kube-scheduler", [
            str(b / "kube-scheduler"), "--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port=0",
            # The PV stand-in binds claims a moment after the scheduler first tried a pod; without
            # this the scheduler retries such a pod only after 5 minutes.
            "--pod-max-in-unschedulable-pods-duration=10s", "--profiling=false", "--v=1"])
        # The controller manager and scheduler wait for the API server themselves; kwok needs it up.
        self._wait_ready(f"{server}/readyz", ca.ca, token)
        importer.join()
        kwok_port = free_port()  # chosen just before use: other programs on this machine take ports too
        config = self.workdir / "kwok.yaml"
        config.write_text(yaml.safe_dump_all(kwok_config(self.forwards, self.workdir / "logs"), sort_keys=False))
        self._start("kwok", [
            str(b / "kwok"), "--kubeconfig", kubeconfig, "--config", str(config),
            "--manage-nodes-with-annotation-selector", "=".join(KWOK_NODE_ANNOTATION),
            "--node-ip", "127.0.0.1", "--node-port", str(kwok_port), "--server-address", f"127.0.0.1:{kwok_port}",
            "--tls-cert-file", str(ca.cert), "--tls-private-key-file", str(ca.key), "--node-lease-duration-seconds", "40"])
        self._bootstrap()

    def _bootstrap(self) -> None:
        from kubernetes import client, utils  # noqa: PLC0415

        api = self.api_client()
        core = client.CoreV1Api(api)
        for node in node_manifests():
            core.create_node(node)
        utils.create_from_dict(api, storage_class_manifest())
        self._pv = PvStandIn(api).__enter__()

        def default_sa() -> bool:
            self._check_alive()
            return core.read_namespaced_service_account("default", "kube-system") is not None
        retry(default_sa, timeout=self.timeout, interval=0.2, what="service account kube-system/default",
              retry_on=(client.exceptions.ApiException,))
        for obj in addon_manifests():
            utils.create_from_dict(api, obj)

        def nodes_ready() -> bool:
            self._check_alive()
            return all(any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
                       for n in core.list_node().items)
        retry(nodes_ready, timeout=self.timeout, interval=0.2, what="both nodes Ready", validator=bool)

    def wait_addons_ready(self, timeout: float = 60) -> list[Any]:
        """The addon pods all Running and Ready on the nodes (kube-system)."""
        from kubernetes import client  # noqa: PLC0415

        core = client.CoreV1Api(self.api_client())
        wanted = len(NODES) * len(ADDON_DAEMONSETS) + sum(r for r, _ in ADDON_DEPLOYMENTS.values())

        def pods() -> list[Any]:
            self._check_alive()
            return core.list_namespaced_pod("kube-system").items

        def ready(items: list[Any]) -> bool:
            return len(items) == wanted and all(
                p.status.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                                    for c in p.status.conditions or []) for p in items)
        return retry(pods, timeout=timeout, interval=0.2, what=f"{wanted} addon pods Ready", validator=ready)

    def _stop_all(self) -> None:
        if self._pv is not None:
            self._pv.__exit__(None, None, None)
            self._pv = None
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None
        # One at a time, clients first and etcd last: an API server whose etcd is gone waits out
        # its graceful termination instead of exiting.
        for p in reversed(self._procs):
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
            try:
                p.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                LOG.warning("%s (pid %d) ignored SIGTERM for 10s; killing it", p.name, p.proc.pid)
                p.proc.kill()
                p.proc.wait(timeout=10)
        self._procs.clear()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop_all()
        LOG.info("local cluster stopped")


# --- the cluster with its port-forward stand-ins ----------------------------------------------

LANGFUSE_WEB_PORT, REDIS_PORT, CLICKHOUSE_HTTP_PORT = 3000, 6379, 8123


@dataclass
class LocalKube:
    """A LocalCluster whose port-forwards reach local stand-ins: the Langfuse API stand-in
    (langfuse_fake) for container port 3000, Debian's redis-server for 6379 and a ClickHouse
    /ping answer for 8123. `redis.password` starts random; `use_redis_password` sets the one the
    release's Secret holds (CONFIG SET requirepass), as the chart's Valkey would have it."""

    workdir: Path
    cluster: LocalCluster | None = None
    langfuse: Any = None
    redis: Any = None
    clickhouse: ClickHousePing | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Self:
        import secrets  # noqa: PLC0415

        from lfharness.testing import langfuse_fake, localsvc  # noqa: PLC0415

        try:
            self.langfuse = self._stack.enter_context(
                langfuse_fake.LangfuseFake("pk-lf-kube-stand-in", "sk-lf-" + secrets.token_hex(8)))
            self.redis = self._stack.enter_context(localsvc.LocalRedis(self.workdir / "redis", secrets.token_hex(12)))
            self.clickhouse = self._stack.enter_context(ClickHousePing())
            langfuse_port = int(self.langfuse.base_url.rsplit(":", 1)[1])
            forwards = Forwards({LANGFUSE_WEB_PORT: ("127.0.0.1", langfuse_port),
                                 REDIS_PORT: ("127.0.0.1", self.redis.port),
                                 CLICKHOUSE_HTTP_PORT: ("127.0.0.1", self.clickhouse.port)})
            self.cluster = self._stack.enter_context(LocalCluster(self.workdir / "cluster", forwards))
        except BaseException:
            self._stack.close()
            raise
        return self

    def use_redis_password(self, password: str) -> None:
        import redis  # noqa: PLC0415

        with redis.Redis(host="127.0.0.1", port=self.redis.port, password=self.redis.password,
                         socket_timeout=5) as client:
            client.config_set("requirepass", password)
        self.redis.password = password

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


# --- the release: 03-app's planned values, helm against the local cluster ---------------------

@dataclass(frozen=True)
class PlannedRelease:
    """What 03-app's plan would give Helm: the values documents, and the objects 03-app creates
    itself that the values reference (kubernetes_secret_v1, kubernetes_storage_class_v1), as
    manifests to apply first."""

    values: list[str]
    secrets: list[dict]
    namespace: str = "langfuse"
    name: str = "langfuse"
    storage_classes: tuple[dict, ...] = ()

    def redis_secret(self) -> tuple[str, str]:
        """The Secret and key the Redis password lives in: the one the values name
        (redis.auth.existingSecret, 03-app's own Secret) or the chart's langfuse-redis."""
        from lfharness.testing import chart  # noqa: PLC0415

        auth = chart.merged_values(self.values).get("redis", {}).get("auth", {})
        if auth.get("existingSecret"):
            return str(auth["existingSecret"]), str(auth.get("existingSecretPasswordKey") or "valkey-password")
        return f"{self.name}-redis", "valkey-password"

    def redis_password(self) -> str:
        """The password the values give the chart's Valkey: inline, or from the planned Secret they name."""
        from lfharness.testing import chart  # noqa: PLC0415

        auth = chart.merged_values(self.values).get("redis", {}).get("auth", {})
        if auth.get("password"):
            return str(auth["password"])
        name, key = self.redis_secret()
        for manifest in self.secrets:
            if manifest["metadata"]["name"] == name and key in manifest.get("stringData", {}):
                return str(manifest["stringData"][key])
        raise KeyError(f"no Redis password in the values (redis.auth.password) or in a planned Secret {name!r}/{key!r}")

    def secret_strings(self) -> set[str]:
        found: set[str] = set()
        for manifest in self.secrets:
            found |= {v for v in manifest.get("stringData", {}).values() if isinstance(v, str) and len(v) >= 6}
        return found


def planned_release(app_plan: Any) -> PlannedRelease:
    """From a 03-app plan (plan.Plan): helm_release.langfuse[0]'s values and every planned
    kubernetes_secret_v1 turned into a Secret manifest (data as stringData, as the provider sends it)."""
    release = app_plan.after("helm_release.langfuse[0]")
    namespace = release.get("namespace") or "langfuse"
    secrets = []
    for after in app_plan.of_type("kubernetes_secret_v1").values():
        meta = (after.get("metadata") or [{}])[0]
        manifest = {"apiVersion": "v1", "kind": "Secret", "type": after.get("type") or "Opaque",
                    "metadata": {"name": meta["name"], "namespace": meta.get("namespace") or namespace},
                    "stringData": dict(after.get("data") or {})}
        for key in ("labels", "annotations"):
            if meta.get(key):
                manifest["metadata"][key] = dict(meta[key])
        secrets.append(manifest)
    classes = []
    for after in app_plan.of_type("kubernetes_storage_class_v1").values():
        meta = (after.get("metadata") or [{}])[0]
        manifest = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": meta["name"]},
                    "provisioner": after["storage_provisioner"],
                    "reclaimPolicy": after.get("reclaim_policy") or "Delete",
                    "volumeBindingMode": after.get("volume_binding_mode") or "Immediate",
                    "allowVolumeExpansion": bool(after.get("allow_volume_expansion")),
                    "parameters": dict(after.get("parameters") or {})}
        if meta.get("annotations"):
            manifest["metadata"]["annotations"] = dict(meta["annotations"])
        classes.append(manifest)
    return PlannedRelease(list(release["values"]), secrets, namespace, release.get("name") or "langfuse",
                          tuple(classes))


def _seconds(duration: str) -> float:
    """Helm's "120s" / "5m" as seconds: our own deadline must come after helm's, so helm's error wins."""
    unit = {"s": 1, "m": 60, "h": 3600}[duration[-1]]
    return float(duration[:-1]) * unit


class HelmFailed(RuntimeError):
    """helm exited non-zero; the message carries its (masked) stderr."""


@dataclass(frozen=True)
class Helm:
    """The project's helm against one kubeconfig, values passed as 0600 files, secrets masked."""

    kubeconfig: Path
    secrets: frozenset[str] = frozenset()

    def run(self, *args: str, values: Sequence[str] = (), timeout: float = 180) -> str:
        from lfharness.testing import chart  # noqa: PLC0415

        with chart.values_files(values, "helm-values-") as (files, secrets):
            secrets |= self.secrets
            argv = [str(chart.helm_bin()), "--kubeconfig", str(self.kubeconfig), *args, *files]
            with Stopwatch(f"helm {' '.join(args[:2])}", logger=LOG, heartbeat=15):
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                                      env=chart.helm_env(cache_dir()))
        masking = redact.Redactor(secrets)
        if proc.returncode != 0:
            raise HelmFailed(f"helm {' '.join(args)} exited {proc.returncode}: "
                             f"{masking.mask(proc.stderr.strip())[-3000:]}")
        return masking.mask(proc.stdout)

    def install(self, release: PlannedRelease, chart_dir: Path, *, namespace: str | None = None,
                extra_values: Sequence[str] = (), wait: bool = True, timeout: str = "120s") -> str:
        ns = namespace or release.namespace
        return self.run("install", release.name, str(chart_dir), "--namespace", ns, "--create-namespace",
                        *(["--wait", "--timeout", timeout] if wait else []),
                        values=[*release.values, *extra_values], timeout=_seconds(timeout) + 60)

    def upgrade(self, release: PlannedRelease, chart_dir: Path, *, namespace: str | None = None,
                timeout: str = "120s") -> str:
        return self.run("upgrade", release.name, str(chart_dir), "--namespace", namespace or release.namespace,
                        "--wait", "--timeout", timeout, values=list(release.values), timeout=_seconds(timeout) + 60)


def apply_secrets(api_client: Any, release: PlannedRelease, namespace: str | None = None) -> list[str]:
    """Creates what 03-app would create before the release: its StorageClasses (kept when they
    exist: cluster-wide), the namespace (if absent) and its Secrets."""
    from kubernetes import client  # noqa: PLC0415
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    core = client.CoreV1Api(api_client)
    names = []
    for manifest in release.storage_classes:
        try:
            client.StorageV1Api(api_client).create_storage_class(manifest)
            names.append(f"storageclass/{manifest['metadata']['name']}")
        except ApiException as exc:
            if exc.status != 409:
                raise
    for manifest in release.secrets:
        ns = namespace or manifest["metadata"]["namespace"]
        try:
            core.create_namespace({"metadata": {"name": ns}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        core.create_namespaced_secret(ns, {**manifest, "metadata": {**manifest["metadata"], "namespace": ns}})
        names.append(f"{ns}/{manifest['metadata']['name']}")
    return names


def unschedulable(api_client: Any, namespace: str) -> dict[str, str]:
    """Pod -> the scheduler's own message, for each pod whose PodScheduled is False."""
    from kubernetes import client  # noqa: PLC0415

    found = {}
    for pod in client.CoreV1Api(api_client).list_namespaced_pod(namespace).items:
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False":
                found[pod.metadata.name] = f"{cond.reason}: {cond.message}"
    return found


def delete_namespace(api_client: Any, namespace: str, timeout: float = 60, wait: bool = True) -> None:
    """Deletes a namespace and (unless wait=False) watches until it is gone (its pods deleted
    through kwok's pod-delete stage, its PVCs by the namespace and PVC-protection controllers)."""
    from kubernetes import client, watch  # noqa: PLC0415
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    core = client.CoreV1Api(api_client)
    try:
        core.delete_namespace(namespace)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rv = core.read_namespace(namespace).metadata.resource_version
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        w = watch.Watch()
        for event in w.stream(core.list_namespace, field_selector=f"metadata.name={namespace}",
                              resource_version=rv, timeout_seconds=max(1, int(deadline - time.monotonic()))):
            if event["type"] == "DELETED":
                w.stop()
                return
    raise WaitTimeout(f"namespace {namespace} still present {timeout:g}s after its deletion")


def main(argv: list[str]) -> int:
    """`python -m lfharness.testing.kube build`: the cluster's binaries into the project's cache."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if argv != ["build"]:
        print("usage: python -m lfharness.testing.kube build", file=sys.stderr)
        return 2
    with Stopwatch("building etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok", logger=LOG):
        times = build()
    LOG.info("binaries in %s; seconds per build: %s", bin_dir(), times)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
