"""Kube tier, only Langfuse reaches its stores (issue 26 item 1): 03-app's planned NetworkPolicies
on a real API server, next to the release the real controllers run from 03-app's planned values.

Real: etcd, kube-apiserver (server-side validation and defaulting of networking.k8s.io/v1
NetworkPolicy, and the label-selector evaluation of pod lists), kube-controller-manager
(Deployments, ReplicaSets, StatefulSets and Jobs stamp the pods' labels, pod-template-hash and
controller-revision-hash included), kube-scheduler, helm with chart 1.5.19 and 03-app's planned
values and objects. Stand-ins: kwok for the kubelets; and no CNI at all, so nothing here enforces
a policy: what is allowed or dropped on the wire only an e2e on EKS, with the VPC CNI's node agent,
can show (docs/security.md). The policies go to namespace `netpol` instead of `langfuse`, so this
file does not meet the other kube files' releases.
"""

from __future__ import annotations

import contextlib
import uuid

import pytest

from lfharness.core.wait import retry
from lfharness.stack import k8s
from lfharness.testing.chartrig import source
from lfharness.testing.cluster import binaries
from lfharness.testing.cluster.helm import (
    Helm,
    PlannedRelease,
    apply_secrets,
    delete_namespace,
    network_policy_manifest,
    planned_release,
)

pytestmark = pytest.mark.kube

_REASON = binaries.unavailable_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)
_CHART = source.locate(source.release_pin())
if _CHART is None:
    pytest.skip("kube tier (chart install): " + source.unavailable_reason(source.release_pin()), allow_module_level=True)

POLICY = "kubernetes_network_policy_v1"
NAMESPACE = "netpol"
APP_WORKLOADS = ("Deployment/langfuse-web", "Deployment/langfuse-worker")
STORES = {"langfuse-clickhouse-clients": "StatefulSet/langfuse-clickhouse-shard0",
          "langfuse-valkey-clients": "StatefulSet/langfuse-redis-primary"}


def label_selector(selector: dict) -> str:
    """A LabelSelector as the API server's label_selector string ("" selects every pod)."""
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for e in selector.get("matchExpressions") or []:
        values = ",".join(e.get("values") or [])
        terms.append({"In": f"{e['key']} in ({values})", "NotIn": f"{e['key']} notin ({values})",
                      "Exists": e["key"], "DoesNotExist": f"!{e['key']}"}[e["operator"]])
    return ",".join(terms)


# --- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def policies(app_plan) -> dict[str, dict]:
    """03-app's planned NetworkPolicies by name, as manifests for NAMESPACE."""
    found = [network_policy_manifest(after, NAMESPACE) for after in app_plan.of_type(POLICY).values()]
    return {p["metadata"]["name"]: p for p in found}


@pytest.fixture(scope="module")
def release(app_plan, secret_exposed_plan) -> PlannedRelease:
    return planned_release(app_plan, secrets_from=secret_exposed_plan)


@pytest.fixture(scope="module")
def api(local_kube):
    local_kube.cluster.wait_addons_ready()
    return local_kube.cluster.api_client()


def _networking(api):
    from kubernetes import client

    return client.NetworkingV1Api(api)


def _core(api):
    from kubernetes import client

    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def applied(request, api, release, policies) -> dict[str, dict]:
    """The namespace with 03-app's Secret and ClickHouse's volume and claim, and the planned
    policies created through the API server (namespace and PersistentVolume go at the end)."""
    def cleanup() -> None:
        delete_namespace(api, NAMESPACE, timeout=90)
        for volume in release.volumes_for(NAMESPACE)[0]:
            with contextlib.suppress(Exception):  # gone already, or never made
                _core(api).delete_persistent_volume(volume["metadata"]["name"])

    request.addfinalizer(cleanup)
    apply_secrets(api, release, NAMESPACE)
    for manifest in policies.values():
        _networking(api).create_namespaced_network_policy(NAMESPACE, manifest)
    return {p.metadata.name: api.sanitize_for_serialization(p)
            for p in _networking(api).list_namespaced_network_policy(NAMESPACE).items}


@pytest.fixture(scope="module")
def installed(applied, local_kube, release, api) -> k8s.Kube:
    """The chart installed with --wait into NAMESPACE, next to the policies (two nodes hold one
    release at a time: waits until another file's release has left)."""
    def others() -> list[str]:
        pods = _core(api).list_pod_for_all_namespaces(label_selector="app.kubernetes.io/instance=langfuse").items
        return [f"{p.metadata.namespace}/{p.metadata.name}" for p in pods if p.metadata.namespace != NAMESPACE]

    retry(others, timeout=120, interval=1, what="other releases' pods gone", validator=lambda left: not left)
    Helm(local_kube.cluster.kubeconfig, frozenset(release.secret_strings())).install(
        release, _CHART.path, namespace=NAMESPACE, timeout="120s")
    return k8s.Kube(local_kube.cluster.kubeconfig)


