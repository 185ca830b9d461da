"""Kubernetes access for the e2e suite: EKS token, kubeconfig, the kubernetes client (pods, readiness and
Jobs by watch, logs, Secrets), kubectl (port-forward, diagnostics tables), diagnostics."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import math
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from lfharness.core import envfile, procs
from lfharness.core.procs import free_port
from lfharness.core.redact import Redactor
from lfharness.core.wait import WaitTimeout, retry

if TYPE_CHECKING:  # the client is imported where used: the static tier never needs it
    from kubernetes.client import ApiClient, V1Pod

LOG = logging.getLogger("lfharness.stack.k8s")


def kubectl_bin() -> Path:
    return Path(sys.executable).parent / "kubectl"


def eks_token(cluster_name: str, session) -> str:  # session: boto3.Session
    """An EKS bearer token: a presigned STS GetCallerIdentity URL, as aws-iam-authenticator makes."""
    from botocore.signers import RequestSigner  # noqa: PLC0415

    sts = session.client("sts")
    signer = RequestSigner(sts.meta.service_model.service_id, session.region_name, "sts", "v4",
                           session.get_credentials(), session.events)
    url = signer.generate_presigned_url(
        {"method": "GET", "url": f"https://sts.{session.region_name}.amazonaws.com/"
         "?Action=GetCallerIdentity&Version=2011-06-15", "body": {}, "headers": {"x-k8s-aws-id": cluster_name},
         "context": {}},
        region_name=session.region_name, expires_in=60, operation_name="")
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


_ENV_LINE = re.compile(r"^(\s+)([A-Za-z_][A-Za-z0-9_.-]*):(\s+)(?!<set to )(\S.*)$")


def redact_environment(text: str) -> str:
    """`kubectl describe` output with every literal container env value replaced: the chart passes
    salt, passwords and the project secret key as plain values, and diagnostics are uploaded by CI.
    References (`<set to the key ... of secret ...>`) stay: they name where a value comes from."""
    out, env_indent = [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if env_indent is not None and (not stripped or indent <= env_indent):
            env_indent = None
        if env_indent is None and stripped.startswith("Environment:"):
            env_indent = indent
        elif env_indent is not None and (m := _ENV_LINE.match(line)):
            line = f"{m.group(1)}{m.group(2)}:{m.group(3)}(redacted)"
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def write_exec_kubeconfig(path: Path, endpoint: str, ca_data: str, cluster_name: str, region: str) -> Path:
    """A kubeconfig whose credential is minted per kubectl call by `python -m lfharness.stack.k8s token`
    (EKS tokens last 15 minutes; the suite runs longer). The plugin reads the AWS credentials from
    kubectl's environment (Kubectl.env), so none are written into the file."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "langfuse",
        "clusters": [{"name": "langfuse", "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [{"name": "operator", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
            "args": ["-m", "lfharness.stack.k8s", "token", cluster_name, region], "interactiveMode": "Never"}}}],
        "contexts": [{"name": "langfuse", "context": {"cluster": "langfuse", "user": "operator"}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def exec_credential(token: str) -> dict:
    """The ExecCredential kubectl expects from a credential plugin."""
    import datetime as dt  # noqa: PLC0415

    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
            "status": {"token": token, "expirationTimestamp": expires}}


# ECR Public rather than Docker Hub (10 anonymous pulls per hour per IP), at a pinned release.
IRSA_CHECK_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.26"


class KubectlError(RuntimeError):
    """kubectl exited non-zero (carries its stderr), or the API server refused a client call."""


class PortForwardError(KubectlError):
    """The port-forward's kubectl exited before the local port answered."""


class JobFailed(RuntimeError):
    """A Job reached its Failed condition; carries the reason and its pod's log. Not a KubectlError:
    the wait retries those (API hiccups) but must stop at once on this."""


@dataclass(frozen=True)
class Restart:
    """A container restart: how often, and why the last run ended."""

    pod: str
    container: str
    count: int
    reason: str
    exit_code: int | None

    def __str__(self) -> str:
        code = "" if self.exit_code is None else f", exit code {self.exit_code}"
        return f"{self.pod}/{self.container}: {self.count} restart(s), last ended: {self.reason}{code}"


def _statuses(pod: V1Pod) -> list:
    status = pod.status
    if status is None:
        return []
    return list(status.init_container_statuses or []) + list(status.container_statuses or [])


def restart_counts(items: list[V1Pod]) -> dict[str, int]:
    """"pod/container" -> restartCount, for every container (init containers included)."""
    return {f"{pod.metadata.name}/{c.name}": int(c.restart_count or 0) for pod in items for c in _statuses(pod)}


def restarts_since(baseline: dict[str, int], items: list[V1Pod]) -> list[Restart]:
    """Containers that restarted after `baseline` was taken (restart_counts at readiness), with the
    reason of the last termination (lastState.terminated.reason / exitCode). A container missing
    from the baseline (a replaced pod) counts from zero."""
    found = []
    for pod in items:
        for c in _statuses(pod):
            count = int(c.restart_count or 0) - baseline.get(f"{pod.metadata.name}/{c.name}", 0)
            if count > 0:
                terminated = c.last_state.terminated if c.last_state is not None else None
                reason = (terminated.reason if terminated is not None else None) or "unknown (no lastState.terminated)"
                found.append(Restart(pod.metadata.name, c.name, count, str(reason),
                                     terminated.exit_code if terminated is not None else None))
    return found


def all_ready(items: list[V1Pod]) -> bool:
    """Every pod Running (or a finished Job pod) with all containers ready."""
    if not items:
        return False
    for pod in items:
        phase = pod.status.phase if pod.status is not None else None
        if phase == "Succeeded":
            continue
        statuses = (pod.status.container_statuses if pod.status is not None else None) or []
        if phase != "Running" or not statuses or not all(s.ready for s in statuses):
            return False
    return True


def _pod_state(pod: V1Pod) -> str:
    ready = sum(1 for s in (pod.status.container_statuses or []) if s.ready) if pod.status else 0
    total = len(pod.spec.containers) if pod.spec else 0
    return f"{pod.metadata.name} {pod.status.phase if pod.status else '?'} {ready}/{total}"


# The exec plugin reads only these from its environment (main below); the client's kubeconfig
# loader passes them in memory, so the kubeconfig file on disk never holds a credential.
_PLUGIN_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclass(frozen=True)
class Kube:
    """Kubernetes access on one kubeconfig: the official `kubernetes` client for the API, kubectl
    where the client cannot serve as well.

    The client (typed objects, watches) lists pods, waits for readiness and Jobs, reads logs and
    Secrets. kubectl stays for three things: `port_forward` (kubectl resolves svc/<name> to a ready
    pod and its targetPort and multiplexes every connection over one stream;
    kubernetes.stream.portforward gives one socket per pod port and would need our own listener
    and a thread per connection), the human-readable tables and `describe` output of the
    diagnostics (kubectl's printers; the client has none), and `run` for ad-hoc calls.

    env: the environment of kubectl and of the exec credential plugin (envfile.Settings.child_env():
    the .env AWS credentials and nothing of the shell's AWS settings); None inherits this process's.
    """

    kubeconfig: Path
    env: Mapping[str, str] | None = field(default=None, repr=False)  # holds the AWS secret key
    binary: Path = field(default_factory=kubectl_bin)
    redactor: Redactor | None = field(default=None, repr=False)  # masks the diagnostics it writes (NFR1)

    @functools.cached_property
    def api(self) -> ApiClient:
        """A client from the kubeconfig through the client's own loader (exec plugins included: the
        EKS token is minted by `python -m lfharness.stack.k8s token` and refreshed when it expires)."""
        from kubernetes import config  # noqa: PLC0415

        data = yaml.safe_load(self.kubeconfig.read_text())
        if self.env is not None:
            extra = [{"name": k, "value": self.env[k]} for k in _PLUGIN_ENV if self.env.get(k)]
            for user in data.get("users") or []:
                plugin = (user.get("user") or {}).get("exec")
                if plugin is not None:
                    plugin["env"] = [*(plugin.get("env") or []), *extra]
        return config.new_client_from_config_dict(data)

    def reload(self) -> None:
        """Forget the client: the kubeconfig changed (a resumed cluster has a new endpoint and CA)."""
        self.__dict__.pop("api", None)

    def _core(self):
        from kubernetes import client  # noqa: PLC0415

        return client.CoreV1Api(self.api)

    def _argv(self, *args: str) -> list[str]:
        return [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args]

    def port_forward_argv(self, namespace: str, service: str, local_port: int, remote_port: int) -> list[str]:
        """The kubectl command line of one port-forward (connect holds it, restarting it when it exits)."""
        return self._argv("-n", namespace, "port-forward", f"svc/{service}", f"{local_port}:{remote_port}")

    def run(self, *args: str, timeout: float = 120, stdin: str | None = None) -> str:
        proc = subprocess.run(self._argv(*args), input=stdin, capture_output=True, text=True, timeout=timeout,
                              check=False, env=None if self.env is None else dict(self.env))
        if proc.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return proc.stdout

    @contextlib.contextmanager
    def port_forward(self, namespace: str, service: str, remote_port: int, local_port: int | None = None,
                     timeout: float = 60) -> Iterator[int]:
        """`kubectl port-forward svc/<service>` on a free local port, as a scoped resource.

        A kubectl that exits (service missing, no ready pod, credentials refused) fails at once
        with its own message instead of being retried for the whole timeout. Its stdout ("Handling
        connection ...", one line per connection) goes nowhere: an unread pipe would fill and stall it.
        """
        port = local_port or free_port()
        with tempfile.TemporaryFile("w+") as stderr:
            # Tied to the harness: gone even when the harness is killed before this block's finally.
            proc = procs.popen_tied(self._argv("-n", namespace, "port-forward", f"svc/{service}",
                                               f"{port}:{remote_port}"),
                                    stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                                    env=None if self.env is None else dict(self.env))
            try:
                def _open() -> bool:
                    if proc.poll() is not None:
                        stderr.seek(0)
                        raise PortForwardError(f"kubectl port-forward svc/{service} {port}:{remote_port} -n "
                                               f"{namespace} exited {proc.returncode}: "
                                               f"{stderr.read().strip()[-2000:] or '(no output)'}")
                    with socket.create_connection(("127.0.0.1", port), timeout=2):
                        return True
                retry(_open, timeout=timeout, interval=0.2, what=f"port-forward svc/{service} {port}:{remote_port}",
                      retry_on=(OSError,))
                yield port
            finally:
                procs.end(proc)

    def pods(self, namespace: str) -> list[V1Pod]:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            return self._core().list_namespaced_pod(namespace).items
        except ApiException as exc:
            raise KubectlError(f"list pods in {namespace}: {exc.status} {exc.reason}") from None

    def pod_names(self, namespace: str) -> list[str]:
        return [p.metadata.name for p in self.pods(namespace)]

    def service_pods(self, namespace: str, service: str) -> list[str]:
        """The running, not terminating pods a Service selects (what a port-forward to it can use)."""
        core = self._core()
        selector = core.read_namespaced_service(service, namespace).spec.selector or {}
        if not selector:
            return []
        pods = core.list_namespaced_pod(namespace, label_selector=",".join(f"{k}={v}" for k, v in selector.items()))
        return [p.metadata.name for p in pods.items
                if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]

    def claim_names(self, namespace: str) -> list[str]:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            return [c.metadata.name for c in self._core().list_namespaced_persistent_volume_claim(namespace).items]
        except ApiException as exc:
            raise KubectlError(f"list claims in {namespace}: {exc.status} {exc.reason}") from None

    def nodes(self) -> list:
        """The cluster's nodes (V1Node)."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            return self._core().list_node().items
        except ApiException as exc:
            raise KubectlError(f"list nodes: {exc.status} {exc.reason}") from None

    def scale(self, namespace: str, kind: str, name: str, replicas: int) -> None:
        """Sets a Deployment's or StatefulSet's replicas through its scale subresource."""
        from kubernetes import client  # noqa: PLC0415
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        apps = client.AppsV1Api(self.api)
        patch = getattr(apps, {"deployment": "patch_namespaced_deployment_scale",
                               "statefulset": "patch_namespaced_stateful_set_scale"}[kind])
        try:
            patch(name, namespace, {"spec": {"replicas": replicas}})
        except ApiException as exc:
            raise KubectlError(f"scale {kind} {name} in {namespace} to {replicas}: {exc.status} {exc.reason}") from None
        LOG.info("%s %s in %s scaled to %d", kind, name, namespace, replicas)

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's data, decoded (never logged)."""
        data = self._core().read_namespaced_secret(name, namespace).data or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def wait_all_ready(self, namespace: str, timeout: float) -> list[V1Pod]:
        """Waits, watching the namespace's pods (no polling), until every pod is ready (all_ready);
        returns them. API errors and expired watches re-list; WaitTimeout names the pods not ready."""
        from kubernetes import watch  # noqa: PLC0415
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
        from urllib3.exceptions import HTTPError  # noqa: PLC0415

        core = self._core()
        started = time.monotonic()
        deadline = started + timeout
        pods: dict[str, V1Pod] = {}
        last = "nothing listed yet"
        while time.monotonic() < deadline:
            try:
                listing = core.list_namespaced_pod(namespace)
                pods = {p.metadata.name: p for p in listing.items}
                version = listing.metadata.resource_version
                while True:
                    if all_ready(list(pods.values())):
                        LOG.info("all %d pods in %s ready after %.1fs", len(pods), namespace,
                                 time.monotonic() - started)
                        return list(pods.values())
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    # Whole seconds, rounded up: with under a second left, rounding down gave 0 and the loop
                    # listed the namespace again and again until the deadline.
                    stream = watch.Watch().stream(core.list_namespaced_pod, namespace, resource_version=version,
                                                  timeout_seconds=min(math.ceil(remaining), 60))
                    for event in stream:
                        pod = event["object"]
                        version = pod.metadata.resource_version
                        if event["type"] == "DELETED":
                            pods.pop(pod.metadata.name, None)
                        else:
                            pods[pod.metadata.name] = pod
                        if all_ready(list(pods.values())):
                            break
            except (ApiException, HTTPError) as exc:
                last = f"{type(exc).__name__}: {str(exc)[:200]}"
                LOG.info("pods in %s: %s; listing again", namespace, last)
                time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
        states = ", ".join(_pod_state(p) for p in pods.values()) or "no pods"
        raise WaitTimeout(f"gave up waiting for all pods in {namespace} Ready after {timeout:g}s; "
                          f"pods: {states}; last error: {last}")

    def run_job(self, namespace: str, name: str, service_account: str, image: str, script: str,
                timeout: float = 300, interval: float = 5) -> str:
        """Creates the Job and watches it until Complete or Failed, whichever comes first; returns its log.

        Failed raises JobFailed at once with the condition's reason and the pod's log, instead of
        waiting out the timeout as `kubectl wait --for=condition=complete` does. `interval` is only
        the pause before re-watching after an API error.
        """
        from kubernetes import client, watch  # noqa: PLC0415
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
        from urllib3.exceptions import HTTPError  # noqa: PLC0415

        batch = client.BatchV1Api(self.api)
        try:
            batch.create_namespaced_job(namespace, job_manifest(namespace, name, service_account, image, script))
        except ApiException as exc:
            raise KubectlError(f"create Job {namespace}/{name}: {exc.status} {exc.reason}: {exc.body}") from None
        started = time.monotonic()
        deadline = started + timeout
        last = "no status yet"
        while time.monotonic() < deadline:
            try:
                stream = watch.Watch().stream(batch.list_namespaced_job, namespace,
                                              field_selector=f"metadata.name={name}",
                                              timeout_seconds=max(1, int(deadline - time.monotonic())))
                for event in stream:
                    job = event["object"]
                    conditions = {c.type: c for c in (job.status.conditions or []) if c.status == "True"}
                    if "Failed" in conditions:
                        failed = conditions["Failed"]
                        raise JobFailed(f"Job {namespace}/{name} failed ({failed.reason}: {failed.message}); "
                                        f"its pod's log:\n{self.job_log(namespace, name)}")
                    if "Complete" in conditions:
                        LOG.info("Job %s/%s complete after %.1fs", namespace, name, time.monotonic() - started)
                        return self.job_log(namespace, name)
                    last = f"active={job.status.active or 0}, failed={job.status.failed or 0}"
            except (ApiException, HTTPError) as exc:
                last = f"{type(exc).__name__}: {str(exc)[:200]}"
                time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        raise WaitTimeout(f"gave up waiting for Job {namespace}/{name} Complete or Failed after {timeout:g}s "
                          f"(last: {last}); its pod's log:\n{self.job_log(namespace, name)}")

    def job_log(self, namespace: str, name: str) -> str:
        """The Job's pod log (all containers, last 200 lines each), or why it could not be read."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        core = self._core()
        try:
            pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={name}").items
            parts = [core.read_namespaced_pod_log(p.metadata.name, namespace, container=c.name, tail_lines=200) or ""
                     for p in pods for c in p.spec.containers]
        except ApiException as exc:
            return f"(no log: {exc.status} {exc.reason}: {str(exc.body)[:300]})"
        return "\n".join(part.strip() for part in parts if part.strip()) or "(empty log)"

    @contextlib.contextmanager
    def diagnostics_on_failure(self, namespace: str, dest: Path) -> Iterator[None]:
        """Collects diagnostics into dest when the block raises (e.g. a 03-app apply ending in a Helm
        timeout), then lets the error through; collecting never hides the original failure."""
        try:
            yield
        except Exception:
            LOG.error("collecting Kubernetes diagnostics of namespace %s into %s", namespace, dest)
            try:
                self.collect_diagnostics(namespace, dest)
            except Exception as exc:  # noqa: BLE001 (diagnostics are best effort; the block's error matters)
                LOG.error("collecting diagnostics failed: %s", exc)
            raise

    def collect_diagnostics(self, namespace: str, dest: Path) -> None:
        """Pods, descriptions, events, PVCs and Jobs (kubectl's tables and describe: the client has
        no printers), each container's log and, for a container that restarted, the log of its
        previous run (the crash), through the client; failures to collect go to errors.txt."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        dest.mkdir(parents=True, exist_ok=True)
        errors: list[str] = []

        def save(filename: str, *args: str) -> None:
            try:
                text = redact_environment(self.run("-n", namespace, *args))
                (dest / filename).write_text(self.redactor.mask(text) if self.redactor is not None else text)
            except (KubectlError, subprocess.TimeoutExpired) as exc:
                errors.append(f"{filename}: {exc}")

        for filename, args in {"pods.txt": ("get", "pods", "-o", "wide"), "describe-pods.txt": ("describe", "pods"),
                               "events.txt": ("get", "events", "--sort-by=.lastTimestamp"),
                               "pvc.txt": ("get", "pvc"), "jobs.txt": ("get", "jobs", "-o", "wide")}.items():
            save(filename, *args)
        try:
            items = self.pods(namespace)
        except (KubectlError, OSError, ValueError) as exc:  # OSError/ValueError: no usable kubeconfig
            items = []
            errors.append(f"pod list: {type(exc).__name__}: {exc}")
        restarted = {key for key, count in restart_counts(items).items() if count > 0}
        def log(filename: str, pod: str, container: str, previous: bool) -> None:
            try:
                text = self._core().read_namespaced_pod_log(pod, namespace, container=container, tail_lines=500,
                                                    previous=previous) or ""  # None: an empty log
                (dest / filename).write_text(self.redactor.mask(text) if self.redactor is not None else text)
            except ApiException as exc:
                errors.append(f"{filename}: {exc.status} {exc.reason}: {str(exc.body)[:300]}")

        for pod in items:
            pod_name = pod.metadata.name
            for container in [c.name for c in (pod.spec.init_containers or []) + pod.spec.containers]:
                log(f"{pod_name}.{container}.log", pod_name, container, False)
                if f"{pod_name}/{container}" in restarted:
                    log(f"{pod_name}.{container}.previous.log", pod_name, container, True)
        if errors:  # kubectl's stderr can quote what it refused, secrets included
            text = "\n".join(errors) + "\n"
            (dest / "errors.txt").write_text(self.redactor.mask(text) if self.redactor is not None else text)


Kubectl = Kube  # the name the callers knew; kubectl is now only part of it


@contextlib.contextmanager
def port_forward(kubeconfig: Path, namespace: str, service: str, remote_port: int, local_port: int | None = None,
                 timeout: float = 60, env: Mapping[str, str] | None = None) -> Iterator[int]:
    """Kube(kubeconfig, env).port_forward(...): for callers holding only a kubeconfig. Prefer a
    Kube with env=settings.child_env() over changing os.environ around this call."""
    with Kube(kubeconfig, env).port_forward(namespace, service, remote_port, local_port, timeout) as port:
        yield port


# What a probe's TCP connect ended in (bash's /dev/tcp under coreutils' timeout): 0 connected,
# 124 timed out (a NetworkPolicy drops the packets), anything else refused or unresolved.
CONNECTED, TIMED_OUT = 0, 124


def reachability_script(targets: list[tuple[str, int]], settle: int = 10) -> str:
    """A shell script for a probe Job: after `settle` seconds (a new pod's policies load within
    seconds), one TCP connect per target with a 5 s limit, printing `host:port=<exit code>`. It
    always exits 0: the verdict is read from its log (parse_reachability)."""
    probes = "; ".join(f"p {host} {port}" for host, port in targets)
    return (f"sleep {settle}; "
            "p() { timeout 5 bash -c \"exec 3<>/dev/tcp/$1/$2\" 2>/dev/null; echo \"$1:$2=$?\"; }; "
            f"{probes}; exit 0")


def parse_reachability(log: str) -> dict[tuple[str, int], int]:
    """`host:port=<code>` lines of a reachability_script log."""
    found = {}
    for line in log.splitlines():
        target, sep, code = line.strip().rpartition("=")
        host, _, port = target.rpartition(":")
        if sep and host and port.isdigit() and code.lstrip("-").isdigit():
            found[(host, int(port))] = int(code)
    return found


def job_manifest(namespace: str, name: str, service_account: str, image: str, script: str) -> dict:
    """A one-shot Job that runs `sh -c script` as the given service account, shaped to pass Pod
    Security `restricted` (03-app's namespace enforces it): non-root uid, RuntimeDefault seccomp, no
    privilege escalation, every capability dropped. HOME is an emptyDir at /tmp: the uid has no
    passwd entry (HOME would be `/`, not writable) and aws-cli writes the web-identity credentials
    it gets through IRSA to ~/.aws/cli/cache, failing when it cannot. fsGroup keeps the projected
    IRSA token readable by that uid. No credential in env: IRSA."""
    uid = 1000  # the aws-cli image declares no user (root); any non-root uid runs its `aws` and `sh`
    container = {"name": "check", "image": image, "command": ["sh", "-c", script],
                 "env": [{"name": "HOME", "value": "/tmp"}],
                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                 "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                     "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 300, "template": {"spec": {
                "serviceAccountName": service_account, "restartPolicy": "Never",
                "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "containers": [container]}}}}


def main(argv: list[str]) -> int:
    """`python -m lfharness.stack.k8s token <cluster> <region>`: the kubeconfig's credential plugin."""
    if len(argv) != 3 or argv[0] != "token":
        print("usage: python -m lfharness.stack.k8s token <cluster-name> <region>", file=sys.stderr)
        return 2
    import os  # noqa: PLC0415

    # kubectl hands the plugin the environment Kubectl.env built from .env; read only the keys,
    # never ~/.aws or other AWS_* settings (envfile.isolated_session).
    session = envfile.isolated_session(os.environ.get("AWS_ACCESS_KEY_ID", ""),
                                       os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                                       os.environ.get("AWS_SESSION_TOKEN"), argv[2])
    print(json.dumps(exec_credential(eks_token(argv[1], session))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
