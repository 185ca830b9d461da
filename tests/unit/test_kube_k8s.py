"""The harness's Kubernetes access (lfharness/stack/k8s.py) against a real Kubernetes 1.35 API server
(kube tier): pods and readiness, restart counts, Jobs reaching Complete and Failed, diagnostics,
port-forwards.

Real: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl. Stand-ins: kwok
for the kubelets (its stages decide a pod's fate: Ready at once; a Job pod whose script ends with
`exit 1` fails with exit code 1, any other completes; an annotated pod's first container restarts
once, OOMKilled exit 137); container logs are kwok's stand-in log files; a port-forward reaches
the local Langfuse API stand-in (lfharness/testing/langfuse_fake.py) instead of a container.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from lfharness.core.wait import retry
from lfharness.stack import k8s, langfuse_api
from lfharness.testing.cluster import binaries, kwok, localkube
from lfharness.testing.cluster.helm import unschedulable
from lfharness.testing.cluster.nodes import NODES

pytestmark = pytest.mark.kube

_REASON = binaries.unavailable_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

NAMESPACE = "harness"


@pytest.fixture(scope="module")
def kubectl(local_kube) -> k8s.Kube:
    return k8s.Kube(local_kube.cluster.kubeconfig)


@pytest.fixture(scope="module")
def web(kubectl, local_kube):
    """A Deployment + Service named like the release's web (port 3000), in its own namespace."""
    labels = {"app": "web"}
    manifests = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NAMESPACE},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                  "spec": {"containers": [{"name": "web", "image": "stand-in.invalid/web:never-pulled",
                                           "ports": [{"containerPort": localkube.LANGFUSE_WEB_PORT}],
                                           "env": [{"name": "SALT", "value": "literal-secret-value"}],
                                           "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "langfuse-web", "namespace": NAMESPACE},
         "spec": {"selector": labels, "ports": [{"port": 3000, "targetPort": localkube.LANGFUSE_WEB_PORT}]}},
    ]
    import json

    kubectl.run("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
    return kubectl.wait_all_ready(NAMESPACE, timeout=30)


def _web_pod(kubectl: k8s.Kube) -> str:
    return next(p.metadata.name for p in kubectl.pods(NAMESPACE) if p.metadata.name.startswith("web-"))


def test_pods_of_a_ready_deployment_are_listed_and_all_ready(kubectl, web):
    """FR13, FR22: pods() lists the Deployment's pod as the API server has it (scheduled onto one
    of the two nodes by the real scheduler) and all_ready accepts it (kwok stand-in kubelet)."""
    pods = kubectl.pods(NAMESPACE)
    assert [p.metadata.name.startswith("web-") for p in pods] == [True]
    assert pods[0].spec.node_name in {name for name, _, _ in NODES}
    assert k8s.all_ready(pods)


def test_all_ready_is_false_while_a_pod_cannot_be_scheduled(kubectl, web):
    """FR22: a pod the scheduler cannot place (it asks for more memory than a t3.medium has)
    keeps all_ready false: the wait for readiness does not pass early (real scheduler)."""
    import json

    name = f"too-big-{uuid.uuid4().hex[:6]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {
        "containers": [{"name": "big", "image": "stand-in.invalid/big:never-pulled",
                        "resources": {"requests": {"memory": "5Gi"}}}]}}
    kubectl.run("apply", "-f", "-", stdin=json.dumps(pod))
    try:
        message = retry(lambda: unschedulable(kubectl.api, NAMESPACE).get(name, ""), timeout=20,
                        interval=0.2, what="the scheduler's verdict", validator=bool)
        assert "Insufficient memory" in message
        assert k8s.all_ready(kubectl.pods(NAMESPACE)) is False
    finally:
        kubectl.run("-n", NAMESPACE, "delete", "pod", name, "--wait=false")


def test_a_restart_after_readiness_is_counted_with_its_reason(kubectl, web):
    """FR22, issue 10 item 13: restart_counts taken at readiness, then a container restarts
    (kwok's container-restart stage: OOMKilled, exit 137): restarts_since reports exactly that
    container with the reason and exit code from lastState.terminated."""
    baseline = k8s.restart_counts(kubectl.pods(NAMESPACE))
    pod = _web_pod(kubectl)
    kubectl.run("-n", NAMESPACE, "annotate", "pod", pod, f"{kwok.RESTART_ANNOTATION}=true")
    restarts = retry(lambda: k8s.restarts_since(baseline, kubectl.pods(NAMESPACE)), timeout=20, interval=0.2,
                     what="the restart to show", validator=bool)
    assert [(r.pod, r.container, r.count, r.reason, r.exit_code) for r in restarts] == [
        (pod, "web", 1, "OOMKilled", 137)]


