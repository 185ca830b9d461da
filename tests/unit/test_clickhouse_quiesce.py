"""Decision 24: before 03-app goes, Langfuse finishes what it accepted and ClickHouse stops; and
ClickHouse is placed only where its volume can attach (static tier).

Stand-ins: Debian's redis-server (conftest's `local_redis`) holding jobs in BullMQ 5's key layout
(`bull:<queue>:wait|active|paused` lists, `delayed|prioritized|waiting-children` sorted sets),
written here the way BullMQ writes them; a recording Kubernetes stand-in whose pods go when their
owner is scaled to 0 (or never, to show the timeout). A real cluster's half is the kube tier's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from lfharness.stack import clickhouse

pytestmark = pytest.mark.static

QUEUE_NAMES = Path(__file__).resolve().parents[1] / "data" / "reference" / "langfuse-3.150.0-queue-names.json"


@pytest.fixture
def client(local_redis) -> Iterator[redis.Redis]:
    with redis.Redis(host=local_redis.host, port=local_redis.port, password=local_redis.password) as c:
        c.flushall()
        yield c
        c.flushall()


class Cluster:
    """Deployments/StatefulSets by name with their pods; scale() records and, unless `stuck`, the
    pods of an owner scaled to 0 are gone at the next listing."""

    def __init__(self, stuck: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.pods = {"langfuse-web": ["langfuse-web-5d9c-abcde"], "langfuse-worker": ["langfuse-worker-7f8b-xyz12"],
                     "langfuse-clickhouse-shard0": ["langfuse-clickhouse-shard0-0"],
                     "langfuse-redis-primary": ["langfuse-redis-primary-0"]}
        self.stuck = stuck
        self.claims = ["langfuse-clickhouse-data", "valkey-data-langfuse-redis-primary-0"]

    def scale(self, namespace: str, kind: str, name: str, replicas: int) -> None:
        self.calls.append((kind, name, replicas))
        if replicas == 0 and name not in self.stuck:
            self.pods[name] = []

    def pod_names(self, namespace: str) -> list[str]:
        return [p for pods in self.pods.values() for p in pods]

    def claim_names(self, namespace: str) -> list[str]:
        return list(self.claims)


def _jobs(client: redis.Redis, queue: str, state: str, n: int) -> None:
    key = f"bull:{queue}:{state}"
    for i in range(n):
        if state in ("wait", "active", "paused"):
            client.lpush(key, f"job-{i}")
        else:
            client.zadd(key, {f"job-{i}": 1000 + i})


# --- the queues ----------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["wait", "active", "paused", "delayed", "prioritized", "waiting-children"])
def test_a_job_in_any_unfinished_state_counts_as_queued(client, state):
    """Decision 24: a job waiting, running, paused, delayed (API events wait 5 s there), prioritized
    or waiting for children is not in ClickHouse yet."""
    _jobs(client, "ingestion-queue", state, 2)
    assert clickhouse.queued(client) == {"ingestion-queue": 2}


def test_finished_jobs_and_other_queues_do_not_count(client):
    """Decision 24: completed/failed jobs are done; a queue that writes nothing to ClickHouse
    (webhooks) does not hold the pause."""
    client.zadd("bull:ingestion-queue:completed", {"job-1": 1})
    client.zadd("bull:ingestion-queue:failed", {"job-2": 1})
    _jobs(client, "webhook-queue", "wait", 3)
    assert clickhouse.queued(client) == {}


def test_every_drained_queue_is_a_queue_langfuse_3_150_has():
    """Decision 24: a misspelt queue name would always read empty and let the pause destroy what
    it holds; each name must be one of Langfuse 3.150's QueueName values (tests/data/reference)."""
    names = json.loads(QUEUE_NAMES.read_text())["queue_names"]
    assert [q for q in clickhouse.DRAINED_QUEUES if q not in names] == []


def test_drain_returns_once_the_worker_empties_the_queues(client):
    """Decision 24: the wait ends when the last job leaves (a thread plays the worker)."""
    _jobs(client, "otel-ingestion-queue", "wait", 3)
    worker = threading.Timer(0.5, lambda: client.delete("bull:otel-ingestion-queue:wait"))
    worker.start()
    try:
        clickhouse.wait_drained(client, timeout=10, interval=0.1)
    finally:
        worker.cancel()
    assert clickhouse.queued(client) == {}


def test_a_queue_that_never_empties_stops_with_what_is_queued_and_how_to_proceed(client):
    """Decision 24: the timeout names each queue and its count, says nothing was destroyed, and
    says how to go on."""
    _jobs(client, "ingestion-queue", "delayed", 2)
    _jobs(client, "otel-ingestion-queue", "active", 1)
    with pytest.raises(clickhouse.QuiesceError) as caught:
        clickhouse.wait_drained(client, timeout=0.3, interval=0.1)
    message = str(caught.value)
    assert "ingestion-queue: 2" in message and "otel-ingestion-queue: 1" in message
    assert "Nothing was destroyed" in message and "run the command again" in message


