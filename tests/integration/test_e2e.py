"""The ordered e2e suite: apply, verify, pause / resume and rebuild with data intact, teardown (stories 4.1-5.2).

Real AWS + Terraform Cloud when .env is complete; otherwise the embedded local default runs
what the local stand-ins can honestly serve and every other stage skips naming the missing keys.
Stage control (Terratest style): LFK8S_KEEP_STACK=1 skips teardown for debugging. Teardown is
registered before the first apply; Ctrl-C lets Terraform write its state, then tears down.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from lfharness import commands
from lfharness.core import envfile
from lfharness.core.wait import retry
from lfharness.stack import aws_checks, budget, deploy, k8s, langfuse_api, pause, workspaces
from lfharness.stack.stack import KEEP_ENV, ORDER, Stack
from lfharness.testing import datakeys, langfuse_fake, plan
from lfharness.testing.chartrig import source
from lfharness.testing.cluster import binaries
from lfharness.testing.cluster.helm import Helm, PlannedRelease, apply_secrets, planned_release
from lfharness.testing.cluster.localkube import LocalKube
from lfharness.testing.cluster.nodes import NODES

pytestmark = pytest.mark.e2e

LOG = logging.getLogger("lfharness.e2e")
NAMESPACE = "langfuse"


@pytest.fixture(scope="session", autouse=True)
def credentials_outlive_the_suite(target):
    """FR23, issue 15 defect 6: temporary AWS credentials that would expire before the suite could
    end stop the session here, before the first stage creates anything (Terraform Cloud included)."""
    if target.kind != "aws":
        return
    try:
        target.settings.require_lifetime("the e2e suite (deploy to teardown)", budget.E2E_SUITE)
    except envfile.CredentialsExpireTooSoon as exc:
        pytest.exit(str(exc), returncode=2)


@pytest.fixture(scope="session")
def session_aws(target):
    """boto3 on the .env credentials only: none of the shell's AWS_* settings (issue 10 item 2)."""
    target.skip_unless_aws("AWS session")
    return target.settings.boto3_session()


@pytest.fixture(scope="session")
def stack(target, run_dir, request, redactor):
    """The stack, with teardown registered BEFORE the first apply (it runs even after a failure or Ctrl-C).
    It shares the session's redactor: every secret it reads is masked in pytest's output too."""
    target.skip_unless_aws("deploy")
    # The AWS session: the teardown's PVC wait and leftover sweep, the log group check before 01-network.
    st = Stack(target.settings, run_dir, redactor=redactor, aws=target.settings.boto3_session())
    request.addfinalizer(st.teardown_unless_kept)
    return st


@pytest.fixture(scope="session")
def kube(stack, target, run_dir, redactor) -> k8s.Kubectl:
    """kubectl on a kubeconfig whose exec plugin mints a fresh EKS token per call; the plugin gets the
    .env AWS credentials through kubectl's environment (Settings.child_env), nothing from the shell."""
    net = stack.outputs("01-network")
    path = k8s.write_exec_kubeconfig(run_dir / "kubeconfig", net["cluster_endpoint"], net["cluster_ca_data"],
                                     net["cluster_name"], target.settings.aws_region)
    return k8s.Kubectl(path, env=target.settings.child_env(), redactor=redactor)


