"""The arithmetic of fitting the release onto the nodes: Kubernetes quantities, what the scheduler
reserves for a pod (init containers and sidecars counted as it counts them), the release's
requests per workload and in total, a first-fit placement onto the nodes' free capacity, and
the volumes it claims in whole GiB (as the EBS CSI driver rounds them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from lfharness.testing.chartrig.query import of_kind, pod_spec, replicas, workloads

# Quantity suffixes: binary (Ki, Mi...) and decimal (m, k, M...), as Kubernetes reads them.
_BINARY = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10) ** 3,
            "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15,
            "E": Decimal(10) ** 18}


def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("250m", "1.5", "768Mi", "1e9", "8G") in base units."""
    text = str(value).strip()
    match = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]*)", text)
    if not match or match.group(2) not in {**_BINARY, **_DECIMAL}:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number, suffix = Decimal(match.group(1)), match.group(2)
    return number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


@dataclass(frozen=True)
class Requests:
    """CPU in millicores and memory in MiB: the units the capacity tests state their numbers in."""

    cpu_m: Decimal = Decimal(0)
    memory_mi: Decimal = Decimal(0)
    pods: int = 0

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.cpu_m + other.cpu_m, self.memory_mi + other.memory_mi, self.pods + other.pods)

    def __sub__(self, other: Requests) -> Requests:
        return Requests(self.cpu_m - other.cpu_m, self.memory_mi - other.memory_mi, self.pods - other.pods)

    def times(self, n: int) -> Requests:
        return Requests(self.cpu_m * n, self.memory_mi * n, self.pods * n)

    def fits_in(self, capacity: Requests) -> bool:
        return self.cpu_m <= capacity.cpu_m and self.memory_mi <= capacity.memory_mi and self.pods <= capacity.pods

    def __str__(self) -> str:
        return f"{self.cpu_m.normalize():f}m CPU, {self.memory_mi.normalize():f}Mi memory, {self.pods} pods"


def container_requests(container: dict) -> Requests:
    req = (container.get("resources") or {}).get("requests") or {}
    cpu = quantity(req["cpu"]) * 1000 if "cpu" in req else Decimal(0)
    mem = quantity(req["memory"]) / 2 ** 20 if "memory" in req else Decimal(0)
    return Requests(cpu, mem, 0)


def pod_requests(spec: dict) -> Requests:
    """What the scheduler reserves for one pod: the larger of the containers' sum and the largest
    init container (restartable init containers, i.e. sidecars, count in both)."""
    inits = spec.get("initContainers") or []
    sidecars = [c for c in inits if c.get("restartPolicy") == "Always"]
    sidecar_sum = sum((container_requests(c) for c in sidecars), Requests())
    main = sum((container_requests(c) for c in spec.get("containers") or []), Requests()) + sidecar_sum
    peak = main
    for c in inits:
        if c.get("restartPolicy") != "Always":
            one = container_requests(c) + sidecar_sum
            peak = Requests(max(peak.cpu_m, one.cpu_m), max(peak.memory_mi, one.memory_mi))
    return Requests(peak.cpu_m, peak.memory_mi, 1)


def workload_requests(objects: list[dict], nodes: int) -> dict[str, Requests]:
    """Requests of every workload times its pods (DaemonSets: one pod per node), by Kind/name."""
    out = {}
    for w in workloads(objects):
        count = nodes if w["kind"] == "DaemonSet" else replicas(w)
        out[f"{w['kind']}/{w['metadata']['name']}"] = pod_requests(pod_spec(w)).times(count)
    return out


def total_requests(objects: list[dict], nodes: int) -> Requests:
    return sum(workload_requests(objects, nodes).values(), Requests())


def containers_without_requests(objects: list[dict]) -> list[str]:
    """Container paths (incl. init containers) lacking a CPU or a memory request."""
    missing = []
    for w in workloads(objects):
        spec = pod_spec(w)
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            req = (c.get("resources") or {}).get("requests") or {}
            lacks = [r for r in ("cpu", "memory") if r not in req]
            if lacks:
                missing.append(f"{w['kind']}/{w['metadata']['name']}/{c['name']}: no {' or '.join(lacks)} request")
    return missing


def pods(objects: list[dict]) -> list[tuple[str, Requests]]:
    """One entry per pod the release runs (Deployments and StatefulSets), with its requests."""
    out = []
    for w in workloads(objects):
        if w["kind"] == "DaemonSet":
            continue
        for index in range(replicas(w)):
            out.append((f"{w['metadata']['name']}-{index}", pod_requests(pod_spec(w))))
    return out


def place(pods_to_place: list[tuple[str, Requests]], free: list[Requests],
          pinned: dict[str, int] | None = None) -> dict[str, int] | None:
    """First-fit decreasing placement of pods onto nodes with the given free capacity; a pod in
    `pinned` may only go to that node (node affinity, e.g. ClickHouse to its volume's zone).

    Returns pod -> node index, or None when some pod fits on no node. A heuristic: a None is
    conclusive only up to it, but a placement found is a real one.
    """
    remaining = list(free)
    placement: dict[str, int] = {}
    pinned = pinned or {}
    # Pinned pods first: they have one node to go to, the others take what is left.
    ordered = ([p for p in pods_to_place if p[0] in pinned]
               + sorted((p for p in pods_to_place if p[0] not in pinned),
                        key=lambda p: (p[1].memory_mi, p[1].cpu_m), reverse=True))
    for name, req in ordered:
        allowed = [pinned[name]] if name in pinned else range(len(remaining))
        node = next((i for i in allowed if req.fits_in(remaining[i])), None)
        if node is None:
            return None
        remaining[node] = remaining[node] - req
        placement[name] = node
    return placement


# --- storage --------------------------------------------------------------------------------

def gib(size: str) -> int:
    """A storage quantity in whole GiB, rounded up as the EBS CSI driver rounds a request."""
    return int((quantity(size) / 2 ** 30).to_integral_value(rounding=ROUND_CEILING))


def pvc_sizes(objects: list[dict]) -> dict[str, int]:
    """Every PVC the release creates, by the name Kubernetes gives it, in GiB (rounded up).

    StatefulSet claims are `<template>-<statefulset>-<ordinal>`; standalone PVCs keep their name.
    The chart tier holds the cost report's volume count (lfharness.stack.cost.chart_volumes) against this.
    """
    sizes = {}
    for sts in of_kind(objects, "StatefulSet"):
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            size = gib(template["spec"]["resources"]["requests"]["storage"])
            for ordinal in range(replicas(sts)):
                sizes[f"{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"] = size
    for pvc in of_kind(objects, "PersistentVolumeClaim"):
        sizes[pvc["metadata"]["name"]] = gib(pvc["spec"]["resources"]["requests"]["storage"])
    return sizes
