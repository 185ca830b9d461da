"""Kube tier: the real chart 1.5.19 installed by the project's helm from 03-app's planned values
into a real Kubernetes 1.35 control plane with two t3.medium-shaped nodes.

Real: etcd, kube-apiserver (server-side validation of every object), kube-controller-manager
(Deployments, StatefulSets, ReplicaSets, PVC protection, the namespace controller),
kube-scheduler (placement against what the nodes have left after the EKS addon pods), helm,
kubectl. Stand-ins: kwok for the kubelets (pods become Ready, no container runs); the EBS CSI
driver (cluster.standins.PvStandIn binds a PV to each claim of the default class); the addon pods
(placeholder images with the real addons' requests); the values come from the offline plan of
03-app (the Workbench), so RDS/S3/IRSA figures are the plan's fixed samples.
"""

from __future__ import annotations

import json

import pytest
import yaml

from lfharness.core.wait import retry
from lfharness.stack import k8s
from lfharness.testing.chartrig import fit, source
from lfharness.testing.cluster import binaries
from lfharness.testing.cluster.helm import (
    Helm,
    PlannedRelease,
    apply_secrets,
    delete_namespace,
    planned_release,
    unschedulable,
)
from lfharness.testing.cluster.nodes import ADDON_DAEMONSETS, NODE_ALLOCATABLE, NODES

pytestmark = pytest.mark.kube

_REASON = binaries.unavailable_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)
_CHART = source.locate(source.release_pin())
if _CHART is None:
    pytest.skip("kube tier (chart install): " + source.unavailable_reason(source.release_pin()), allow_module_level=True)

RELEASE_LABEL = "app.kubernetes.io/instance=langfuse"


@pytest.fixture(scope="module")
def release(app_plan, secret_exposed_plan) -> PlannedRelease:
    """helm_release.langfuse[0]'s values and 03-app's own Secrets, as the offline plan has them."""
    return planned_release(app_plan, secrets_from=secret_exposed_plan)


@pytest.fixture(scope="module")
def helm(local_kube, release) -> Helm:
    return Helm(local_kube.cluster.kubeconfig, frozenset(release.secret_strings()))


@pytest.fixture(scope="module")
def api(local_kube):
    return local_kube.cluster.api_client()


def _core(api):
    from kubernetes import client

    return client.CoreV1Api(api)


def _apps(api):
    from kubernetes import client

    return client.AppsV1Api(api)


@pytest.fixture(scope="module")
def installed(local_kube, release, helm, api) -> str:
    """The release installed with `helm install --wait` (03-app's Secrets applied first)."""
    local_kube.cluster.wait_addons_ready()
    apply_secrets(api, release)
    return helm.install(release, _CHART.path, timeout="120s")


def test_release_installs_with_wait_and_every_object_is_accepted(installed, helm, local_kube, release):
    """FR10, FR13, NFR10: `helm install --wait` of chart 1.5.19 with 03-app's values reaches
    `deployed`; every object of its manifest exists on the API server (server-side validation
    of Kubernetes 1.35 accepted them all)."""
    status = json.loads(helm.run("status", release.name, "-n", release.namespace, "-o", "json"))
    assert status["info"]["status"] == "deployed"
    manifest = helm.run("get", "manifest", release.name, "-n", release.namespace)
    objects = [d for d in yaml.safe_load_all(manifest) if d]
    kubectl = k8s.Kube(local_kube.cluster.kubeconfig)
    names = kubectl.run("-n", release.namespace, "get", "-f", "-", "-o", "name", stdin=manifest).split()
    assert objects and len(names) == len(objects)


def test_every_release_pod_is_placed_next_to_the_addon_pods_and_ready(installed, local_kube, release, api):
    """FR13, NFR5: every pod of the release was placed by the real scheduler on one of the two
    t3.medium-shaped nodes that also carry aws-node, kube-proxy, ebs-csi-node, coredns and
    ebs-csi-controller, and is Ready; no node's requests exceed its allocatable."""
    kubectl = k8s.Kube(local_kube.cluster.kubeconfig)
    pods = kubectl.pods(release.namespace)
    assert k8s.all_ready(pods), [p.metadata.name for p in pods]
    system = kubectl.pods("kube-system")
    nodes = {name for name, _, _ in NODES}
    assert {p.spec.node_name for p in pods} <= nodes
    for node in nodes:
        daemons = {p.metadata.name.rsplit("-", 1)[0] for p in system if p.spec.node_name == node}
        assert daemons >= set(ADDON_DAEMONSETS), f"{node} carries {daemons}"
        on_node = [api.sanitize_for_serialization(p) for p in pods + system if p.spec.node_name == node]
        used = sum((fit.pod_requests(p["spec"]) for p in on_node), fit.Requests())
        allocatable = fit.Requests(fit.quantity(NODE_ALLOCATABLE["cpu"]) * 1000,
                                   fit.quantity(NODE_ALLOCATABLE["memory"]) / 2 ** 20,
                                   int(NODE_ALLOCATABLE["pods"]))
        assert used.fits_in(allocatable), f"{node}: {used} > {allocatable}"


