"""Chart tier: 03-app's Helm values rendered by the real chart 1.5.19 with `helm template`.

Stand-in: the real chart 1.5.19 (with its Bitnami subcharts) rendered by helm template; no
cluster. What the pods would start with is read from the rendered objects.
"""

from __future__ import annotations

import re
import urllib.parse
from decimal import Decimal
from typing import Any

import pytest
import yaml

from lfharness.core import hcl, tf
from lfharness.testing import docs_kubectl, plan
from lfharness.testing.chartrig import fit, query, render, source

pytestmark = pytest.mark.chart

# Located at collection so that, without a chart, the whole tier skips with one line (not one per
# test) and before any Terraform runs. A set but wrong LFK8S_CHART_DIR is an error, not a skip.
_PIN = source.release_pin()
_CHART = source.locate(_PIN)
if _CHART is None:
    pytest.skip(source.unavailable_reason(_PIN), allow_module_level=True)

APP_DIR = tf.TERRAFORM_DIR / "03-app"
SECRET = "kubernetes_secret_v1.langfuse[0]"  # the one Secret 03-app creates (decision 20)
CHECKOV = tf.REPO_ROOT / ".venv" / "checkov" / "bin" / "checkov"
CHECKOV_K8S_CONFIG = tf.REPO_ROOT / ".checkov-kubernetes.yaml"
# What each container must read from 03-app's Secret, never as a literal (decision 20).
SECRET_ENV = {
    "Deployment/langfuse-web/langfuse-web": {"SALT", "ENCRYPTION_KEY", "NEXTAUTH_SECRET", "DATABASE_PASSWORD",
                                             "DIRECT_URL", "CLICKHOUSE_PASSWORD", "REDIS_PASSWORD",
                                             "LANGFUSE_INIT_PROJECT_SECRET_KEY", "LANGFUSE_INIT_USER_PASSWORD"},
    "Deployment/langfuse-worker/langfuse-worker": {"SALT", "ENCRYPTION_KEY", "NEXTAUTH_SECRET", "DATABASE_PASSWORD",
                                                   "DIRECT_URL", "CLICKHOUSE_PASSWORD", "REDIS_PASSWORD"},
    "StatefulSet/langfuse-clickhouse-shard0/clickhouse": {"CLICKHOUSE_ADMIN_PASSWORD"},
    "StatefulSet/langfuse-redis-primary/valkey": {"VALKEY_PASSWORD"},
}
E2E_SUITE = tf.REPO_ROOT / "tests" / "integration" / "test_e2e.py"
README = tf.REPO_ROOT / "README.md"
APP_WORKLOADS = ("langfuse-web", "langfuse-worker")
STATIC_KEY_ENV = re.compile(r"(ACCESS_KEY_ID|SECRET_ACCESS_KEY)$")
INIT_ENV = ("LANGFUSE_INIT_ORG_ID", "LANGFUSE_INIT_ORG_NAME", "LANGFUSE_INIT_PROJECT_ID",
            "LANGFUSE_INIT_PROJECT_NAME", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "LANGFUSE_INIT_PROJECT_SECRET_KEY",
            "LANGFUSE_INIT_USER_EMAIL", "LANGFUSE_INIT_USER_NAME", "LANGFUSE_INIT_USER_PASSWORD")


def _req(cpu_m: int, memory_mi: int, pods: int = 1) -> fit.Requests:
    return fit.Requests(Decimal(cpu_m), Decimal(memory_mi), pods)


# --- capacity of the node group (01-network: 2x t3.medium, AL2023) ----------------------------
# t3.medium: 2 vCPU, 4 GiB (EC2 instance types). The kubelet's reservations on EKS AL2023 come
# from nodeadm (awslabs/amazon-eks-ami, nodeadm/internal/kubelet/config.go):
#   kube-reserved cpu    = 6% of the 1st core + 1% of the 2nd = 60m + 10m = 70m
#   kube-reserved memory = 11 MiB x max-pods + 255 MiB = 11 x 17 + 255 = 442 MiB
#   evictionHard memory.available = 100 MiB
# max-pods 17 for t3.medium (nodeadm/internal/kubelet/eni-max-pods.txt: 3 ENIs x (6 - 1) + 2).
# Allocatable per node: 2000m - 70m = 1930m CPU; 4096 - 442 - 100 = 3554 MiB; 17 pods.
# The kubelet counts MemTotal, a little under the nominal 4 GiB, so the real figure is somewhat
# lower; the totals below leave far more margin than that difference.
NODES = 2
NODE_ALLOCATABLE = _req(2000 - 70, 4096 - (11 * 17 + 255) - 100, 17)

