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
