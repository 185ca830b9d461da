"""What an operator relies on from lfharness/stack/k8s.py, case by case (static tier): readiness
verdicts, Job success and failure, timeouts that fire on time, diagnostics that never print a
secret, the EKS token and the kubeconfig the client and kubectl use (issue 28).

Stand-ins: for the kubernetes client's API classes and its watch, `FakeCore` / `FakeBatch` /
`FakeApps` / `FakeWatch` below answer with typed objects (kubernetes.client models) from what the
test scripts, recording every call; a watch without events ends after its timeout_seconds as the
API server ends it. `FakeClock` stands in for k8s.py's `time` (monotonic advances a millisecond a
call; sleep and an idle watch advance it), so a five-minute timeout is checked in microseconds.
For kubectl: lfharness.testing.localsvc.FakeCli (answers by rule, records calls) and
lfharness.testing.portforward_standin (holds the local port as `kubectl port-forward` does). The
kube tier (tests/unit/test_kube_k8s.py) runs the same code against a real kube-apiserver.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lfharness.core.redact import Redactor
from lfharness.core.wait import WaitTimeout
from lfharness.stack import k8s
from lfharness.testing import sigv4
from lfharness.testing.localsvc import FakeCli

pytestmark = pytest.mark.static

NS = "langfuse"
ROOT = Path(__file__).resolve().parents[2]


# --- stand-ins ------------------------------------------------------------------------------------

class FakeClock:
    """k8s.py's `time`: monotonic advances 1 ms a call (real code takes time), sleep advances it by
    its argument and, like time.sleep, refuses a negative one."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        self.now += 0.001
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        self.sleeps.append(seconds)
        self.now += seconds


class FakeWatch:
    """kubernetes.watch.Watch: each stream() takes the next scripted batch (a list of events, or an
    exception to raise); with none left it is an idle watch, which the API server ends after
    timeout_seconds. A watch with no timeout_seconds would outlive any deadline: refused."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.batches: list[list[dict] | Exception] = []
        self.streams: list[dict[str, Any]] = []

    def __call__(self) -> FakeWatch:
        return self

    def stream(self, func, *args, **kwargs) -> Iterator[dict]:
        self.streams.append({"func": func.__name__, "args": args, **kwargs, "at": self.clock.now})
        if not kwargs.get("timeout_seconds"):
            raise AssertionError("a watch without timeout_seconds blocks past the deadline")
        if self.batches:
            batch = self.batches.pop(0)
            if isinstance(batch, Exception):
                raise batch
            yield from batch
            return
        self.clock.now += kwargs["timeout_seconds"]


class FakeCore:
    """kubernetes.client.CoreV1Api over lists the test sets, all in namespace NS (another namespace
    holds nothing, as on the cluster); `failures[method]` holds exceptions raised by that method's
    next calls, one a call."""

    def __init__(self) -> None:
        self.pods: list[client.V1Pod] = []
        self.services: dict[str, client.V1Service] = {}
        self.secrets: dict[str, client.V1Secret] = {}
        self.claims: list[str] = []
        self.node_names: list[str] = []
        self.logs: dict[tuple[str, str, bool], str | None] = {}
        self.failures: dict[str, list[Exception]] = {}
        self.calls: list[tuple[str, tuple, dict]] = []

    def _call(self, method: str, *args, **kwargs) -> None:
        self.calls.append((method, args, kwargs))
        if self.failures.get(method):
            raise self.failures[method].pop(0)

    def list_namespaced_pod(self, namespace: str, label_selector: str | None = None, **kwargs) -> client.V1PodList:
        self._call("list_namespaced_pod", namespace, label_selector=label_selector, **kwargs)
        wanted = dict(term.split("=", 1) for term in label_selector.split(",")) if label_selector else {}
        items = [p for p in self.pods if wanted.items() <= (p.metadata.labels or {}).items() and namespace == NS]
        return client.V1PodList(items=items, metadata=client.V1ListMeta(resource_version="100"))

    def read_namespaced_service(self, name: str, namespace: str) -> client.V1Service:
        self._call("read_namespaced_service", name, namespace)
        if namespace != NS:
            raise api_error(404, "Not Found")
        return self.services[name]

    def read_namespaced_secret(self, name: str, namespace: str) -> client.V1Secret:
        self._call("read_namespaced_secret", name, namespace)
        if namespace != NS:
            raise api_error(404, "Not Found")
        return self.secrets[name]

    def list_namespaced_persistent_volume_claim(self, namespace: str) -> client.V1PersistentVolumeClaimList:
        self._call("list_namespaced_persistent_volume_claim", namespace)
        return client.V1PersistentVolumeClaimList(items=[
            client.V1PersistentVolumeClaim(metadata=client.V1ObjectMeta(name=n)) for n in self.claims
            if namespace == NS])

    def list_node(self) -> client.V1NodeList:
        self._call("list_node")
        return client.V1NodeList(items=[client.V1Node(metadata=client.V1ObjectMeta(name=n)) for n in self.node_names])

    def read_namespaced_pod_log(self, name: str, namespace: str, container: str, tail_lines: int,
                                previous: bool = False) -> str | None:
        self._call("read_namespaced_pod_log", name, namespace, container=container, tail_lines=tail_lines,
                   previous=previous)
        if namespace != NS:
            raise api_error(404, "Not Found", f'pods "{name}" not found')
        return self.logs.get((name, container, previous), f"{name}/{container} log line")


class FakeBatch:
    """kubernetes.client.BatchV1Api: records the Jobs created; the watch of them is FakeWatch's."""

    def __init__(self) -> None:
        self.created: list[tuple[str, dict]] = []
        self.create_error: Exception | None = None

    def create_namespaced_job(self, namespace: str, body: dict) -> None:
        if self.create_error is not None:
            raise self.create_error
        # As the API server: a batch/v1 Job in the namespace of the request, no unknown field (the
        # client's typed model forbids extra fields, as server-side field validation does).
        assert (body["apiVersion"], body["kind"], body["metadata"]["namespace"]) == ("batch/v1", "Job", namespace)
        job = client.V1Job.model_validate(body)
        # Container and volume names must be DNS-1123 labels, or the API server refuses the Job (422).
        pod_spec = job.spec.template.spec
        for name in [c.name for c in pod_spec.containers] + [v.name for v in pod_spec.volumes or []]:
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), f"invalid DNS-1123 label {name!r}"
        self.created.append((namespace, body))

    def list_namespaced_job(self, namespace: str, **kwargs) -> None:  # only handed to the watch
        raise AssertionError("listed outside a watch")


class FakeApps:
    """kubernetes.client.AppsV1Api's scale subresource: records (kind, name, namespace, body)."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, str, str, dict]] = []
        self.error: Exception | None = None

    def _patch(self, kind: str, name: str, namespace: str, body: dict) -> None:
        if self.error is not None:
            raise self.error
        self.patches.append((kind, name, namespace, body))

    def patch_namespaced_deployment_scale(self, name: str, namespace: str, body: dict) -> None:
        self._patch("deployment", name, namespace, body)

    def patch_namespaced_stateful_set_scale(self, name: str, namespace: str, body: dict) -> None:
        self._patch("statefulset", name, namespace, body)


class Cluster:
    """The stand-ins wired in place of the kubernetes client, and a Kube using them."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redactor: Redactor | None = None,
                 kubectl_rules: list[tuple[str, dict]] | None = None) -> None:
        import kubernetes.client
        import kubernetes.watch

        self.clock, self.core, self.batch, self.apps = FakeClock(), FakeCore(), FakeBatch(), FakeApps()
        self.watch = FakeWatch(self.clock)
        monkeypatch.setattr(k8s, "time", self.clock)
        self.api = object()  # the client built from the kubeconfig; API classes on any other reach no cluster
        monkeypatch.setattr(kubernetes.client, "CoreV1Api", lambda api: self.core if api is self.api else None)
        monkeypatch.setattr(kubernetes.client, "BatchV1Api", lambda api: self.batch if api is self.api else None)
        monkeypatch.setattr(kubernetes.client, "AppsV1Api", lambda api: self.apps if api is self.api else None)
        monkeypatch.setattr(kubernetes.watch, "Watch", self.watch)
        self.kubectl = FakeCli(tmp_path / "bin", "kubectl", kubectl_rules or [(r".", {"stdout": ""})])
        self.kube = k8s.Kube(tmp_path / "kubeconfig", binary=self.kubectl.path, redactor=redactor)
        self.kube.__dict__["api"] = self.api


@pytest.fixture
def cluster(tmp_path, monkeypatch) -> Cluster:
    return Cluster(tmp_path, monkeypatch)


def _status(name: str, ready: bool = True, restarts: int = 0, reason: str | None = None,
            exit_code: int | None = None) -> client.V1ContainerStatus:
    last = client.V1ContainerState(terminated=client.V1ContainerStateTerminated(reason=reason, exit_code=exit_code)) \
        if reason or exit_code is not None else None
    return client.V1ContainerStatus(name=name, ready=ready, restart_count=restarts, image="x", image_id="",
                                    last_state=last)


