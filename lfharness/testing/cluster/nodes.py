"""What the cluster holds before any test: two nodes shaped like 01-network's node group
(2x t3.medium on AL2023), the EKS addon pods they carry with the real addons' requests, and an
EBS StorageClass by the aws-ebs-csi-driver addon's name (not default: 01-network turns the addon's
default class off), as manifests.

The figures are the scheduler's inputs: the chart tier's fit arithmetic (chartrig.fit) and the
kube tier's scheduling tests state their expectations against the same numbers.
"""

from __future__ import annotations

from typing import Any

# The nodes: 01-network's node group, 2x t3.medium on AL2023.
# t3.medium: 2 vCPU, 4 GiB (EC2 instance types). Kubelet reservations from nodeadm
# (awslabs/amazon-eks-ami, nodeadm/internal/kubelet/config.go): kube-reserved cpu 6% of the first
# core + 1% of the second = 70m; memory 11 MiB x max-pods + 255 MiB = 442 MiB; ephemeral-storage
# 1 GiB; evictionHard memory.available 100 MiB, nodefs.available 10%. max-pods 17
# (nodeadm eni-max-pods.txt: 3 ENIs x (6 - 1) + 2). Root volume 20 GiB (the EKS managed node
# group's default disk size; 01-network sets none). The same figures as the chart tier
# (tests/unit/test_chart.py); the kubelet counts MemTotal, a little under 4 GiB, so real nodes
# have slightly less memory than this.
NODE_CAPACITY = {"cpu": "2", "memory": "4096Mi", "pods": "17", "ephemeral-storage": "20Gi"}
NODE_ALLOCATABLE = {"cpu": "1930m", "memory": f"{4096 - (11 * 17 + 255) - 100}Mi", "pods": "17",
                    "ephemeral-storage": f"{20 * 1024 - 1024 - 2048}Mi"}
NODES = (("ip-10-0-1-10.ec2.internal", "us-east-1a", "10.0.1.0/24"),
         ("ip-10-0-2-10.ec2.internal", "us-east-1b", "10.0.2.0/24"))
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")

# The EKS addon pods those nodes carry, with their real requests (test_chart.py cites them).
# aws-node: aws-node 25m + aws-eks-nodeagent 25m, no memory (amazon-vpc-cni-k8s aws-k8s-cni.yaml);
# kube-proxy: 100m, no memory; ebs-csi-node: 3 containers at 10m/40Mi (aws-ebs-csi-driver chart);
# coredns: 2 x 100m/70Mi (eksctl coredns-1.35.json); ebs-csi-controller: 2 x 6 containers at 10m/40Mi.
ADDON_DAEMONSETS: dict[str, list[tuple[str, str, str | None]]] = {
    "aws-node": [("aws-node", "25m", None), ("aws-eks-nodeagent", "25m", None)],
    "kube-proxy": [("kube-proxy", "100m", None)],
    "ebs-csi-node": [(c, "10m", "40Mi") for c in ("ebs-plugin", "node-driver-registrar", "liveness-probe")],
}
ADDON_DEPLOYMENTS: dict[str, tuple[int, list[tuple[str, str, str | None]]]] = {
    "coredns": (2, [("coredns", "100m", "70Mi")]),
    "ebs-csi-controller": (2, [(c, "10m", "40Mi") for c in ("ebs-plugin", "csi-provisioner", "csi-attacher",
                                                              "csi-snapshotter", "csi-resizer", "liveness-probe")]),
}
ADDON_IMAGE = "stand-in.invalid/eks-addon:never-pulled"  # kwok never pulls; the name says so

# The aws-ebs-csi-driver addon's class name (01-network eks.tf turns it off: storage_class_manifest).
STORAGE_CLASS = "ebs-csi-default-sc"
EBS_PROVISIONER = "ebs.csi.aws.com"


def _resources(cpu: str, memory: str | None) -> dict:
    requests_ = {"cpu": cpu, **({"memory": memory} if memory else {})}
    return {"requests": requests_}


def _addon_pod_spec(name: str, containers: list[tuple[str, str, str | None]], *, daemon: bool) -> dict:
    spec: dict[str, Any] = {
        "containers": [{"name": c, "image": ADDON_IMAGE, "resources": _resources(cpu, mem)} for c, cpu, mem in containers],
        "priorityClassName": "system-node-critical" if daemon else "system-cluster-critical",
        "tolerations": [{"operator": "Exists"}] if daemon else [],
        # The real controllers use their own service accounts; default keeps this free of RBAC.
        "automountServiceAccountToken": False,
    }
    if name in ("aws-node", "kube-proxy"):
        spec["hostNetwork"] = True
    return spec


def addon_manifests() -> list[dict]:
    """DaemonSets and Deployments in kube-system with the addons' names and requests."""
    objects = []
    for name, containers in ADDON_DAEMONSETS.items():
        labels = {"k8s-app": name}
        objects.append({"apiVersion": "apps/v1", "kind": "DaemonSet",
                        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
                        "spec": {"selector": {"matchLabels": labels}, "template": {
                            "metadata": {"labels": labels}, "spec": _addon_pod_spec(name, containers, daemon=True)}}})
    for name, (replicas, containers) in ADDON_DEPLOYMENTS.items():
        labels = {"k8s-app": name}
        objects.append({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
                        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
                            "metadata": {"labels": labels}, "spec": _addon_pod_spec(name, containers, daemon=False)}}})
    return objects


def node_manifests() -> list[dict]:
    objects = []
    for name, zone, cidr in NODES:
        objects.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": dict([KWOK_NODE_ANNOTATION]), "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "t3.medium", "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "us-east-1", "eks.amazonaws.com/nodegroup": "default",
                "eks.amazonaws.com/capacityType": "ON_DEMAND", "type": "kwok"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "providerID": f"kwok://{name}"},
            "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_ALLOCATABLE},
        })
    return objects


def storage_class_manifest() -> dict:
    """An EBS class, not the default one: 01-network turns the addon's default class off (issue 26
    item 6), so on EKS the only default is 03-app's gp3-encrypted, which apply_secrets creates from
    the plan. The rig keeps this non-default class by the addon's name as PvStandIn's fallback."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS},
            "provisioner": EBS_PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete", "allowVolumeExpansion": True}