@pytest.fixture
def diagnostics(request, run_dir, kube):
    """Pods, events, logs (and a restarted container's previous log) into the run folder when a
    Kubernetes-facing test fails."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        kube.collect_diagnostics(NAMESPACE, run_dir / "k8s" / request.node.name)


@pytest.fixture(scope="session")
def readiness() -> dict[str, dict[str, int]]:
    """Restart counts per container when every pod first became Ready (filled by the pods stage)."""
    return {}


@pytest.fixture(scope="session")
def rebuild_data() -> dict[str, object]:
    """What the rebuild stage wrote before destroying 03-app, for the stages that read it back."""
    return {}


def _db(stack) -> aws_checks.DbConn:
    deps = stack.outputs("02-deps")
    return aws_checks.DbConn(host=deps["rds_endpoint"].split(":")[0], port=5432, user="langfuse",
                             password=deps["rds_password"], dbname="langfuse")


def _api(stack, port: int) -> langfuse_api.Api:
    # The key pair is 02-deps' (issue 26: 03-app outputs no secret); 03-app configured Langfuse with it.
    deps = stack.outputs("02-deps")
    return langfuse_api.Api(f"http://127.0.0.1:{port}", deps["project_public_key"], deps["project_secret_key"])


def _healthy(port: int) -> None:
    retry(lambda: langfuse_api.health(f"http://127.0.0.1:{port}"), timeout=300, interval=5,
          what="Langfuse health 200", validator=lambda r: r.status_code == 200)


def _cluster(target, run_dir, redactor, stage: str) -> commands.ClusterAccess:
    """The cluster as pause, resume and rebuild reach it (their own kubeconfig under the run folder,
    written from 01-network's outputs when used): the quiesce, the health and the zone check."""
    return commands.ClusterAccess(target.settings, run_dir / stage, redactor)


def _write_evaluation_read_back(api: langfuse_api.Api, run_id: str) -> langfuse_api.Evaluation:
    """Decision 24: an evaluation (trace, span, generation, score, dataset run item) written and waited
    for until it reads back complete, so that a loss found later is the pause's or the rebuild's,
    not ingestion still under way."""
    written = langfuse_api.write_evaluation(api, run_id)
    read = langfuse_api.wait_for_evaluation(api, written, timeout=300, interval=10)
    assert read == written, "not readable before the destroy: " + "; ".join(written.differences(read))
    return written


def _assert_evaluation_reads_back(api: langfuse_api.Api, written: langfuse_api.Evaluation) -> None:
    """The same ids, types, parents, model, usage, score value and run item, and as many of each."""
    read = langfuse_api.wait_for_evaluation(api, written, timeout=300, interval=10)
    assert read.counts() == written.counts(), "; ".join(written.differences(read))
    assert read == written, "; ".join(written.differences(read))


# --- 0. Terraform Cloud ---------------------------------------------------------------------

@pytest.mark.order(1)
@pytest.mark.dependency(name="tfc")
def test_terraform_cloud_workspaces_exist_in_local_mode_and_share_state(tfc):
    """NFR12, FR16, FR17, decisions 3 and 12: the three workspaces exist with local execution and
    state sharing (against the local Terraform Cloud fake when .env has no credentials)."""
    created = tfc.ensure_all(workspaces.state_readers())
    assert set(created) == {"langfuse-network", "langfuse-deps", "langfuse-app"}
    assert {w["attributes"]["execution-mode"] for w in created.values()} == {"local"}
    assert set(tfc.remote_state_consumers("langfuse-network")) >= {"langfuse-deps", "langfuse-app"}
    assert "langfuse-app" in tfc.remote_state_consumers("langfuse-deps")


# --- 0b. embedded default: what the local stand-ins can honestly serve -----------------------

LOCAL_FILES = ["variables.tf", "data.tf"]
# What 03-app's wiring reads, made visible without a cluster: the contract 02-deps publishes (not a
# secret) kept in a terraform_data, and a precondition that the ephemeral tfe_outputs opened and
# carries the secrets (a condition may read an ephemeral value; nothing of it is stored).
LOCAL_WIRING = """resource "terraform_data" "deps_wiring" {
  input = local.deps

  lifecycle {
    precondition {
      condition     = try(local.deps_secrets.salt, null) != null && try(local.deps_secrets.redis_password, null) != null
      error_message = "the ephemeral tfe_outputs of langfuse-deps carried no secrets"
    }
  }
}
"""


@pytest.fixture(scope="module")
def local_app(target, run_dir, tmp_path_factory, redactor):
    """03-app's upstream wiring (its variables and data.tf: tfe_outputs of 01-network, 02-deps'
    contract variable, the ephemeral tfe_outputs of 02-deps' secrets), applied for real (tfe
    provider from the offline mirror) against the local Terraform Cloud fake serving the samples."""
    if target.kind == "aws":
        pytest.skip("embedded-default stage: the real AWS stages below cover this")
    missing = plan.missing_providers(["random", "tfe"])
    if missing:
        pytest.skip("embedded default needs the random and tfe providers: " + "; ".join(missing))
    folder = tmp_path_factory.mktemp("local-app")
    with plan.Workbench(folder / "offline") as offline:
        workdir = plan.subset("03-app", LOCAL_FILES, ["random", "tfe"], folder / "terraform", offline.fake.hostname,
                              {"backend_override.tf": plan.LOCAL_BACKEND, "local_default_wiring.tf": LOCAL_WIRING})
        settings = envfile.Settings("AKIA" + "0" * 16, "0" * 40, "us-east-1", offline.env["TFE_TOKEN"],
                                    offline.fake.organization, "ops@example.com", "Ops", "local-default-password")
        yield Stack(settings, run_dir, workdir.parent, extra_env=offline.env, redactor=redactor)


@pytest.mark.order(2)
@pytest.mark.dependency(name="local_apply", depends=["tfc"])
def test_local_default_applies_app_secrets_with_upstream_outputs(local_app):
    """FR15, FR17, issue 26: 03-app's upstream wiring applies for real against the local Terraform
    Cloud fake (no AWS: the aws, helm and kubernetes parts need the real target): it reads 02-deps'
    contract (the samples' non-secret outputs), the ephemeral tfe_outputs carries the secrets, and
    the state holds none of them."""
    local_app.apply("03-app")
    text = (local_app.terraform_dir / "03-app" / "terraform.tfstate").read_text()
    state = json.loads(text)
    (wiring,) = [r for r in state["resources"] if r["mode"] == "managed"]
    contract = wiring["instances"][0]["attributes"]["input"]["value"]
    assert contract == {k: v for k, (v, sensitive) in plan.DEPS_SAMPLE.items() if not sensitive}
    secrets = {k: v for k, (v, sensitive) in plan.DEPS_SAMPLE.items() if sensitive}
    assert datakeys.labels_found(text, secrets) == []


@pytest.mark.order(3)
@pytest.mark.dependency(depends=["local_apply"])
def test_local_default_second_plan_shows_no_changes(local_app):
    """FR29: re-planning the applied part shows no changes, against the local Terraform Cloud fake."""
    assert local_app.plan_has_changes("03-app") is False


@pytest.mark.order(4)
@pytest.mark.dependency(depends=["local_apply"])
def test_local_default_destroy_leaves_nothing_in_state(local_app):
    """FR27, NFR8: destroy empties the state, against the local Terraform Cloud fake."""
    local_app.destroy("03-app")
    state = json.loads((local_app.terraform_dir / "03-app" / "terraform.tfstate").read_text())
    assert [r for r in state["resources"] if r["mode"] == "managed"] == []


# --- 0c. embedded default on a real local control plane (kube tier's cluster) -----------------
# Real: etcd, kube-apiserver 1.35, controller-manager, scheduler, helm, kubectl, chart 1.5.19 with
# 03-app's planned values. Stand-ins: kwok for the kubelets (pods become Ready, nothing runs), the
# PV loop for the EBS CSI driver, and behind the port-forwards the local Langfuse API stand-in
# (langfuse-web:3000), Debian's redis-server (6379) and a ClickHouse /ping answer (8123).

@pytest.fixture(scope="module")
def local_cluster(target, tmp_path_factory):
    """The local control plane with two t3.medium-shaped kwok nodes (stopped by PID at the end)."""
    if target.kind == "aws":
        pytest.skip("embedded-default stage: the real AWS stages below cover this")
    reason = binaries.unavailable_reason()
    if reason:
        pytest.skip(reason)
    if source.locate(source.release_pin()) is None:
        pytest.skip(source.unavailable_reason(source.release_pin()))
    with LocalKube(tmp_path_factory.mktemp("local-kube")) as env:
        yield env


@pytest.fixture(scope="module")
def local_release(local_cluster, tmp_path_factory, redactor) -> PlannedRelease:
    """03-app's helm values and own Secrets from its offline plan (the Workbench); the Secrets'
    values join the session's redactor."""
    folder = tmp_path_factory.mktemp("local-release")
    with plan.Workbench(folder / "workbench") as bench:
        reason = bench.unavailable("03-app")
        if reason:
            pytest.skip(reason)
        release = planned_release(bench.plan("03-app", folder / "03-app"),
                                  secrets_from=bench.plan("03-app", folder / "03-app-exposed",
                                                          edit=plan.SECRET_EXPOSED_EDIT))
    redactor.add(*release.secret_strings())
    return release


@pytest.fixture(scope="module")
def local_kubectl(local_cluster, redactor) -> k8s.Kube:
    return k8s.Kube(local_cluster.cluster.kubeconfig, redactor=redactor)


@pytest.fixture
def local_diagnostics(request, run_dir, local_kubectl):
    """Pods, events and logs of the local cluster into the run folder when a stage fails."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        local_kubectl.collect_diagnostics(NAMESPACE, run_dir / "k8s" / request.node.name)


@pytest.mark.order(4)
@pytest.mark.dependency(name="local_pods")
def test_local_default_release_installs_and_every_pod_becomes_ready(local_cluster, local_release, local_kubectl,
                                                                     readiness, run_dir):
    """FR10, FR13, FR22: 03-app's Secrets, then `helm install --wait` of chart 1.5.19 with 03-app's
    planned values on a real Kubernetes 1.35 control plane; every pod is placed by the real scheduler
    on the two t3.medium-shaped nodes next to the EKS addon pods and becomes Ready (stand-in: kwok
    kubelets; no container runs). A failed install leaves diagnostics in the run folder."""
    local_cluster.cluster.wait_addons_ready()
    helm = Helm(local_cluster.cluster.kubeconfig, frozenset(local_release.secret_strings()))
    with local_kubectl.diagnostics_on_failure(NAMESPACE, run_dir / "k8s" / "local-install"):
        apply_secrets(local_kubectl.api, local_release)
        helm.install(local_release, source.locate(source.release_pin()).path, timeout="180s")
    items = local_kubectl.wait_all_ready(NAMESPACE, timeout=120)
    readiness["local"] = k8s.restart_counts(items)
    assert {p.spec.node_name for p in items} <= {name for name, _, _ in NODES}


@pytest.mark.order(4)
@pytest.mark.dependency(depends=["local_pods"])
def test_local_default_health_returns_200_through_port_forward(local_cluster, local_kubectl, local_diagnostics):
    """FR19, FR22: /api/public/health answers 200 through port-forward svc/langfuse-web 3000 of the
    installed release (real API server and kubectl; behind the pod's port: the local Langfuse API stand-in)."""
    with local_kubectl.port_forward(NAMESPACE, "langfuse-web", 3000, timeout=30) as port:
        response = langfuse_api.health(f"http://127.0.0.1:{port}")
    assert response.status_code == 200
    assert any(r.path == "/api/public/health" for r in local_cluster.langfuse.requests())


@pytest.mark.order(4)
@pytest.mark.dependency(depends=["local_pods"])
def test_local_default_clickhouse_answers_on_8123_through_port_forward(local_kubectl, local_diagnostics):
    """FR20: /ping answers "Ok." through svc/langfuse-clickhouse 8123 of the installed release
    (behind the pod's port: a local HTTP /ping stand-in for ClickHouse)."""
    with local_kubectl.port_forward(NAMESPACE, "langfuse-clickhouse", 8123, timeout=30) as port:
        assert requests.get(f"http://127.0.0.1:{port}/ping", timeout=10).text.strip() == "Ok."


@pytest.mark.order(4)
@pytest.mark.dependency(depends=["local_pods"])
def test_local_default_redis_answers_ping_on_6379_through_port_forward(local_cluster, local_release, local_kubectl,
                                                                       redactor, local_diagnostics):
    """FR21: the password the harness reads from the Secret the values name (03-app's own, or the
    chart's langfuse-redis) opens
    svc/langfuse-redis-primary 6379 (not -master: decision 13). Behind the pod's port: Debian's
    redis-server, configured with the password 03-app's values give the chart's Valkey (so a Secret
    holding anything else, or the wrong key read, fails the PING)."""
    local_cluster.use_redis_password(redactor.secret(local_release.redis_password()))
    name, key = local_release.redis_secret()
    password = redactor.secret(local_kubectl.secret(NAMESPACE, name)[key])
    with local_kubectl.port_forward(NAMESPACE, "langfuse-redis-primary", 6379, timeout=30) as port:
        assert aws_checks.redis_ping("127.0.0.1", port, password)


@pytest.mark.order(4)
@pytest.mark.dependency(depends=["local_pods"])
def test_local_default_no_pod_restarted_after_the_release_became_ready(local_kubectl, readiness, local_diagnostics):
    """FR22: compared with the counts at readiness, no container restarted while the stages above
    ran (restart counts as the real API server reports them; kwok restarts nothing unasked)."""
    restarts = k8s.restarts_since(readiness["local"], local_kubectl.pods(NAMESPACE))
    assert not restarts, "restarted after readiness:\n" + "\n".join(map(str, restarts))


# --- 0d. embedded default: an application's traces, with the official SDK (decision 25) -------------
# Each journey runs twice where it can: straight to the local Langfuse API stand-in (every CI run:
# nothing but the stand-in is needed) and through port-forward svc/langfuse-web 3000 of the local
# release with its generated project keys (when the kube tier's cluster and the chart are there).

LOCAL_WORKER_LAG = 2.0  # seconds the stand-in's "worker" takes per queue hop: the reads must wait for it


@dataclass(frozen=True)
class LocalLangfuse:
    """Where an embedded journey sends: the Langfuse API stand-in, the project's key pair, and how it
    is reached (`reach()` yields the base URL while it is reachable)."""

    fake: langfuse_fake.LangfuseFake
    public_key: str
    secret_key: str = field(repr=False)
    reach: Callable[[], AbstractContextManager[str]] = field(repr=False)
    route: str = "stand-in"


def _web_project_keys(kube: k8s.Kube, redactor) -> tuple[str, str]:
    """The project key pair the installed web container's headless initialization reads: the value of
    LANGFUSE_INIT_PROJECT_PUBLIC_KEY and the Secret key LANGFUSE_INIT_PROJECT_SECRET_KEY refers to
    (03-app's langfuse-secrets/project-secret-key); the secret joins the redactor."""
    from kubernetes import client  # the typed apps API: only this helper reads a Deployment

    deployment = client.AppsV1Api(kube.api).read_namespaced_deployment("langfuse-web", NAMESPACE)
    env = {e.name: e for c in deployment.spec.template.spec.containers for e in c.env or []}
    ref = env["LANGFUSE_INIT_PROJECT_SECRET_KEY"].value_from.secret_key_ref
    secret = redactor.secret(kube.secret(NAMESPACE, ref.name)[ref.key])
    return env["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"].value, secret


@pytest.fixture(scope="module")
def standalone_langfuse(target, redactor) -> Iterator[LocalLangfuse]:
    """The Langfuse API stand-in on its own, with a key pair generated here, processing asynchronously."""
    if target.kind == "aws":
        pytest.skip("embedded-default stage: the real AWS stages below cover this")
    public_key, secret_key = "pk-lf-" + str(uuid.uuid4()), redactor.secret("sk-lf-" + secrets.token_hex(16))
    with langfuse_fake.LangfuseFake(public_key, secret_key) as fake:
        fake.set_ingestion_lag(LOCAL_WORKER_LAG)
        yield LocalLangfuse(fake, public_key, secret_key, lambda: contextlib.nullcontext(fake.base_url))


@pytest.fixture(scope="module")
def released_langfuse(local_cluster, local_kubectl, redactor) -> LocalLangfuse:
    """The stand-in behind the local release's svc/langfuse-web 3000, with the release's generated
    project keys made its own (as headless initialization makes them the project's in the real web
    container), processing asynchronously from here on."""
    public_key, secret_key = _web_project_keys(local_kubectl, redactor)
    fake = local_cluster.langfuse
    fake.set_project_keys(public_key, secret_key)
    fake.set_ingestion_lag(LOCAL_WORKER_LAG)

    @contextlib.contextmanager
    def reach() -> Iterator[str]:
        with local_kubectl.port_forward(NAMESPACE, "langfuse-web", 3000, timeout=30) as port:
            yield f"http://127.0.0.1:{port}"

    return LocalLangfuse(fake, public_key, secret_key, reach, "port-forward svc/langfuse-web 3000")


@pytest.fixture
def local_langfuse(request) -> LocalLangfuse:
    """`standalone_langfuse` or `released_langfuse` (the latter with the local cluster's diagnostics)."""
    if request.param == "released":
        request.getfixturevalue("local_diagnostics")
    return request.getfixturevalue(f"{request.param}_langfuse")


# The port-forward route needs the installed release; the stand-in alone needs nothing.
LOCAL_ROUTES = [pytest.param("standalone", id="stand-in"),
                pytest.param("released", id="port-forward",
                             marks=pytest.mark.dependency(depends=["local_pods"]))]


@pytest.mark.order(4)
@pytest.mark.parametrize("local_langfuse", LOCAL_ROUTES, indirect=True)
def test_local_default_sdk_trace_observations_and_score_read_back_through_otlp(local_langfuse):
    """J2, J4, decision 25, issue 25 item 2: the official SDK (langfuse 3.x, pinned) sends with the
    project keys a trace whose root span holds a span and a generation (model, 55 tokens), and a
    score; flush(). Followed stage by stage: accepted by the web (the SDK met no refusal), the OTel
    batch stored under events/otel/, processed by the worker (readable only after the stand-in's
    asynchronous delay), then the trace, its three observations (types, nesting, usage) and the score
    read back exactly. Real: the SDK (base URL, Basic auth, OTLP protobuf export, batching, score
    consumer) and, on the port-forward route, kubectl, the API server and the release's generated
    keys; answering: the local Langfuse API stand-in following Langfuse 3.150's OTLP route, span
    conversion, ingestion and score endpoints."""
    local = local_langfuse
    otel_batches = f"{langfuse_fake.EVENT_PREFIX}otel/{langfuse_fake.PROJECT_ID}/"
    with local.reach() as base_url:
        api = langfuse_api.Api(base_url, local.public_key, local.secret_key)
        sent = langfuse_api.send_with_sdk(base_url, local.public_key, local.secret_key, uuid.uuid4().hex[:12])
        LOG.info("SDK trace %s sent via %s", sent.written.trace_id, local.route)
        read = langfuse_api.follow_sdk_trace(api, sent, lambda: local.fake.event_objects(otel_batches),
                                             timeout=60, interval=1)
    assert read.counts() == {"traces": 1, "observations": 3, "scores": 1}
    assert {r.body.content_type for r in local.fake.requests() if r.path == langfuse_api.OTEL_TRACES_PATH} == {
        "application/x-protobuf"}


@pytest.mark.order(4)
@pytest.mark.parametrize("local_langfuse", LOCAL_ROUTES, indirect=True)
def test_local_default_a_newer_sdks_score_array_is_refused(local_langfuse):
    """Issue 25 item 3: what langfuse 5.x posts for scores, a JSON array on POST /api/public/scores, is
    answered 400 "Invalid request data" (the local Langfuse API stand-in follows 3.150's
    PostScoresBody: one object): why README's SDK range stops before 4."""
    local = local_langfuse
    with local.reach() as base_url:
        api = langfuse_api.Api(base_url, local.public_key, local.secret_key)
        response = api.post(langfuse_api.SCORES_PATH, langfuse_api.newer_sdk_score_batch(str(uuid.uuid4())))
    assert (response.status_code, response.json()["message"]) == (400, "Invalid request data")


@pytest.mark.order(4)
@pytest.mark.parametrize("local_langfuse", LOCAL_ROUTES, indirect=True)
def test_local_default_legacy_ingestion_trace_is_readable_and_its_event_stored(local_langfuse):
    """J2, issue 25 item 1 (the path other SDKs use): a trace-create sent to /api/public/ingestion with
    the project keys is accepted (our event among the 207's successes), readable after the
    asynchronous delay, and its raw event is stored at events/<projectId>/trace/<traceId>/<eventId>.json
    (local Langfuse API stand-in)."""
    local = local_langfuse
    trace_id = str(uuid.uuid4())
    with local.reach() as base_url:
        api = langfuse_api.Api(base_url, local.public_key, local.secret_key)
        event_id = api.ingest_trace(trace_id)
        retry(lambda: api.trace_exists(trace_id), timeout=60, interval=1, what=f"trace {trace_id} readable",
              validator=bool)
    key = langfuse_api.event_object_key(langfuse_fake.PROJECT_ID, trace_id, event_id)
    assert trace_id.encode() in local.fake.event_objects()[key]


# --- 1. apply -------------------------------------------------------------------------------

@pytest.mark.order(5)
@pytest.mark.dependency(name="network", depends=["tfc"])
def test_apply_network(stack):
    """FR1-FR4: 01-network applies (about 15 min: EKS), as `python -m lfharness up` applies it
    (deploy.apply_workspace: the same step, the same variables)."""
    deploy.apply_workspace(stack, "01-network")


@pytest.mark.order(6)
@pytest.mark.dependency(name="deps", depends=["network"])
def test_apply_deps(stack):
    """FR5-FR9: 02-deps applies (about 6 min: RDS), as `up` applies it."""
    deploy.apply_workspace(stack, "02-deps")


@pytest.mark.order(7)
@pytest.mark.dependency(name="app", depends=["deps"])
def test_apply_app(stack, kube, run_dir, target, redactor):
    """FR10-FR15, decision 24: 03-app applies as `up` applies it, once a Ready node is in the zone
    of ClickHouse's volume (else one line saying so, not a Helm timeout); the helm release waits for
    first-boot migrations (5-10 min). If it fails (most likely a Helm timeout), pods, events and
    logs are saved (issue 10 item 13)."""
    cluster = commands.ClusterAccess(target.settings, run_dir / "deploy", redactor)
    with kube.diagnostics_on_failure(NAMESPACE, run_dir / "k8s" / "apply-03-app"):
        deploy.apply_workspace(stack, "03-app", cluster.zone_check)


# --- 2. pods and port-forwards --------------------------------------------------------------

@pytest.mark.order(8)
@pytest.mark.dependency(name="pods", depends=["app"])
def test_all_langfuse_pods_become_ready(kube, readiness, diagnostics):
    """FR13, FR22: every pod in langfuse becomes Ready. Restarts until then (the worker's liveness
    probe fails while Valkey still starts) are logged with their reason and counted from here on."""
    items = kube.wait_all_ready(NAMESPACE, timeout=900)
    readiness["restarts"] = k8s.restart_counts(items)
    for restart in k8s.restarts_since({}, items):
        LOG.warning("restart before readiness (allowed, counted from here on): %s", restart)
    assert k8s.all_ready(items)


@pytest.mark.order(9)
@pytest.mark.dependency(depends=["pods"])
def test_health_endpoint_returns_200_through_port_forward(kube, diagnostics):
    """FR19, FR22: /api/public/health answers 200 through port-forward svc/langfuse-web 3000."""
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        response = retry(lambda: langfuse_api.health(f"http://127.0.0.1:{port}"),
                         timeout=120, interval=5, what="Langfuse health 200",
                         validator=lambda r: r.status_code == 200)
    assert response.status_code == 200


@pytest.mark.order(10)
@pytest.mark.dependency(depends=["pods"])
def test_clickhouse_answers_on_8123_through_port_forward(kube, diagnostics):
    """FR20: ClickHouse's HTTP interface answers /ping through svc/langfuse-clickhouse 8123."""
    with kube.port_forward(NAMESPACE, "langfuse-clickhouse", 8123) as port:
        assert requests.get(f"http://127.0.0.1:{port}/ping", timeout=10).text.strip() == "Ok."


@pytest.mark.order(11)
@pytest.mark.dependency(depends=["pods"])
def test_redis_answers_ping_on_6379_through_port_forward(kube, redactor, diagnostics):
    """FR21: Valkey answers PING through svc/langfuse-redis-primary 6379 (not -master: decision 13)."""
    # 03-app's Secret, the one every pod reads (decision 20); the chart renders none of its own.
    data = json.loads(kube.run("-n", NAMESPACE, "get", "secret", "langfuse-secrets", "-o", "json"))["data"]
    password = redactor.secret(base64.b64decode(data["redis-password"]).decode())
    with kube.port_forward(NAMESPACE, "langfuse-redis-primary", 6379) as port:
        assert aws_checks.redis_ping("127.0.0.1", port, password)


@pytest.mark.order(11)
@pytest.mark.dependency(depends=["pods"])
def test_valkey_runs_the_version_its_image_names_and_says_which(kube, redactor, diagnostics):
    """Issue 26 item 2: the running Valkey's `INFO server` version is the one its image tag names
    (docs/security.md: 8.0.2, CVE-2025-49844, mitigated by the NetworkPolicies); it is logged so
    every run reports what runs."""
    sts = json.loads(kube.run("-n", NAMESPACE, "get", "statefulset", "langfuse-redis-primary", "-o", "json"))
    (image,) = {c["image"] for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "valkey"}
    data = json.loads(kube.run("-n", NAMESPACE, "get", "secret", "langfuse-secrets", "-o", "json"))["data"]
    password = redactor.secret(base64.b64decode(data["redis-password"]).decode())
    with kube.port_forward(NAMESPACE, "langfuse-redis-primary", 6379) as port:
        version = aws_checks.redis_server_version("127.0.0.1", port, password)
    LOG.info("Valkey %s runs from %s (docs/security.md: its Lua CVEs and their mitigation)", version, image)
    assert version and image.rsplit(":", 1)[1].startswith(f"{version}-")


# --- 3. RDS ---------------------------------------------------------------------------------

@pytest.mark.order(12)
@pytest.mark.dependency(name="rds", depends=["app"])
def test_rds_reachable_migrated_and_headless_init_rows_present(stack, target):
    """FR5, FR6, FR14: RDS answers from the runner over TLS, migrations ran, user/org/project exist
    (the user looked up case-insensitively: Langfuse stores the email lower-cased, issue 10 item 6)."""
    db = _db(stack)
    app = stack.outputs("03-app")
    assert aws_checks.rds_select_one(db) == 1
    assert aws_checks.rds_migrations_applied(db) > 100
    rows = aws_checks.rds_headless_init_rows(db, target.settings.admin_email, app["org_id"], app["project_id"])
    assert rows == {"user": True, "organization": True, "project": True}


# --- 4. IRSA --------------------------------------------------------------------------------

@pytest.mark.order(13)
@pytest.mark.dependency(name="irsa", depends=["pods"])
def test_pod_writes_to_s3_with_irsa_and_no_static_keys(kube, stack, session_aws, diagnostics):
    """FR8, NFR4: a Job as the langfuse service account writes to the bucket with web-identity creds only.
    The Job fails fast with its pod's log (issue 10 item 12); aws-cli comes from ECR Public (item 14)."""
    deps = stack.outputs("02-deps")
    key = f"e2e/irsa-{uuid.uuid4().hex}.txt"
    job = f"irsa-check-{uuid.uuid4().hex[:6]}"
    script = ("env | grep -q '^AWS_ROLE_ARN=' && test -s \"$AWS_WEB_IDENTITY_TOKEN_FILE\" && "
              "! env | grep -q '^AWS_ACCESS_KEY_ID=' && "
              f"echo irsa-ok | aws s3 cp - s3://{deps['s3_bucket_name']}/{key}")
    kube.run_job(NAMESPACE, job, "langfuse", k8s.IRSA_CHECK_IMAGE, script, timeout=300)
    assert aws_checks.s3_get(session_aws, deps["s3_bucket_name"], key).strip() == b"irsa-ok"


@pytest.mark.order(13)
@pytest.mark.dependency(depends=["irsa"])
def test_a_pod_other_than_web_and_worker_cannot_reach_valkey_or_clickhouse(kube, target, diagnostics):
    """Issue 26 item 1 (docs/security.md): with the VPC CNI enforcing the NetworkPolicies, a
    throwaway Job pod in namespace langfuse (a pod with an owner, as EKS filters) has DNS and HTTPS
    out (STS answers) but its connects to Valkey and ClickHouse time out (dropped, not refused);
    then Langfuse still answers health 200 (web and worker still reach their stores)."""
    stores = [("langfuse-redis-primary", 6379), ("langfuse-clickhouse", 8123), ("langfuse-clickhouse", 9000)]
    sts = (f"sts.{target.settings.aws_region}.amazonaws.com", 443)
    job = f"np-probe-{uuid.uuid4().hex[:6]}"
    log = kube.run_job(NAMESPACE, job, "langfuse", k8s.IRSA_CHECK_IMAGE,
                       k8s.reachability_script([*stores, sts]), timeout=300)
    verdicts = k8s.parse_reachability(log)
    LOG.info("reachability from a Job pod in %s: %s", NAMESPACE, verdicts)
    assert verdicts.get(sts) == k8s.CONNECTED, f"the probe pod has no network at all: {verdicts}"
    assert {t: verdicts.get(t) for t in stores} == dict.fromkeys(stores, k8s.TIMED_OUT)
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        _healthy(port)


# --- 5. a trace end to end ---------------------------------------------------------------------

def _s3_otel_batches(s3: Any, bucket: str, project_id: str, since: float) -> Callable[[], dict[str, bytes]]:
    """The OTel batches Langfuse's web wrote to the bucket since `since` (listed under the hours' prefixes,
    each object read once: Langfuse never rewrites one)."""
    seen: dict[str, bytes] = {}

    def batches() -> dict[str, bytes]:
        for prefix in langfuse_api.otel_batch_prefixes(project_id, since, time.time()):
            for key in aws_checks.s3_list_prefix(s3, bucket, prefix):
                if key not in seen:
                    seen[key] = aws_checks.s3_get(s3, bucket, key)
        return dict(seen)

    return batches


@pytest.mark.order(14)
@pytest.mark.dependency(name="trace", depends=["pods"])
def test_sdk_trace_observations_and_score_are_accepted_stored_processed_and_readable(kube, stack, session_aws,
                                                                                    diagnostics):
    """J2, J4, decision 25, issue 25 item 1: the official SDK (langfuse 3.x, pinned) sends with the
    generated project keys, through port-forward svc/langfuse-web 3000, a trace whose root span holds a
    span and a generation (model, 21 + 34 = 55 tokens), and a score; flush(). Then, each wait naming its
    stage: accepted by the web (neither the OTLP exporter nor the score client met a refusal), the
    OTel batch written to S3 under events/otel/<projectId>/ (holding our trace id), processed by the
    worker (the trace readable), read back complete (three observations with their types, nesting,
    model and usage; the score's name and value). A failure names the stage that stopped."""
    app, bucket = stack.outputs("03-app"), stack.outputs("02-deps")["s3_bucket_name"]
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        api = _api(stack, port)
        sent = langfuse_api.send_with_sdk(api.base_url, api.public_key, api.secret_key, uuid.uuid4().hex[:12])
        read = langfuse_api.follow_sdk_trace(
            api, sent, _s3_otel_batches(session_aws.client("s3"), bucket, app["project_id"], sent.started),
            timeout=300, interval=10)
    assert read.counts() == {"traces": 1, "observations": 3, "scores": 1}


@pytest.mark.order(14)
@pytest.mark.dependency(depends=["pods"])
def test_legacy_ingestion_trace_is_readable_and_its_event_lands_in_s3(kube, stack, session_aws, diagnostics):
    """J2, J4 (the path other SDKs use): a trace-create sent with the generated project keys to
    /api/public/ingestion is accepted (our event among the 207's successes, no errors: issue 10 item 5),
    readable via the API, and its raw event is the object Langfuse writes at
    events/<projectId>/trace/<traceId>/<eventId>.json (issue 15 defect 8)."""
    trace_id = str(uuid.uuid4())
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        api = _api(stack, port)
        event_id = api.ingest_trace(trace_id)
        retry(lambda: api.trace_exists(trace_id), timeout=300, interval=10, what=f"trace {trace_id} readable",
              validator=bool)
    key = langfuse_api.event_object_key(stack.outputs("03-app")["project_id"], trace_id, event_id)
    assert trace_id.encode() in aws_checks.s3_get(session_aws, stack.outputs("02-deps")["s3_bucket_name"], key)


@pytest.mark.order(15)
@pytest.mark.dependency(depends=["pods"])
def test_no_pod_restarted_after_the_release_became_ready(kube, readiness, diagnostics):
    """FR22, issue 10 item 13: compared with the counts at readiness, no container restarted while the
    stages above ran; a restart is reported with lastState.terminated's reason and exit code."""
    restarts = k8s.restarts_since(readiness["restarts"], kube.pods(NAMESPACE))
    assert not restarts, "restarted after readiness:\n" + "\n".join(map(str, restarts))


# --- 6. idempotence -------------------------------------------------------------------------

@pytest.mark.order(16)
@pytest.mark.dependency(name="idempotent", depends=["app"])
@pytest.mark.parametrize("workspace", ORDER)
def test_second_plan_shows_no_changes(stack, workspace):
    """FR29: re-planning an applied workspace shows no changes."""
    assert not stack.plan_has_changes(workspace), f"{workspace} plans changes after apply"


# --- 7. pause / resume (Journey 3, decisions 18 and 24) ------------------------------------------

@pytest.fixture(scope="session")
def pause_data() -> dict[str, object]:
    """What the pause stage wrote before pausing (markers, evaluation, S3 object, key digests), for the
    resume stages to read back."""
    return {}


@pytest.mark.order(17)
@pytest.mark.dependency(name="paused", depends=["rds", "trace"])
def test_pause_removes_the_cluster_and_keeps_rds_and_the_bucket(kube, stack, target, run_dir, redactor, session_aws,
                                                                pause_data, diagnostics):
    """Journey 3, NFR8, decisions 18 and 24: with data written that RDS, S3 and ClickHouse's volume
    keep (a dataset, its item and a prompt; an evaluation: a trace with a span, a generation under it
    and a score, and a dataset run item, read back complete; an S3 object), `pause` quiesces Langfuse
    (web stopped, queues drained, worker and ClickHouse stopped), applies 03 -> 02 -> 01 with
    cluster_enabled=false and ends with no EKS cluster and no node instance, RDS available and the
    bucket present."""
    run_id = uuid.uuid4().hex[:12]
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        api = _api(stack, port)
        pause_data["markers"] = langfuse_api.write_markers(api, run_id)
        pause_data["evaluation"] = _write_evaluation_read_back(api, run_id)
    bucket = stack.outputs("02-deps")["s3_bucket_name"]
    pause_data["s3"] = (bucket, f"e2e/pause-{run_id}.txt", f"written before the pause {run_id}".encode())
    aws_checks.s3_round_trip(session_aws, *pause_data["s3"])
    pause_data["keys"] = (stack.outputs("03-app")["project_public_key"], stack.outputs("02-deps")["project_secret_key"])
    pause_data["data_keys"] = datakeys.digests(stack.outputs("02-deps"))  # sha256 only, never the values
    # Decision 24: the quiesce runs before 03-app goes; then the paused check against AWS (it raises otherwise).
    pause.pause(stack, session_aws, _cluster(target, run_dir, redactor, "pause").quiesce(stack))
    assert pause.read_state(stack).kind == "paused"


@pytest.mark.order(18)
@pytest.mark.dependency(name="resumed", depends=["paused"])
def test_resume_brings_langfuse_back_with_its_data_and_the_same_api_keys(kube, stack, target, run_dir, redactor,
                                                                         session_aws, pause_data, diagnostics):
    """Journey 3, decisions 18 and 24: `resume` applies 01 -> 02 -> 03 with cluster_enabled=true (stopping
    before 03-app when no Ready node is in the zone of ClickHouse's volume) and Langfuse answers health
    200; the dataset, item, prompt and S3 object written before the pause read back, and the project
    API keys from before the pause still ingest a trace (SALT kept). The evaluation: the next stage."""
    cluster = _cluster(target, run_dir, redactor, "resume")
    pause.resume(stack, session_aws, cluster.health, zone_check=cluster.zone_check)
    # A resumed cluster has a new endpoint and CA: every later stage's kubectl must use them.
    net = stack.outputs("01-network")
    k8s.write_exec_kubeconfig(kube.kubeconfig, net["cluster_endpoint"], net["cluster_ca_data"], net["cluster_name"],
                              target.settings.aws_region)
    kube.reload()
    app = stack.outputs("03-app")
    same_keys = (app["project_public_key"], stack.outputs("02-deps")["project_secret_key"]) == pause_data["keys"]
    assert same_keys, "the project API keys changed across pause and resume (values not shown: secret)"
    # Decision 20: salt, encryption key and key pair kept (02-deps' outputs, compared by sha256).
    assert datakeys.digests(stack.outputs("02-deps")) == pause_data["data_keys"]
    bucket, key, body = pause_data["s3"]
    assert aws_checks.s3_get(session_aws, bucket, key) == body
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        api = _api(stack, port)
        assert langfuse_api.read_markers(api, pause_data["markers"]) == {
            "dataset": True, "dataset item": True, "prompt": True}
        trace_id = str(uuid.uuid4())
        api.ingest_trace(trace_id)
        retry(lambda: api.trace_exists(trace_id), timeout=300, interval=10, what=f"trace {trace_id} readable",
              validator=bool)


@pytest.mark.order(19)
@pytest.mark.dependency(depends=["resumed"])
def test_traces_scores_and_evaluation_results_written_before_the_pause_read_back(kube, stack, pause_data,
                                                                                 diagnostics):
    """Journey 3, FR28, decision 24 (it replaces the half of decision 18 that called ClickHouse ephemeral): the trace,
    its span and the generation under it (model, token usage), the score and the dataset run item
    written before the pause read back through the public API with the same ids and values, and as
    many of each (1 trace, 2 observations, 1 score, 1 run item): ClickHouse's volume outlived the cluster."""
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        _assert_evaluation_reads_back(_api(stack, port), pause_data["evaluation"])


# --- 8. destroy and rebuild 03-app: PostgreSQL, S3 and ClickHouse data kept (decisions 4, 24) ---------

@pytest.mark.order(20)
@pytest.mark.dependency(name="rebuild", depends=["rds", "trace", "resumed"])
def test_app_rebuild_after_writing_data_comes_back_healthy(kube, stack, target, run_dir, redactor, session_aws,
                                                           rebuild_data, diagnostics):
    """FR28, decisions 4 and 24: with data written that survives only in RDS, S3 and ClickHouse's volume
    (a dataset, its item and a prompt; an evaluation: trace, span, generation, score and dataset run
    item, read back complete; the raw event Langfuse itself wrote to S3 for a readable trace), 03-app
    is quiesced (web stopped, queues drained, worker and ClickHouse stopped), destroyed and re-applied
    and answers health 200 again, with the same salt, encryption key and project key pair (decision
    20, compared by sha256 digest). The stages below read the data back."""
    run_id = uuid.uuid4().hex[:12]
    bucket = stack.outputs("02-deps")["s3_bucket_name"]
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        api = _api(stack, port)
        rebuild_data["markers"] = langfuse_api.write_markers(api, run_id)
        rebuild_data["evaluation"] = _write_evaluation_read_back(api, run_id)
        trace_id = str(uuid.uuid4())
        event_id = api.ingest_trace(trace_id)
        retry(lambda: api.trace_exists(trace_id), timeout=300, interval=10, what=f"trace {trace_id} readable",
              validator=bool)
    # Langfuse's own object (issue 15 defect 8): an object the operator wrote says nothing about the app.
    key = langfuse_api.event_object_key(stack.outputs("03-app")["project_id"], trace_id, event_id)
    rebuild_data["s3"] = (bucket, key, aws_checks.s3_get(session_aws, bucket, key))
    before = datakeys.digests(stack.outputs("02-deps"))  # sha256 only, never the values
    before_app = datakeys.digests(stack.outputs("03-app"), ("project_public_key",))
    # Decision 24: the quiesce runs before the destroy, so ClickHouse's volume holds all Langfuse accepted.
    stack.rebuild("03-app", _cluster(target, run_dir, redactor, "rebuild").quiesce(stack))
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        _healthy(port)
    # Decision 20, FR28: the rebuild rotated none of the secrets that protect stored data.
    assert None not in before.values() and datakeys.digests(stack.outputs("02-deps")) == before
    assert datakeys.digests(stack.outputs("03-app"), ("project_public_key",)) == before_app


@pytest.mark.order(21)
@pytest.mark.dependency(depends=["rebuild"])
def test_postgres_data_written_before_the_rebuild_reads_back(kube, stack, rebuild_data, diagnostics):
    """FR9, FR28, decision 4: the dataset, its item and the prompt written before the rebuild read back
    exactly (Langfuse re-creates only the headless-init rows, never these)."""
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        survived = langfuse_api.read_markers(_api(stack, port), rebuild_data["markers"])
    assert survived == {"dataset": True, "dataset item": True, "prompt": True}


@pytest.mark.order(22)
@pytest.mark.dependency(depends=["rebuild"])
def test_s3_event_langfuse_wrote_before_the_rebuild_reads_back(session_aws, rebuild_data):
    """FR9, FR28, decision 4, issue 15 defect 8: the raw event Langfuse wrote under events/ for the
    pre-rebuild trace is still there, byte for byte."""
    bucket, key, body = rebuild_data["s3"]
    assert aws_checks.s3_get(session_aws, bucket, key) == body


@pytest.mark.order(23)
@pytest.mark.dependency(depends=["rebuild"])
def test_traces_scores_and_evaluation_results_written_before_the_rebuild_read_back(kube, stack, rebuild_data,
                                                                                   diagnostics):
    """FR28, decision 24 (it replaces the half of decision 18 that called ClickHouse ephemeral): ClickHouse's
    data lives on the volume 02-deps owns, so the trace, its span and the generation under it (model,
    token usage), the score and the dataset run item written before the rebuild read back through the
    public API with the same ids and values, and as many of each (1 trace, 2 observations, 1 score,
    1 run item)."""
    with kube.port_forward(NAMESPACE, "langfuse-web", 3000) as port:
        _assert_evaluation_reads_back(_api(stack, port), rebuild_data["evaluation"])


# --- 9. teardown ----------------------------------------------------------------------------

@pytest.mark.order(24)
@pytest.mark.dependency(depends=["app"])
def test_teardown_in_reverse_order_leaves_nothing_but_kms_keys_pending_deletion(stack):
    """FR27, NFR8: destroy 03 -> 02 -> 01, each with the cluster_enabled it is in (each tried, failures
    reported together: issue 10 item 7), waiting for the PVC volumes after 03-app; the teardown ends with
    the leftover sweep (issue 15 defect 5): no resource tagged with the project remains, judged by state
    (items 1 and 4): KMS keys pending deletion (7 days, no charge) are accepted, RDS still deleting is
    waited for, a log group EKS re-created after destroy is deleted, IAM roles and OIDC providers are
    checked through IAM, counting only those with this stack's tags (issue 15 defect 7: another
    deployment in the account is not ours)."""
    if os.environ.get(KEEP_ENV) == "1":
        pytest.skip("LFK8S_KEEP_STACK=1: stack kept for debugging (unset it, or run python -m lfharness teardown)")
    sweep = stack.teardown(ORDER)  # TeardownError names whatever is left
    assert sweep is not None and sweep.clean