def pod(name: str, phase: str | None = "Running", *statuses: client.V1ContainerStatus,
        init: tuple[client.V1ContainerStatus, ...] = (), labels: dict[str, str] | None = None,
        terminating: bool = False, version: str = "1") -> client.V1Pod:
    """A typed v1 Pod as the client returns it; containers named after the statuses (one `app`
    container, ready, when none is given)."""
    statuses = statuses or (_status("app"),)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels, resource_version=version,
                                     deletion_timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) if terminating else None),
        spec=client.V1PodSpec(containers=[client.V1Container(name=s.name) for s in statuses],
                              init_containers=[client.V1Container(name=s.name) for s in init] or None),
        status=None if phase is None else client.V1PodStatus(phase=phase, container_statuses=list(statuses),
                                                             init_container_statuses=list(init) or None))


def job(*conditions: tuple[str, str, str, str], active: int | None = None,
        failed: int | None = None) -> client.V1Job:
    """A typed v1 Job; conditions are (type, status, reason, message)."""
    return client.V1Job(metadata=client.V1ObjectMeta(name="irsa-check"), status=client.V1JobStatus(
        active=active, failed=failed, conditions=[client.V1JobCondition(type=t, status=s, reason=r, message=m)
                                                  for t, s, r, m in conditions] or None))


def api_error(status: int = 403, reason: str = "Forbidden", body: str = "") -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = body
    return exc


# --- readiness ------------------------------------------------------------------------------------

def test_a_pod_without_status_yet_is_not_ready():
    """FR22: a pod the API server has not given a status yet (just created) is not ready."""
    assert k8s.all_ready([pod("web-1", None)]) is False


def test_a_running_pod_whose_status_lists_no_container_is_not_ready():
    """FR22: Running with no container status reported yet is not ready."""
    p = pod("web-1")
    p.status.container_statuses = None
    assert k8s.all_ready([p]) is False


def test_a_finished_job_pod_does_not_hold_readiness_back():
    """FR22: a Succeeded pod (a finished Job's) counts as ready even with no ready container."""
    assert k8s.all_ready([pod("web-1"), pod("migrate-1", "Succeeded", _status("migrate", ready=False))]) is True


def test_a_finished_job_pod_listed_first_does_not_hide_an_unready_pod():
    """FR22: a Succeeded pod is skipped, not taken as the verdict for the pods after it."""
    assert k8s.all_ready([pod("migrate-1", "Succeeded"), pod("web-1", "Pending", _status("web", ready=False))]) is False


def test_a_pod_on_a_lost_node_is_not_ready_though_its_containers_last_said_so():
    """FR22: only a Running pod is ready: phase Unknown (node lost) with containers last reported
    ready is not."""
    assert k8s.all_ready([pod("web-1", "Unknown", _status("web", ready=True))]) is False


def test_one_unready_pod_among_ready_ones_is_not_ready():
    """FR22: readiness is every pod's; the last pod unready is enough to say no."""
    assert k8s.all_ready([pod("web-1"), pod("worker-1", "Running", _status("app", ready=False))]) is False


def test_wait_all_ready_returns_at_once_when_the_listing_is_ready(cluster):
    """FR22: pods already ready are returned without watching (fake client)."""
    cluster.core.pods = [pod("web-1"), pod("worker-1")]
    ready = cluster.kube.wait_all_ready(NS, timeout=300)
    assert ([p.metadata.name for p in ready], cluster.watch.streams) == (["web-1", "worker-1"], [])


def test_wait_all_ready_returns_when_a_watched_pod_becomes_ready(cluster):
    """FR22: a pod that turns Ready during the watch ends the wait with the pods as they are now
    (fake client and watch)."""
    cluster.core.pods = [pod("web-1", "Pending")]
    cluster.watch.batches = [[{"type": "MODIFIED", "object": pod("web-1", version="7")}]]
    ready = cluster.kube.wait_all_ready(NS, timeout=300)
    assert [(p.metadata.name, p.status.phase) for p in ready] == [("web-1", "Running")]


def test_the_watch_starts_from_the_listing_and_never_outlives_the_deadline(cluster):
    """FR22: the watch continues from the listing's resourceVersion (no event missed between them),
    in the namespace asked, and asks the server to end it by the wait's deadline (fake watch)."""
    cluster.core.pods = [pod("web-1", "Pending")]
    cluster.watch.batches = [[{"type": "MODIFIED", "object": pod("web-1", version="7")}]]
    cluster.kube.wait_all_ready(NS, timeout=30)
    stream = cluster.watch.streams[0]
    assert (stream["func"], stream["args"], stream["resource_version"]) == ("list_namespaced_pod", (NS,), "100")
    assert 1 <= stream["timeout_seconds"] <= 30


def test_a_second_watch_resumes_after_the_last_event_seen(cluster):
    """FR22: when a watch ends without readiness, the next one resumes from the last event's
    resourceVersion, so no change is seen twice or lost (fake watch)."""
    cluster.core.pods = [pod("web-1", "Pending")]
    cluster.watch.batches = [[{"type": "MODIFIED", "object": pod("web-1", "Pending", version="7")}],
                             [{"type": "MODIFIED", "object": pod("web-1", version="8")}]]
    cluster.kube.wait_all_ready(NS, timeout=300)
    assert [s["resource_version"] for s in cluster.watch.streams] == ["100", "7"]


def test_long_waits_watch_in_pieces_of_at_most_a_minute(cluster):
    """FR22: a 10-minute wait is several watches of at most 60 s (the server drops longer ones)."""
    cluster.core.pods = [pod("web-1", "Pending")]
    with pytest.raises(WaitTimeout):
        cluster.kube.wait_all_ready(NS, timeout=600)
    assert max(s["timeout_seconds"] for s in cluster.watch.streams) == 60


def test_a_deleted_unready_pod_no_longer_holds_the_wait(cluster):
    """FR22: a pod deleted during the wait (a replaced pod) leaves the verdict to the others."""
    cluster.core.pods = [pod("web-1"), pod("web-old", "Pending")]
    cluster.watch.batches = [[{"type": "DELETED", "object": pod("web-old", "Pending", version="9")}]]
    ready = cluster.kube.wait_all_ready(NS, timeout=300)
    assert [p.metadata.name for p in ready] == ["web-1"]


def test_an_added_pod_is_waited_for_too(cluster):
    """FR22: a pod created during the wait joins it: ready only once it is ready too."""
    cluster.core.pods = [pod("web-1", "Pending")]
    cluster.watch.batches = [[{"type": "ADDED", "object": pod("worker-1", "Pending", version="5")},
                              {"type": "MODIFIED", "object": pod("web-1", version="6")},
                              {"type": "MODIFIED", "object": pod("worker-1", version="7")}]]
    ready = cluster.kube.wait_all_ready(NS, timeout=300)
    assert sorted(p.metadata.name for p in ready) == ["web-1", "worker-1"]


def test_the_wait_stops_at_the_first_ready_moment_not_at_the_end_of_the_watch(cluster):
    """FR22: the wait returns when the pods are all ready, not after events that follow."""
    cluster.core.pods = [pod("web-1", "Pending")]
    cluster.watch.batches = [[{"type": "MODIFIED", "object": pod("web-1", version="5")},
                              {"type": "MODIFIED", "object": pod("web-1", "Pending", version="6")}]]
    ready = cluster.kube.wait_all_ready(NS, timeout=300)
    assert [p.status.phase for p in ready] == ["Running"]


def test_readiness_timeout_fires_at_its_deadline_naming_the_pods_not_ready(cluster):
    """FR22: pods that never get ready end the wait at its timeout with WaitTimeout naming the
    namespace, the timeout and each pod's phase and ready containers (fake clock and watch)."""
    cluster.core.pods = [pod("web-1"), pod("worker-1", "Pending", _status("worker", ready=False))]
    with pytest.raises(WaitTimeout) as caught:
        cluster.kube.wait_all_ready(NS, timeout=300)
    assert str(caught.value) == ("gave up waiting for all pods in langfuse Ready after 300s; pods: web-1 Running 1/1, "
                                 "worker-1 Pending 0/1; last error: nothing listed yet")
    assert 1300 <= cluster.clock.now <= 1301


def test_a_wait_that_times_out_lists_the_pods_once_not_in_a_loop_in_its_last_second(cluster):
    """FR22: when less than a second is left, the wait watches once more (to its deadline) instead of
    listing the namespace again and again until the deadline passes, which would hammer the API server
    (fake clock: each reading of it takes 1 ms; idle watches last their timeout_seconds)."""
    cluster.core.pods = [pod("worker-1", "Pending", _status("worker", ready=False))]
    with pytest.raises(WaitTimeout):
        cluster.kube.wait_all_ready(NS, timeout=120.5)  # two minute-long watches, then half a second left
    assert [m for m, _, _ in cluster.core.calls].count("list_namespaced_pod") == 1


