"""Plan tier, only Langfuse reaches its stores (issue 26 item 1): the VPC CNI's network policy
enforcement in 01-network's plan, and 03-app's NetworkPolicies in namespace langfuse.

Stand-ins: the provider stand-in serving the real aws 6.47.0 and kubernetes 2.38.0 schemas; the
real random and tfe providers; upstream outputs from the local Terraform Cloud fake
(`plan.NETWORK_SAMPLE`, `plan.DEPS_SAMPLE`). 03-app's tests run everywhere; the 01-network ones
need the real vpc, eks and iam module sources (LFK8S_MODULE_MIRROR) and skip, saying so, without
them. What the policies select is the chart tier's (test_chart_network_policy.py); that the API
server takes them, the kube tier's (test_kube_network_policy.py); that the VPC CNI enforces them,
only an e2e on EKS can show (docs/security.md).
"""

from __future__ import annotations

import json

import pytest
import yaml

from lfharness.testing import plan
from lfharness.testing.cluster.helm import network_policy_manifest

pytestmark = pytest.mark.plan

POLICY = "kubernetes_network_policy_v1"
VPC_CNI = 'module.eks.aws_eks_addon.before_compute["vpc-cni"]'
RELEASE = "helm_release.langfuse[0]"
NAMESPACE = "langfuse"

