"""Chart tier, only Langfuse reaches its stores (issue 26 item 1): 03-app's planned NetworkPolicies
read against the pods the real chart 1.5.19 makes from 03-app's planned values.

Stand-in: the real chart 1.5.19 (with its Bitnami ClickHouse 8.0.5 and Valkey 2.2.4 subcharts)
rendered by helm template; no cluster, no CNI. A selector is judged against the labels of the
rendered pod templates with Kubernetes' label-selector rules; the Services' selectors and ports
against what the VPC CNI's network policy controller needs to allow a Service's cluster IP
(aws/amazon-network-policy-controller-k8s pkg/resolvers/endpoints.go, getMatchingServiceClusterIPs:
a Service counts only when the egress rule's pod selector matches the Service's selector).
"""

from __future__ import annotations

import urllib.parse

import pytest

from lfharness.testing.chartrig import query, render, source
from lfharness.testing.cluster.helm import label_selector_of

pytestmark = pytest.mark.chart

# Without a chart the whole tier skips with one line, before any Terraform runs (as test_chart.py).
_PIN = source.release_pin()
_CHART = source.locate(_PIN)
if _CHART is None:
    pytest.skip(source.unavailable_reason(_PIN), allow_module_level=True)

POLICY = "kubernetes_network_policy_v1"
WEB, WORKER = "Deployment/langfuse-web", "Deployment/langfuse-worker"
APP_WORKLOADS = (WEB, WORKER)
# The env of web and worker naming each store: ClickHouse queries (HTTP), ClickHouse migrations
# (native protocol, run by web at start), Valkey (queues and cache).
STORE_URLS = ("CLICKHOUSE_URL", "CLICKHOUSE_MIGRATION_URL", "REDIS_CONNECTION_STRING")
POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


# --- the planned policies and the rendered release ------------------------------------------------

def _selector(blocks: list | None) -> dict | None:
    """A planned pod_selector block as a LabelSelector (None when absent)."""
    return label_selector_of(blocks)


def _ports(rule: dict) -> set[tuple[str, int]]:
    return {(p.get("protocol") or "TCP", int(p["port"])) for p in rule.get("ports") or []}


@pytest.fixture(scope="module")
def policies(chart_source, app_plan) -> dict[str, dict]:
    """03-app's planned NetworkPolicies by name: the pod selector, and each ingress/egress rule as
    (pod selectors of its peers, other peers, ports)."""
    found = {}
    for after in app_plan.of_type(POLICY).values():
        spec = after["spec"][0]
        rules = {}
        for direction, peers in (("ingress", "from"), ("egress", "to")):
            rules[direction] = [{"pods": [_selector(p["pod_selector"]) for p in r.get(peers) or [] if p.get("pod_selector")
                                          and not p.get("namespace_selector")],
                                 "other": [p for p in r.get(peers) or [] if not p.get("pod_selector") or p.get("namespace_selector")],
                                 "ports": _ports(r)} for r in spec.get(direction) or []]
        found[after["metadata"][0]["name"]] = {"selector": _selector(spec["pod_selector"]) or {}, **rules}
    return found


@pytest.fixture(scope="module")
def chart_source() -> source.Chart:
    """The chart located when this file was collected."""
    return _CHART


@pytest.fixture(scope="module")
def objects(chart_source, app_plan) -> list[dict]:
    """The release as the real chart renders 03-app's planned values."""
    return render.render(app_plan.after("helm_release.langfuse[0]")["values"], chart_source, _PIN)


@pytest.fixture(scope="module")
def pods(objects) -> dict[str, dict]:
    """Kind/name -> pod template labels, for every rendered object that makes pods."""
    found = {f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["metadata"].get("labels") or {}
             for o in objects if o["kind"] in POD_TEMPLATE_KINDS}
    found |= {f"CronJob/{o['metadata']['name']}": o["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels") or {}
              for o in query.of_kind(objects, "CronJob")}
    return found


def matches(selector: dict, labels: dict[str, str]) -> bool:
    """Kubernetes' LabelSelector semantics (matchLabels and matchExpressions are ANDed; {} selects all)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        present, value, values = e["key"] in labels, labels.get(e["key"]), e.get("values") or []
        ok = {"In": present and value in values, "NotIn": not present or value not in values,
              "Exists": present, "DoesNotExist": not present}[e["operator"]]
        if not ok:
            return False
    return True


def _selected(selector: dict, pods: dict[str, dict]) -> list[str]:
    return sorted(w for w, labels in pods.items() if matches(selector, labels))


def _backends(objects: list[dict], pods: dict[str, dict], service: str) -> list[str]:
    """The workloads whose pods a Service sends to (its selector over the pod template labels)."""
    return _selected({"matchLabels": query.get(objects, "Service", service)["spec"]["selector"]}, pods)


def _pod_spec(objects: list[dict], workload: str) -> dict:
    kind, name = workload.split("/")
    return query.pod_spec(query.get(objects, kind, name))


def _store_services(objects: list[dict]) -> dict[str, tuple[str, int]]:
    """Env name -> (Service, port) that web's env points each store client at."""
    env = query.container_env(objects, "Deployment", "langfuse-web")
    found = {}
    for name in STORE_URLS:
        url = urllib.parse.urlsplit(env[name])
        found[name] = (url.hostname, url.port)
    return found


# --- which pods each policy means ----------------------------------------------------------------

def test_the_release_makes_exactly_web_worker_clickhouse_and_valkey(pods):
    """FR10, FR13: the pods the policies have to cover: web, worker, one ClickHouse and one Valkey
    StatefulSet; no Job, DaemonSet or CronJob (the policies name no other workload)."""
    assert sorted(pods) == [WEB, WORKER, "StatefulSet/langfuse-clickhouse-shard0", "StatefulSet/langfuse-redis-primary"]