# --- system pods of the addons 01-network installs, with their real requests ------------------
# Per node (DaemonSets):
#   aws-node (vpc-cni): containers aws-node 25m + aws-eks-nodeagent 25m, no memory request
#     (aws/amazon-vpc-cni-k8s config/master/aws-k8s-cni.yaml);
#   kube-proxy (EKS addon): 100m, no memory request. The 100m is the addon DaemonSet's usual request but was
#   not confirmed from a primary manifest here; aws/containers-roadmap#1509 confirms there is no memory request.
#   ebs-csi-node: ebs-plugin, node-driver-registrar, liveness-probe at node.resources 10m/40Mi each
#     (kubernetes-sigs/aws-ebs-csi-driver chart values.yaml; sidecars default to node.resources).
# Per cluster (Deployments, 2 replicas each):
#   coredns: 100m/70Mi (eksctl-io/eksctl pkg/addons/default/assets/coredns-1.35.json, EKS 1.35);
#   ebs-csi-controller: ebs-plugin, csi-provisioner, csi-attacher, csi-snapshotter, csi-resizer,
#     liveness-probe at controller.resources 10m/40Mi each (same chart, templates/controller.yaml).
SYSTEM_PER_NODE = {"aws-node": _req(25 + 25, 0), "kube-proxy": _req(100, 0), "ebs-csi-node": _req(3 * 10, 3 * 40)}
SYSTEM_DEPLOYMENTS = {"coredns": (2, _req(100, 70)), "ebs-csi-controller": (2, _req(6 * 10, 6 * 40))}


@pytest.fixture(scope="module")
def pin() -> source.ReleasePin:
    return _PIN


@pytest.fixture(scope="module")
def chart_source() -> source.Chart:
    """The chart located when this file was collected."""
    return _CHART


@pytest.fixture(scope="module")
def release_values(chart_source, app_plan) -> list[str]:
    """The `values` of helm_release.langfuse exactly as 03-app's plan has them (plan tier's session
    fixture, secrets included as planned). It depends on chart_source so that a missing chart skips
    the tier before Terraform runs."""
    return app_plan.after("helm_release.langfuse[0]")["values"]


@pytest.fixture(scope="module")
def planned_secret(app_plan, secret_exposed_plan) -> dict[str, dict[str, str]]:
    """03-app's Kubernetes Secret: name -> data. It exists beside the release, not in it, so
    references to it are resolved from here. The real plan sends the data write-only (issue 26):
    the data is the same mapping (local.secret_data) from the plan made with plan.SECRET_EXPOSED_EDIT."""
    secret = secret_exposed_plan.after(SECRET)
    assert secret["metadata"] == app_plan.after(SECRET)["metadata"]
    return {secret["metadata"][0]["name"]: secret["data"]}


def test_the_secret_exposing_plan_renders_the_same_release_as_the_real_one(app_plan, secret_exposed_plan):
    """Issue 26: the chart tier resolves the Secret from a plan whose Secret data is visible; that
    plan's Helm release (values, chart, namespace) is exactly the real 03-app's, so what is rendered
    here is what 03-app deploys."""
    assert secret_exposed_plan.after("helm_release.langfuse[0]") == app_plan.after("helm_release.langfuse[0]")