def test_readiness_timeout_says_no_pods_when_the_namespace_is_empty(cluster):
    """FR22: an empty namespace times out saying so (no pods is never ready)."""
    with pytest.raises(WaitTimeout, match="pods: no pods;"):
        cluster.kube.wait_all_ready(NS, timeout=5)


def test_a_pod_without_status_is_named_in_the_timeout(cluster):
    """FR22: a pod with no status yet shows as `?` with no ready container, not as a crash."""
    p = pod("web-1", None)
    p.spec = None
    cluster.core.pods = [p]
    with pytest.raises(WaitTimeout, match=r"pods: web-1 \? 0/0;"):
        cluster.kube.wait_all_ready(NS, timeout=5)


def test_an_api_error_is_listed_again_after_a_pause_and_the_wait_goes_on(cluster):
    """FR22: an API hiccup (5xx) re-lists after a short pause instead of failing the wait."""
    cluster.core.pods = [pod("web-1")]
    cluster.core.failures["list_namespaced_pod"] = [api_error(503, "Service Unavailable")]
    ready = cluster.kube.wait_all_ready(NS, timeout=300)
    assert ([p.metadata.name for p in ready], cluster.clock.sleeps) == (["web-1"], [2.0])


def test_an_api_server_that_keeps_failing_is_not_hammered_and_the_timeout_names_its_error(cluster):
    """FR22: a failing API server is asked again every 2 s (not in a busy loop) until the timeout,
    which quotes the last error."""
    cluster.core.failures["list_namespaced_pod"] = [api_error(503, "Service Unavailable") for _ in range(1000)]
    with pytest.raises(WaitTimeout, match=r"last error: ApiException: \(503\)"):
        cluster.kube.wait_all_ready(NS, timeout=20)
    assert 9 <= len(cluster.core.calls) <= 11


def test_an_api_error_near_the_deadline_does_not_sleep_past_it(cluster):
    """FR22: the pause after an error is cut at the deadline: the timeout fires on time."""
    cluster.core.failures["list_namespaced_pod"] = [api_error(503, "Service Unavailable") for _ in range(1000)]
    with pytest.raises(WaitTimeout):
        cluster.kube.wait_all_ready(NS, timeout=2.5)
    assert cluster.clock.now <= 1002.6  # the second pause is the half second left, not a whole one


def test_a_broken_connection_during_the_watch_is_retried(cluster):
    """FR22: a dropped connection (urllib3 error) during the watch re-lists, as an API error does."""
    from urllib3.exceptions import ProtocolError

    cluster.core.pods = [pod("web-1", "Pending")]
    cluster.watch.batches = [ProtocolError("Connection broken")]

    def ready_on_relist(*args, **kwargs):
        cluster.core.pods = [pod("web-1")]
        return FakeCore.list_namespaced_pod(cluster.core, *args, **kwargs)

    cluster.core.list_namespaced_pod = ready_on_relist
    ready = cluster.kube.wait_all_ready(NS, timeout=300)
    assert [p.status.phase for p in ready] == ["Running"]


def test_the_last_error_is_cut_to_a_readable_length(cluster):
    """FR22: an API error's text (it can carry a whole response body) is cut to 200 characters."""
    cluster.core.failures["list_namespaced_pod"] = [api_error(500, "x" * 500) for _ in range(100)]
    with pytest.raises(WaitTimeout) as caught:
        cluster.kube.wait_all_ready(NS, timeout=5)
    last = str(caught.value).split("last error: ", 1)[1]
    assert last.startswith("ApiException: (500)") and len(last) == len("ApiException: ") + 200


def test_readiness_is_logged_with_the_pod_count(cluster, caplog):
    """FR22: the log says how many pods became ready, where, and after how long."""
    cluster.core.pods = [pod("web-1"), pod("worker-1")]
    with caplog.at_level(logging.INFO, logger="lfharness.stack.k8s"):
        cluster.kube.wait_all_ready(NS, timeout=300)
    assert "all 2 pods in langfuse ready after 0.0s" in [r.getMessage() for r in caplog.records]


def test_an_api_error_during_the_wait_is_logged(cluster, caplog):
    """FR22: the log says the namespace's listing failed and is tried again."""
    cluster.core.pods = [pod("web-1")]
    cluster.core.failures["list_namespaced_pod"] = [api_error(503, "Service Unavailable")]
    with caplog.at_level(logging.INFO, logger="lfharness.stack.k8s"):
        cluster.kube.wait_all_ready(NS, timeout=300)
    assert any(r.getMessage().startswith("pods in langfuse: ApiException: (503)")
               and r.getMessage().endswith("; listing again") for r in caplog.records)


# --- Jobs -----------------------------------------------------------------------------------------

def _job_pod(container: str = "check") -> client.V1Pod:
    return pod("irsa-check-abcde", "Succeeded", _status(container),
               labels={"batch.kubernetes.io/job-name": "irsa-check"})


def test_a_complete_job_returns_its_pods_log(cluster):
    """FR8: a Job reaching Complete returns its pod's log (what the IRSA check printed)."""
    cluster.core.pods = [_job_pod()]
    cluster.core.logs[("irsa-check-abcde", "check", False)] = "arn:aws:sts::1:assumed-role/langfuse\n"
    cluster.watch.batches = [[{"type": "MODIFIED", "object": job(active=1)},
                              {"type": "MODIFIED", "object": job(("Complete", "True", "", ""))}]]
    assert cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "aws sts get-caller-identity") == \
        "arn:aws:sts::1:assumed-role/langfuse"


def test_the_job_created_runs_the_script_as_the_service_account_in_the_namespace(cluster):
    """FR8: the Job created is job_manifest's for the arguments given (fake batch API)."""
    cluster.core.pods = [_job_pod()]
    cluster.watch.batches = [[{"type": "MODIFIED", "object": job(("Complete", "True", "", ""))}]]
    cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true")
    assert cluster.batch.created == [(NS, k8s.job_manifest(NS, "irsa-check", "langfuse", "img", "true"))]
    created = client.V1Job.model_validate(cluster.batch.created[0][1])
    assert (created.metadata.name, created.spec.template.spec.service_account_name) == ("irsa-check", "langfuse")
    assert [(c.image, c.command) for c in created.spec.template.spec.containers] == [("img", ["sh", "-c", "true"])]


def test_the_job_watch_selects_that_job_and_ends_by_the_deadline(cluster):
    """FR8: the watch follows only the named Job in its namespace, and no longer than the timeout."""
    cluster.core.pods = [_job_pod()]
    cluster.watch.batches = [[{"type": "MODIFIED", "object": job(("Complete", "True", "", ""))}]]
    cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true", timeout=120)
    stream = cluster.watch.streams[0]
    assert (stream["func"], stream["args"], stream["field_selector"]) == (
        "list_namespaced_job", (NS,), "metadata.name=irsa-check")
    assert 118 <= stream["timeout_seconds"] <= 120


def test_a_failed_job_raises_at_once_with_its_reason_and_log(cluster):
    """FR8: a Job reaching Failed raises JobFailed at once (no wait for the timeout) with the
    condition's reason and message and the pod's log (fake client and watch)."""
    cluster.core.pods = [_job_pod()]
    cluster.core.logs[("irsa-check-abcde", "check", False)] = "An error occurred (AccessDenied)"
    cluster.watch.batches = [[{"type": "MODIFIED", "object": job(
        ("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"))}]]
    with pytest.raises(k8s.JobFailed) as caught:
        cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "false", timeout=300)
    assert str(caught.value) == ("Job langfuse/irsa-check failed (BackoffLimitExceeded: Job has reached the "
                                 "specified backoff limit); its pod's log:\nAn error occurred (AccessDenied)")
    assert cluster.clock.now < 1001


def test_a_condition_that_is_not_true_decides_nothing(cluster):
    """FR8: a Failed or Complete condition with status False is not the Job's end."""
    cluster.core.pods = [_job_pod()]
    cluster.watch.batches = [[{"type": "MODIFIED", "object": job(("Failed", "False", "x", "y"))},
                              {"type": "MODIFIED", "object": job(("Failed", "False", "x", "y"),
                                                                 ("Complete", "True", "", ""))}]]
    assert cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true") == \
        "irsa-check-abcde/check log line"


def test_a_complete_job_is_logged(cluster, caplog):
    """FR8: the log names the Job that completed."""
    cluster.core.pods = [_job_pod()]
    cluster.watch.batches = [[{"type": "MODIFIED", "object": job(("Complete", "True", "", ""))}]]
    with caplog.at_level(logging.INFO, logger="lfharness.stack.k8s"):
        cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true")
    assert "Job langfuse/irsa-check complete after 0.0s" in [r.getMessage() for r in caplog.records]