def test_a_completing_job_returns_its_pod_log(kubectl, web):
    """Issue 10 item 12: run_job applies the Job, sees Complete (real Job controller; kwok
    completes the pod) and returns the pod's log (kwok's stand-in log file)."""
    started = time.monotonic()
    log = kubectl.run_job(NAMESPACE, f"ok-{uuid.uuid4().hex[:6]}", "default", "stand-in.invalid/job:never-pulled",
                          "echo irsa-ok", timeout=60, interval=0.5)
    assert kwok.JOB_LOG_TEXT in log
    assert time.monotonic() - started < 30


def test_a_failing_job_raises_at_once_with_its_pod_log(kubectl, web):
    """Issue 10 item 12: a Job whose pod fails (kwok's pod-fail stage, exit code 1) raises
    JobFailed with the Job controller's reason and the pod's log, long before the timeout."""
    started = time.monotonic()
    with pytest.raises(k8s.JobFailed) as failed:
        kubectl.run_job(NAMESPACE, f"fail-{uuid.uuid4().hex[:6]}", "default", "stand-in.invalid/job:never-pulled",
                        f"echo denied >&2; {kwok.FAILING_SCRIPT_SUFFIX}", timeout=120, interval=0.5)
    assert time.monotonic() - started < 60
    assert "BackoffLimitExceeded" in str(failed.value)
    assert kwok.JOB_LOG_TEXT in str(failed.value)


def test_diagnostics_write_pods_events_logs_and_the_previous_log_of_a_restart(kubectl, web, tmp_path):
    """Issue 10 item 13: collect_diagnostics writes pods, descriptions, events, PVCs, Jobs and each
    container's log from the real API server (logs: kwok's stand-in files); a restarted container
    also gets its previous log; the literal env value in describe output is redacted."""
    pod = _web_pod(kubectl)
    kubectl.run("-n", NAMESPACE, "annotate", "--overwrite", "pod", pod, f"{kwok.RESTART_ANNOTATION}=true")
    retry(lambda: k8s.restart_counts(kubectl.pods(NAMESPACE)).get(f"{pod}/web", 0), timeout=20, interval=0.2,
          what="the restart to show", validator=bool)
    kubectl.collect_diagnostics(NAMESPACE, tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"pods.txt", "describe-pods.txt", "events.txt", "pvc.txt", "jobs.txt", f"{pod}.web.log",
            f"{pod}.web.previous.log"} <= files, sorted(files)
    assert pod in (tmp_path / "pods.txt").read_text()
    assert kwok.PREVIOUS_LOG_TEXT in (tmp_path / f"{pod}.web.previous.log").read_text()
    describe = (tmp_path / "describe-pods.txt").read_text()
    assert "SALT:" in describe and "literal-secret-value" not in describe


def test_port_forward_reaches_the_service_behind_it(kubectl, web, local_kube):
    """FR19, FR22: port_forward svc/langfuse-web 3000 through the real API server and kubectl
    reaches what stands behind the pod's port (the local Langfuse API stand-in): health 200."""
    with kubectl.port_forward(NAMESPACE, "langfuse-web", 3000, timeout=20) as port:
        response = langfuse_api.health(f"http://127.0.0.1:{port}")
    assert response.status_code == 200
    assert any(r.path == "/api/public/health" for r in local_kube.langfuse.requests())


def test_port_forward_to_a_missing_service_fails_at_once_with_kubectls_message(kubectl, web):
    """FR19, issue 10 item 11: a port-forward to a service that does not exist fails within
    seconds with kubectl's own message (real kubectl against the real API server)."""
    started = time.monotonic()
    with pytest.raises(k8s.PortForwardError, match=r'services \\?"no-such-service\\?" not found'):
        with kubectl.port_forward(NAMESPACE, "no-such-service", 3000, timeout=60):
            pass
    assert time.monotonic() - started < 15


def test_requests_through_a_closed_port_forward_fail(kubectl, web):
    """FR19: the port-forward is a scoped resource: once the block ends, its local port is closed."""
    with kubectl.port_forward(NAMESPACE, "langfuse-web", 3000, timeout=20) as port:
        pass
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/api/public/health", timeout=2)


