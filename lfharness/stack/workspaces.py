"""The one model of the stack's workspaces: each entry says everything the harness knows about a
workspace, and every order, graph and table the harness uses is derived from these entries.

- apply order (deploy, resume) is the upstream graph sorted so each workspace follows what it reads;
  pause, teardown and destroy go the other way;
- Terraform Cloud state sharing: a workspace's state is shared with the workspaces that name it
  upstream (their `tfe_outputs` sources, checked against the HCL by tests/unit/test_workspaces.py);
- behaviour: the workspace that hosts the cluster (`hosts_cluster`) and the one whose resources live
  inside it (`in_cluster`) carry the special steps a Stack, pause and teardown take for them.

Adding a workspace: one entry here and its folder under terraform/ (with its cloud block and its
outputs); see docs/development.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROJECT_TAG = ("Project", "langfuse-k8s-cluster")  # every workspace's default_tags, and the EBS CSI volumes'
NAMESPACE = "langfuse"  # 03-app's namespace: the release, its Secret and its PVCs
CLUSTER_NAME = "langfuse"  # 01-network's local.name

# A sample output: (value, sensitive), as Terraform Cloud's state-version outputs serve it.
Sample = dict[str, tuple[Any, bool]]


@dataclass(frozen=True)
class Workspace:
    """One Terraform root module of the stack and its Terraform Cloud workspace."""

    folder: str  # under terraform/
    tfc_name: str  # the cloud block's workspace name
    upstream: tuple[str, ...]  # folders whose outputs it reads (`tfe_outputs`)
    cluster_side_output: str  # exists only while applied with cluster_enabled = true (no null outputs)
    apply_budget: float  # seconds one apply may take (budget.py adds them up)
    sample_outputs: Sample = field(default_factory=dict, repr=False)  # what the offline tiers serve
    paused_outputs: Sample = field(default_factory=dict, repr=False)  # the same while paused
    hosts_cluster: bool = False  # creates the EKS cluster: its outputs say whether a cluster exists
    in_cluster: bool = False  # its helm_/kubernetes_ resources live inside the cluster
    holds_data: bool = False  # RDS, S3 and the data-protecting secrets: kept by a pause and a rebuild


_NETWORK_SAMPLE: Sample = {
    "vpc_id": ("vpc-0abc1234def567890", False),
    "public_subnet_ids": (["subnet-0aaa1111bbb22222c", "subnet-0ddd3333eee44444f"], False),
    "cluster_name": (CLUSTER_NAME, False),
    "cluster_endpoint": ("https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com", False),
    "cluster_ca_data": ("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==", False),
    "oidc_provider_arn": ("arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC", False),
    "node_security_group_id": ("sg-0123456789abcdef0", False),
}
_DEPS_SAMPLE: Sample = {
    "rds_endpoint": ("langfuse.c1x2y3z4.us-east-1.rds.amazonaws.com:5432", False),
    "rds_password": ("Sample0Password0For0Plans0Only00", True),
    "s3_bucket_name": ("langfuse-storage-1a2b3c4d", False),
    "s3_bucket_region": ("us-east-1", False),
    "irsa_role_arn": ("arn:aws:iam::123456789012:role/langfuse-s3-20260101", False),
    # The secrets that protect stored data (decision 20), added beside the five.
    "salt": ("Sample0Salt0For0Plans0Only0" + "s" * 37, True),
    "encryption_key": ("5a" * 32, True),
    "project_public_key": ("pk-lf-00000000-0000-4000-8000-000000000001", False),
    "project_secret_key": ("sk-lf-Sample0Project0Secret0Key0For0Plans0Only0000", True),
    # ClickHouse's volume (decision 24), kept while paused.
    "clickhouse_volume_id": ("vol-0c1c2c3c4c5c6c7c8", False),
    "clickhouse_volume_zone": ("us-east-1a", False),
    "clickhouse_volume_size_gib": (8, False),
    # The in-cluster secrets and the revision 03-app's Secret follows (issue 26: one state holds them).
    "nextauth_secret": ("Sample0Nextauth0Secret0For0Plans0Only0" + "n" * 26, True),
    "clickhouse_password": ("Sample0Clickhouse0Password0Plans0", True),
    "redis_password": ("Sample0Redis0Password0For0Plans00", True),
    "app_secrets_revision": (123456789012345, False),
}

# 02-deps publishes its non-sensitive outputs as this variable of its workspace (02-deps/contract.tf),
# which 03-app reads instead of the outputs: the tfe_outputs data source would store the sensitive
# ones in 03-app's state too.
DEPS_CONTRACT_VARIABLE = "LFK8S_DEPS_CONTRACT"


# Apply budgets: 01-network creates EKS and its nodes (15-20 min), 02-deps RDS (6-10 min), 03-app
# waits for the Helm release's own timeout (helm_release.timeout = 1200 s in 03-app/helm.tf) + 5 min.
REGISTRY: tuple[Workspace, ...] = (
    Workspace(
        folder="01-network", tfc_name="langfuse-network", upstream=(), cluster_side_output="cluster_name",
        apply_budget=25 * 60, hosts_cluster=True, sample_outputs=_NETWORK_SAMPLE,
        # Terraform stores no null output: a paused 01-network keeps its VPC, and cluster_name is "".
        paused_outputs={k: v for k, v in _NETWORK_SAMPLE.items() if k in ("vpc_id", "public_subnet_ids")}
        | {"cluster_name": ("", False)}),
    Workspace(
        folder="02-deps", tfc_name="langfuse-deps", upstream=("01-network",), cluster_side_output="irsa_role_arn",
        apply_budget=12 * 60, holds_data=True, sample_outputs=_DEPS_SAMPLE,
        paused_outputs={k: v for k, v in _DEPS_SAMPLE.items() if k != "irsa_role_arn"}),
    Workspace(
        folder="03-app", tfc_name="langfuse-app", upstream=("01-network", "02-deps"), cluster_side_output="namespace",
        apply_budget=20 * 60 + 5 * 60, in_cluster=True),
)


def _apply_order(entries: tuple[Workspace, ...]) -> tuple[str, ...]:
    """Folders sorted so each follows every workspace it reads; a cycle or an unknown upstream is
    an error in the registry, named."""
    known = {w.folder: w for w in entries}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(folder: str, via: str) -> None:
        if folder in order:
            return
        if folder not in known:
            raise ValueError(f"workspace registry: {via} names upstream {folder!r}, which is not a registry entry")
        if folder in visiting:
            raise ValueError(f"workspace registry: {folder} is its own upstream (via {via})")
        visiting.add(folder)
        for up in known[folder].upstream:
            visit(up, folder)
        # Once in `order` the first check returns: `visiting` need not forget it.
        order.append(folder)

    for entry in entries:
        visit(entry.folder, entry.folder)
    return tuple(order)


ORDER: tuple[str, ...] = _apply_order(REGISTRY)  # deploy and resume
REVERSE_ORDER: tuple[str, ...] = tuple(reversed(ORDER))  # pause and teardown
BY_FOLDER: Mapping[str, Workspace] = {w.folder: w for w in REGISTRY}
TFC_NAMES: Mapping[str, str] = {w.folder: w.tfc_name for w in REGISTRY}


def get(folder: str) -> Workspace:
    """The registry entry of a folder under terraform/ (KeyError names the known ones)."""
    try:
        return BY_FOLDER[folder]
    except KeyError:
        raise KeyError(f"no workspace {folder!r} in the registry; known: {', '.join(ORDER)}") from None


def _single(entries: tuple[Workspace, ...], flag: str) -> str:
    found = [w.folder for w in entries if getattr(w, flag)]
    if len(found) != 1:
        raise ValueError(f"workspace registry: exactly one workspace must have {flag}, found {found}")
    return found[0]


CLUSTER_WORKSPACE: str = _single(REGISTRY, "hosts_cluster")  # 01-network
APP_WORKSPACE: str = _single(REGISTRY, "in_cluster")  # 03-app
DATA_WORKSPACE: str = _single(REGISTRY, "holds_data")  # 02-deps


def state_readers() -> dict[str, list[str]]:
    """Terraform Cloud names: each workspace's state -> the workspaces allowed to read it (FR16,
    FR17): exactly those that name it upstream."""
    return {w.tfc_name: [TFC_NAMES[r.folder] for r in REGISTRY if w.folder in r.upstream] for w in REGISTRY}