# The pod labels of chart 1.5.19's workloads (release "langfuse"); the chart tier checks them
# against the rendered pod templates.
APP = {"matchLabels": {"app.kubernetes.io/name": "langfuse", "app.kubernetes.io/instance": "langfuse"},
       "matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "worker"]}]}
CLICKHOUSE = {"matchLabels": {"app.kubernetes.io/instance": "langfuse", "app.kubernetes.io/name": "clickhouse",
                              "app.kubernetes.io/component": "clickhouse"}}
VALKEY = {"matchLabels": {"app.kubernetes.io/instance": "langfuse", "app.kubernetes.io/name": "redis",
                          "app.kubernetes.io/component": "primary"}}
# EKS's CoreDNS addon: Service kube-dns in kube-system selects k8s-app=kube-dns, ports 53/UDP and
# 53/TCP (eksctl-io/eksctl pkg/addons/default/assets/coredns-1.35.json, the EKS 1.35 manifest).
COREDNS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
           "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
DNS_PORTS = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
JOB_PODS = {"matchExpressions": [{"key": "batch.kubernetes.io/job-name", "operator": "Exists"}]}
HTTPS_ANYWHERE = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
RDS_PORT = {"port": 5432, "protocol": "TCP"}


# --- the planned kubernetes_network_policy_v1 as the NetworkPolicy the provider creates ------------

def manifest(after: dict) -> dict:
    """A planned kubernetes_network_policy_v1 as the NetworkPolicy object the provider sends."""
    return network_policy_manifest(after)


@pytest.fixture(scope="module")
def policies(app_plan) -> dict[str, dict]:
    """03-app's NetworkPolicies as planned, by name."""
    found = [manifest(after) for after in app_plan.of_type(POLICY).values()]
    return {p["metadata"]["name"]: p for p in found}


def _tcp(*ports: int) -> list[dict]:
    return [{"port": p, "protocol": "TCP"} for p in ports]


def _by_pods(policies: dict[str, dict], selector: dict) -> dict[str, dict]:
    return {name: p for name, p in policies.items() if p["spec"]["podSelector"] == selector}


# --- 01-network: the VPC CNI enforces NetworkPolicies ------------------------------------------

@pytest.fixture(scope="module")
def network(request) -> plan.Plan:
    """01-network's whole plan, or a skip naming the missing module sources (CI)."""
    reason = plan.modules_unavailable("01-network")
    if reason:
        pytest.skip(reason)
    return request.getfixturevalue("network_plan")


def test_vpc_cni_addon_turns_on_network_policy_enforcement(network):
    """Issue 26 item 1: the vpc-cni addon's configuration sets enableNetworkPolicy "true" (a string,
    as the addon's schema wants): its node agent enforces NetworkPolicies with eBPF and EKS's
    network policy controller resolves them. Without it every NetworkPolicy is inert."""
    addon = network.after(VPC_CNI)
    assert addon.get("configuration_values") is not None, "vpc-cni has no configuration: enforcement is off"
    assert json.loads(addon["configuration_values"]).get("enableNetworkPolicy") == "true"


def test_vpc_cni_keeps_its_node_agent_and_standard_enforcing_mode(network):
    """Issue 26 item 1: nothing in the configuration turns the node agent off (nodeAgent.enabled) or
    switches to strict mode, which would start every pod of the cluster (CoreDNS and the EBS CSI
    driver included) with deny-all until a policy allows it (EKS user guide, network policies)."""
    config = json.loads(network.after(VPC_CNI).get("configuration_values") or "null")
    assert config is not None, "vpc-cni has no configuration"
    assert config.get("nodeAgent", {}).get("enabled", True) in (True, "true")
    assert config.get("env", {}).get("NETWORK_POLICY_ENFORCING_MODE", "standard") == "standard"


def test_rds_egress_is_to_the_vpc_of_01_network(network, policies):
    """FR11, issue 26 item 1: the one 5432 rule's CIDR is 01-network's VPC CIDR (publicly accessible
    RDS resolves to its private address inside the VPC), so the two cannot drift apart."""
    vpc = network.after("module.vpc.aws_vpc.this[0]")["cidr_block"]
    cidrs = [peer["ipBlock"]["cidr"] for p in policies.values() for rule in p["spec"].get("egress", [])
             for peer in rule.get("to", []) if "ipBlock" in peer and RDS_PORT in rule["ports"]]
    assert cidrs == [vpc]


# --- 03-app: the policies ---------------------------------------------------------------------

def test_every_policy_is_in_namespace_langfuse_and_exists_only_with_the_cluster(app_plan, policies):
    """Journey 3, issue 26 item 1: six NetworkPolicies, all in namespace langfuse, each behind
    cluster_enabled (count: address [0]), so a pause deletes them with the namespace."""
    assert sorted(policies) == ["allow-dns", "default-deny", "jobs-https", "langfuse-app",
                                "langfuse-clickhouse-clients", "langfuse-valkey-clients"]
    assert {p["metadata"]["namespace"] for p in policies.values()} == {NAMESPACE}
    assert all(address.endswith("[0]") for address in app_plan.of_type(POLICY))


def test_a_paused_app_plans_no_network_policy(workbench, tmp_path):
    """Journey 3: with cluster_enabled=false 03-app plans no NetworkPolicy (there is no cluster)."""
    paused = workbench.plan("03-app", tmp_path / "03-app", plan.PAUSED)
    assert paused.of_type(POLICY) == {}


def test_the_namespace_denies_all_ingress_and_egress_by_default(policies):
    """Issue 26 item 1: one policy selects every pod of the namespace for both directions and
    allows nothing: what no other policy allows is dropped."""
    deny = _by_pods(policies, {})
    everything = [p["spec"] for p in deny.values() if sorted(p["spec"]["policyTypes"]) == ["Egress", "Ingress"]]
    assert everything == [{"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}]


def test_every_pod_may_ask_coredns_and_nothing_else_namespace_wide(policies):
    """Issue 26 item 1: the namespace-wide allows are DNS only: UDP and TCP 53 to EKS's CoreDNS
    pods in kube-system (the selector of Service kube-dns, so the VPC CNI also allows its cluster
    IP, the nameserver pods use)."""
    rules = [rule for p in _by_pods(policies, {}).values() for rule in p["spec"].get("egress", [])]
    ingress = [rule for p in _by_pods(policies, {}).values() for rule in p["spec"].get("ingress", [])]
    assert rules == [{"to": [COREDNS], "ports": DNS_PORTS}] and ingress == []


def test_web_and_worker_reach_clickhouse_valkey_rds_and_https_and_nothing_else(policies, app_plan):
    """FR11-FR13, issue 26 item 1: web and worker may open ClickHouse 8123 (queries) and 9000
    (migrations at start), Valkey 6379, RDS 5432 in the VPC, and 443 anywhere (S3 and STS for IRSA
    have no fixed addresses; LLM APIs). No ingress rule: the UI is port-forwarded."""
    (app,) = _by_pods(policies, APP).values()
    db_port = yaml.safe_load(app_plan.after(RELEASE)["values"][0])["postgresql"]["port"]  # what the app dials
    assert app["spec"]["policyTypes"] == ["Egress"] and "ingress" not in app["spec"]
    assert app["spec"]["egress"] == [
        {"to": [{"podSelector": CLICKHOUSE}], "ports": _tcp(8123, 9000)},
        {"to": [{"podSelector": VALKEY}], "ports": _tcp(6379)},
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": _tcp(db_port)},
        HTTPS_ANYWHERE,
    ]


@pytest.mark.parametrize(("store", "selector", "ports"), [("ClickHouse", CLICKHOUSE, [8123, 9000]),
                                                          ("Valkey", VALKEY, [6379])])
def test_each_store_accepts_web_and_worker_on_its_ports_and_nothing_else(policies, store, selector, ports):
    """FR13, issue 26 item 1 (CVE-2025-49844 needs a network path to Valkey): the store's only
    ingress rule names web and worker, on the ports they use; no other pod, no address block, no
    other namespace."""
    rules = [rule for p in _by_pods(policies, selector).values() for rule in p["spec"].get("ingress", [])]
    assert rules == [{"from": [{"podSelector": APP}], "ports": _tcp(*ports)}]


def test_no_policy_lets_anything_in_from_outside_the_release(policies):
    """Issue 26 item 1: every ingress peer of every policy is a pod selector of this namespace (no
    ipBlock, no namespaceSelector, no rule without peers, which would mean anyone)."""
    peers = [peer for p in policies.values() for rule in p["spec"].get("ingress", []) for peer in rule.get("from", [None])]
    assert peers and all(peer is not None and set(peer) == {"podSelector"} for peer in peers)


def test_addresses_outside_the_cluster_are_reached_only_on_443_and_on_5432_in_the_vpc(policies):
    """Issue 26 item 1: across all policies, the address-block egress rules are HTTPS anywhere (web,
    worker, Jobs) and PostgreSQL to the VPC (web, worker); no rule without peers or without ports
    (which would allow every address or every port, IMDS's 80 included)."""
    rules = [(name, rule) for name, p in policies.items() for rule in p["spec"].get("egress", [])]
    assert all(rule.get("to") and rule.get("ports") for _, rule in rules)
    by_block = sorted((name, peer["ipBlock"]["cidr"], tuple(p["port"] for p in rule["ports"]))
                      for name, rule in rules for peer in rule["to"] if "ipBlock" in peer)
    assert by_block == [("jobs-https", "0.0.0.0/0", (443,)), ("langfuse-app", "0.0.0.0/0", (443,)),
                        ("langfuse-app", "10.0.0.0/16", (5432,))]


def test_job_pods_get_https_out_and_nothing_in_the_cluster(policies):
    """FR8, issue 26 item 1: pods the Job controller makes (label batch.kubernetes.io/job-name; the
    e2e suite's IRSA check is one) may reach STS and S3 on 443, and nothing else beyond DNS."""
    (jobs,) = _by_pods(policies, JOB_PODS).values()
    assert jobs["spec"] == {"podSelector": JOB_PODS, "policyTypes": ["Egress"], "egress": [HTTPS_ANYWHERE]}


def test_the_chart_makes_no_network_policy_of_its_own(app_plan):
    """Issue 26 item 1: the values turn off the Bitnami ClickHouse and Valkey NetworkPolicies (by
    default they allow any source on every port and any egress, and NetworkPolicies add up: they
    would reopen the stores). 03-app's policies are the only ones."""
    values = yaml.safe_load(app_plan.after(RELEASE)["values"][0])
    assert [values[chart].get("networkPolicy", {}).get("enabled") for chart in ("clickhouse", "redis")] == [False, False]