def _pods_of(api, workload: str) -> set[str]:
    """The pods a Deployment or StatefulSet owns, through its own selector (the controllers' view)."""
    from kubernetes import client

    kind, name = workload.split("/")
    apps = client.AppsV1Api(api)
    read = apps.read_namespaced_deployment if kind == "Deployment" else apps.read_namespaced_stateful_set
    selector = api.sanitize_for_serialization(read(name, NAMESPACE).spec.selector)
    return _selected(api, selector)


def _selected(api, selector: dict) -> set[str]:
    """The pods of NAMESPACE the API server returns for a LabelSelector."""
    return {p.metadata.name for p in _core(api).list_namespaced_pod(NAMESPACE, label_selector=label_selector(selector)).items}


# --- tests ------------------------------------------------------------------------------------------

def test_the_api_server_accepts_every_planned_network_policy_as_planned(applied, policies):
    """Issue 26 item 1: Kubernetes 1.35's API server validates and stores all six planned
    NetworkPolicies (default deny, DNS, web/worker egress, the two stores' ingress, Jobs' HTTPS),
    and what it stores is what 03-app planned: no field dropped, none defaulted into a new meaning."""
    assert sorted(applied) == sorted(policies) and len(policies) == 6
    stored = {name: applied[name]["spec"] for name in applied}
    assert stored == {name: p["spec"] for name, p in policies.items()}


def test_each_policy_selects_exactly_the_release_pods_it_means(installed, api, applied, policies):
    """Issue 26 item 1: with the release running (pods labelled by the real Deployment, ReplicaSet
    and StatefulSet controllers), the API server's own evaluation of each policy's pod selector
    returns exactly the intended pods: all of them for default-deny and allow-dns, web's and
    worker's for langfuse-app, each store's own for its policy, none for jobs-https."""
    installed.wait_all_ready(NAMESPACE, timeout=90)
    everyone = {p.metadata.name for p in _core(api).list_namespaced_pod(NAMESPACE).items}
    app = set().union(*(_pods_of(api, w) for w in APP_WORKLOADS))
    intended = {"default-deny": everyone, "allow-dns": everyone, "langfuse-app": app, "jobs-https": set(),
                **{name: _pods_of(api, workload) for name, workload in STORES.items()}}
    assert len(app) == 2 and all(len(intended[name]) == 1 for name in STORES)
    assert {name: _selected(api, p["spec"]["podSelector"]) for name, p in policies.items()} == intended


def test_each_store_admits_exactly_the_web_and_worker_pods(installed, api, policies):
    """FR13, issue 26 item 1: the peers of each store's one ingress rule, evaluated by the API server
    in the namespace, are exactly the running web and worker pods (no store, no other pod)."""
    app = set().union(*(_pods_of(api, w) for w in APP_WORKLOADS))
    admitted = {name: [set().union(*(_selected(api, peer["podSelector"]) for peer in rule["from"]))
                       for rule in policies[name]["spec"]["ingress"]] for name in STORES}
    assert admitted == dict.fromkeys(STORES, [app])


def test_a_job_pod_gets_only_the_job_and_namespace_wide_policies(installed, api, policies):
    """FR8, issue 26 item 1: a Job like the e2e suite's IRSA check (lfharness.stack.k8s.job_manifest,
    service account langfuse) gets a pod the real Job controller labels batch.kubernetes.io/job-name:
    jobs-https selects it, with default-deny and allow-dns, and no web/worker or store policy does
    (so it may reach HTTPS and DNS, and neither store admits it)."""
    from kubernetes import client

    name = f"irsa-check-{uuid.uuid4().hex[:6]}"
    client.BatchV1Api(api).create_namespaced_job(
        NAMESPACE, k8s.job_manifest(NAMESPACE, name, "langfuse", k8s.IRSA_CHECK_IMAGE, "true"))
    pod = retry(lambda: _core(api).list_namespaced_pod(NAMESPACE, label_selector=f"job-name={name}").items,
                timeout=60, interval=0.5, what=f"the pod of Job {name}", validator=bool)[0].metadata.name
    selecting = sorted(n for n, p in policies.items() if pod in _selected(api, p["spec"]["podSelector"]))
    admitted_by = sorted(n for n in STORES for rule in policies[n]["spec"]["ingress"] for peer in rule["from"]
                         if pod in _selected(api, peer["podSelector"]))
    assert selecting == ["allow-dns", "default-deny", "jobs-https"] and admitted_by == []