@pytest.fixture(scope="module")
def expected(app_plan) -> dict[str, Any]:
    """Upstream values from the fixed samples the plan uses (02-deps' secrets included: issue 26,
    every generated secret comes from there), not from the values under test."""
    deps = {name: value for name, (value, _sensitive) in plan.DEPS_SAMPLE.items()}
    helm_locals = {k: v for block in hcl.load(APP_DIR / "helm.tf")["locals"] for k, v in block.items()}
    init = {
        "LANGFUSE_INIT_ORG_ID": app_plan.outputs["org_id"], "LANGFUSE_INIT_ORG_NAME": helm_locals["org_name"],
        "LANGFUSE_INIT_PROJECT_ID": app_plan.outputs["project_id"],
        "LANGFUSE_INIT_PROJECT_NAME": helm_locals["project_name"],
        "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": deps["project_public_key"],
        "LANGFUSE_INIT_PROJECT_SECRET_KEY": deps["project_secret_key"],
        "LANGFUSE_INIT_USER_EMAIL": app_plan.variables["langfuse_admin_email"],
        "LANGFUSE_INIT_USER_NAME": app_plan.variables["langfuse_admin_name"],
        "LANGFUSE_INIT_USER_PASSWORD": app_plan.variables["langfuse_admin_password"],
    }
    return {
        "rds_host": deps["rds_endpoint"].split(":")[0],
        "irsa_role_arn": deps["irsa_role_arn"],
        "s3_bucket": deps["s3_bucket_name"],
        "s3_region": deps["s3_bucket_region"],
        "init_env": init,
        "secrets": {
            "database password": deps["rds_password"],
            "salt": deps["salt"],
            "NextAuth secret": deps["nextauth_secret"],
            "encryption key": deps["encryption_key"],
            "ClickHouse password": deps["clickhouse_password"],
            "Redis password": deps["redis_password"],
            "project secret key": deps["project_secret_key"],
            "admin password": app_plan.variables["langfuse_admin_password"],
        },
    }


@pytest.fixture(scope="module")
def objects(chart_source, release_values, pin) -> list[dict]:
    return render.render(release_values, chart_source, pin)


@pytest.fixture(scope="module")
def env_of(objects, planned_secret):
    """A Deployment's container env, secretKeyRefs resolved from the rendered objects and 03-app's Secret."""
    return lambda workload: query.container_env(objects, "Deployment", workload, external=planned_secret)


# --- rendering ----------------------------------------------------------------------------------

def test_release_renders_into_kubernetes_objects(objects):
    """FR10, NFR10: the pinned chart renders 03-app's values into named Kubernetes objects."""
    unnamed = [o for o in objects if not (o.get("apiVersion") and o.get("kind") and o.get("metadata", {}).get("name"))]
    assert objects and not unnamed
    assert {"Deployment", "StatefulSet", "Service", "ServiceAccount"} <= {o["kind"] for o in objects}


def test_rendering_twice_gives_the_same_objects(objects, chart_source, release_values, pin):
    """NFR10, FR29: no randomness left in the templates for our values (same objects, same
    content), so re-applying an unchanged release changes nothing."""
    first, second = render.by_identity(objects), render.by_identity(render.render(release_values, chart_source, pin))
    assert sorted(second) == sorted(first)
    assert sorted(k for k in first if first[k] != second[k]) == []


# --- web and worker ---------------------------------------------------------------------------

@pytest.mark.parametrize("workload", APP_WORKLOADS)
def test_app_reaches_rds_host_over_tls(env_of, objects, expected, workload):
    """FR11, decision 15: DATABASE_HOST and the DATABASE_URL the entrypoint builds point at the RDS
    host (no port in the host) with sslmode=require."""
    env = env_of(workload)
    url = urllib.parse.urlsplit(query.database_url(env) or "")
    host, sslmode = url.hostname, urllib.parse.parse_qs(url.query).get("sslmode")
    assert env.get("DATABASE_HOST") == expected["rds_host"]
    assert (host, sslmode) == (expected["rds_host"], ["require"])


@pytest.mark.parametrize("workload", APP_WORKLOADS)
def test_direct_url_targets_rds_with_tls(env_of, objects, expected, workload):
    """Story 3.2, decision 15: DIRECT_URL (Prisma migrations) is set, at the RDS host, sslmode=require."""
    url = urllib.parse.urlsplit(env_of(workload).get("DIRECT_URL") or "")
    parts = (url.scheme, url.hostname, url.path, urllib.parse.parse_qs(url.query).get("sslmode"))
    assert parts == ("postgresql", expected["rds_host"], "/langfuse", ["require"])