def _rollout_state(api, namespace: str) -> dict[str, tuple]:
    state = {}
    for d in _apps(api).list_namespaced_deployment(namespace).items:
        state[f"Deployment/{d.metadata.name}"] = (d.metadata.generation, d.status.observed_generation)
    for s in _apps(api).list_namespaced_stateful_set(namespace).items:
        state[f"StatefulSet/{s.metadata.name}"] = (s.metadata.generation, s.status.observed_generation,
                                                   s.status.update_revision)
    state["ReplicaSets"] = tuple(sorted(r.metadata.name for r in _apps(api).list_namespaced_replica_set(namespace).items))
    return state


def test_helm_upgrade_with_identical_values_rolls_nothing_out(installed, helm, release, api):
    """FR29 (no change on re-apply), decision 18: `helm upgrade --wait` with the same values
    leaves every Deployment and StatefulSet at its generation (no rollout, no new ReplicaSet)."""
    before = _rollout_state(api, release.namespace)
    assert any(k.startswith("StatefulSet/") for k in before) and any(k.startswith("Deployment/") for k in before)
    helm.upgrade(release, _CHART.path)
    assert _rollout_state(api, release.namespace) == before


def test_deleting_the_namespace_removes_the_chart_volumes_and_keeps_clickhouses(installed, release, api, local_kube):
    """Journey 3 (pause), decisions 18 and 24: deleting the namespace removes every PVC of the
    release (real namespace and PVC-protection controllers); the PV stand-in of the EBS CSI driver
    deletes the chart's Released volumes (Valkey's), while ClickHouse's static volume (Retain) stays."""
    core = _core(api)
    claims = core.list_namespaced_persistent_volume_claim(release.namespace).items
    assert claims and all(c.status.phase == "Bound" for c in claims)
    static = {v["metadata"]["name"] for v in release.volumes}
    dynamic = {c.spec.volume_name for c in claims} - static
    assert static and dynamic
    delete_namespace(api, release.namespace, timeout=90)
    assert core.list_persistent_volume_claim_for_all_namespaces(label_selector=RELEASE_LABEL).items == []
    retry(lambda: dynamic & {v.metadata.name for v in core.list_persistent_volume().items}, timeout=30,
          interval=0.5, what="the chart's volumes deleted", validator=lambda left: not left)
    kept = {v.metadata.name: v.status.phase for v in core.list_persistent_volume().items if v.metadata.name in static}
    assert kept == {name: "Released" for name in static}


def test_chart_default_three_clickhouse_replicas_do_not_fit_and_the_scheduler_says_why(local_kube, release, helm,
                                                                                     api, request):
    """NFR5 (2x t3.medium), FR13: with the chart's own default ClickHouse replica count instead of
    03-app's 1, the real scheduler refuses a ClickHouse pod with its own message (Insufficient
    memory): the fit the chart tier computes can fail, judged next to the EKS addon pods."""
    namespace = "langfuse-default-replicas"
    # Last in this file (the release above is gone by now, so the fit is judged on empty nodes
    # next to the addon pods); its namespace goes in the background while later files run.
    request.addfinalizer(lambda: delete_namespace(api, namespace, wait=False))
    delete_namespace(api, release.namespace, timeout=90)  # no-op when the test above removed it
    local_kube.cluster.wait_addons_ready()
    default = yaml.safe_load((_CHART.path / "values.yaml").read_text())["clickhouse"]["replicaCount"]
    assert default > 1, "the chart's default is expected to be the 3-replica ClickHouse"
    apply_secrets(api, release, namespace)
    helm.install(release, _CHART.path, namespace=namespace, wait=False,
                 extra_values=[yaml.safe_dump({"clickhouse": {"replicaCount": default}})])
    # The first verdicts may still be "unbound immediate PersistentVolumeClaims" (the claim of
    # ClickHouse's static volume, bound a moment later by the PersistentVolume controller).
    refused = retry(lambda: {p: m for p, m in unschedulable(api, namespace).items() if "clickhouse" in p},
                    timeout=45, interval=0.5, what="the scheduler's memory verdict on the ClickHouse pods",
                    validator=lambda found: any("Insufficient memory" in m for m in found.values()))
    assert any("Insufficient memory" in message for message in refused.values()), refused
