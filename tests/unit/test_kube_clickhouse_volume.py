"""Kube tier, ClickHouse's data volume (decision 24): the static PersistentVolume 03-app plans, bound
and scheduled by the real controllers, and the harness's quiesce on a real API server.

Real: etcd, kube-apiserver, kube-controller-manager (the PersistentVolume binder, StatefulSets,
Deployments, the namespace controller), kube-scheduler (its VolumeBinding plugin honours the
PersistentVolume's zone affinity), helm with chart 1.5.19 and 03-app's planned values and objects,
the harness's own `Kube` and `clickhouse.Quiesce`. Stand-ins: kwok for the kubelets (no container
runs, so nothing attaches or mounts a volume; the EBS CSI driver is absent), the two nodes labelled
us-east-1a and us-east-1b like 01-network's subnets, Debian's redis-server behind the Redis
port-forward (LocalKube). The volume id is the plan's sample, not a real EBS volume.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses

import pytest
import yaml

from lfharness.core.wait import retry
from lfharness.stack import clickhouse, k8s
from lfharness.testing.chartrig import source
from lfharness.testing.cluster import binaries
from lfharness.testing.cluster.helm import (
    Helm,
    HelmFailed,
    PlannedRelease,
    apply_secrets,
    delete_namespace,
    planned_release,
    unschedulable,
)
from lfharness.testing.cluster.nodes import NODES

pytestmark = pytest.mark.kube

_REASON = binaries.unavailable_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)
_CHART = source.locate(source.release_pin())
if _CHART is None:
    pytest.skip("kube tier (chart install): " + source.unavailable_reason(source.release_pin()), allow_module_level=True)

CLICKHOUSE_POD = "langfuse-clickhouse-shard0-0"
NODE_OF_ZONE = {zone: name for name, zone, _ in NODES}


@pytest.fixture(scope="module")
def release(app_plan, secret_exposed_plan) -> PlannedRelease:
    return planned_release(app_plan, secrets_from=secret_exposed_plan)


@pytest.fixture(scope="module")
def helm(local_kube, release) -> Helm:
    return Helm(local_kube.cluster.kubeconfig, frozenset(release.secret_strings()))


@pytest.fixture(scope="module")
def api(local_kube):
    local_kube.cluster.wait_addons_ready()
    return local_kube.cluster.api_client()


@pytest.fixture(scope="module")
def kube(local_kube) -> k8s.Kube:
    return k8s.Kube(local_kube.cluster.kubeconfig)


def _core(api):
    from kubernetes import client

    return client.CoreV1Api(api)


def _in_zone(release: PlannedRelease, zone: str) -> PlannedRelease:
    """The release with its PersistentVolume in another zone (02-deps' volume made elsewhere)."""
    volumes = copy.deepcopy(list(release.volumes))
    for volume in volumes:
        for term in volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]:
            for expression in term["matchExpressions"]:
                if expression["key"] == clickhouse.ZONE_LABEL:
                    expression["values"] = [zone]
    return dataclasses.replace(release, volumes=tuple(volumes))


LEGACY_VALUES = [yaml.safe_dump({"clickhouse": {"persistence": {"existingClaim": ""}}})]
NAMESPACE = "ch"
# Two nodes hold one release at a time: the tests below share one, in file order, and move
# ClickHouse's volume between zones instead of installing the chart again.


@pytest.fixture(scope="module")
def installed(request, api, helm, release, kube) -> PlannedRelease:
    """03-app's objects, then the chart with --wait, into NAMESPACE (volume in us-east-1a); the
    namespace and the PersistentVolume go at the end (cleanup registered first)."""
    def cleanup() -> None:
        delete_namespace(api, NAMESPACE, timeout=90)
        for volume in release.volumes_for(NAMESPACE)[0]:
            with contextlib.suppress(Exception):  # gone already, or never made
                _core(api).delete_persistent_volume(volume["metadata"]["name"])

    request.addfinalizer(cleanup)
    apply_secrets(api, release, NAMESPACE)
    helm.install(release, _CHART.path, namespace=NAMESPACE, timeout="120s")
    return release


def _gone(read) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def _move_volume(api, kube: k8s.Kube, release: PlannedRelease, zone: str) -> PlannedRelease:
    """What 02-deps' volume in another zone means to the cluster: ClickHouse stopped, 03-app's
    claim and PersistentVolume made again with the new zone, ClickHouse started again."""
    core = _core(api)
    moved = _in_zone(release, zone)
    (volume,), (claim,) = release.volumes_for(NAMESPACE)
    clickhouse.scale_down(kube, NAMESPACE, "statefulset", "langfuse-clickhouse-shard0", timeout=60, interval=0.5)
    core.delete_namespaced_persistent_volume_claim(claim["metadata"]["name"], NAMESPACE)
    core.delete_persistent_volume(volume["metadata"]["name"])
    for what, read in (("claim", lambda: core.read_namespaced_persistent_volume_claim(claim["metadata"]["name"],
                                                                                     NAMESPACE)),
                       ("PersistentVolume", lambda: core.read_persistent_volume(volume["metadata"]["name"]))):
        retry(lambda read=read: _gone(read), timeout=30, interval=0.2, what=f"ClickHouse's {what} deleted",
              validator=bool)
    apply_secrets(api, dataclasses.replace(moved, secrets=[], storage_classes=()), NAMESPACE)
    kube.scale(NAMESPACE, "statefulset", "langfuse-clickhouse-shard0", 1)
    return moved