def test_each_policy_selects_exactly_the_workloads_it_means(policies, pods, objects):
    """Issue 26 item 1: each policy's pod selector, applied to the rendered pod template labels,
    selects exactly its workloads: default-deny and allow-dns all four, langfuse-app web and worker,
    the store policies the pods behind the Service the app dials, jobs-https none of the chart's."""
    behind = {svc: _backends(objects, pods, svc) for svc, _ in _store_services(objects).values()}
    intended = {"default-deny": sorted(pods), "allow-dns": sorted(pods), "langfuse-app": sorted(APP_WORKLOADS),
                "langfuse-clickhouse-clients": behind["langfuse-clickhouse"],
                "langfuse-valkey-clients": behind["langfuse-redis-primary"], "jobs-https": []}
    assert [len(behind[s]) for s in ("langfuse-clickhouse", "langfuse-redis-primary")] == [1, 1]
    assert {name: _selected(p["selector"], pods) for name, p in policies.items()} == intended


@pytest.mark.parametrize("store", ["langfuse-clickhouse-clients", "langfuse-valkey-clients"])
def test_each_store_accepts_only_web_and_worker(policies, pods, store):
    """FR13, issue 26 item 1: the only peers a store accepts are pods of this namespace whose
    labels are web's and worker's (no address block, no other namespace, nobody else)."""
    rules = policies[store]["ingress"]
    assert [r["other"] for r in rules] == [[]]
    assert [sorted({w for s in r["pods"] for w in _selected(s, pods)}) for r in rules] == [sorted(APP_WORKLOADS)]


def test_each_store_policy_opens_exactly_the_ports_web_and_worker_dial(policies, objects):
    """FR13, issue 26 item 1: the ports of CLICKHOUSE_URL (8123), CLICKHOUSE_MIGRATION_URL (9000,
    the migrations web runs at start) and REDIS_CONNECTION_STRING (6379) are the ports the stores
    accept web and worker on, and the ports web and worker may send to; none other."""
    dialled = _store_services(objects)
    want = {"langfuse-clickhouse-clients": {("TCP", dialled[n][1]) for n in ("CLICKHOUSE_URL", "CLICKHOUSE_MIGRATION_URL")},
            "langfuse-valkey-clients": {("TCP", dialled["REDIS_CONNECTION_STRING"][1])}}
    accepted = {name: set().union(*(r["ports"] for r in policies[name]["ingress"])) for name in want}
    sent = {name: set().union(*(r["ports"] for r in policies["langfuse-app"]["egress"]
                                if r["pods"] == [policies[name]["selector"]])) for name in want}
    assert accepted == want and sent == want


def test_web_and_worker_may_reach_the_service_ips_they_dial(policies, objects, pods):
    """Issue 26 item 1: for each store URL in web's env, the Service it names is a ClusterIP Service
    (not headless) whose selector the egress rule's pod selector matches (else the VPC CNI's
    controller leaves its cluster IP out and web's connections through it are dropped), and whose
    port is the container port behind it (EKS: the service port must equal the container port)."""
    problems = []
    for env, (svc_name, port) in _store_services(objects).items():
        svc = query.get(objects, "Service", svc_name)
        rules = [r for r in policies["langfuse-app"]["egress"]
                 if any(matches(s, svc["spec"]["selector"]) for s in r["pods"]) and ("TCP", port) in r["ports"]]
        (svc_port,) = [p for p in svc["spec"]["ports"] if p["port"] == port]
        container_ports = {(p.get("name"), p["containerPort"]) for w in _backends(objects, pods, svc_name)
                           for c in _pod_spec(objects, w)["containers"] for p in c.get("ports") or []}
        target = svc_port.get("targetPort", port)
        resolved = {cp for name, cp in container_ports if name == target or cp == target}
        if svc["spec"].get("clusterIP") == "None" or not rules or resolved != {port}:
            problems.append(f"{env} -> {svc_name}:{port} (rules {len(rules)}, container ports {sorted(resolved)})")
    assert problems == []


def test_the_chart_renders_no_network_policy_of_its_own(objects):
    """Issue 26 item 1: the Bitnami ClickHouse and Valkey NetworkPolicies are off. By default they
    allow every source on the stores' ports and any egress; NetworkPolicies add up, so they would
    reopen what 03-app's policies close."""
    assert [p["metadata"]["name"] for p in query.of_kind(objects, "NetworkPolicy")] == []


def test_no_release_pod_is_given_rights_on_the_kubernetes_api(objects):
    """Issue 26 item 1: no policy opens the Kubernetes API because nothing in the release uses it:
    the chart binds no Role or ClusterRole to any account, and ClickHouse's and Valkey's pods mount
    no service account token at all (web and worker keep the default token of `langfuse`, which has
    no binding; IRSA's web-identity token is a separate projected volume for STS)."""
    rbac = [f"{o['kind']}/{o['metadata']['name']}" for o in objects
            if o["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")]
    accounts = {sa["metadata"]["name"]: sa.get("automountServiceAccountToken") for sa in query.of_kind(objects, "ServiceAccount")}
    stores = [_pod_spec(objects, w) for w in ("StatefulSet/langfuse-clickhouse-shard0", "StatefulSet/langfuse-redis-primary")]
    mounting = [s.get("serviceAccountName") for s in stores
                if s.get("automountServiceAccountToken", accounts.get(s.get("serviceAccountName"))) is not False]
    assert rbac == [] and mounting == []