def test_a_job_the_api_refuses_to_create_fails_naming_the_refusal(cluster):
    """FR8: a create refused (Pod Security, quota, RBAC) raises KubectlError with the status,
    reason and the API server's message, without waiting."""
    cluster.batch.create_error = api_error(403, "Forbidden", 'violates PodSecurity "restricted:latest"')
    with pytest.raises(k8s.KubectlError) as caught:
        cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true")
    assert str(caught.value) == ('create Job langfuse/irsa-check: 403 Forbidden: violates PodSecurity '
                                 '"restricted:latest"')
    assert cluster.watch.streams == []


def test_a_job_that_never_ends_times_out_with_its_progress_and_log(cluster):
    """FR8: a Job neither Complete nor Failed by the timeout raises WaitTimeout at the deadline,
    naming the last progress seen and the pod's log so far."""
    cluster.core.pods = [_job_pod()]
    cluster.watch.batches = [[{"type": "MODIFIED", "object": job(active=1, failed=2)}]]
    with pytest.raises(WaitTimeout) as caught:
        cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "sleep 1000", timeout=300)
    assert str(caught.value) == ("gave up waiting for Job langfuse/irsa-check Complete or Failed after 300s "
                                 "(last: active=1, failed=2); its pod's log:\nirsa-check-abcde/check log line")
    assert 1300 <= cluster.clock.now <= 1302


def test_a_job_with_no_status_yet_times_out_saying_so(cluster):
    """FR8: a Job that never reported a status times out with `no status yet`, and a status
    without counts reads as zero."""
    cluster.core.pods = [_job_pod()]
    with pytest.raises(WaitTimeout, match=r"\(last: no status yet\)"):
        cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true", timeout=10)
    cluster.watch.batches = [[{"type": "ADDED", "object": job()}]]
    with pytest.raises(WaitTimeout, match=r"\(last: active=0, failed=0\)"):
        cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true", timeout=10)


def test_an_api_error_during_the_job_watch_is_retried_after_the_interval(cluster):
    """FR8: an API error while watching pauses `interval` seconds and watches again."""
    cluster.core.pods = [_job_pod()]
    cluster.watch.batches = [api_error(500, "Internal Server Error"),
                             [{"type": "MODIFIED", "object": job(("Complete", "True", "", ""))}]]
    cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true", interval=5)
    assert (len(cluster.watch.streams), cluster.clock.sleeps) == (2, [5])


def test_a_job_watch_that_keeps_failing_times_out_on_time_naming_the_error(cluster):
    """FR8: API errors until the deadline end in WaitTimeout at the deadline (the pause is cut
    there) quoting the last error."""
    cluster.core.pods = [_job_pod()]
    cluster.watch.batches = [api_error(500, "Internal Server Error") for _ in range(100)]
    with pytest.raises(WaitTimeout, match=r"\(last: ApiException: \(500\)"):
        cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true", timeout=10.5, interval=5)
    assert cluster.clock.now <= 1010.6  # the third pause is the half second left, not a whole one


def test_the_job_watch_is_asked_to_end_within_the_time_left(cluster):
    """FR8: each re-watch asks the server for no more than the time left (at least 1 s)."""
    cluster.core.pods = [_job_pod()]
    cluster.watch.batches = [api_error(500, "Internal Server Error"), api_error(500, "Internal Server Error")]
    with pytest.raises(WaitTimeout):
        cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true", timeout=12, interval=5)
    # 12 s: 11 left at the first watch, 6 after a 5 s pause, then the last seconds a second at a time
    assert [s["timeout_seconds"] for s in cluster.watch.streams] == [11, 6, 1, 1]


def test_a_job_error_text_is_cut_to_a_readable_length(cluster):
    """FR8: the API error quoted in the Job's timeout is cut to 200 characters."""
    cluster.core.pods = [_job_pod()]
    cluster.watch.batches = [api_error(500, "x" * 500) for _ in range(100)]
    with pytest.raises(WaitTimeout) as caught:
        cluster.kube.run_job(NS, "irsa-check", "langfuse", "img", "true", timeout=3, interval=5)
    last = str(caught.value).split("(last: ", 1)[1].split("); its pod's log", 1)[0]
    assert len(last) == len("ApiException: ") + 200


def test_a_job_log_joins_every_container_of_every_job_pod(cluster):
    """FR8: the Job's log holds each of its pods' containers (last 200 lines each), stripped, and
    nothing of other pods."""
    cluster.core.pods = [
        pod("irsa-check-a", "Failed", _status("check"), _status("sidecar"),
            labels={"batch.kubernetes.io/job-name": "irsa-check"}),
        pod("other", "Running", _status("check"), labels={"batch.kubernetes.io/job-name": "other-job"})]
    cluster.core.logs.update({("irsa-check-a", "check", False): "  first\n", ("irsa-check-a", "sidecar", False): None})
    assert cluster.kube.job_log(NS, "irsa-check") == "first"
    cluster.core.logs[("irsa-check-a", "sidecar", False)] = "second\n"
    assert cluster.kube.job_log(NS, "irsa-check") == "first\nsecond"
    assert {kw["tail_lines"] for m, _, kw in cluster.core.calls if m == "read_namespaced_pod_log"} == {200}


def test_a_job_without_log_says_so(cluster):
    """FR8: a Job whose pods printed nothing (or have none yet) reads `(empty log)`."""
    assert cluster.kube.job_log(NS, "irsa-check") == "(empty log)"


def test_a_job_log_that_cannot_be_read_says_why(cluster):
    """FR8: a log the API refuses (pod gone, container creating) reads as why, not as an error."""
    cluster.core.pods = [_job_pod()]
    cluster.core.failures["read_namespaced_pod_log"] = [api_error(400, "Bad Request", "container is waiting" + "x" * 400)]
    assert cluster.kube.job_log(NS, "irsa-check") == \
        "(no log: 400 Bad Request: container is waiting" + "x" * (300 - len("container is waiting")) + ")"


def test_a_job_fails_at_once_when_its_pod_fails():
    """FR8: the Job has no retries (backoffLimit 0): its first failed pod fails the Job, which
    run_job reports at once; it runs once, as the service account, without restarts."""
    manifest = k8s.job_manifest(NS, "irsa-check", "langfuse", "img", "aws sts get-caller-identity")
    spec = manifest["spec"]
    assert (spec["backoffLimit"], spec["template"]["spec"]["restartPolicy"]) == (0, "Never")
    assert spec["template"]["spec"]["containers"][0]["command"] == ["sh", "-c", "aws sts get-caller-identity"]
    assert (manifest["metadata"], manifest["kind"]) == ({"name": "irsa-check", "namespace": NS}, "Job")


def test_a_finished_job_is_cleaned_up_by_the_cluster():
    """FR8: finished Jobs are removed by the cluster (ttlSecondsAfterFinished), not left behind."""
    assert k8s.job_manifest(NS, "j", "sa", "img", "true")["spec"]["ttlSecondsAfterFinished"] > 0


