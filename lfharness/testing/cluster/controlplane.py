"""The control plane: ``LocalCluster`` starts etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok on free loopback ports, waits until they serve, creates the nodes, the
addon pods and the default StorageClass, and stops every process by its PID on exit.

Each process runs in its own session (a Ctrl-C reaches pytest, whose teardown stops them) and is
tied to the harness with SIGKILL, so a killed harness leaves nothing behind (test_kube_lifecycle).
Its log is ``<workdir>/logs/<name>.log``; a process that exits early fails the start with its tail.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests
import yaml

from lfharness.core import procs
from lfharness.core.procs import free_port
from lfharness.core.wait import retry
from lfharness.testing.cluster import certs, kwok, nodes
from lfharness.testing.cluster.binaries import BINARIES, SWITCH_HINT, bin_dir
from lfharness.testing.cluster.standins import PvStandIn

LOG = logging.getLogger("lfharness.testing.cluster.controlplane")


# The kubernetes client takes seconds to import: LocalCluster imports it in a thread while the API
# server boots, and the methods import it where they use it.
def _import_client() -> None:
    # Imported only to be loaded when first used (ruff sees the name bound by the first two used
    # by the next import, so only the last one needs F401's marker).
    import kubernetes.client  # noqa: PLC0415
    import kubernetes.config  # noqa: PLC0415
    import kubernetes.utils  # noqa: F401, PLC0415


class ClusterFailed(RuntimeError):
    """A control-plane process exited or never became ready; carries its log's tail."""


@dataclass
class _Process:
    name: str
    proc: subprocess.Popen
    log: Path


