"""ClickHouse's data through a pause and a rebuild (decision 24).

Langfuse 3.150 keeps traces, observations, scores and dataset run items in ClickHouse, on the EBS
volume 02-deps owns. Before 03-app is destroyed (pause, rebuild) Langfuse must finish what it
accepted, and ClickHouse must stop cleanly so the volume is detached and consistent:

1. the web Deployment goes to 0: nothing new is accepted;
2. the ingestion queues in Redis (BullMQ, Langfuse 3.150's `QueueName`s below) are waited empty;
3. the worker Deployment goes to 0 (on SIGTERM it closes its BullMQ workers, then flushes its
   ClickHouse writer) and its pods are waited gone;
4. ClickHouse's StatefulSet goes to 0 and its pod is waited gone: the volume is unmounted.

The volume lives in one Availability Zone; ClickHouse can run only on a node there
(`zone_problem`). Operator code: used by `pause`, the e2e suite's rebuild and `resume`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lfharness.core.wait import Stopwatch, WaitTimeout, retry

LOG = logging.getLogger("lfharness.stack.clickhouse")

# The queues whose jobs end as rows in ClickHouse, from Langfuse 3.150's
# packages/shared/src/server/queues.ts (QueueName). Shard counts are 1 (the chart sets none of
# LANGFUSE_*_QUEUE_SHARD_COUNT), so each queue has its base name only.
DRAINED_QUEUES: tuple[str, ...] = (
    "ingestion-queue",                 # events from /api/public/ingestion -> traces, observations, scores
    "secondary-ingestion-queue",       # the same for projects moved off the main queue
    "otel-ingestion-queue",            # OTel spans from /api/public/otel/v1/traces (the SDK's path)
    "trace-upsert",                    # evaluations triggered by new traces
    "dataset-run-item-upsert-queue",   # evaluations triggered by dataset run items
    "evaluation-execution-queue",      # evaluator runs -> scores
    "llm-as-a-judge-execution-queue",  # observation evaluator runs -> scores
    "experiment-create-queue",         # experiments -> dataset run items
    "create-eval-queue",               # evaluation jobs for existing data
)
BULLMQ_PREFIX = "bull"  # BullMQ's default; Langfuse sets a prefix only with REDIS_CLUSTER_ENABLED
# A job not yet finished is in one of these keys (BullMQ 5): lists and sorted sets.
_LIST_STATES = ("wait", "active", "paused")
_ZSET_STATES = ("delayed", "prioritized", "waiting-children")

# Chart 1.5.19's object names for release "langfuse".
WEB = "langfuse-web"
WORKER = "langfuse-worker"
CLICKHOUSE = "langfuse-clickhouse-shard0"
REDIS_SERVICE = "langfuse-redis-primary"
REDIS_SECRET, REDIS_KEY = "langfuse-secrets", "redis-password"
ZONE_LABEL = "topology.kubernetes.io/zone"

DRAIN_TIMEOUT = 600.0
STOP_TIMEOUT = 300.0


class QuiesceError(RuntimeError):
    """Langfuse could not finish what it accepted, or ClickHouse did not stop, in time."""


class RedisLike(Protocol):
    def llen(self, name: str) -> int: ...

    def zcard(self, name: str) -> int: ...


class KubeLike(Protocol):
    def scale(self, namespace: str, kind: str, name: str, replicas: int) -> None: ...

    def pod_names(self, namespace: str) -> list[str]: ...

    def claim_names(self, namespace: str) -> list[str]: ...


# The claim chart 1.5.19's StatefulSet made for itself before decision 24 (volumeClaimTemplate
# "data"): destroying 03-app deletes it and its EBS volume with the namespace.
LEGACY_CLAIM = f"data-{CLICKHOUSE}-0"
MIGRATION_DOC = "docs/operations.md, \"A stack deployed before ClickHouse's own volume\""


def legacy_problem(claims: Iterable[str], namespace: str) -> str | None:
    """The refusal for a release whose ClickHouse still keeps its data on the chart's own claim."""
    if LEGACY_CLAIM not in claims:
        return None
    return (f"ClickHouse keeps its data (traces, observations, scores, evaluation results) on the chart's own claim "
            f"{namespace}/{LEGACY_CLAIM}, made before ClickHouse got its own volume: destroying 03-app would delete it "
            f"with its EBS volume. Nothing was destroyed. Move the data into 02-deps' volume first ({MIGRATION_DOC}: "
            "snapshot the old volume, make 02-deps' volume from the snapshot, rebuild 03-app), or delete the claim "
            "yourself if its data may go.")


