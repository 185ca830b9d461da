"""What runs in place of parts of a real cluster: the EBS CSI driver (``PvStandIn``, inside the
cluster through its API) and ClickHouse's HTTP /ping (``ClickHousePing``, behind a port-forward).

The Langfuse API and Redis stand-ins behind the other port-forwards live in their own modules
(langfuse_fake, localsvc); ``localkube`` wires them all to the cluster.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from lfharness.testing.cluster.nodes import EBS_PROVISIONER, STORAGE_CLASS
from lfharness.testing.httpserver import LocalServer, send_bytes

LOG = logging.getLogger("lfharness.testing.cluster.standins")

# The kubernetes client is imported inside the methods that use it: importing it takes seconds,
# which LocalCluster spends while the API server boots rather than at the harness's start.


# --- ClickHouse's /ping behind the port-forward to 8123 ----------------------------------------

class _PingHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        pass

    def do_GET(self) -> None:  # http.server dispatches on do_<METHOD>
        body, status = (b"Ok.\n", 200) if self.path.split("?")[0] == "/ping" else (b"not found\n", 404)
        send_bytes(self, status, body, "text/html; charset=UTF-8")


class ClickHousePing:
    """ClickHouse's HTTP /ping answer ("Ok.") on 127.0.0.1:<free port>: the stand-in for port 8123.
    The port is known once entered."""

    def __init__(self) -> None:
        self._server = LocalServer(_PingHandler, name="clickhouse-ping")

    @property
    def port(self) -> int:
        return self._server.port

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


# --- the EBS CSI driver's stand-in -----------------------------------------------------------

class PvStandIn:
    """Stand-in for the EBS CSI driver: a PV for each pending claim of a class it provisions once the
    scheduler picked its node (WaitForFirstConsumer), and deletion of Released PVs (reclaim
    Delete), as the driver's provisioner would create and delete EBS volumes."""

    def __init__(self, api_client: Any, interval: float = 0.5) -> None:
        from kubernetes import client  # noqa: PLC0415

        self._core = client.CoreV1Api(api_client)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pv-stand-in", daemon=True)
        self.created: list[str] = []
        self.deleted: list[str] = []

    def _pv(self, pvc: Any) -> dict:
        node = pvc.metadata.annotations["volume.kubernetes.io/selected-node"]
        return {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"pvc-{pvc.metadata.uid}",
                             "annotations": {"pv.kubernetes.io/provisioned-by": EBS_PROVISIONER}},
                "spec": {"capacity": {"storage": pvc.spec.resources.requests["storage"]},
                         "accessModes": pvc.spec.access_modes,
                         "storageClassName": pvc.spec.storage_class_name or STORAGE_CLASS,
                         "persistentVolumeReclaimPolicy": "Delete", "volumeMode": pvc.spec.volume_mode or "Filesystem",
                         "hostPath": {"path": f"/stand-in/ebs/{pvc.metadata.uid}"},
                         "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": pvc.metadata.name,
                                      "namespace": pvc.metadata.namespace, "uid": pvc.metadata.uid},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}

    def _once(self) -> None:
        from kubernetes import client  # noqa: PLC0415
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        ebs = {c.metadata.name for c in client.StorageV1Api(self._core.api_client).list_storage_class().items
               if c.provisioner == EBS_PROVISIONER}
        for pvc in self._core.list_persistent_volume_claim_for_all_namespaces().items:
            annotations = pvc.metadata.annotations or {}
            if (pvc.status.phase == "Pending" and (pvc.spec.storage_class_name or STORAGE_CLASS) in ebs
                    and "volume.kubernetes.io/selected-node" in annotations and not pvc.spec.volume_name):
                try:
                    self._core.create_persistent_volume(self._pv(pvc))
                    self.created.append(f"{pvc.metadata.namespace}/{pvc.metadata.name}")
                except ApiException as exc:
                    if exc.status != 409:  # 409: made on an earlier pass, the PV controller binds it
                        raise
        for pv in self._core.list_persistent_volume().items:
            if pv.status.phase in ("Released", "Failed") and pv.spec.persistent_volume_reclaim_policy == "Delete":
                try:
                    self._core.delete_persistent_volume(pv.metadata.name)
                    self.deleted.append(pv.metadata.name)
                except ApiException as exc:
                    if exc.status != 404:
                        raise

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._once()
            except Exception as exc:  # noqa: BLE001 (an API hiccup must not end the stand-in; next pass retries)
                LOG.warning("PV stand-in pass failed: %s", exc)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