def _claim(api, release: PlannedRelease, namespace: str):
    """ClickHouse's claim as the API server has it now."""
    (name,) = [c["metadata"]["name"] for c in release.volumes_for(namespace)[1]]
    return _core(api).read_namespaced_persistent_volume_claim(name, namespace)


def _bound(api, release: PlannedRelease, namespace: str, what: str = "ClickHouse's claim Bound"):
    return retry(lambda: _claim(api, release, namespace), timeout=30, interval=0.5, what=what,
                 validator=lambda c: c.status.phase == "Bound")


# --- binding and placement -----------------------------------------------------------------------

def test_the_persistent_volume_controller_binds_the_claim_to_the_static_volume(installed, api):
    """Decision 24: the real PersistentVolume controller binds 03-app's claim to 03-app's
    PersistentVolume (the one naming 02-deps' EBS volume), not to any dynamically made volume."""
    (volume,), _ = installed.volumes_for(NAMESPACE)
    claim = _bound(api, installed, NAMESPACE)
    pv = _core(api).read_persistent_volume(claim.spec.volume_name)
    assert pv.metadata.name == volume["metadata"]["name"]
    assert (pv.spec.csi.driver, pv.spec.csi.volume_handle) == ("ebs.csi.aws.com", volume["spec"]["csi"]["volumeHandle"])
    assert pv.spec.claim_ref.uid == claim.metadata.uid


@pytest.mark.parametrize("zone", ["us-east-1b", "us-east-1a"])
def test_the_scheduler_places_clickhouse_only_on_the_node_in_the_volume_zone(installed, api, kube, zone):
    """Decision 24: with the volume in either zone, the real scheduler puts ClickHouse on the node
    labelled with that zone (the PersistentVolume's node affinity)."""
    _move_volume(api, kube, installed, zone)
    pod = retry(lambda: next((p for p in kube.pods(NAMESPACE) if p.metadata.name == CLICKHOUSE_POD), None),
                timeout=60, interval=0.5, what=f"ClickHouse scheduled with its volume in {zone}",
                validator=lambda p: p is not None and bool(p.spec.node_name))
    assert pod.spec.node_name == NODE_OF_ZONE[zone]


def test_with_no_node_in_the_volume_zone_clickhouse_stays_pending_and_the_harness_says_why(installed, api, kube):
    """Decision 24: a volume in a zone without a Ready node leaves ClickHouse Pending (the
    scheduler: the nodes do not match the PersistentVolume's node affinity), and the harness's zone
    check gives the one line naming the zone, the nodes elsewhere and the way out."""
    _move_volume(api, kube, installed, "us-east-1c")
    try:
        refused = retry(lambda: unschedulable(api, NAMESPACE).get(CLICKHOUSE_POD, ""), timeout=60, interval=0.5,
                        what="the scheduler's verdict on ClickHouse", validator=lambda m: "affinity" in m)
        assert "didn't match PersistentVolume's node affinity" in refused
        problem = clickhouse.placement_problem(kube.nodes, "us-east-1c", timeout=0, interval=0)
        assert problem is not None and problem.startswith("no Ready node in us-east-1c")
        assert all(node in problem for node in NODE_OF_ZONE.values())
        assert clickhouse.placement_problem(kube.nodes, "us-east-1a", timeout=0, interval=0) is None
    finally:
        _move_volume(api, kube, installed, "us-east-1a")  # as 03-app planned it, for the tests below


# --- the volume outlives the release ------------------------------------------------------------

def test_helm_uninstall_then_install_binds_the_same_volume_again(installed, api, helm, kube):
    """Decision 24: the claim is 03-app's, not the chart's: `helm uninstall` leaves it Bound to the
    same PersistentVolume, and the next install's ClickHouse mounts it again."""
    from kubernetes import client

    before = _bound(api, installed, NAMESPACE)
    helm.run("uninstall", installed.name, "--namespace", NAMESPACE, "--wait", "--timeout", "60s", timeout=120)
    retry(lambda: CLICKHOUSE_POD in kube.pod_names(NAMESPACE), timeout=60, interval=0.5,
          what="ClickHouse's pod gone after the uninstall", validator=lambda present: not present)
    after_uninstall = _claim(api, installed, NAMESPACE)
    assert (after_uninstall.metadata.uid, after_uninstall.status.phase) == (before.metadata.uid, "Bound")
    helm.install(installed, _CHART.path, namespace=NAMESPACE, timeout="120s")
    sts = client.AppsV1Api(api).read_namespaced_stateful_set("langfuse-clickhouse-shard0", NAMESPACE)
    data = [v for v in sts.spec.template.spec.volumes if v.name == "data"]
    assert [v.persistent_volume_claim.claim_name for v in data] == [before.metadata.name]
    assert _claim(api, installed, NAMESPACE).spec.volume_name == before.spec.volume_name