@dataclass
class LocalCluster:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on loopback.

    Use as a context manager; `kubeconfig` is an admin kubeconfig (static token, system:masters)
    that kubectl, helm and the kubernetes client all accept. `forwards` maps container ports to
    local addresses for port-forwards (kwok's ClusterPortForward).
    """

    workdir: Path
    forwards: kwok.Forwards = field(default_factory=lambda: kwok.Forwards({}))
    binaries: Path = field(default_factory=bin_dir)
    timeout: float = 60.0
    started_in: float = 0.0
    _procs: list[_Process] = field(default_factory=list)
    _pv: PvStandIn | None = None
    _api_client: Any = None

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def write_scripted_log(self, text: str) -> None:
        """What containers named SCRIPTED_LOG_CONTAINER log from now on (CRI format, as kwok reads it)."""
        kwok.write_cri_log(self.workdir / "logs" / "scripted.log", text)

    @property
    def pids(self) -> dict[str, int]:
        return {p.name: p.proc.pid for p in self._procs}

    def api_client(self) -> Any:
        """A kubernetes ApiClient on the admin kubeconfig (one per cluster)."""
        if self._api_client is None:
            from kubernetes import config  # noqa: PLC0415

            self._api_client = config.new_client_from_config(str(self.kubeconfig))
        return self._api_client

    @property
    def pv_stand_in(self) -> PvStandIn:
        assert self._pv is not None, "LocalCluster is not started"
        return self._pv

    def _start(self, name: str, argv: list[str]) -> None:
        log = self.workdir / "logs" / f"{name}.log"
        with log.open("w") as out:
            # Its own session: a Ctrl-C in the terminal reaches pytest, whose teardown stops these by
            # PID. Tied to the harness with SIGKILL: a throwaway cluster has nothing to save, and an
            # API server whose etcd gets SIGTERM at the same moment takes ~40 s to give up.
            proc = procs.popen_tied(argv, death_signal=signal.SIGKILL, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs.append(_Process(name, proc, log))
        LOG.info("started %s (pid %d), log %s", name, proc.pid, log)

    def _check_alive(self) -> None:
        for p in self._procs:
            if p.proc.poll() is not None:
                tail = "\n".join(p.log.read_text(errors="replace").splitlines()[-20:])
                raise ClusterFailed(f"{p.name} exited {p.proc.returncode}; log {p.log}:\n{tail}")

    def _wait_ready(self, url: str, ca: Path, token: str) -> None:
        def ready() -> bool:
            self._check_alive()
            return requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=str(ca),
                                timeout=2).status_code == 200
        retry(ready, timeout=self.timeout, interval=0.1, what=f"{url} 200",
              retry_on=(requests.RequestException,), validator=bool)

    def __enter__(self) -> Self:
        missing = [b for b in BINARIES if not (self.binaries / b).is_file()]
        if missing:
            raise ClusterFailed(f"missing binaries in {self.binaries}: {', '.join(missing)} (build: {SWITCH_HINT})")
        started = time.monotonic()
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            try:
                self._boot()
                break
            except ClusterFailed as exc:
                self._stop_all()
                # A free port taken by another program between choosing and binding it: once more.
                if attempt == 2 or "address already in use" not in str(exc):
                    raise
                LOG.warning("a port was taken before the cluster bound it; starting again: %s", str(exc)[-200:])
            except BaseException:
                self._stop_all()
                raise
        self.started_in = round(time.monotonic() - started, 1)
        LOG.info("local cluster up in %.1fs (pids %s)", self.started_in, self.pids)
        return self

    def _boot(self) -> None:
        b = self.binaries
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)  # a second attempt starts from nothing too
        creds = certs.write_credentials(self.workdir / "pki")
        ca, token = creds.ca, creds.token
        etcd_port, peer_port, api_port = (free_port() for _ in range(3))
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._start("etcd", [str(b / "etcd"), "--data-dir", str(self.workdir / "etcd"), "--name", "local",
                             "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                             "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-cluster", f"local=http://127.0.0.1:{peer_port}",
                             # A throwaway store: fsync would only slow the tests down.
                             "--unsafe-no-fsync", "--log-level", "warn"])
        server = f"https://127.0.0.1:{api_port}"
        self._start("kube-apiserver", [
            str(b / "kube-apiserver"), "--etcd-servers", etcd_url, "--bind-address", "127.0.0.1",
            "--advertise-address", "127.0.0.1", "--secure-port", str(api_port),
            "--tls-cert-file", str(ca.cert), "--tls-private-key-file", str(ca.key),
            "--token-auth-file", str(creds.tokens), "--authorization-mode", "Node,RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(creds.sa_pub),
            "--service-account-signing-key-file", str(creds.sa_key),
            # EKS's default service range (kubernetes_network_config unset in 01-network).
            "--service-cluster-ip-range", "172.20.0.0/16",
            "--kubelet-certificate-authority", str(ca.ca), "--kubelet-preferred-address-types", "InternalIP",
            "--allow-privileged=true", "--profiling=false", "--v=1"])
        certs.write_kubeconfig(self.kubeconfig, server, ca.ca, token)
        # The client's import takes seconds on a busy machine: done while the API server boots.
        importer = threading.Thread(target=_import_client, name="import-kubernetes", daemon=True)
        importer.start()
        kubeconfig = str(self.kubeconfig)
        self._start("kube-controller-manager", [
            str(b / "kube-controller-manager"), "--kubeconfig", kubeconfig, "--leader-elect=false",
            "--secure-port=0", "--root-ca-file", str(ca.ca), "--use-service-account-credentials=false",
            "--service-account-private-key-file", str(creds.sa_key), "--cluster-name", "langfuse",
            "--profiling=false", "--v=1"])
        self._start("kube-scheduler", [
            str(b / "kube-scheduler"), "--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port=0",
            # The PV stand-in binds claims a moment after the scheduler first tried a pod; without
            # this the scheduler retries such a pod only after 5 minutes.
            "--pod-max-in-unschedulable-pods-duration=10s", "--profiling=false", "--v=1"])
        # The controller manager and scheduler wait for the API server themselves; kwok needs it up.
        self._wait_ready(f"{server}/readyz", ca.ca, token)
        importer.join()
        kwok_port = free_port()  # chosen just before use: other programs on this machine take ports too
        config = self.workdir / "kwok.yaml"
        config.write_text(yaml.safe_dump_all(kwok.kwok_config(self.forwards, self.workdir / "logs"), sort_keys=False))
        self._start("kwok", [
            str(b / "kwok"), "--kubeconfig", kubeconfig, "--config", str(config),
            "--manage-nodes-with-annotation-selector", "=".join(nodes.KWOK_NODE_ANNOTATION),
            "--node-ip", "127.0.0.1", "--node-port", str(kwok_port), "--server-address", f"127.0.0.1:{kwok_port}",
            "--tls-cert-file", str(ca.cert), "--tls-private-key-file", str(ca.key), "--node-lease-duration-seconds", "40"])
        self._bootstrap()

    def _bootstrap(self) -> None:
        from kubernetes import client, utils  # noqa: PLC0415

        api = self.api_client()
        core = client.CoreV1Api(api)
        for node in nodes.node_manifests():
            core.create_node(node)
        utils.create_from_dict(api, nodes.storage_class_manifest())
        self._pv = PvStandIn(api).__enter__()

        def default_sa() -> bool:
            self._check_alive()
            return core.read_namespaced_service_account("default", "kube-system") is not None
        retry(default_sa, timeout=self.timeout, interval=0.2, what="service account kube-system/default",
              retry_on=(client.exceptions.ApiException,))
        for obj in nodes.addon_manifests():
            utils.create_from_dict(api, obj)

        def nodes_ready() -> bool:
            self._check_alive()
            return all(any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
                       for n in core.list_node().items)
        retry(nodes_ready, timeout=self.timeout, interval=0.2, what="both nodes Ready", validator=bool)

    def wait_addons_ready(self, timeout: float = 60) -> list[Any]:
        """The addon pods all Running and Ready on the nodes (kube-system)."""
        from kubernetes import client  # noqa: PLC0415

        core = client.CoreV1Api(self.api_client())
        wanted = len(nodes.NODES) * len(nodes.ADDON_DAEMONSETS) + sum(r for r, _ in nodes.ADDON_DEPLOYMENTS.values())

        def pods() -> list[Any]:
            self._check_alive()
            return core.list_namespaced_pod("kube-system").items

        def ready(items: list[Any]) -> bool:
            return len(items) == wanted and all(
                p.status.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                                    for c in p.status.conditions or []) for p in items)
        return retry(pods, timeout=timeout, interval=0.2, what=f"{wanted} addon pods Ready", validator=ready)

    def _stop_all(self) -> None:
        if self._pv is not None:
            self._pv.__exit__(None, None, None)
            self._pv = None
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None
        # One at a time, clients first and etcd last: an API server whose etcd is gone waits out
        # its graceful termination instead of exiting.
        for p in reversed(self._procs):
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
            try:
                p.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                LOG.warning("%s (pid %d) ignored SIGTERM for 10s; killing it", p.name, p.proc.pid)
                p.proc.kill()
                p.proc.wait(timeout=10)
        self._procs.clear()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop_all()
        LOG.info("local cluster stopped")