# --- the queues -------------------------------------------------------------------------------

def queued(client: RedisLike, queues: Iterable[str] = DRAINED_QUEUES) -> dict[str, int]:
    """Jobs not yet finished per queue (waiting, active, paused, delayed, prioritized, waiting for
    children); queues with none are left out."""
    counts = {}
    for queue in queues:
        key = f"{BULLMQ_PREFIX}:{queue}:"
        n = sum(client.llen(key + s) for s in _LIST_STATES) + sum(client.zcard(key + s) for s in _ZSET_STATES)
        if n:
            counts[queue] = n
    return counts


def describe(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{queue}: {n}" for queue, n in sorted(counts.items())) or "nothing"


def wait_drained(client: RedisLike, *, timeout: float = DRAIN_TIMEOUT, interval: float = 5) -> None:
    """Waits until no drained queue holds a job; QuiesceError names what is still queued."""
    try:
        retry(lambda: queued(client), timeout=timeout, interval=interval,
              what=f"Langfuse's ingestion queues in Redis empty ({', '.join(DRAINED_QUEUES[:3])}, ...)",
              validator=lambda counts: not counts)
    except WaitTimeout as exc:
        left = queued(client)
        raise QuiesceError(
            f"Langfuse's queues still hold jobs after {timeout:g}s ({describe(left)}): the worker has not "
            "written them to ClickHouse, and Redis does not survive a pause or a rebuild. Nothing was "
            "destroyed. Check the worker (`kubectl -n langfuse logs deploy/langfuse-worker`), then run the "
            "command again to wait longer; Langfuse's web is scaled to 0 meanwhile (`kubectl -n langfuse "
            "scale deploy/langfuse-web --replicas=1` brings it back).") from exc


# --- stopping writers ---------------------------------------------------------------------------

def _pods_of(names: Iterable[str], owner: str) -> list[str]:
    # Deployment pods are <name>-<hash>-<suffix>, StatefulSet pods <name>-<ordinal>.
    return [n for n in names if n.startswith(f"{owner}-")]


def scale_down(kube: KubeLike, namespace: str, kind: str, name: str, *, timeout: float = STOP_TIMEOUT,
               interval: float = 3) -> None:
    """Scales a Deployment or StatefulSet to 0 and waits until its pods are gone."""
    kube.scale(namespace, kind, name, 0)
    try:
        retry(lambda: _pods_of(kube.pod_names(namespace), name), timeout=timeout, interval=interval,
              what=f"{kind} {name}'s pods gone", validator=lambda left: not left)
    except WaitTimeout as exc:
        raise QuiesceError(f"{kind} {name} was scaled to 0 but its pods are still there after {timeout:g}s: "
                           f"{exc}. Nothing was destroyed; see `kubectl -n {namespace} describe pod`, "
                           "then run the command again.") from exc


@dataclass
class Quiesce:
    """Stops Langfuse so that what it accepted is in ClickHouse and ClickHouse's volume is detached.

    redis: opens a client on Langfuse's Redis (through a port-forward on a real cluster; the local
    redis-server in the lifecycle tier) as a context manager.
    """

    kube: KubeLike
    redis: Callable[[], Any]
    namespace: str = "langfuse"
    drain_timeout: float = DRAIN_TIMEOUT
    stop_timeout: float = STOP_TIMEOUT
    interval: float = 5

    def __call__(self) -> None:
        started = time.monotonic()
        problem = legacy_problem(self.kube.claim_names(self.namespace), self.namespace)
        if problem:
            raise QuiesceError(problem)
        with Stopwatch("ClickHouse's data: Langfuse finishes what it accepted, then ClickHouse stops", logger=LOG):
            self.kube.scale(self.namespace, "deployment", WEB, 0)
            LOG.info("quiesce: %s scaled to 0: no new events accepted", WEB)
            with self.redis() as client:
                wait_drained(client, timeout=self.drain_timeout, interval=self.interval)
            LOG.info("quiesce: queues empty after %.0fs", time.monotonic() - started)
            scale_down(self.kube, self.namespace, "deployment", WORKER, timeout=self.stop_timeout)
            scale_down(self.kube, self.namespace, "statefulset", CLICKHOUSE, timeout=self.stop_timeout)
            LOG.info("quiesce: ClickHouse stopped after %.0fs; its volume is detached", time.monotonic() - started)


# --- the zone -----------------------------------------------------------------------------------

def ready_zones(nodes: Iterable[Any]) -> dict[str, list[str]]:
    """Ready nodes by their topology.kubernetes.io/zone label (V1Node objects)."""
    zones: dict[str, list[str]] = {}
    for node in nodes:
        ready = any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
        zone = (node.metadata.labels or {}).get(ZONE_LABEL)
        if ready and zone:
            zones.setdefault(zone, []).append(node.metadata.name)
    return zones


def zone_problem(zones: Mapping[str, list[str]], volume_zone: str | None, node: str = "Ready node") -> str | None:
    """One line when no `node` is in the volume's zone (ClickHouse would stay Pending), with the
    way out; None when there is one (or no volume to place)."""
    if not volume_zone or zones.get(volume_zone):
        return None
    elsewhere = ", ".join(f"{z}: {', '.join(sorted(n))}" for z, n in sorted(zones.items())) or f"no {node} at all"
    return (f"no {node} in {volume_zone}, the zone of ClickHouse's volume ({node}s: {elsewhere}); ClickHouse "
            "cannot start anywhere else. The node group balances its nodes over both zones: wait for it, or "
            "terminate a node of the other zone so it starts one in its place (`aws ec2 terminate-instances`), "
            "then run the command again.")


def placement_problem(nodes: Callable[[], Iterable[Any]], volume_zone: str | None, *, timeout: float = 300,
                      interval: float = 15) -> str | None:
    """Waits up to `timeout` for a Ready node in the volume's zone (nodes that just joined become
    Ready within a minute or two); returns zone_problem's line when none came, else None."""
    try:
        retry(lambda: ready_zones(nodes()), timeout=timeout, interval=interval,
              what=f"a Ready node in {volume_zone} for ClickHouse's volume",
              validator=lambda zones: zone_problem(zones, volume_zone) is None)
    except WaitTimeout:
        return zone_problem(ready_zones(nodes()), volume_zone)
    return None


# --- on a real cluster ----------------------------------------------------------------------------

@contextlib.contextmanager
def redis_through_port_forward(kube: Any, namespace: str, learn: Callable[[str], str] = str) -> Iterator[Any]:
    """A redis client on Langfuse's Valkey through `kubectl port-forward svc/langfuse-redis-primary`,
    with the password from the release's Secret (`learn` registers it with the redactor first)."""
    import redis  # noqa: PLC0415

    password = learn(kube.secret(namespace, REDIS_SECRET)[REDIS_KEY])
    with kube.port_forward(namespace, REDIS_SERVICE, 6379) as port:
        client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=10,
                             socket_connect_timeout=10)
        try:
            yield client
        finally:
            client.close()


def node_instance_zones(session: Any, cluster_name: str) -> dict[str, list[str]]:
    """Running EC2 instances of the cluster's node group by Availability Zone (what `status` can
    see without reaching the cluster)."""
    pages = session.client("ec2").get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag:eks:cluster-name", "Values": [cluster_name]},
        {"Name": "instance-state-name", "Values": ["running"]}])
    zones: dict[str, list[str]] = {}
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                zones.setdefault(instance["Placement"]["AvailabilityZone"], []).append(instance["InstanceId"])
    return zones