def test_quiesce_stops_web_worker_and_clickhouse_through_the_api_and_leaves_the_rest(installed, kube, local_kube):
    """Decision 24: the harness's quiesce, with its own Kube and the Redis port-forward (Debian's
    redis-server behind it, no job queued), scales web, worker and ClickHouse to 0 through the
    scale subresources and returns once their pods are gone (kwok deletes them like kubelets);
    Valkey stays. The Redis password is read from 03-app's Secret, as on EKS."""
    kube.wait_all_ready(NAMESPACE, timeout=90)
    local_kube.use_redis_password(installed.redis_password())
    quiesce = clickhouse.Quiesce(kube, lambda: clickhouse.redis_through_port_forward(kube, NAMESPACE),
                                 namespace=NAMESPACE, drain_timeout=30, stop_timeout=60, interval=1)
    quiesce()
    left = kube.pod_names(NAMESPACE)
    assert [p for p in left if p.startswith(("langfuse-web-", "langfuse-worker-", "langfuse-clickhouse-"))] == []
    assert any(p.startswith("langfuse-redis-primary-") for p in left)


def test_a_rebuild_of_03_app_binds_a_new_persistent_volume_on_the_same_ebs_volume(installed, api, helm):
    """Decision 24, FR28: 03-app's destroy deletes the release, the claim and the PersistentVolume
    (Retain: the EBS volume stays); its apply makes them again, and the new claim binds the new
    PersistentVolume naming the same EBS volume."""
    (volume,), _ = installed.volumes_for(NAMESPACE)
    first = _bound(api, installed, NAMESPACE)
    delete_namespace(api, NAMESPACE, timeout=90)
    # Released, not deleted: Retain keeps the EBS volume whatever happens to the claim.
    released = retry(lambda: _core(api).read_persistent_volume(volume["metadata"]["name"]), timeout=30, interval=0.5,
                     what="the PersistentVolume Released", validator=lambda pv: pv.status.phase == "Released")
    assert released.spec.persistent_volume_reclaim_policy == "Retain"
    apply_secrets(api, installed, NAMESPACE)  # 03-app's apply: Secret, a new PersistentVolume, its claim
    helm.install(installed, _CHART.path, namespace=NAMESPACE, timeout="120s")
    second = _bound(api, installed, NAMESPACE, "the new claim Bound")
    pv = _core(api).read_persistent_volume(second.spec.volume_name)
    assert second.metadata.uid != first.metadata.uid
    assert pv.spec.csi.volume_handle == volume["spec"]["csi"]["volumeHandle"]


# --- a stack deployed before decision 24 ----------------------------------------------------------

def test_upgrading_a_release_that_made_its_own_clickhouse_volume_is_refused_and_keeps_it(installed, api, helm, kube,
                                                                                        request):
    """Decision 24, issue 23 item 4: a release installed before this change has a volume claim
    template; the first apply's `helm upgrade` to the static claim is refused by the API server
    (a StatefulSet's volumeClaimTemplates are immutable) and the old claim, with its data, stays;
    the harness's quiesce (run before any pause or rebuild) refuses it, stopping nothing."""
    legacy_ns = "ch-legacy"
    request.addfinalizer(lambda: delete_namespace(api, legacy_ns, wait=False))
    delete_namespace(api, NAMESPACE, timeout=90)  # two nodes hold one release
    apply_secrets(api, dataclasses.replace(installed, volumes=(), claims=()), legacy_ns)
    helm.install(installed, _CHART.path, namespace=legacy_ns, extra_values=LEGACY_VALUES, timeout="120s")
    legacy = f"data-{CLICKHOUSE_POD}"
    assert _core(api).read_namespaced_persistent_volume_claim(legacy, legacy_ns).status.phase == "Bound"
    apply_secrets(api, dataclasses.replace(installed, secrets=[], storage_classes=()), legacy_ns)
    with pytest.raises(HelmFailed, match="Forbidden: updates to statefulset spec"):
        helm.upgrade(installed, _CHART.path, namespace=legacy_ns, timeout="60s")
    assert _core(api).read_namespaced_persistent_volume_claim(legacy, legacy_ns).status.phase == "Bound"
    with pytest.raises(clickhouse.QuiesceError, match=f"{legacy_ns}/{legacy}"):
        clickhouse.Quiesce(kube, lambda: pytest.fail("no queue is read before the refusal"), namespace=legacy_ns)()
    assert CLICKHOUSE_POD in kube.pod_names(legacy_ns)