# --- stopping ------------------------------------------------------------------------------------

def test_quiesce_stops_intake_drains_then_stops_the_worker_then_clickhouse(client):
    """Decision 24: web to 0 first (nothing new accepted), the queues waited empty, then the worker
    (it flushes its ClickHouse writer on SIGTERM), then ClickHouse, each waited gone."""
    cluster = Cluster()
    order: list[str] = []

    @contextmanager
    def redis_client():
        order.append(f"drain after {[c[1] for c in cluster.calls]}")
        yield client

    clickhouse.Quiesce(cluster, redis_client, drain_timeout=1, stop_timeout=1, interval=0.1)()
    assert order == ["drain after ['langfuse-web']"]
    assert cluster.calls == [("deployment", "langfuse-web", 0), ("deployment", "langfuse-worker", 0),
                             ("statefulset", "langfuse-clickhouse-shard0", 0)]
    assert cluster.pod_names("langfuse") == ["langfuse-redis-primary-0"]


def test_quiesce_with_jobs_left_does_not_stop_the_worker_or_clickhouse(client):
    """Decision 24: while jobs wait the worker must keep running; only intake was stopped."""
    _jobs(client, "secondary-ingestion-queue", "wait", 1)
    cluster = Cluster()

    @contextmanager
    def redis_client():
        yield client

    with pytest.raises(clickhouse.QuiesceError, match="secondary-ingestion-queue: 1"):
        clickhouse.Quiesce(cluster, redis_client, drain_timeout=0.2, stop_timeout=1, interval=0.1)()
    assert cluster.calls == [("deployment", "langfuse-web", 0)]


def test_a_clickhouse_pod_that_does_not_go_stops_with_its_name(client):
    """Decision 24: the volume is detached only once the pod is gone; if it stays, nothing goes on."""
    cluster = Cluster(stuck=("langfuse-clickhouse-shard0",))
    with pytest.raises(clickhouse.QuiesceError, match="statefulset langfuse-clickhouse-shard0 was scaled to 0"):
        clickhouse.scale_down(cluster, "langfuse", "statefulset", "langfuse-clickhouse-shard0", timeout=0.3,
                              interval=0.1)


# --- the zone ------------------------------------------------------------------------------------

def _node(name: str, zone: str | None, ready: bool = True) -> SimpleNamespace:
    labels = {"topology.kubernetes.io/zone": zone} if zone else {}
    return SimpleNamespace(metadata=SimpleNamespace(name=name, labels=labels),
                           status=SimpleNamespace(conditions=[SimpleNamespace(type="Ready",
                                                                              status="True" if ready else "False")]))


def test_only_ready_nodes_count_for_their_zone():
    """Decision 24: a NotReady node cannot run ClickHouse."""
    nodes = [_node("a", "us-east-1a", ready=False), _node("b", "us-east-1b"), _node("c", None)]
    assert clickhouse.ready_zones(nodes) == {"us-east-1b": ["b"]}


def test_no_ready_node_in_the_volume_zone_is_one_line_with_the_way_out():
    """Decision 24: one line naming the zone, the nodes elsewhere and what to do."""
    problem = clickhouse.zone_problem({"us-east-1b": ["ip-10-0-16-5"]}, "us-east-1a")
    assert problem is not None and "\n" not in problem
    assert "no Ready node in us-east-1a" in problem and "us-east-1b: ip-10-0-16-5" in problem
    assert "terminate" in problem and "run the command again" in problem


def test_a_ready_node_in_the_volume_zone_is_no_problem():
    assert clickhouse.zone_problem({"us-east-1a": ["n1"], "us-east-1b": ["n2"]}, "us-east-1a") is None


def test_placement_waits_for_a_node_to_become_ready_in_the_zone():
    """Decision 24: right after 01-network's resume the node may still be joining; the check waits."""
    listings = iter([[_node("a", "us-east-1a", ready=False)], [_node("a", "us-east-1a")]])
    assert clickhouse.placement_problem(lambda: next(listings), "us-east-1a", timeout=5, interval=0.05) is None


def test_placement_without_a_node_in_the_zone_returns_the_line_after_the_wait():
    problem = clickhouse.placement_problem(lambda: [_node("b", "us-east-1b")], "us-east-1a", timeout=0.2,
                                           interval=0.05)
    assert problem is not None and problem.startswith("no Ready node in us-east-1a")