@pytest.mark.parametrize("workload", APP_WORKLOADS)
def test_s3_event_media_and_export_settings(env_of, objects, expected, workload):
    """FR12: events, media and batch exports go to the planned bucket and region, virtual-hosted
    style, under events/, media/, exports/, with batch export on."""
    env = env_of(workload)
    want = {"LANGFUSE_S3_BATCH_EXPORT_ENABLED": "true"}
    for kind, prefix in (("EVENT_UPLOAD", "events/"), ("MEDIA_UPLOAD", "media/"), ("BATCH_EXPORT", "exports/")):
        want |= {f"LANGFUSE_S3_{kind}_BUCKET": expected["s3_bucket"], f"LANGFUSE_S3_{kind}_REGION": expected["s3_region"],
                 f"LANGFUSE_S3_{kind}_FORCE_PATH_STYLE": "false", f"LANGFUSE_S3_{kind}_PREFIX": prefix}
    assert {k: env.get(k) for k in want} == want


def test_no_static_s3_keys_in_any_container(objects):
    """FR12, NFR4: no container gets *_ACCESS_KEY_ID / *_SECRET_ACCESS_KEY (IRSA only), nor a Secret holds one."""
    in_env = {path: [n for n in names if STATIC_KEY_ENV.search(n)] for path, names in query.env_names(objects).items()}
    in_secrets = [f"{s['metadata']['name']}/{k}" for s in query.of_kind(objects, "Secret")
                  for k in {**(s.get("data") or {}), **(s.get("stringData") or {})} if STATIC_KEY_ENV.search(k.upper())]
    assert {p: n for p, n in in_env.items() if n} == {} and in_secrets == []


@pytest.mark.parametrize("workload", APP_WORKLOADS)
def test_nextauth_url_is_localhost_3000(env_of, objects, workload):
    """Story 3.2, FR19: NEXTAUTH_URL is http://localhost:3000, the port-forwarded UI."""
    assert env_of(workload).get("NEXTAUTH_URL") == "http://localhost:3000"


@pytest.mark.parametrize("workload", APP_WORKLOADS)
def test_signup_is_disabled(env_of, objects, workload):
    """Story 3.2, decision 13: AUTH_DISABLE_SIGNUP=true through the chart's own switch."""
    assert env_of(workload).get("AUTH_DISABLE_SIGNUP") == "true"


def test_web_gets_every_headless_init_variable(env_of, objects, expected):
    """FR14, decisions 5 and 13: web starts with all LANGFUSE_INIT_* (org and project ids, the
    project key pair, the admin user), non-empty and as planned."""
    env = env_of("langfuse-web")
    missing = [k for k in INIT_ENV if not env.get(k)]
    differing = [k for k in INIT_ENV if env.get(k) != expected["init_env"].get(k)]
    assert missing == [] and differing == []
    keys_shaped = (env["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"].startswith("pk-lf-"),
                   env["LANGFUSE_INIT_PROJECT_SECRET_KEY"].startswith("sk-lf-"))
    assert keys_shaped == (True, True)