def test_the_job_pod_passes_pod_security_restricted():
    """NFR4, issue 26: 03-app's namespace enforces Pod Security `restricted`: non-root, no
    privilege escalation, every capability dropped, RuntimeDefault seccomp; HOME writable."""
    pod_spec = k8s.job_manifest(NS, "j", "sa", "img", "true")["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    assert (pod_spec["securityContext"]["runAsNonRoot"], container["securityContext"]["runAsNonRoot"]) == (True, True)
    assert pod_spec["securityContext"]["runAsUser"] > 0 and container["securityContext"]["runAsUser"] > 0
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # The projected IRSA token is readable by the uid's group: fsGroup is the group the container runs as.
    assert pod_spec["securityContext"]["fsGroup"] == container["securityContext"]["runAsGroup"] == \
        pod_spec["securityContext"]["runAsGroup"]
    assert container["securityContext"]["runAsUser"] == pod_spec["securityContext"]["runAsUser"]
    home = next(e["value"] for e in container["env"] if e["name"] == "HOME")
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert {"name": mounted[home], "emptyDir": {}} in pod_spec["volumes"]


# --- the client's API calls -----------------------------------------------------------------------

def test_pods_and_their_names_are_listed_from_the_namespace(cluster):
    """FR13: pods() and pod_names() list the namespace asked (fake client)."""
    cluster.core.pods = [pod("web-1"), pod("worker-1")]
    assert cluster.kube.pod_names(NS) == ["web-1", "worker-1"]
    assert cluster.core.calls[0][1] == (NS,)


@pytest.mark.parametrize("call,expected", [
    (lambda kube: kube.pods(NS), "list pods in langfuse: 403 Forbidden"),
    (lambda kube: kube.claim_names(NS), "list claims in langfuse: 403 Forbidden"),
    (lambda kube: kube.nodes(), "list nodes: 403 Forbidden"),
])
def test_a_refused_listing_is_a_kubectl_error_naming_what_and_why(cluster, call, expected):
    """FR13: an API refusal becomes KubectlError naming what was listed and the status, reason."""
    for method in ("list_namespaced_pod", "list_namespaced_persistent_volume_claim", "list_node"):
        cluster.core.failures[method] = [api_error()]
    with pytest.raises(k8s.KubectlError) as caught:
        call(cluster.kube)
    assert str(caught.value) == expected


def test_claims_and_nodes_are_listed_by_name(cluster):
    """FR13, FR27: claim_names lists the namespace's PVCs; nodes the cluster's nodes."""
    cluster.core.claims, cluster.core.node_names = ["data-clickhouse-0"], ["ip-10-0-1-1"]
    assert cluster.kube.claim_names(NS) == ["data-clickhouse-0"]
    assert cluster.core.calls[-1][1] == (NS,)
    assert [n.metadata.name for n in cluster.kube.nodes()] == ["ip-10-0-1-1"]


def test_service_pods_are_the_running_not_terminating_pods_its_selector_picks(cluster):
    """FR19: a port-forward can use only the Service's pods that run and are not being deleted."""
    cluster.core.services["langfuse-web"] = client.V1Service(spec=client.V1ServiceSpec(
        selector={"app": "web", "tier": "front"}))
    front = {"app": "web", "tier": "front"}
    cluster.core.pods = [pod("web-1", labels=front), pod("web-2", "Pending", labels=front),
                         pod("web-3", labels=front, terminating=True), pod("web-4", labels={"app": "web"}),
                         pod("worker-1", labels={"app": "worker"})]
    assert cluster.kube.service_pods(NS, "langfuse-web") == ["web-1"]
    assert cluster.core.calls[0][1] == ("langfuse-web", NS)


def test_a_service_without_selector_has_no_pods(cluster):
    """FR19: a Service with no selector (an external one) selects no pod, not every pod."""
    cluster.core.services["external"] = client.V1Service(spec=client.V1ServiceSpec(selector=None))
    cluster.core.pods = [pod("web-1")]
    assert cluster.kube.service_pods(NS, "external") == []


@pytest.mark.parametrize("kind", ["deployment", "statefulset"])
def test_scale_sets_the_replicas_of_that_workload(cluster, kind, caplog):
    """FR27: scale patches the scale subresource of the Deployment or StatefulSet named, and logs it."""
    with caplog.at_level(logging.INFO, logger="lfharness.stack.k8s"):
        cluster.kube.scale(NS, kind, "langfuse-web", 0)
    assert cluster.apps.patches == [(kind, "langfuse-web", NS, {"spec": {"replicas": 0}})]
    assert f"{kind} langfuse-web in langfuse scaled to 0" in caplog.messages


def test_a_refused_scale_names_the_workload_and_the_refusal(cluster):
    """FR27: a refused scale raises KubectlError naming kind, name, namespace, replicas and why."""
    cluster.apps.error = api_error(404, "Not Found")
    with pytest.raises(k8s.KubectlError) as caught:
        cluster.kube.scale(NS, "statefulset", "clickhouse", 1)
    assert str(caught.value) == "scale statefulset clickhouse in langfuse to 1: 404 Not Found"


def test_a_secret_is_read_decoded(cluster):
    """FR15: secret() returns the Secret's values decoded; an empty Secret is an empty dict."""
    cluster.core.secrets["langfuse"] = client.V1Secret(data={"salt": base64.b64encode(b"pepper").decode()})
    cluster.core.secrets["empty"] = client.V1Secret(data=None)
    assert (cluster.kube.secret(NS, "langfuse"), cluster.kube.secret(NS, "empty")) == ({"salt": "pepper"}, {})
    assert cluster.core.calls[0][1] == ("langfuse", NS)


# --- kubectl --------------------------------------------------------------------------------------

def test_kubectl_runs_on_the_kubeconfig_with_its_input_and_returns_stdout(tmp_path):
    """FR13: run() calls kubectl on the harness's kubeconfig with the arguments and input given."""
    fake = FakeCli(tmp_path / "bin", "kubectl", [(r"apply", {"echo_stdin": True, "stdout": "applied\n"})])
    kube = k8s.Kube(tmp_path / "kubeconfig", binary=fake.path)
    assert kube.run("apply", "-f", "-", stdin='{"kind": "Job"}', timeout=30) == '{"kind": "Job"}applied\n'
    assert fake.calls() == [["--kubeconfig", str(tmp_path / "kubeconfig"), "apply", "-f", "-"]]


def test_a_failing_kubectl_raises_with_its_exit_code_and_stderr(tmp_path):
    """FR13: kubectl exiting non-zero raises KubectlError with the command, the code and its
    stderr's last 2000 characters."""
    fake = FakeCli(tmp_path / "bin", "kubectl", [(r".", {"stderr": "x" * 3000 + "error: forbidden\n", "code": 1})])
    kube = k8s.Kube(tmp_path / "kubeconfig", binary=fake.path)
    with pytest.raises(k8s.KubectlError) as caught:
        kube.run("get", "pods")
    assert str(caught.value) == "kubectl get pods exited 1: " + ("x" * 3000 + "error: forbidden")[-2000:]


def test_a_hanging_kubectl_is_stopped_by_its_timeout(tmp_path):
    """FR13: run()'s timeout fires: a kubectl that hangs raises TimeoutExpired, not a hang."""
    fake = FakeCli(tmp_path / "bin", "kubectl", [(r".", {"sleep": 30})])
    kube = k8s.Kube(tmp_path / "kubeconfig", binary=fake.path)
    with pytest.raises(subprocess.TimeoutExpired):
        kube.run("get", "pods", timeout=0.5)


def test_the_port_forward_command_names_service_ports_and_namespace(tmp_path):
    """FR19: the kubectl command connect holds for one port-forward."""
    kube = k8s.Kube(tmp_path / "kubeconfig", binary=tmp_path / "kubectl")
    assert kube.port_forward_argv(NS, "langfuse-web", 3000, 80) == [
        str(tmp_path / "kubectl"), "--kubeconfig", str(tmp_path / "kubeconfig"), "-n", NS, "port-forward",
        "svc/langfuse-web", "3000:80"]


def _standin_kubectl(tmp_path: Path) -> Path:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!/bin/sh\nexec {sys.executable} -m lfharness.testing.portforward_standin \"$@\"\n")
    kubectl.chmod(0o755)
    return kubectl


def test_a_port_forward_yields_a_local_port_that_answers_and_ends_its_kubectl(tmp_path, monkeypatch):
    """FR19: port_forward yields once the local port answers (portforward_standin as kubectl),
    forwarding to the service's port, and the kubectl is gone after the block."""
    import socket

    pid_file = tmp_path / "pid"
    monkeypatch.setenv("LFK8S_STANDIN_PID_FILE", str(pid_file))
    _standin_kubectl(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # kubectl_bin(): the stand-in beside it
    with k8s.port_forward(tmp_path / "kubeconfig", NS, "langfuse-web", 3000, timeout=20) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=2):
        pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_port_forward_uses_the_local_port_asked(tmp_path, monkeypatch):
    """FR19: a local port given is the one forwarded (connect keeps the same port across restarts)."""
    from lfharness.core.procs import free_port

    wanted = free_port()
    kube = k8s.Kube(tmp_path / "kubeconfig", binary=_standin_kubectl(tmp_path))
    with kube.port_forward(NS, "langfuse-web", 3000, local_port=wanted, timeout=20) as port:
        assert port == wanted


def test_a_port_forward_whose_kubectl_exits_fails_at_once_with_its_message(tmp_path):
    """FR19: a kubectl that exits (no such service) fails at once with its stderr, not after
    the timeout (fake kubectl)."""
    import time

    fake = FakeCli(tmp_path / "bin", "kubectl", [(r"port-forward", {
        "stderr": 'Error from server (NotFound): services "langfuse-web" not found\n', "code": 1})])
    kube = k8s.Kube(tmp_path / "kubeconfig", binary=fake.path)
    started = time.monotonic()
    with pytest.raises(k8s.PortForwardError) as caught, kube.port_forward(NS, "langfuse-web", 3000, 4000, timeout=30):
        pass
    assert time.monotonic() - started < 10
    assert str(caught.value) == ('kubectl port-forward svc/langfuse-web 4000:3000 -n langfuse exited 1: Error from '
                                 'server (NotFound): services "langfuse-web" not found')


def test_a_port_forward_kubectl_exiting_silently_says_no_output(tmp_path):
    """FR19: a kubectl that exits without a word still fails at once, saying it printed nothing."""
    fake = FakeCli(tmp_path / "bin", "kubectl", [(r"port-forward", {"code": 1})])
    kube = k8s.Kube(tmp_path / "kubeconfig", binary=fake.path)
    with pytest.raises(k8s.PortForwardError, match=r"exited 1: \(no output\)$"), \
            kube.port_forward(NS, "langfuse-web", 3000, timeout=30):
        pass