def test_a_release_from_before_clickhouses_own_volume_is_refused_before_anything_stops(client):
    """Decision 24, issue 23 item 4: ClickHouse still on the chart's own claim (a stack deployed
    before this change) would lose its data with 03-app: the quiesce refuses, naming the claim,
    the data and the way to move it, and scales nothing."""
    cluster = Cluster()
    cluster.claims = ["data-langfuse-clickhouse-shard0-0", "valkey-data-langfuse-redis-primary-0"]

    @contextmanager
    def redis_client():
        yield client

    with pytest.raises(clickhouse.QuiesceError) as caught:
        clickhouse.Quiesce(cluster, redis_client, drain_timeout=1, stop_timeout=1, interval=0.1)()
    message = str(caught.value)
    assert "langfuse/data-langfuse-clickhouse-shard0-0" in message and "evaluation results" in message
    assert "Nothing was destroyed" in message and "snapshot" in message
    assert cluster.calls == []


# --- what the operator sees and what the quiesce is bound to (issue 28: mutation score) -----------

class OneNamespace(Cluster):
    """The release lives in one namespace: scaling elsewhere fails like kubectl's NotFound, and
    other namespaces have no pods and no claims."""

    def __init__(self, namespace: str, stuck: tuple[str, ...] = ()) -> None:
        super().__init__(stuck)
        self.namespace = namespace

    def scale(self, namespace: str, kind: str, name: str, replicas: int) -> None:
        if namespace != self.namespace:
            raise RuntimeError(f"{kind} {name} not found in namespace {namespace}")
        super().scale(namespace, kind, name, replicas)

    def pod_names(self, namespace: str) -> list[str]:
        return super().pod_names(namespace) if namespace == self.namespace else []

    def claim_names(self, namespace: str) -> list[str]:
        return super().claim_names(namespace) if namespace == self.namespace else []


def _redis_of(client):
    @contextmanager
    def redis_client():
        yield client
    return redis_client


def test_the_quiesce_stops_the_release_in_its_own_namespace(client):
    """Decision 24: a release outside the default namespace is stopped there; writers checked
    elsewhere would read "no pods" and let 03-app be destroyed under a running ClickHouse."""
    cluster = OneNamespace("lf-team")
    clickhouse.Quiesce(cluster, _redis_of(client), namespace="lf-team", drain_timeout=1, stop_timeout=1,
                       interval=0.1)()
    assert cluster.pod_names("lf-team") == ["langfuse-redis-primary-0"]

    stuck = OneNamespace("lf-team", stuck=("langfuse-clickhouse-shard0",))
    with pytest.raises(clickhouse.QuiesceError, match="langfuse-clickhouse-shard0 was scaled to 0"):
        clickhouse.Quiesce(stuck, _redis_of(client), namespace="lf-team", drain_timeout=1, stop_timeout=0.3,
                           interval=0.1)()

    legacy = OneNamespace("lf-team")
    legacy.claims = ["data-langfuse-clickhouse-shard0-0"]
    with pytest.raises(clickhouse.QuiesceError, match="lf-team/data-langfuse-clickhouse-shard0-0"):
        clickhouse.Quiesce(legacy, _redis_of(client), namespace="lf-team", drain_timeout=1, stop_timeout=1,
                           interval=0.1)()
    assert legacy.calls == []


@pytest.mark.parametrize("stuck", ["langfuse-worker", "langfuse-clickhouse-shard0"])
def test_a_writer_that_does_not_stop_ends_the_quiesce_within_its_stop_timeout(client, stuck):
    """Decision 24, pause's credential budget (budget.QUIESCE): the stop timeout the caller gives
    bounds the wait for the worker's and ClickHouse's pods (not the 300 s default)."""
    outcome: list[BaseException] = []

    def quiesce():
        try:
            clickhouse.Quiesce(Cluster(stuck=(stuck,)), _redis_of(client), drain_timeout=1, stop_timeout=0.3,
                               interval=0.1)()
        except clickhouse.QuiesceError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=quiesce, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the quiesce still waits past its stop timeout"
    assert len(outcome) == 1 and f"{stuck} was scaled to 0" in str(outcome[0])


def test_the_quiesce_goes_on_as_soon_as_the_queues_are_empty(client):
    """Decision 24: the drain is polled at the quiesce's interval, so a pause does not wait on after
    the worker has emptied the queues."""
    _jobs(client, "ingestion-queue", "wait", 2)
    worker = threading.Timer(0.3, lambda: client.delete("bull:ingestion-queue:wait"))
    worker.start()
    stopwatch = clickhouse.time.monotonic()
    try:
        clickhouse.Quiesce(Cluster(), _redis_of(client), drain_timeout=10, stop_timeout=1, interval=0.1)()
    finally:
        worker.cancel()
    assert clickhouse.time.monotonic() - stopwatch < 3


