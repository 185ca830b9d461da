"""Pinned versions: modules, chart, providers, Kubernetes (static)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lfharness.core import hcl
from lfharness.testing import toolchain

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
# Facts about the pinned modules' versions.tf, read from their sources (tests/data/reference/README.md).
REFERENCE = ROOT / "tests" / "data" / "reference"


def _modules(workspace: str) -> dict[str, dict]:
    return hcl.blocks(TERRAFORM / workspace, "module")


def _providers(workspace: str) -> dict[str, dict]:
    terraform = hcl.load(TERRAFORM / workspace / "providers.tf")["terraform"][0]
    return {k: v for block in terraform["required_providers"] for k, v in block.items()}


def _lower_bound(constraint: str) -> tuple[int, ...]:
    match = re.search(r"(?:~>|>=)\s*([\d.]+)", constraint)
    assert match, f"constraint {constraint!r} has no lower bound"
    return tuple(int(x) for x in match.group(1).split("."))


@pytest.mark.parametrize("workspace,module,source,version", [
    ("01-network", "vpc", "terraform-aws-modules/vpc/aws", "~> 6.6"),
    ("01-network", "eks", "terraform-aws-modules/eks/aws", "~> 21.15"),
    ("01-network", "ebs_csi_irsa", "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts", "~> 6.4"),
    ("02-deps", "rds", "terraform-aws-modules/rds/aws", "~> 7.1"),
    ("02-deps", "langfuse_irsa", "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts", "~> 6.4"),
])
def test_community_modules_are_pinned_to_the_spec_constraints(workspace, module, source, version):
    """NFR9: terraform-aws-modules at the constraints of the stories (decision 8 for IRSA)."""
    body = _modules(workspace)[module]
    assert (body["source"], body["version"]) == (source, version)


def test_no_module_uses_the_removed_iam_eks_role_path():
    """Decision 8: iam-role-for-service-accounts-eks does not exist in iam 6.x."""
    sources = [b["source"] for ws in ("01-network", "02-deps", "03-app") for b in _modules(ws).values()]
    assert not [s for s in sources if s.endswith("iam-role-for-service-accounts-eks")]


def test_helm_chart_is_langfuse_1_5_19_from_the_official_repository():
    """FR10, NFR10: chart langfuse pinned to 1.5.19, release name langfuse."""
    text = (TERRAFORM / "03-app" / "helm.tf").read_text()
    release = hcl.blocks(TERRAFORM / "03-app", "resource")["helm_release"]["langfuse"]
    assert release["name"] == "langfuse"
    assert release["chart"] == "langfuse"
    assert release["repository"] == "https://langfuse.github.io/langfuse-k8s"
    assert 'chart_version = "1.5.19"' in text and release["version"] == "${local.chart_version}"


def test_kubernetes_version_is_1_35_in_one_local():
    """Decision 1, FR2: EKS 1.35, one variable-free local."""
    text = (TERRAFORM / "01-network" / "eks.tf").read_text()
    assert re.findall(r'kubernetes_version\s*=\s*"([\d.]+)"', text) == ["1.35"]


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_every_provider_is_pinned_with_an_upper_bound(workspace):
    """NFR10 spirit: every provider comes from the hashicorp namespace and has a major-version ceiling."""
    providers = _providers(workspace)
    assert providers
    for name, spec in providers.items():
        assert spec["source"] == f"hashicorp/{name}"
        assert spec["version"].startswith("~>") or "<" in spec["version"], f"{workspace} {name}: {spec['version']}"


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_provider_constraints_admit_the_offline_schemas_and_todays_releases(workspace):
    """Issue 8, NFR10: the plan tier's schema versions and the newest releases both satisfy terraform/."""
    reqs = json.loads((REFERENCE / "module-requirements.json").read_text())
    today = {name: re.search(r"latest v([\d.]+)", text).group(1)
             for name, text in reqs["aggregate_per_workspace_suggestion"]["ws3_apps (helm/kubernetes/tfe)"].items()
             if "latest v" in text}
    # The schemas set-up installs the stand-in from (in the repository unless LFK8S_PROVIDER_SCHEMAS
    # names another folder); an empty folder would make the check below vacuous.
    offline = {name: version for name, (version, _) in toolchain.schema_files(toolchain.schemas_dir()).items()}
    assert sorted(offline) == sorted(toolchain.STANDIN_PROVIDERS), f"schemas in {toolchain.schemas_dir()}"
    for name, spec in _providers(workspace).items():
        for version in filter(None, (offline.get(name), today.get(name))):
            assert hcl.admits(spec["version"], version), f"{workspace}: {name} {spec['version']} refuses {version}"


@pytest.mark.parametrize("constraint,version,expected", [
    ("~> 3.0", "3.1.2", True), ("~> 3.1", "3.0.2", False), ("~> 6.28", "6.47.0", True), ("~> 6.28", "7.0.0", False),
    (">= 2.38, < 4.0", "2.38.0", True), (">= 2.38, < 4.0", "3.2.1", True), (">= 2.38, < 4.0", "4.0.0", False),
    ("~> 0.79", "0.80.0", True), ("~> 1.2.3", "1.3.0", False),
])
def test_the_constraint_reader_follows_terraform_semantics(constraint, version, expected):
    """Issue 8: the helper above is right on both sides of each bound, so the admission test can fail."""
    assert hcl.admits(constraint, version) is expected


@pytest.mark.parametrize("workspace", ["01-network", "02-deps"])
def test_aws_constraint_meets_every_pinned_module_minimum(workspace):
    """NFR9: the aws provider floor is at least what each pinned module's versions.tf demands."""
    reqs = json.loads((REFERENCE / "module-requirements.json").read_text())["modules"]
    floor = _lower_bound(_providers(workspace)["aws"]["version"])
    for body in _modules(workspace).values():
        key = body["source"].split("//")[0] if "//modules/iam" not in body["source"] else body["source"]
        req = reqs.get(key)
        if req is None:
            continue
        minimum = _lower_bound(req["providers"]["aws"])
        assert floor >= minimum, f"{workspace}: aws {floor} < {minimum} required by {key}"