def test_a_port_forward_that_never_answers_times_out(tmp_path):
    """FR19: a kubectl that runs but never opens the port ends at the timeout with WaitTimeout
    naming the forward (fake kubectl sleeping)."""
    fake = FakeCli(tmp_path / "bin", "kubectl", [(r"port-forward", {"sleep": 30})])
    kube = k8s.Kube(tmp_path / "kubeconfig", binary=fake.path)
    with pytest.raises(WaitTimeout, match=r"port-forward svc/langfuse-web 4001:3000"), \
            kube.port_forward(NS, "langfuse-web", 3000, 4001, timeout=1):
        pass


def test_the_port_forward_kubectl_gets_the_env_credentials(tmp_path):
    """FR26: the port-forward's kubectl runs with the Kube's environment (the .env credentials),
    not the shell's (fake kubectl echoing its environment to stderr, then exiting)."""
    wrapper = tmp_path / "kubectl-env"
    wrapper.write_text("#!/bin/sh\necho \"key=$AWS_ACCESS_KEY_ID\" >&2\nexit 3\n")
    wrapper.chmod(0o755)
    kube = k8s.Kube(tmp_path / "kubeconfig", env={"AWS_ACCESS_KEY_ID": "AKIA" + "E" * 16, "PATH": "/usr/bin:/bin"},
                    binary=wrapper)
    with pytest.raises(k8s.PortForwardError, match="key=AKIA" + "E" * 16), \
            kube.port_forward(NS, "langfuse-web", 3000, timeout=30):
        pass


# --- diagnostics ----------------------------------------------------------------------------------

_DESCRIBE = ("Name: web-1\nContainers:\n  web:\n    Environment:\n      SALT:  s3cr3tSalt-value\n"
             "      DB_URL:  <set to the key 'url' in secret 'db'>  Optional: false\n    Mounts:\n      /data\n")


def _diagnosed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redactor: Redactor | None = None,
               rules: list[tuple[str, dict]] | None = None) -> Cluster:
    return Cluster(tmp_path, monkeypatch, redactor, rules or [
        (r"describe pods", {"stdout": _DESCRIBE}),
        (r"get pods", {"stdout": "NAME READY\nweb-1 1/1\n"}),
        (r"get events", {"stdout": "LAST SEEN TYPE\n"}),
        (r"get pvc", {"stdout": "NAME STATUS\n"}),
        (r"get jobs", {"stdout": "NAME COMPLETIONS\n"})])


def test_a_failing_block_collects_diagnostics_and_raises_its_own_error(tmp_path, monkeypatch):
    """FR22, issue 10 item 13: the block's error goes through unchanged after the diagnostics
    are written (fake kubectl and client)."""
    cl = _diagnosed(tmp_path, monkeypatch)
    with pytest.raises(RuntimeError, match="helm timeout"), cl.kube.diagnostics_on_failure(NS, tmp_path / "diag"):
        raise RuntimeError("helm timeout")
    assert sorted(p.name for p in (tmp_path / "diag").iterdir()) == [
        "describe-pods.txt", "events.txt", "jobs.txt", "pods.txt", "pvc.txt"]


def test_diagnostics_that_fail_do_not_hide_the_blocks_error(tmp_path, monkeypatch, caplog):
    """FR22: diagnostics that cannot be collected (the folder cannot be made) are logged; the
    block's own error is what the operator gets."""
    cl = _diagnosed(tmp_path, monkeypatch)
    (tmp_path / "file").write_text("")
    with caplog.at_level(logging.ERROR, logger="lfharness.stack.k8s"), \
            pytest.raises(RuntimeError, match="helm timeout"), \
            cl.kube.diagnostics_on_failure(NS, tmp_path / "file" / "diag"):
        raise RuntimeError("helm timeout")
    assert any(m.startswith("collecting diagnostics failed: ") for m in caplog.messages)
    assert f"collecting Kubernetes diagnostics of namespace langfuse into {tmp_path / 'file' / 'diag'}" in \
        caplog.messages


def test_diagnostics_hold_kubectls_tables_of_the_namespace(tmp_path, monkeypatch):
    """FR22: pods, events, PVCs and Jobs are kubectl's tables for the namespace (fake kubectl)."""
    cl = _diagnosed(tmp_path, monkeypatch)
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    assert (tmp_path / "diag" / "pods.txt").read_text() == "NAME READY\nweb-1 1/1\n"
    assert sorted(c[2:] for c in cl.kubectl.calls()) == sorted([
        ["-n", NS, "get", "pods", "-o", "wide"], ["-n", NS, "describe", "pods"],
        ["-n", NS, "get", "events", "--sort-by=.lastTimestamp"], ["-n", NS, "get", "pvc"],
        ["-n", NS, "get", "jobs", "-o", "wide"]])


def test_diagnostics_never_hold_a_literal_env_value_or_a_known_secret(tmp_path, monkeypatch):
    """NFR1: `describe pods` loses its literal env values and every file is masked with the run's
    secrets (the Redactor), container logs included (fake kubectl and client)."""
    secret = "hunter2-very-secret-password"
    cl = _diagnosed(tmp_path, monkeypatch, Redactor([secret]), [
        (r"describe pods", {"stdout": _DESCRIBE}), (r".", {"stdout": f"password={secret}\n"})])
    cl.core.pods = [pod("web-1")]
    cl.core.logs[("web-1", "app", False)] = f"connecting with {secret}\n"
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    texts = {p.name: p.read_text() for p in (tmp_path / "diag").iterdir()}
    assert "s3cr3tSalt-value" not in texts["describe-pods.txt"]
    assert [name for name, text in texts.items() if secret in text] == []
    assert texts["pods.txt"] == "password=***\n" and texts["web-1.app.log"] == "connecting with ***\n"


def test_diagnostics_errors_never_hold_a_known_secret(tmp_path, monkeypatch):
    """NFR1: kubectl's stderr quoted in errors.txt is masked too (it can repeat what it refused)."""
    secret = "hunter2-very-secret-password"
    cl = _diagnosed(tmp_path, monkeypatch, Redactor([secret]), [
        (r".", {"stderr": f"error: invalid value {secret}\n", "code": 1})])
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    errors = (tmp_path / "diag" / "errors.txt").read_text()
    assert secret not in errors and "pods.txt: kubectl -n langfuse get pods -o wide exited 1: error: invalid value ***" \
        in errors.splitlines()


def test_diagnostics_without_a_redactor_still_drop_env_values(tmp_path, monkeypatch):
    """NFR1: with no Redactor, the files are written as kubectl and the API gave them, less the
    literal env values."""
    cl = _diagnosed(tmp_path, monkeypatch)
    cl.core.pods = [pod("web-1")]
    cl.core.logs[("web-1", "app", False)] = None
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    described = (tmp_path / "diag" / "describe-pods.txt").read_text()
    assert "SALT:  (redacted)" in described and "s3cr3tSalt-value" not in described
    assert (tmp_path / "diag" / "web-1.app.log").read_text() == ""


def test_diagnostics_hold_every_containers_log_and_the_crashed_run_of_a_restarted_one(tmp_path, monkeypatch):
    """FR22, issue 10 item 13: each container's log (init containers too, last 500 lines) and, for
    a container that restarted, the log of its previous run (fake client)."""
    cl = _diagnosed(tmp_path, monkeypatch)
    cl.core.pods = [pod("worker-0", "Running", _status("worker", restarts=1, reason="OOMKilled", exit_code=137),
                        init=(_status("migrate"),)),
                    pod("web-1")]
    cl.core.logs[("worker-0", "worker", True)] = "killed\n"
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    logs = sorted(p.name for p in (tmp_path / "diag").glob("*.log"))
    assert logs == ["web-1.app.log", "worker-0.migrate.log", "worker-0.worker.log", "worker-0.worker.previous.log"]
    assert (tmp_path / "diag" / "worker-0.worker.previous.log").read_text() == "killed\n"
    assert (tmp_path / "diag" / "worker-0.worker.log").read_text() == "worker-0/worker log line"
    assert {kw["tail_lines"] for m, _, kw in cl.core.calls if m == "read_namespaced_pod_log"} == {500}
    assert {a[1] for m, a, _ in cl.core.calls if m == "read_namespaced_pod_log"} == {NS}


def test_what_diagnostics_could_not_collect_is_listed_in_errors(tmp_path, monkeypatch):
    """FR22: a table kubectl could not print, a pod list refused and a log refused are each a line
    of errors.txt; the rest is still collected."""
    cl = _diagnosed(tmp_path, monkeypatch, rules=[(r"get events", {"stderr": "boom\n", "code": 1}),
                                                  (r".", {"stdout": "ok\n"})])
    cl.core.pods = [pod("web-1")]
    cl.core.failures["read_namespaced_pod_log"] = [api_error(400, "Bad Request", "container is waiting")]
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    assert (tmp_path / "diag" / "errors.txt").read_text() == (
        "events.txt: kubectl -n langfuse get events --sort-by=.lastTimestamp exited 1: boom\n"
        "web-1.app.log: 400 Bad Request: container is waiting\n")
    assert (tmp_path / "diag" / "pods.txt").read_text() == "ok\n"


