"""Kubernetes access for the e2e suite: EKS token, kubeconfig, kubectl, port-forward, diagnostics."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from lfharness.offline.localsvc import free_port
from lfharness.wait import retry

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


def write_exec_kubeconfig(path: Path, endpoint: str, ca_data: str, cluster_name: str, region: str) -> Path:
    """A kubeconfig whose credential is minted per kubectl call by `python -m lfharness.k8s token`
    (EKS tokens last 15 minutes; the suite runs longer). AWS credentials come from the environment."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "langfuse",
        "clusters": [{"name": "langfuse", "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [{"name": "operator", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
            "args": ["-m", "lfharness.k8s", "token", cluster_name, region], "interactiveMode": "Never"}}}],
        "contexts": [{"name": "langfuse", "context": {"cluster": "langfuse", "user": "operator"}}],
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def exec_credential(token: str) -> dict:
    """The ExecCredential kubectl expects from a credential plugin."""
    import datetime as dt  # noqa: PLC0415

    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
            "status": {"token": token, "expirationTimestamp": expires}}


def kubectl(kubeconfig: Path, *args: str, timeout: float = 120, stdin: str | None = None) -> str:
    proc = subprocess.run([str(kubectl_bin()), "--kubeconfig", str(kubeconfig), *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


@contextlib.contextmanager
def port_forward(kubeconfig: Path, namespace: str, service: str, remote_port: int,
                 local_port: int | None = None, timeout: float = 60) -> Iterator[int]:
    """`kubectl port-forward svc/<service>` on a free local port, as a scoped resource."""
    port = local_port or free_port()
    proc = subprocess.Popen([str(kubectl_bin()), "--kubeconfig", str(kubeconfig), "-n", namespace,
                             "port-forward", f"svc/{service}", f"{port}:{remote_port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def _open() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"port-forward to {service} exited: {proc.stderr.read() if proc.stderr else ''}")
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True
        retry(_open, timeout=timeout, interval=1, what=f"port-forward svc/{service} {port}:{remote_port}")
        yield port
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def pods(kubeconfig: Path, namespace: str) -> list[dict]:
    return json.loads(kubectl(kubeconfig, "-n", namespace, "get", "pods", "-o", "json"))["items"]


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


def collect_diagnostics(kubeconfig: Path, namespace: str, dest: Path) -> None:
    """Pod list, events and logs into the run folder, for a failed test."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, args in {"pods.txt": ("get", "pods", "-o", "wide"),
                       "events.txt": ("get", "events", "--sort-by=.lastTimestamp")}.items():
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            (dest / name).write_text(kubectl(kubeconfig, "-n", namespace, *args))
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError):
        for pod in pods(kubeconfig, namespace):
            pod_name = pod["metadata"]["name"]
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                (dest / f"{pod_name}.log").write_text(
                    kubectl(kubeconfig, "-n", namespace, "logs", pod_name, "--all-containers", "--tail=500"))


def job_manifest(namespace: str, name: str, service_account: str, image: str, script: str) -> dict:
    """A one-shot Job that runs `sh -c script` as the given service account."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 300, "template": {"spec": {
                "serviceAccountName": service_account, "restartPolicy": "Never",
                "containers": [{"name": "check", "image": image, "command": ["sh", "-c", script]}]}}}}


def run_job(kubeconfig: Path, namespace: str, name: str, service_account: str, image: str, script: str,
            timeout: int = 300) -> None:
    """Applies the Job and waits for it to complete (kubectl wait, explicit timeout)."""
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(job_manifest(namespace, name, service_account, image, script)))
    kubectl(kubeconfig, "-n", namespace, "wait", "--for=condition=complete", f"job/{name}", f"--timeout={timeout}s",
            timeout=timeout + 30)


def main(argv: list[str]) -> int:
    """`python -m lfharness.k8s token <cluster> <region>`: the kubeconfig's credential plugin."""
    if len(argv) != 3 or argv[0] != "token":
        print("usage: python -m lfharness.k8s token <cluster-name> <region>", file=sys.stderr)
        return 2
    import boto3  # noqa: PLC0415

    print(json.dumps(exec_credential(eks_token(argv[1], boto3.Session(region_name=argv[2])))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