def test_the_quiesce_reports_each_step_to_the_operator(client, caplog):
    """Decision 24, docs/operations.md (pause): a pause spends minutes here; the log says when intake
    stopped, when the queues were empty and when ClickHouse stopped with its volume detached, each
    with the seconds since the quiesce began."""
    caplog.set_level("INFO")
    clickhouse.Quiesce(Cluster(), _redis_of(client), drain_timeout=1, stop_timeout=1, interval=0.1)()
    lines = [r.getMessage() for r in caplog.records]
    assert "ClickHouse's data: Langfuse finishes what it accepted, then ClickHouse stops ..." in lines
    assert "quiesce: langfuse-web scaled to 0: no new events accepted" in lines
    steps = {"quiesce: queues empty after ": "s", "quiesce: ClickHouse stopped after ": "s; its volume is detached"}
    for start, end in steps.items():
        [line] = [line for line in lines if line.startswith(start)]
        seconds = line.removeprefix(start).removesuffix(end)
        assert line.endswith(end) and 0 <= int(seconds) < 60, line


def test_the_drain_wait_names_the_queues_it_waits_for(client, caplog):
    """Decision 24: while the worker drains (up to 10 minutes) each progress line says what the
    pause waits for."""
    caplog.set_level("INFO")
    _jobs(client, "ingestion-queue", "wait", 1)
    with pytest.raises(clickhouse.QuiesceError):
        clickhouse.wait_drained(client, timeout=0.2, interval=0.1)
    waiting = "Langfuse's ingestion queues in Redis empty (ingestion-queue, secondary-ingestion-queue, "
    assert any(r.getMessage().startswith(waiting) for r in caplog.records)


def test_queues_that_never_empty_give_runnable_commands_and_every_count(client):
    """Decision 24: the operator copies the commands from the message (the worker's logs, web back
    to 1 replica) and reads each queue with its count."""
    _jobs(client, "ingestion-queue", "delayed", 2)
    _jobs(client, "otel-ingestion-queue", "active", 1)
    with pytest.raises(clickhouse.QuiesceError) as caught:
        clickhouse.wait_drained(client, timeout=0.2, interval=0.1)
    message = str(caught.value)
    assert "(ingestion-queue: 2, otel-ingestion-queue: 1)" in message
    assert "`kubectl -n langfuse logs deploy/langfuse-worker`" in message
    assert "`kubectl -n langfuse scale deploy/langfuse-web --replicas=1` brings it back" in message


def test_a_pod_that_does_not_go_is_named_with_what_was_awaited_and_the_way_on():
    """Decision 24: the error names the pods still there and what the wait was for, and says to
    run the command again."""
    cluster = Cluster(stuck=("langfuse-worker",))
    with pytest.raises(clickhouse.QuiesceError) as caught:
        clickhouse.scale_down(cluster, "langfuse", "deployment", "langfuse-worker", timeout=0.2, interval=0.1)
    message = str(caught.value)
    assert "deployment langfuse-worker's pods gone" in message and "langfuse-worker-7f8b-xyz12" in message
    assert "`kubectl -n langfuse describe pod`" in message and "then run the command again" in message


def test_the_legacy_claim_refusal_gives_both_ways_out():
    """Decision 24, issue 23 item 4: move the data by snapshot, or delete the claim if its data may go."""
    problem = clickhouse.legacy_problem(["data-langfuse-clickhouse-shard0-0"], "langfuse")
    assert problem is not None
    assert "snapshot the old volume, make 02-deps' volume from the snapshot, rebuild 03-app" in problem
    assert "or delete the claim yourself if its data may go." in problem


def test_no_node_in_the_volume_zone_lists_every_zone_and_node_elsewhere():
    """Decision 24: the line lists each zone with its nodes (the operator picks one to terminate) and
    says why ClickHouse stays Pending."""
    problem = clickhouse.zone_problem({"us-east-1c": ["ip-3"], "us-east-1b": ["ip-2", "ip-1"]}, "us-east-1a")
    assert problem is not None
    assert "(Ready nodes: us-east-1b: ip-1, ip-2, us-east-1c: ip-3)" in problem
    assert "ClickHouse cannot start anywhere else" in problem
    assert "(`aws ec2 terminate-instances`)" in problem


def test_the_wait_for_a_node_in_the_zone_says_which_zone(caplog):
    """Decision 24: right after a resume the operator sees which zone the check waits for."""
    caplog.set_level("INFO")
    clickhouse.placement_problem(lambda: [_node("b", "us-east-1b")], "us-east-1a", timeout=0.1, interval=0.05)
    assert any(r.getMessage().startswith("a Ready node in us-east-1a for ClickHouse's volume: not yet")
               for r in caplog.records)