def test_a_pod_list_refused_is_an_error_line_and_the_tables_are_kept(tmp_path, monkeypatch):
    """FR22: the pod list refused (or no usable kubeconfig) is noted in errors.txt."""
    cl = _diagnosed(tmp_path, monkeypatch, rules=[(r".", {"stdout": "ok\n"})])
    cl.core.failures["list_namespaced_pod"] = [api_error()]
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    assert (tmp_path / "diag" / "errors.txt").read_text() == \
        "pod list: KubectlError: list pods in langfuse: 403 Forbidden\n"


def test_a_kubectl_that_hangs_during_diagnostics_is_an_error_line(tmp_path, monkeypatch):
    """FR22: a kubectl table that times out is noted and the other files are still written."""
    cl = _diagnosed(tmp_path, monkeypatch, rules=[(r".", {"stdout": "ok\n"})])

    def run(*args, **kwargs):
        if "pvc" in args:
            raise subprocess.TimeoutExpired(["kubectl", *args], 120)
        return "ok\n"

    object.__setattr__(cl.kube, "run", run)
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    assert (tmp_path / "diag" / "errors.txt").read_text().startswith("pvc.txt: Command ")
    assert (tmp_path / "diag" / "jobs.txt").read_text() == "ok\n"


def test_diagnostics_go_into_a_folder_made_with_its_parents(tmp_path, monkeypatch):
    """FR22: the run's diagnostics folder (under .runs/<run>/) need not exist yet, nor its parents."""
    cl = _diagnosed(tmp_path, monkeypatch)
    cl.kube.collect_diagnostics(NS, tmp_path / "runs" / "r1" / "diagnostics")
    assert (tmp_path / "runs" / "r1" / "diagnostics" / "pods.txt").exists()


def test_diagnostics_collected_twice_into_one_folder_are_written_again(tmp_path, monkeypatch):
    """FR22: a second failure in the same run collects into the existing folder, not an error."""
    cl = _diagnosed(tmp_path, monkeypatch)
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    (tmp_path / "diag" / "pods.txt").unlink()
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    assert (tmp_path / "diag" / "pods.txt").exists()


def test_a_clean_collection_writes_no_errors_file(tmp_path, monkeypatch):
    """FR22: errors.txt exists only when something could not be collected."""
    cl = _diagnosed(tmp_path, monkeypatch)
    cl.kube.collect_diagnostics(NS, tmp_path / "diag")
    assert not (tmp_path / "diag" / "errors.txt").exists()


# --- redact_environment ---------------------------------------------------------------------------

def test_env_values_after_the_environment_block_are_kept():
    """NFR1: only lines inside `Environment:` are redacted; the block ends at a line indented no
    deeper than its header (Mounts) or a blank line, and what follows is kept as it was."""
    text = ("    Environment:\n      SALT:  pepper\n    Mounts:\n      data:  /var/data\n"
            "    Environment:\n      KEY:  v\n\n      OTHER:  kept\n")
    assert k8s.redact_environment(text) == ("    Environment:\n      SALT:  (redacted)\n    Mounts:\n"
                                            "      data:  /var/data\n    Environment:\n      KEY:  (redacted)\n\n"
                                            "      OTHER:  kept\n")


def test_env_names_with_dots_and_dashes_are_redacted_and_spacing_kept():
    """NFR1: env names as Kubernetes allows them (dots, dashes, digits) are redacted too, their
    alignment kept."""
    text = "  Environment:\n    spring.datasource-password_2:   hunter2\n"
    assert k8s.redact_environment(text) == "  Environment:\n    spring.datasource-password_2:   (redacted)\n"


def test_a_text_without_trailing_newline_gets_none():
    """NFR1: the text keeps its shape: no newline added at the end."""
    assert k8s.redact_environment("Environment:\n  A:  b") == "Environment:\n  A:  (redacted)"


def test_environment_none_redacts_nothing_below_it():
    """NFR1: `Environment: <none>` on one line opens no block for the next section."""
    text = "    Environment:  <none>\n    Mounts:\n      /data from data (rw)\n"
    assert k8s.redact_environment(text) == text


# --- the token and the kubeconfig -----------------------------------------------------------------

def _presigned(token: str):
    raw = token.removeprefix("k8s-aws-v1.")
    assert "=" not in raw  # EKS refuses padded tokens
    return urlparse(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())


def test_eks_token_is_a_short_lived_get_caller_identity_for_the_cluster():
    """FR4, FR26: the token presigns STS GetCallerIdentity (version 2011-06-15, GET over https in
    the session's region) for 60 s, with the cluster's name signed in x-k8s-aws-id."""
    session = boto3.Session(aws_access_key_id="AKIA" + "B" * 16, aws_secret_access_key="x" * 40,
                            region_name="eu-west-1")
    url = _presigned(k8s.eks_token("langfuse", session))
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")
    assert (query["Action"], query["Version"], query["X-Amz-Expires"]) == (["GetCallerIdentity"], ["2011-06-15"],
                                                                           ["60"])
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    assert query["X-Amz-Credential"][0].startswith("AKIA" + "B" * 16 + "/")
    assert query["X-Amz-Credential"][0].endswith("/eu-west-1/sts/aws4_request")


def test_the_token_depends_on_the_cluster_name():
    """FR4: a token for one cluster is not a token for another (the name is signed)."""
    session = boto3.Session(aws_access_key_id="AKIA" + "B" * 16, aws_secret_access_key="x" * 40,
                            region_name="eu-west-1")
    first = parse_qs(_presigned(k8s.eks_token("langfuse", session)).query)["X-Amz-Signature"]
    second = parse_qs(_presigned(k8s.eks_token("other", session)).query)["X-Amz-Signature"]
    assert first != second


def test_sts_accepts_the_token_as_the_get_eks_sends():
    """FR4, FR26: the signature is the one STS recomputes for the request EKS makes with the token (a
    GET carrying x-k8s-aws-id), checked with AWS's signing steps written out in
    lfharness.testing.sigv4, not botocore; signed for another method, EKS would refuse every token."""
    secret = "s" * 40
    session = boto3.Session(aws_access_key_id="AKIA" + "B" * 16, aws_secret_access_key=secret,
                            region_name="eu-west-1")
    url = _presigned(k8s.eks_token("langfuse", session)).geturl()
    expected = sigv4.expected_signature(url, method="GET", secret_key=secret, headers={"x-k8s-aws-id": "langfuse"})
    assert parse_qs(urlparse(url).query)["X-Amz-Signature"] == [expected]