def test_wait_all_ready_follows_a_new_pod_to_ready_by_watch(kubectl, web):
    """FR22: wait_all_ready returns once a pod created after the wait began is Ready (the watch
    sees the scheduler and kwok's pod-ready stage move it; no polling interval to wait out)."""
    import json

    namespace = f"watch-{uuid.uuid4().hex[:6]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late", "namespace": namespace}, "spec": {
        "containers": [{"name": "late", "image": "stand-in.invalid/late:never-pulled"}]}}
    kubectl.run("create", "namespace", namespace)
    try:
        kubectl.run("apply", "-f", "-", stdin=json.dumps(pod))
        started = time.monotonic()
        items = kubectl.wait_all_ready(namespace, timeout=30)
        assert [p.metadata.name for p in items] == ["late"]
        assert time.monotonic() - started < 15
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false")


def test_a_failed_block_leaves_diagnostics_and_its_own_error(kubectl, web, tmp_path):
    """Issue 10 item 13: when the block (the 03-app apply) raises, diagnostics of the namespace are
    collected from the real API server and the original error still propagates."""
    with pytest.raises(RuntimeError, match="context deadline exceeded"):
        with kubectl.diagnostics_on_failure(NAMESPACE, tmp_path / "diag"):
            raise RuntimeError("helm_release.langfuse: context deadline exceeded")
    assert "web-" in (tmp_path / "diag" / "pods.txt").read_text()


def test_the_client_gets_its_credential_from_the_kubeconfigs_exec_plugin(local_kube, tmp_path):
    """FR26, issue 10 item 2: the kubeconfig write_exec_kubeconfig generates is loaded by the
    kubernetes client's own loader, which runs the exec plugin with the .env credentials passed in
    memory (not written to the file) and uses the token it prints. Stand-in: a plugin script that
    prints the local cluster's admin token only when it gets the expected key, in place of the EKS
    token plugin (the API server here does not accept EKS tokens)."""
    import base64
    import json
    import stat
    import sys

    from lfharness.core import envfile

    admin = json.loads(local_kube.cluster.kubeconfig.read_text())
    key_id = "AKIA" + "K" * 16
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"if os.environ.get('AWS_ACCESS_KEY_ID') != {key_id!r}:\n    sys.exit('no .env key given')\n"
        f"print(json.dumps({json.dumps(k8s.exec_credential(admin['users'][0]['user']['token']))}))\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
    path = k8s.write_exec_kubeconfig(tmp_path / "kubeconfig", admin["clusters"][0]["cluster"]["server"], ca,
                                     "langfuse", "us-east-1")
    config = json.loads(path.read_text())
    config["users"][0]["user"]["exec"].update(command=str(plugin), args=[])
    path.write_text(json.dumps(config))
    settings = envfile.Settings(key_id, "s" * 40, "us-east-1", "t" * 30, "org", "ops@example.com", "Ops",
                                "correct-horse-battery")
    assert key_id not in path.read_text()
    assert base64.b64decode(ca)  # the CA the client verifies the server with
    from kubernetes import client

    nodes = client.CoreV1Api(k8s.Kube(path, env=settings.child_env()).api).list_node().items
    names = {n.metadata.name for n in nodes}
    assert names == {name for name, _, _ in NODES}


def test_connect_establishes_a_forward_again_after_its_pod_is_deleted(kubectl, web, local_kube):
    """FR19, issue 27: `connect`'s forward on a fixed local port reaches the service; when the pod
    behind it is deleted (a restart), kubectl exits and the harness starts it again: the same local
    port answers from the new pod (real kubectl and API server; kwok's pods)."""
    from lfharness.core.procs import free_port
    from lfharness.stack import connect

    port = free_port()
    forward = connect.Forward("Langfuse UI and API", "langfuse-web", 3000, port)
    with connect.Holder(kubectl, NAMESPACE, [forward], restart_delay=0.5) as holder:
        url = f"http://127.0.0.1:{port}"
        retry(lambda: langfuse_api.health(url).status_code, timeout=30, interval=0.5, what="health through connect",
              validator=lambda s: s == 200, retry_on=(requests.RequestException,))
        old = _web_pod(kubectl)
        kubectl.run("-n", NAMESPACE, "delete", "pod", old, "--wait=true", timeout=60)
        retry(lambda: holder.restarts["langfuse-web"], timeout=60, interval=0.5,
              what="the forward re-established after its pod went", validator=lambda n: n >= 1)
        # Only the web pod: the Jobs of the tests above leave completed pods in the namespace.
        retry(lambda: [p for p in kubectl.pods(NAMESPACE) if p.metadata.name.startswith("web-")], timeout=30,
              interval=0.5, what="the new web pod Ready", validator=lambda pods: bool(pods) and k8s.all_ready(pods))
        status = retry(lambda: langfuse_api.health(url).status_code, timeout=60, interval=0.5,
                       what="health through the re-established forward", validator=lambda s: s == 200,
                       retry_on=(requests.RequestException,))
    assert (status, _web_pod(kubectl) != old) == (200, True)
