"""Kube tier, issue 26 item 6: Pod Security `restricted` enforced by a real kube-apiserver's Pod
Security Admission in a namespace labelled as 03-app plans `langfuse`, with the release installed
from 03-app's planned values and the e2e suite's IRSA Job; and the encrypted class as the default
StorageClass the API server fills into a claim that names none.

Real: etcd, kube-apiserver (the PodSecurity and DefaultStorageClass admission plugins),
kube-controller-manager (the Deployment, ReplicaSet, StatefulSet and Job controllers create the pods,
so what PSA judges is what they would send on EKS), kube-scheduler, helm with chart 1.5.19 and
03-app's planned values, labels and StorageClass. Stand-ins: kwok for the kubelets (nothing runs:
whether aws-cli works as uid 1000 only the e2e IRSA stage shows). The release goes to namespace
`psa`, so this file does not meet the other kube files' releases.
"""

from __future__ import annotations

import contextlib
import uuid

import pytest

from lfharness.core.wait import retry
from lfharness.stack import k8s
from lfharness.testing.chartrig import source
from lfharness.testing.cluster import binaries
from lfharness.testing.cluster.helm import Helm, PlannedRelease, apply_secrets, delete_namespace, planned_release

pytestmark = pytest.mark.kube

_REASON = binaries.unavailable_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)
_CHART = source.locate(source.release_pin())
if _CHART is None:
    pytest.skip("kube tier (chart install): " + source.unavailable_reason(source.release_pin()), allow_module_level=True)

NAMESPACE = "psa"
WORKLOADS = ("Deployment/langfuse-web", "Deployment/langfuse-worker", "StatefulSet/langfuse-clickhouse-shard0",
             "StatefulSet/langfuse-redis-primary")
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def _core(api):
    from kubernetes import client

    return client.CoreV1Api(api)


def _old_root_job(name: str) -> dict:
    """The IRSA Job as k8s.job_manifest made it before issue 26: aws-cli as the image's root user,
    no securityContext."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 300, "template": {"spec": {
                "serviceAccountName": "langfuse", "restartPolicy": "Never",
                "containers": [{"name": "check", "image": k8s.IRSA_CHECK_IMAGE, "command": ["sh", "-c", "true"]}]}}}}


def _refusals(api) -> list[str]:
    """What Pod Security Admission refused in NAMESPACE, from the controllers' FailedCreate events."""
    return sorted({f"{e.involved_object.kind}/{e.involved_object.name}: {e.message}"
                   for e in _core(api).list_namespaced_event(NAMESPACE).items
                   if e.reason == "FailedCreate" and "PodSecurity" in (e.message or "")})


def _job_refusals(api, name: str) -> list[str]:
    return [r for r in _refusals(api) if r.startswith(f"Job/{name}:")]


def _pod_of_job(api, name: str) -> list[str]:
    return [p.metadata.name for p in _core(api).list_namespaced_pod(NAMESPACE, label_selector=f"job-name={name}").items]


# --- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def release(app_plan, secret_exposed_plan) -> PlannedRelease:
    return planned_release(app_plan, secrets_from=secret_exposed_plan)


@pytest.fixture(scope="module")
def api(local_kube):
    local_kube.cluster.wait_addons_ready()
    return local_kube.cluster.api_client()


@pytest.fixture(scope="module")
def namespace(request, api, app_plan, release) -> dict[str, str]:
    """NAMESPACE with the labels 03-app plans for `langfuse`, then 03-app's StorageClass, Secret and
    ClickHouse volume and claim (namespace and PersistentVolume go at the end)."""
    def cleanup() -> None:
        delete_namespace(api, NAMESPACE, timeout=90)
        for volume in release.volumes_for(NAMESPACE)[0]:
            with contextlib.suppress(Exception):  # gone already, or never made
                _core(api).delete_persistent_volume(volume["metadata"]["name"])

    request.addfinalizer(cleanup)
    labels = dict(app_plan.after("kubernetes_namespace_v1.langfuse[0]")["metadata"][0]["labels"])
    _core(api).create_namespace({"metadata": {"name": NAMESPACE, "labels": labels}})
    apply_secrets(api, release, NAMESPACE)
    return dict(_core(api).read_namespace(NAMESPACE).metadata.labels)