def test_an_exec_credential_expires_before_the_eks_token_does():
    """FR26: kubectl is told the token expires in 14 minutes (EKS honours it 15), so it asks for a
    new one in time."""
    before = dt.datetime.now(dt.UTC)
    credential = k8s.exec_credential("k8s-aws-v1.abc")
    expires = dt.datetime.strptime(credential["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.UTC)
    assert dt.timedelta(minutes=13, seconds=58) <= expires - before <= dt.timedelta(minutes=14, seconds=1)
    assert (credential["apiVersion"], credential["kind"], credential["status"]["token"]) == (
        "client.authentication.k8s.io/v1beta1", "ExecCredential", "k8s-aws-v1.abc")


def test_an_exec_credential_expiry_is_in_utc_whatever_the_machines_time_zone(monkeypatch):
    """FR26: the expiry kubectl reads is UTC (the Z suffix), also on a machine set to another zone."""
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+5:30: a local time written as UTC would be 5.5 h off
    time.tzset()
    try:
        expires = dt.datetime.strptime(k8s.exec_credential("t")["status"]["expirationTimestamp"],
                                       "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert dt.timedelta(minutes=13) <= expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)


def test_the_token_is_the_presigned_url_in_unpadded_base64(monkeypatch):
    """FR4: the token is `k8s-aws-v1.` and the presigned URL in URL-safe base64 with only the
    padding dropped, whatever its last character (stand-in signer returning a fixed URL)."""
    from botocore.signers import RequestSigner

    url = "https://sts.example/?x=W"  # encodes to ...eD1X: a last character other than padding
    monkeypatch.setattr(RequestSigner, "generate_presigned_url", lambda self, *a, **kw: url)
    session = boto3.Session(aws_access_key_id="AKIA" + "B" * 16, aws_secret_access_key="x" * 40,
                            region_name="eu-west-1")
    token = k8s.eks_token("langfuse", session)
    assert token == "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode()


def test_the_kubeconfig_holds_no_credential_and_names_the_cluster(tmp_path):
    """FR4, NFR1: the kubeconfig (a v1 Config, mode 600, its folders made) points at the endpoint and CA, with
    the token plugin for that cluster and region, and holds no AWS key."""
    path = k8s.write_exec_kubeconfig(tmp_path / "runs" / "up-1" / "kubeconfig", "https://x.eks.amazonaws.com",
                                     "Q0E=", "langfuse", "eu-west-1")
    config = yaml.safe_load(path.read_text())
    assert (config["apiVersion"], config["kind"]) == ("v1", "Config")  # what a kubeconfig file declares
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])["cluster"]
    user = next(u for u in config["users"] if u["name"] == context["user"])["user"]
    assert cluster == {"server": "https://x.eks.amazonaws.com", "certificate-authority-data": "Q0E="}
    assert (user["exec"]["command"], user["exec"]["args"]) == (
        sys.executable, ["-m", "lfharness.stack.k8s", "token", "langfuse", "eu-west-1"])
    assert user["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert user["exec"]["interactiveMode"] == "Never"
    assert "AWS" not in path.read_text() and oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_client_signs_with_the_env_key_not_the_shells(tmp_path, monkeypatch):
    """FR26: the client's token plugin gets the Kube's .env key and session token (in memory, not
    in the file), not the shell's; the plugin runs for real (presigning is local)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA" + "S" * 16)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "shell" * 8)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    path = k8s.write_exec_kubeconfig(tmp_path / "kubeconfig", "https://x.eks.amazonaws.com",
                                     base64.b64encode(b"ca").decode(), "langfuse", "eu-west-1")
    env = {"AWS_ACCESS_KEY_ID": "ASIA" + "E" * 16, "AWS_SECRET_ACCESS_KEY": "e" * 40,
           "AWS_SESSION_TOKEN": "FwoGZXIvYXdzE" + "T" * 100}
    api = k8s.Kube(path, env=env).api
    url = _presigned(api.configuration.api_key["BearerToken"].removeprefix("Bearer "))
    query = parse_qs(url.query)
    assert query["X-Amz-Credential"][0].startswith("ASIA" + "E" * 16 + "/")
    assert query["X-Amz-Security-Token"] == [env["AWS_SESSION_TOKEN"]]
    assert "ASIA" not in path.read_text()


def test_the_client_keeps_a_plugins_own_env(tmp_path, monkeypatch):
    """FR26: variables a kubeconfig's plugin already sets stay beside the .env credentials."""
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    path = k8s.write_exec_kubeconfig(tmp_path / "kubeconfig", "https://x.eks.amazonaws.com",
                                     base64.b64encode(b"ca").decode(), "langfuse", "eu-west-1")
    config = json.loads(path.read_text())
    config["users"][0]["user"]["exec"]["env"] = [{"name": "AWS_ACCESS_KEY_ID", "value": "AKIA" + "P" * 16}]
    config["users"].append({"name": "token-user", "user": {"token": "abc"}})
    path.write_text(json.dumps(config))
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "e" * 40}
    api = k8s.Kube(path, env=env).api
    query = parse_qs(_presigned(api.configuration.api_key["BearerToken"].removeprefix("Bearer ")).query)
    assert query["X-Amz-Credential"][0].startswith("AKIA" + "P" * 16 + "/")


def _token_kubeconfig(path: Path, server: str) -> None:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "abc"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))


def test_reload_before_any_call_is_harmless(tmp_path):
    """FR25: reload() on a Kube whose client was never built (resume before any call) does nothing."""
    path = tmp_path / "kubeconfig"
    _token_kubeconfig(path, "https://new.example")
    kube = k8s.Kube(path)
    kube.reload()
    assert kube.api.configuration.host == "https://new.example"


def test_reload_makes_the_client_follow_a_changed_kubeconfig(tmp_path):
    """FR25: after a resume the cluster has a new endpoint: reload() makes the client use it,
    and until then the client stays the one built."""
    path = tmp_path / "kubeconfig"
    _token_kubeconfig(path, "https://old.example")
    kube = k8s.Kube(path)
    assert kube.api.configuration.host == "https://old.example"
    _token_kubeconfig(path, "https://new.example")
    assert kube.api.configuration.host == "https://old.example"
    kube.reload()
    assert kube.api.configuration.host == "https://new.example"


def test_the_token_command_prints_usage_and_fails_on_wrong_arguments(capsys):
    """FR26: `python -m lfharness.stack.k8s` with anything but `token <cluster> <region>` exits 2
    with its usage on stderr."""
    assert [k8s.main([]), k8s.main(["token", "langfuse"]), k8s.main(["tokens", "langfuse", "eu-west-1"])] == [2, 2, 2]
    assert capsys.readouterr().err.count("usage: python -m lfharness.stack.k8s token <cluster-name> <region>") == 3


def test_the_token_command_prints_an_exec_credential_for_the_cluster_and_region(capsys, monkeypatch):
    """FR26: the plugin prints an ExecCredential whose token is signed with the environment's key
    for the cluster and region given."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA" + "M" * 16)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "m" * 40)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzE" + "M" * 50)
    assert k8s.main(["token", "langfuse", "ap-south-1"]) == 0
    credential = json.loads(capsys.readouterr().out)
    query = parse_qs(_presigned(credential["status"]["token"]).query)
    assert credential["kind"] == "ExecCredential"
    assert query["X-Amz-Credential"][0].startswith("AKIA" + "M" * 16 + "/")
    assert query["X-Amz-Credential"][0].endswith("/ap-south-1/sts/aws4_request")
    assert query["X-Amz-Security-Token"] == ["FwoGZXIvYXdzE" + "M" * 50]


def test_the_token_command_signs_with_the_environments_secret_key_for_the_cluster(capsys, monkeypatch):
    """FR26: the plugin's token is the one eks_token makes for that cluster with the environment's
    key, secret key and session token: its signature matches (same second)."""
    key, secret, token = "AKIA" + "M" * 16, "m" * 40, "FwoGZXIvYXdzE" + "M" * 50
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    session = boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
                            region_name="ap-south-1")
    for _ in range(3):  # X-Amz-Date has one-second resolution: compare two tokens made in the same second
        k8s.main(["token", "langfuse-prod", "ap-south-1"])
        printed = parse_qs(_presigned(json.loads(capsys.readouterr().out)["status"]["token"]).query)
        expected = parse_qs(_presigned(k8s.eks_token("langfuse-prod", session)).query)
        if printed["X-Amz-Date"] == expected["X-Amz-Date"]:
            break
    assert printed["X-Amz-Signature"] == expected["X-Amz-Signature"]


# --- restarts -------------------------------------------------------------------------------------

def test_a_restart_without_termination_record_says_unknown_without_exit_code():
    """FR22: a restart whose last termination is not recorded still reports, saying so."""
    later = [pod("web-1", "Running", _status("web", restarts=1))]
    assert [str(r) for r in k8s.restarts_since({}, later)] == [
        "web-1/web: 1 restart(s), last ended: unknown (no lastState.terminated)"]


def test_a_replaced_pods_restarts_count_from_zero_and_init_containers_count():
    """FR22: a container missing from the baseline counts every restart; init containers too."""
    later = [pod("web-2", "Running", _status("web", restarts=2, reason="Error", exit_code=1),
                 init=(_status("wait-db", restarts=1, exit_code=0),))]
    found = k8s.restarts_since({"web-1/web": 5}, later)
    assert [(r.container, r.count, r.reason, r.exit_code) for r in found] == [
        ("wait-db", 1, "unknown (no lastState.terminated)", 0), ("web", 2, "Error", 1)]


def test_restart_counts_cover_init_containers_and_pods_without_status():
    """FR22: the baseline holds every container, init ones included; a pod with no status adds nothing."""
    items = [pod("web-1", "Running", _status("web", restarts=3), init=(_status("wait-db"),)), pod("new", None)]
    assert k8s.restart_counts(items) == {"web-1/wait-db": 0, "web-1/web": 3}


# --- reachability ---------------------------------------------------------------------------------

def test_reachability_log_lines_that_are_not_verdicts_are_ignored():
    """Issue 26 item 1: only `host:port=code` lines are verdicts (negative codes included); noise
    from the image is skipped."""
    log = ("starting\nclickhouse:8123=0\n  redis:6379=124  \nweird:port=1\nnoport=1\n:5432=1\nx:1=abc\nneg:1=-1\n"
           "fd00::a:5432=1\n")
    assert k8s.parse_reachability(log) == {("clickhouse", 8123): 0, ("redis", 6379): 124, ("neg", 1): -1,
                                           ("fd00::a", 5432): 1}


def test_the_reachability_probe_waits_before_probing_and_always_exits_zero(tmp_path):
    """Issue 26 item 1: the probe sleeps `settle` seconds first (policies load) and exits 0 even
    when a target is refused (the verdict is in the log, not the Job's status)."""
    script = k8s.reachability_script([("127.0.0.1", 1)], settle=7)
    assert script.startswith("sleep 7; ")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sleep").write_text("#!/bin/sh\necho \"slept $1\"\n")
    (bin_dir / "sleep").chmod(0o755)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=False,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.startswith("slept 7\n127.0.0.1:1=")