def test_clickhouse_is_one_node_and_the_app_knows_it(env_of, objects):
    """FR13, decision 13: one ClickHouse replica, no ZooKeeper, CLICKHOUSE_CLUSTER_ENABLED=false in web and worker."""
    zookeeper = [w["metadata"]["name"] for w in query.workloads(objects)
                 if w["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "zookeeper"]
    assert query.replicas(_statefulset(objects, "clickhouse")) == 1 and zookeeper == []
    assert [env_of(w).get("CLICKHOUSE_CLUSTER_ENABLED") for w in APP_WORKLOADS] == ["false", "false"]


def test_worker_binds_all_interfaces(env_of, objects):
    """Decision 13, FR19: worker HOSTNAME=0.0.0.0 so kubectl port-forward reaches it."""
    assert env_of("langfuse-worker").get("HOSTNAME") == "0.0.0.0"


# --- identity -----------------------------------------------------------------------------------

def _irsa_accounts(objects: list[dict]) -> dict[str, str]:
    return {sa["metadata"]["name"]: sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
            for sa in query.of_kind(objects, "ServiceAccount")
            if "eks.amazonaws.com/role-arn" in (sa["metadata"].get("annotations") or {})}


def test_exactly_one_service_account_carries_the_planned_role(objects, expected):
    """FR8, FR12: one ServiceAccount is annotated eks.amazonaws.com/role-arn, with 02-deps' IRSA role."""
    accounts = _irsa_accounts(objects)
    assert list(accounts.values()) == [expected["irsa_role_arn"]]


def test_web_and_worker_run_as_the_irsa_service_account(objects):
    """FR12, NFR4: both pods use the annotated ServiceAccount, so they get web-identity S3 credentials."""
    accounts = _irsa_accounts(objects)
    used = [query.pod_spec(query.get(objects, "Deployment", w)).get("serviceAccountName") for w in APP_WORKLOADS]
    assert len(accounts) == 1 and used == [next(iter(accounts))] * 2


# --- names the README, the outputs and the e2e suite use --------------------------------------

def test_services_the_readme_outputs_and_e2e_forward_to_exist(objects):
    """FR19-FR21: every `port-forward svc/<name> ...:<port>` of outputs.tf port_forward_commands,
    README and the e2e suite names a rendered Service exposing that port."""
    sources = {
        "outputs.tf": docs_kubectl.port_forward_targets((APP_DIR / "outputs.tf").read_text()),
        "README.md": docs_kubectl.port_forward_targets(README.read_text()),
        "tests/integration/test_e2e.py": docs_kubectl.python_port_forwards(E2E_SUITE),
    }
    services = {s["metadata"]["name"]: query.service_ports(objects, s["metadata"]["name"])
                for s in query.of_kind(objects, "Service")}
    # Fewer than the three services (UI, ClickHouse, Redis) means the parsing lost some.
    assert {name: len(found) >= 3 for name, found in sources.items()} == dict.fromkeys(sources, True)
    absent = {name: sorted(t for t in found if t[1] not in services.get(t[0], [])) for name, found in sources.items()}
    assert absent == dict.fromkeys(sources, [])


def test_every_forward_connect_holds_names_a_rendered_service_port(objects):
    """FR19-FR21, issue 27: `python -m lfharness connect` forwards to Services the chart renders,
    on ports they expose (a renamed Service would leave the operator's port dead)."""
    from lfharness.stack import connect

    missing = [f"svc/{f.service}:{f.remote_port}" for f in connect.FORWARDS
               if f.remote_port not in query.service_ports(objects, f.service)]
    assert missing == []


def test_the_rendered_valkey_image_is_the_one_security_md_names(objects):
    """Issue 26 item 2: Valkey 8.0.2 carries CVE-2025-49844; docs/security.md names the image the
    release runs, the CVE and its mitigations. A changed image fails here until the page follows."""
    (image,) = {c["image"] for path, c in query.containers(objects).items() if path.startswith("StatefulSet/langfuse-redis")}
    named = image.removeprefix("docker.io/")
    security = (tf.REPO_ROOT / "docs" / "security.md").read_text()
    assert f"`{named}`" in security and "CVE-2025-49844" in security


def test_redis_password_readme_and_e2e_read_is_in_the_secret_of_03_app(planned_secret, expected):
    """FR21, decision 20: the Secret README and the e2e suite read the Redis password from is 03-app's
    (the chart renders none), it holds the key README reads, and that key is the generated password."""
    readme = docs_kubectl.secret_keys_read(README.read_text())
    e2e = docs_kubectl.python_secrets_read(E2E_SUITE)
    assert readme and e2e
    assert sorted(n for n in e2e | {n for n, _ in readme} if n not in planned_secret) == []
    assert sorted(f"{n}/{k}" for n, k in readme if planned_secret[n].get(k) != expected["secrets"]["Redis password"]) == []


def _statefulset(objects: list[dict], app: str) -> dict:
    found = [s for s in query.of_kind(objects, "StatefulSet")
             if s["metadata"].get("labels", {}).get("app.kubernetes.io/name") == app]
    assert len(found) == 1, f"expected one StatefulSet labelled app.kubernetes.io/name={app}, found {len(found)}"
    return found[0]


def test_app_and_valkey_use_the_same_redis_password(env_of, objects, planned_secret):
    """FR13: the password web and worker send (REDIS_PASSWORD) is the one Valkey starts with
    (VALKEY_PASSWORD, from 03-app's Secret)."""
    valkey = _statefulset(objects, "redis")
    server = query.container_env(objects, "StatefulSet", valkey["metadata"]["name"], "valkey",
                                 external=planned_secret).get("VALKEY_PASSWORD")
    agree = [w for w in APP_WORKLOADS if server and env_of(w).get("REDIS_PASSWORD") == server]
    assert agree == list(APP_WORKLOADS)


def test_app_and_clickhouse_use_the_same_credentials(env_of, objects, planned_secret):
    """FR13: the user and password web and worker send (CLICKHOUSE_USER / _PASSWORD) are
    ClickHouse's admin user and password (from 03-app's Secret)."""
    clickhouse = _statefulset(objects, "clickhouse")
    server = query.container_env(objects, "StatefulSet", clickhouse["metadata"]["name"], "clickhouse",
                                 external=planned_secret)
    creds = (server.get("CLICKHOUSE_ADMIN_USER"), server.get("CLICKHOUSE_ADMIN_PASSWORD"))
    agree = [w for w in APP_WORKLOADS if all(creds)
             and (env_of(w).get("CLICKHOUSE_USER"), env_of(w).get("CLICKHOUSE_PASSWORD")) == creds]
    assert agree == list(APP_WORKLOADS)


# --- storage ------------------------------------------------------------------------------------

def test_valkey_volume_uses_the_encrypted_class_of_03_app(objects, app_plan):
    """FR13, hardening: Valkey's PVC template names 03-app's encrypted gp3 StorageClass (through
    global.defaultStorageClass; the addon's default class in 01-network sets no encryption)."""
    name = app_plan.after("kubernetes_storage_class_v1.gp3_encrypted[0]")["metadata"][0]["name"]
    classes = {f"{sts}/{t['metadata']['name']}": t["spec"].get("storageClassName")
               for sts, ts in query.pvc_templates(objects).items() for t in ts}
    assert list(classes) == ["langfuse-redis-primary/valkey-data"] and set(classes.values()) == {name}


def test_clickhouse_mounts_the_static_claim_and_has_no_volume_claim_template(objects, app_plan):
    """Decision 24: the rendered ClickHouse StatefulSet makes no volume of its own; its data volume
    is 03-app's claim (bound to 02-deps' EBS volume), mounted where Bitnami ClickHouse keeps data."""
    claim = app_plan.after("kubernetes_persistent_volume_claim_v1.clickhouse[0]")["metadata"][0]["name"]
    sts = query.get(objects, "StatefulSet", "langfuse-clickhouse-shard0")
    spec = query.pod_spec(sts)
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    mounts = {m["name"]: m["mountPath"] for c in spec["containers"] if c["name"] == "clickhouse"
              for m in c.get("volumeMounts") or []}
    assert sts["spec"].get("volumeClaimTemplates") in (None, [])
    assert volumes["data"].get("persistentVolumeClaim") == {"claimName": claim}
    assert mounts["data"] == "/bitnami/clickhouse"


def test_clickhouse_runs_with_the_fs_group_the_volume_is_prepared_for(objects):
    """Decision 24: the kubelet gives a fresh ext4 volume the pod's fsGroup; ClickHouse (uid 1001)
    can then write to it."""
    spec = query.pod_spec(query.get(objects, "StatefulSet", "langfuse-clickhouse-shard0"))
    assert spec["securityContext"].get("fsGroup") == 1001


def test_the_cost_report_counts_exactly_the_volumes_the_chart_renders(objects, release_values):
    """NFR6, decision 19: the cost report's PVC volumes (lfharness.stack.cost over the planned values and the
    rate table's chart defaults) are the PVCs the real chart creates, in number and in size."""
    from lfharness.stack import cost

    rates = cost.load_rates()
    counted = cost.chart_volumes(cost.chart_values({"values": release_values}),
                                 rates["assumptions"]["chart_defaults"]["values"])
    assert sorted(size for _, count, size in counted for _ in range(count)) == sorted(fit.pvc_sizes(objects).values())


def test_volume_sizes_are_the_configured_sizes(objects, chart_source, release_values):
    """FR13, decision 19, decision 24: the chart makes one volume, Valkey's, of the size the values
    (or the subchart default) configure; ClickHouse's is 02-deps' volume, not the chart's."""
    sizes = fit.pvc_sizes(objects)
    valkey = render.subchart_values(chart_source, release_values, "valkey", "redis")["primary"]["persistence"]["size"]
    assert list(sizes.values()) == [fit.gib(valkey)] and all("redis" in k for k in sizes)


# --- capacity -----------------------------------------------------------------------------------

def test_every_release_container_requests_cpu_and_memory(objects):
    """NFR7, decision 13: no container of the release lacks a CPU or memory request (so the
    capacity sums below cannot silently leave one out)."""
    assert fit.containers_without_requests(objects) == []


def _system_total() -> fit.Requests:
    per_node = sum(SYSTEM_PER_NODE.values(), fit.Requests()).times(NODES)
    return per_node + sum((req.times(n) for n, req in SYSTEM_DEPLOYMENTS.values()), fit.Requests())


def test_requests_fit_two_t3_medium_with_room_for_a_web_rollout(objects):
    """NFR7, decision 13: release requests (x replicas) + system pods on two nodes + one extra web pod
    (rolling update) fit the allocatable CPU, memory and pod slots of 2x t3.medium."""
    release = fit.total_requests(objects, NODES)
    surge = fit.pod_requests(query.pod_spec(query.get(objects, "Deployment", "langfuse-web")))
    total = release + _system_total() + surge
    capacity = NODE_ALLOCATABLE.times(NODES)
    assert total.fits_in(capacity), f"needed {total} (release {release}), allocatable {capacity}"


def test_pods_can_be_placed_node_by_node(objects):
    """NFR7, decision 13: with each node's DaemonSet pods deducted, the release's pods, one extra web
    pod, CoreDNS and the EBS CSI controllers find a node each (no pod larger than a node's remainder)."""
    free = [NODE_ALLOCATABLE - sum(SYSTEM_PER_NODE.values(), fit.Requests()) for _ in range(NODES)]
    web = fit.pod_requests(query.pod_spec(query.get(objects, "Deployment", "langfuse-web")))
    to_place = fit.pods(objects) + [("langfuse-web-surge", web)]
    to_place += [(f"{name}-{i}", req) for name, (n, req) in SYSTEM_DEPLOYMENTS.items() for i in range(n)]
    placement = fit.place(to_place, free)
    assert placement is not None, f"no placement of {[(n, str(r)) for n, r in to_place]} on nodes with {free[0]} free"


def test_clickhouse_fits_on_the_node_of_its_volume_zone_with_everything_else_placed(objects):
    """Decision 24, NFR7: ClickHouse can run only on the node in its volume's zone; pinned there
    (with that node's DaemonSet pods), the release's other pods, one extra web pod, CoreDNS and
    the EBS CSI controllers still find a t3.medium each."""
    free = [NODE_ALLOCATABLE - sum(SYSTEM_PER_NODE.values(), fit.Requests()) for _ in range(NODES)]
    web = fit.pod_requests(query.pod_spec(query.get(objects, "Deployment", "langfuse-web")))
    to_place = fit.pods(objects) + [("langfuse-web-surge", web)]
    to_place += [(f"{name}-{i}", req) for name, (n, req) in SYSTEM_DEPLOYMENTS.items() for i in range(n)]
    pinned = {name: 0 for name, _ in to_place if name.startswith("langfuse-clickhouse-shard0-")}
    placement = fit.place(to_place, free, pinned)
    assert len(pinned) == 1 and placement is not None, \
        f"no placement with {sorted(pinned)} on node 0 of {[(n, str(r)) for n, r in to_place]}"
    for node in range(NODES):  # a placement found is a real one: nothing exceeds a node
        used = sum((r for n, r in to_place if placement[n] == node), fit.Requests())
        assert used.fits_in(free[node])


# --- secrets ------------------------------------------------------------------------------------

def test_no_generated_secret_in_any_configmap(objects, expected):
    """FR15, NFR2: none of 03-app's secrets (nor the database password) appears in a rendered
    ConfigMap; they belong in Secrets and env values."""
    leaks = [f"{label} in ConfigMap {cm['metadata']['name']}"
             for cm in query.of_kind(objects, "ConfigMap")
             for label, value in expected["secrets"].items()
             if value and any(value in text for text in query.strings_in(cm))]
    assert query.of_kind(objects, "ConfigMap") and leaks == []


def test_no_container_env_holds_a_secret_as_a_literal_value(objects, expected):
    """NFR1, decision 20: no env value of any container (init containers included) contains a
    secret: not the generated ones, not 02-deps', not the admin password. Deployments and pods are
    readable with `view` and written to the EKS audit log; Secrets are neither."""
    leaks = query.literal_env_leaks(objects, expected["secrets"])  # labels only: a failure shows no value
    assert leaks == []


def test_every_secret_env_var_comes_from_the_secret_03_app_creates(objects, planned_secret):
    """Decision 20: each secret a container needs (the app's salt, keys, passwords, DIRECT_URL and
    init secrets; ClickHouse's and Valkey's server passwords) is a secretKeyRef to 03-app's Secret,
    to a key the Secret holds."""
    found = query.containers(objects)
    wrong = {}
    for path, names in SECRET_ENV.items():
        refs = query.secret_key_refs(found[path])
        bad = sorted(n for n in names if refs.get(n) is None or refs[n][0] not in planned_secret
                     or refs[n][1] not in planned_secret[refs[n][0]])
        if bad:
            wrong[path] = bad
    assert wrong == {}


def test_every_secret_reference_names_the_secret_of_03_app(objects, planned_secret):
    """Decision 20: no container reads a Secret other than 03-app's (none of the chart's own)."""
    others = {f"{path}: {env}" for path, c in query.containers(objects).items()
              for env, (name, _) in query.secret_key_refs(c).items() if name not in planned_secret}
    assert sorted(others) == []


def test_the_chart_renders_no_secret_of_its_own(objects):
    """Decision 20: with every secret referenced, neither the chart nor its subcharts render a Secret
    (a rendered one would put the value in the release's manifest, which Helm stores)."""
    assert [s["metadata"]["name"] for s in query.of_kind(objects, "Secret")] == []


def test_every_pod_reading_the_secret_carries_its_digest(objects, planned_secret, release_values):
    """Decision 20: each workload whose containers read 03-app's Secret (web, worker, ClickHouse,
    Valkey) has the Secret's digest from the values in its pod template, so Helm rolls it when a
    secret changes (the chart keys: langfuse.pod, clickhouse.podAnnotations,
    redis.primary.podAnnotations)."""
    digest = render.value_at(yaml.safe_load(release_values[0]),
                             ("langfuse", "pod", "annotations", render.SECRET_CHECKSUM_ANNOTATION))
    readers = {f"{w['kind']}/{w['metadata']['name']}": w for w in query.workloads(objects)
               if any(name in planned_secret for c in query.containers([w]).values()
                      for name, _ in query.secret_key_refs(c).values())}
    without = sorted(k for k, w in readers.items()
                     if (w["spec"]["template"]["metadata"].get("annotations") or {}).get(render.SECRET_CHECKSUM_ANNOTATION)
                     != digest)
    assert digest and len(readers) == 4 and without == []


@pytest.mark.parametrize("workload", APP_WORKLOADS)
def test_web_and_worker_run_non_root_without_privileges(objects, workload):
    """Hardening (Pod Security restricted): uid 1001 (the Langfuse images' user), non-root, no
    privilege escalation, all capabilities dropped, RuntimeDefault seccomp."""
    spec = query.pod_spec(query.get(objects, "Deployment", workload))
    pod = spec.get("securityContext") or {}
    (ctr,) = [c.get("securityContext") or {} for c in spec["containers"] if c["name"] == workload]
    seen = (pod.get("runAsNonRoot"), pod.get("runAsUser"), (pod.get("seccompProfile") or {}).get("type"),
            ctr.get("allowPrivilegeEscalation"), (ctr.get("capabilities") or {}).get("drop"))
    assert seen == (True, 1001, "RuntimeDefault", False, ["ALL"])


@pytest.mark.parametrize("workload", APP_WORKLOADS)
def test_telemetry_is_off_in_web_and_worker(env_of, workload):
    """Hardening: TELEMETRY_ENABLED=false, through the chart's own switch."""
    assert env_of(workload).get("TELEMETRY_ENABLED") == "false"


def test_every_pod_passes_pod_security_baseline(objects):
    """Hardening: 03-app's namespace enforces PSA baseline; no rendered pod would be refused."""
    assert query.baseline_violations(objects) == []


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov not installed: run `bash setup.sh`")
def test_checkov_kubernetes_reports_no_unexplained_failures(objects):
    """NFR1-NFR4, decision 20: checkov's kubernetes framework over the rendered release passes with
    only the skips in .checkov-kubernetes.yaml, each naming its reason."""
    passed, failed = render.checkov_kubernetes(objects, CHECKOV, CHECKOV_K8S_CONFIG)
    assert passed > 0, "checkov evaluated nothing"
    assert failed == [], "unexplained checkov failures:\n" + "\n".join(failed)