@pytest.fixture(scope="module")
def installed(namespace, local_kube, release, api) -> k8s.Kube:
    """The chart installed (no --wait: a refused pod would only show as helm's timeout) into the
    restricted namespace, once another file's release has left the two nodes; then every workload
    Ready, or what PSA refused."""
    def others() -> list[str]:
        pods = _core(api).list_pod_for_all_namespaces(label_selector="app.kubernetes.io/instance=langfuse").items
        return [f"{p.metadata.namespace}/{p.metadata.name}" for p in pods if p.metadata.namespace != NAMESPACE]

    retry(others, timeout=120, interval=1, what="other releases' pods gone", validator=lambda left: not left)
    Helm(local_kube.cluster.kubeconfig, frozenset(release.secret_strings())).install(
        release, _CHART.path, namespace=NAMESPACE, wait=False)
    kube = k8s.Kube(local_kube.cluster.kubeconfig)
    retry(lambda: (_refusals(api), k8s.all_ready(kube.pods(NAMESPACE)) and len(kube.pods(NAMESPACE)) >= 4),
          timeout=150, interval=1, what=f"the release's pods in {NAMESPACE} Ready, or refused by PSA",
          validator=lambda state: bool(state[0]) or state[1])
    return kube


# --- tests ------------------------------------------------------------------------------------------

def test_the_namespace_is_labelled_restricted_enforce(namespace):
    """Issue 26 item 6: the API server holds 03-app's labels: enforce restricted (the fixture's
    namespace is what the rest of this file's PSA checks run in)."""
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"


def test_psa_restricted_admits_every_release_pod(installed, api):
    """Issue 26 item 6: web, worker, ClickHouse and Valkey, created by the real controllers from
    chart 1.5.19 and 03-app's planned values, pass Pod Security `restricted` enforced by the API
    server: no FailedCreate for PodSecurity, and each workload has its pods, all Ready."""
    from kubernetes import client

    assert _refusals(api) == []
    apps = client.AppsV1Api(api)
    owned = {}
    for workload in WORKLOADS:
        kind, name = workload.split("/")
        read = apps.read_namespaced_deployment if kind == "Deployment" else apps.read_namespaced_stateful_set
        status = read(name, NAMESPACE).status
        owned[workload] = (status.replicas, status.ready_replicas)
    assert owned == dict.fromkeys(WORKLOADS, (1, 1))
    assert k8s.all_ready(installed.pods(NAMESPACE))


def test_psa_restricted_admits_the_irsa_job_pod(installed, api):
    """Issue 26 item 6, FR8: the e2e IRSA Job (k8s.job_manifest: non-root uid, RuntimeDefault
    seccomp, no privilege escalation, capabilities dropped, HOME on an emptyDir) gets its pod made
    by the real Job controller in the restricted namespace."""
    from kubernetes import client

    name = f"irsa-check-{uuid.uuid4().hex[:6]}"
    client.BatchV1Api(api).create_namespaced_job(
        NAMESPACE, k8s.job_manifest(NAMESPACE, name, "langfuse", k8s.IRSA_CHECK_IMAGE, "true"))
    pods, refused = retry(lambda: (_pod_of_job(api, name), _job_refusals(api, name)), timeout=60, interval=0.5,
                          what=f"the pod of Job {name}, or PSA's refusal", validator=lambda s: bool(s[0] or s[1]))
    assert (len(pods), refused) == (1, [])


def test_psa_restricted_refuses_the_old_root_irsa_job(installed, api):
    """Issue 26 item 6 (fail-before): the IRSA Job as it was (aws-cli as root, no securityContext)
    gets no pod: the Job controller's create is refused with PodSecurity "restricted" naming
    runAsNonRoot, seccompProfile, allowPrivilegeEscalation and capabilities."""
    from kubernetes import client

    name = f"irsa-root-{uuid.uuid4().hex[:6]}"
    client.BatchV1Api(api).create_namespaced_job(NAMESPACE, _old_root_job(name))
    refused = retry(lambda: _job_refusals(api, name), timeout=60, interval=0.5,
                    what=f"PSA's refusal of Job {name}", validator=bool)
    assert _pod_of_job(api, name) == []
    message = refused[0]
    assert 'violates PodSecurity "restricted' in message
    assert all(term in message for term in ("runAsNonRoot", "seccompProfile", "allowPrivilegeEscalation",
                                            "capabilities"))


def test_a_claim_naming_no_class_gets_the_encrypted_class(namespace, api, app_plan):
    """Issue 26 item 6: with 03-app's objects on the cluster, the API server's DefaultStorageClass
    admission fills 03-app's encrypted class into a claim that names none: it is the only default
    (the EBS CSI addon's own class is off, 01-network)."""
    from kubernetes import client

    planned = app_plan.after("kubernetes_storage_class_v1.gp3_encrypted[0]")["metadata"][0]["name"]
    defaults = [c.metadata.name for c in client.StorageV1Api(api).list_storage_class().items
                if (c.metadata.annotations or {}).get(DEFAULT_CLASS) == "true"]
    claim = _core(api).create_namespaced_persistent_volume_claim(NAMESPACE, {
        "metadata": {"name": f"no-class-{uuid.uuid4().hex[:6]}"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert (defaults, claim.spec.storage_class_name) == ([planned], planned)
