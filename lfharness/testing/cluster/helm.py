"""The release on the local cluster: what 03-app's plan gives Helm (``PlannedRelease``: the values
and the Secrets and StorageClasses 03-app creates first), the project's helm against the cluster's
kubeconfig (values as 0600 files, secrets masked), and the namespace helpers the kube tier's tests
use around an install (apply the Secrets, read the scheduler's refusals, delete and wait).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfharness.core import redact
from lfharness.core.wait import Stopwatch, WaitTimeout, retry
from lfharness.testing.chartrig import render, source
from lfharness.testing.toolchain import cache_dir

LOG = logging.getLogger("lfharness.testing.cluster.helm")

# The kubernetes client is imported inside the helpers that use it: importing it takes seconds,
# and the plan-only callers (planned_release) never need it.


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
    # ClickHouse's static PersistentVolume and its claim (decision 24), as 03-app plans them.
    volumes: tuple[dict, ...] = ()
    claims: tuple[dict, ...] = ()

    def volumes_for(self, namespace: str) -> tuple[list[dict], list[dict]]:
        """The PersistentVolumes and claims for an install into `namespace`: PersistentVolumes are
        cluster-wide, so outside the planned namespace each gets the namespace in its name and its
        claimRef (the claims' volumeName follows)."""
        if namespace == self.namespace:
            return list(self.volumes), [{**c, "metadata": {**c["metadata"], "namespace": namespace}}
                                        for c in self.claims]
        renamed = {v["metadata"]["name"]: f"{v['metadata']['name']}-{namespace}" for v in self.volumes}
        volumes = [{**v, "metadata": {**v["metadata"], "name": renamed[v["metadata"]["name"]]},
                    "spec": {**v["spec"], "claimRef": {**v["spec"]["claimRef"], "namespace": namespace}}}
                   for v in self.volumes]
        claims = [{**c, "metadata": {**c["metadata"], "namespace": namespace},
                   "spec": {**c["spec"], "volumeName": renamed.get(c["spec"].get("volumeName"),
                                                                   c["spec"].get("volumeName"))}}
                  for c in self.claims]
        return volumes, claims

    def redis_secret(self) -> tuple[str, str]:
        """The Secret and key the Redis password lives in: the one the values name
        (redis.auth.existingSecret, 03-app's own Secret) or the chart's langfuse-redis."""
        auth = render.merged_values(self.values).get("redis", {}).get("auth", {})
        if auth.get("existingSecret"):
            return str(auth["existingSecret"]), str(auth.get("existingSecretPasswordKey") or "valkey-password")
        return f"{self.name}-redis", "valkey-password"

    def redis_password(self) -> str:
        """The password the values give the chart's Valkey: inline, or from the planned Secret they name."""
        auth = render.merged_values(self.values).get("redis", {}).get("auth", {})
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


def planned_release(app_plan: Any, secrets_from: Any | None = None) -> PlannedRelease:
    """From a 03-app plan (plan.Plan): helm_release.langfuse[0]'s values and every planned
    kubernetes_secret_v1 turned into a Secret manifest (data as stringData, as the provider sends it).
    The real plan holds no Secret data (data_wo, issue 26): `secrets_from` is a plan of 03-app made
    with plan.SECRET_EXPOSED_EDIT, whose Secret carries the same mapping in `data`."""
    release = app_plan.after("helm_release.langfuse[0]")
    namespace = release.get("namespace") or "langfuse"
    secrets = []
    for address, after in (secrets_from or app_plan).of_type("kubernetes_secret_v1").items():
        if after.get("data") is None:
            raise ValueError(f"{address} has no data in this plan (it is write-only): pass secrets_from, a plan "
                             "of 03-app made with plan.SECRET_EXPOSED_EDIT")
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
    volumes = tuple(_pv_manifest(after) for after in app_plan.of_type("kubernetes_persistent_volume_v1").values())
    claims = tuple(_pvc_manifest(after, namespace)
                   for after in app_plan.of_type("kubernetes_persistent_volume_claim_v1").values())
    return PlannedRelease(list(release["values"]), secrets, namespace, release.get("name") or "langfuse",
                          tuple(classes), volumes, claims)


# --- 03-app's NetworkPolicies (issue 26 item 1), as the kubernetes provider sends them ----------

def label_selector_of(blocks: list | None) -> dict | None:
    """A planned pod_selector / namespace_selector block as a LabelSelector (None when absent)."""
    if not blocks:
        return None
    (block,) = blocks
    selector: dict = {}
    if block.get("match_labels"):
        selector["matchLabels"] = dict(block["match_labels"])
    expressions = [{"key": e["key"], "operator": e["operator"], **({"values": sorted(e["values"])} if e.get("values") else {})}
                   for e in block.get("match_expressions") or []]
    if expressions:
        selector["matchExpressions"] = expressions
    return selector


def _peer(block: dict) -> dict:
    peer: dict = {}
    for key, name in (("pod_selector", "podSelector"), ("namespace_selector", "namespaceSelector")):
        if block.get(key):
            peer[name] = label_selector_of(block[key])
    for ip in block.get("ip_block") or []:
        peer["ipBlock"] = {"cidr": ip["cidr"], **({"except": list(ip["except"])} if ip.get("except") else {})}
    return peer


def _port(block: dict) -> dict:
    port: dict = {"protocol": block.get("protocol") or "TCP"}
    if block.get("port"):
        port["port"] = int(block["port"]) if str(block["port"]).isdigit() else block["port"]
    if block.get("end_port"):
        port["endPort"] = int(block["end_port"])
    return port


def _rules(rules: list | None, peers: str) -> list[dict]:
    # An absent peers or ports list means "all" to Kubernetes: kept absent, never made empty.
    return [{**({peers: [_peer(p) for p in r[peers]]} if r.get(peers) else {}),
             **({"ports": [_port(p) for p in r["ports"]]} if r.get("ports") else {})} for r in rules or []]


def network_policy_manifest(after: dict, namespace: str | None = None) -> dict:
    """A planned kubernetes_network_policy_v1 as the NetworkPolicy the provider sends (as
    planned_release does for 03-app's Secrets and volumes)."""
    meta, spec = after["metadata"][0], after["spec"][0]
    body: dict = {"podSelector": label_selector_of(spec["pod_selector"]) or {}, "policyTypes": list(spec["policy_types"])}
    if spec.get("ingress"):
        body["ingress"] = _rules(spec["ingress"], "from")
    if spec.get("egress"):
        body["egress"] = _rules(spec["egress"], "to")
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": meta["name"], "namespace": namespace or meta["namespace"],
                         "labels": dict(meta.get("labels") or {})},
            "spec": body}



