"""Kubernetes access for the e2e suite: EKS token, kubeconfig, kubectl, port-forward, diagnostics."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lfharness import envfile, procs
from lfharness.redact import Redactor
from lfharness.offline.localsvc import free_port
from lfharness.wait import WaitTimeout, retry

LOG = logging.getLogger("lfharness.k8s")


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
    """A kubeconfig whose credential is minted per kubectl call by `python -m lfharness.k8s token`
    (EKS tokens last 15 minutes; the suite runs longer). The plugin reads the AWS credentials from
    kubectl's environment (Kubectl.env), so none are written into the file."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "langfuse",
        "clusters": [{"name": "langfuse", "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [{"name": "operator", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
            "args": ["-m", "lfharness.k8s", "token", cluster_name, region], "interactiveMode": "Never"}}}],
        "contexts": [{"name": "langfuse", "context": {"cluster": "langfuse", "user": "operator"}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def exec_credential(token: str) -> dict:
    """The ExecCredential kubectl expects from a credential plugin."""
    import datetime as dt  # noqa: PLC0415

    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
            "status": {"token": token, "expirationTimestamp": expires}}


# ECR Public rather than Docker Hub (10 anonymous pulls per hour per IP), at a pinned release.
IRSA_CHECK_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.26"


class KubectlError(RuntimeError):
    """kubectl exited non-zero; carries its stderr."""


class PortForwardError(KubectlError):
    """The port-forward's kubectl exited before the local port answered."""


class JobFailed(RuntimeError):
    """A Job reached its Failed condition; carries the reason and its pod's log. Not a KubectlError:
    the wait retries those (API hiccups) but must stop at once on this."""


class _NotYet(Exception):
    """A Job that has neither completed nor failed yet."""


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


def restart_counts(items: list[dict]) -> dict[str, int]:
    """"pod/container" -> restartCount, for every container (init containers included)."""
    counts = {}
    for pod in items:
        status = pod.get("status", {})
        for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            counts[f"{pod['metadata']['name']}/{c['name']}"] = int(c.get("restartCount", 0))
    return counts


def restarts_since(baseline: dict[str, int], items: list[dict]) -> list[Restart]:
    """Containers that restarted after `baseline` was taken (restart_counts at readiness), with the
    reason of the last termination (lastState.terminated.reason / exitCode). A container missing
    from the baseline (a replaced pod) counts from zero."""
    found = []
    for pod in items:
        status = pod.get("status", {})
        for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            key = f"{pod['metadata']['name']}/{c['name']}"
            count = int(c.get("restartCount", 0)) - baseline.get(key, 0)
            if count > 0:
                terminated = (c.get("lastState") or {}).get("terminated") or {}
                found.append(Restart(pod["metadata"]["name"], c["name"], count,
                                     str(terminated.get("reason") or "unknown (no lastState.terminated)"),
                                     terminated.get("exitCode")))
    return found


@dataclass(frozen=True)
class Kubectl:
    """kubectl against one kubeconfig, with an explicit environment.

    env: the child environment (envfile.Settings.child_env(): the .env AWS credentials for the
    token plugin and nothing of the shell's AWS settings); None inherits this process's.
    """

    kubeconfig: Path
    env: Mapping[str, str] | None = field(default=None, repr=False)  # holds the AWS secret key
    binary: Path = field(default_factory=kubectl_bin)
    redactor: Redactor | None = field(default=None, repr=False)  # masks the diagnostics it writes (NFR1)

    def _argv(self, *args: str) -> list[str]:
        return [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args]

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
                retry(_open, timeout=timeout, interval=0.5, what=f"port-forward svc/{service} {port}:{remote_port}",
                      retry_on=(OSError,))
                yield port
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)

    def pods(self, namespace: str) -> list[dict]:
        return json.loads(self.run("-n", namespace, "get", "pods", "-o", "json"))["items"]

    def run_job(self, namespace: str, name: str, service_account: str, image: str, script: str,
                timeout: float = 300, interval: float = 5) -> str:
        """Applies the Job and waits for Complete or Failed, whichever comes first; returns its log.

        Failed raises JobFailed at once with the condition's reason and the pod's log, instead of
        waiting out the timeout as `kubectl wait --for=condition=complete` does.
        """
        self.run("apply", "-f", "-", stdin=json.dumps(job_manifest(namespace, name, service_account, image, script)))

        def finished() -> str:
            job = json.loads(self.run("-n", namespace, "get", "job", name, "-o", "json"))
            conditions = {c.get("type"): c for c in job.get("status", {}).get("conditions") or []
                          if c.get("status") == "True"}
            if "Failed" in conditions:
                failed = conditions["Failed"]
                raise JobFailed(f"Job {namespace}/{name} failed ({failed.get('reason')}: {failed.get('message')}); "
                                f"its pod's log:\n{self.job_log(namespace, name)}")
            if "Complete" in conditions:
                return self.job_log(namespace, name)
            raise _NotYet(f"Job {name}: active={job.get('status', {}).get('active', 0)}")

        try:
            return retry(finished, timeout=timeout, interval=interval, what=f"Job {namespace}/{name} Complete or Failed",
                         retry_on=(_NotYet, KubectlError))
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}; its pod's log:\n{self.job_log(namespace, name)}") from None

    def job_log(self, namespace: str, name: str) -> str:
        """The Job's pod log (all containers), or why it could not be read."""
        try:
            return self.run("-n", namespace, "logs", f"job/{name}", "--all-containers", "--tail=200").strip() \
                or "(empty log)"
        except (KubectlError, subprocess.TimeoutExpired) as exc:
            return f"(no log: {exc})"

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
        """Pods, descriptions, events, PVCs and Jobs, each container's log and, for a container that
        restarted, the log of its previous run (the crash); failures to collect go to errors.txt."""
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
        except (KubectlError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            items = []
            errors.append(f"pod list: {exc}")
        restarted = {key for key, count in restart_counts(items).items() if count > 0}
        for pod in items:
            pod_name = pod["metadata"]["name"]
            containers = [c["name"] for c in (pod["spec"].get("initContainers") or []) + pod["spec"]["containers"]]
            for container in containers:
                save(f"{pod_name}.{container}.log", "logs", pod_name, "-c", container, "--tail=500")
                if f"{pod_name}/{container}" in restarted:
                    save(f"{pod_name}.{container}.previous.log", "logs", pod_name, "-c", container, "--previous",
                         "--tail=500")
        if errors:  # kubectl's stderr can quote what it refused, secrets included
            text = "\n".join(errors) + "\n"
            (dest / "errors.txt").write_text(self.redactor.mask(text) if self.redactor is not None else text)


@contextlib.contextmanager
def port_forward(kubeconfig: Path, namespace: str, service: str, remote_port: int, local_port: int | None = None,
                 timeout: float = 60, env: Mapping[str, str] | None = None) -> Iterator[int]:
    """Kubectl(kubeconfig, env).port_forward(...): for callers holding only a kubeconfig. Prefer a
    Kubectl with env=settings.child_env() over changing os.environ around this call."""
    with Kubectl(kubeconfig, env).port_forward(namespace, service, remote_port, local_port, timeout) as port:
        yield port


def all_ready(items: list[dict]) -> bool:
    """Every pod Running (or a finished Job pod) with all containers ready."""
    if not items:
        return False
    for pod in items:
        if pod["status"].get("phase") == "Succeeded":
            continue
        statuses = pod["status"].get("containerStatuses") or []
        if pod["status"].get("phase") != "Running" or not statuses or not all(s.get("ready") for s in statuses):
            return False
    return True


def job_manifest(namespace: str, name: str, service_account: str, image: str, script: str) -> dict:
    """A one-shot Job that runs `sh -c script` as the given service account."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 300, "template": {"spec": {
                "serviceAccountName": service_account, "restartPolicy": "Never",
                "containers": [{"name": "check", "image": image, "command": ["sh", "-c", script]}]}}}}


def main(argv: list[str]) -> int:
    """`python -m lfharness.k8s token <cluster> <region>`: the kubeconfig's credential plugin."""
    if len(argv) != 3 or argv[0] != "token":
        print("usage: python -m lfharness.k8s token <cluster-name> <region>", file=sys.stderr)
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