def _pv_manifest(after: dict) -> dict:
    """A planned kubernetes_persistent_volume_v1 as the API object the provider creates."""
    meta, spec = after["metadata"][0], after["spec"][0]
    (csi,) = spec["persistent_volume_source"][0]["csi"]
    manifest: dict = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": meta["name"], "labels": dict(meta.get("labels") or {})},
        "spec": {"capacity": dict(spec["capacity"]), "accessModes": list(spec["access_modes"]),
                 "persistentVolumeReclaimPolicy": spec["persistent_volume_reclaim_policy"],
                 "storageClassName": spec.get("storage_class_name") or "",
                 "csi": {"driver": csi["driver"], "volumeHandle": csi["volume_handle"],
                         **({"fsType": csi["fs_type"]} if csi.get("fs_type") else {})}}}
    for ref in spec.get("claim_ref") or []:
        manifest["spec"]["claimRef"] = {"name": ref["name"], "namespace": ref["namespace"]}
    for affinity in spec.get("node_affinity") or []:
        terms = [{"matchExpressions": [{"key": e["key"], "operator": e["operator"], "values": list(e["values"])}
                                       for e in term.get("match_expressions") or []]}
                 for required in affinity["required"] for term in required["node_selector_term"]]
        manifest["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": terms}}
    return manifest


def _pvc_manifest(after: dict, namespace: str) -> dict:
    """A planned kubernetes_persistent_volume_claim_v1 as the API object the provider creates."""
    meta, spec = after["metadata"][0], after["spec"][0]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace") or namespace},
            "spec": {"accessModes": list(spec["access_modes"]), "storageClassName": spec.get("storage_class_name"),
                     "volumeName": spec.get("volume_name"),
                     "resources": {"requests": dict(spec["resources"][0]["requests"])}}}


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
        with render.values_files(values, "helm-values-") as (files, secrets):
            secrets |= self.secrets
            argv = [str(source.helm_bin()), "--kubeconfig", str(self.kubeconfig), *args, *files]
            with Stopwatch(f"helm {' '.join(args[:2])}", logger=LOG, heartbeat=15):
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                                      env=source.helm_env(cache_dir()))
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
    exist: cluster-wide), the namespace (if absent), its Secrets, and ClickHouse's static
    PersistentVolume (kept when it exists, as a Retain volume outlives the release) and claim."""
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
    volumes, claims = release.volumes_for(namespace or release.namespace)
    for manifest in volumes:
        name = manifest["metadata"]["name"]
        try:
            existing = core.read_persistent_volume(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            existing = None
        if existing is not None and existing.status.phase == "Released":
            # Released by a deleted claim: 03-app's destroy deletes the object and its apply makes a
            # new one on the same EBS volume; a Released one would never bind the new claim.
            core.delete_persistent_volume(name)
            retry(lambda name=name: _pv_gone(core, name), timeout=30, interval=0.2, what=f"persistentvolume/{name} deleted",
                  validator=bool)
            existing = None
        if existing is None:
            core.create_persistent_volume(manifest)
            names.append(f"persistentvolume/{name}")
    for manifest in claims:
        core.create_namespaced_persistent_volume_claim(manifest["metadata"]["namespace"], manifest)
        names.append(f"{manifest['metadata']['namespace']}/pvc/{manifest['metadata']['name']}")
    return names


def _pv_gone(core: Any, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        core.read_persistent_volume(name)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


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
