"""Plan tier, issue 26 item 6 (smaller items): the encrypted class is the cluster's only default
StorageClass, and the namespace enforces Pod Security `restricted`.

Stand-ins as in test_plan_app.py (03-app, planned whole offline: runs everywhere) and
test_plan_network.py (01-network: the module sources from LFK8S_MODULE_MIRROR; without them the
01-network tests here skip with one line, through the network_plan fixture). What the real API
server's Pod Security Admission does with these labels is the kube tier's
(tests/unit/test_kube_psa_restricted.py).
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.plan

NAMESPACE = "kubernetes_namespace_v1.langfuse[0]"
STORAGE_CLASS = "kubernetes_storage_class_v1.gp3_encrypted[0]"
EBS_ADDON = 'module.eks.aws_eks_addon.this["aws-ebs-csi-driver"]'
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def test_namespace_enforces_pod_security_restricted(app_plan):
    """Issue 26 item 6: Pod Security Admission refuses, in langfuse, every pod short of restricted
    (and still warns at the same level); no exemption by an older policy version."""
    labels = app_plan.after(NAMESPACE)["metadata"][0]["labels"]
    psa = {k: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")}
    assert psa == {"pod-security.kubernetes.io/enforce": "restricted",
                   "pod-security.kubernetes.io/warn": "restricted"}


def test_the_encrypted_class_is_the_default_storage_class(app_plan):
    """Issue 26 item 6: 03-app's gp3-encrypted class (EBS CSI, gp3, encrypted) carries the default
    annotation, so a claim naming no class gets an encrypted volume; it is 03-app's only class."""
    classes = app_plan.of_type("kubernetes_storage_class_v1")
    assert list(classes) == [STORAGE_CLASS]
    sc = classes[STORAGE_CLASS]
    assert (sc["storage_provisioner"], sc["parameters"]) == ("ebs.csi.aws.com", {"type": "gp3", "encrypted": "true"})
    assert sc["metadata"][0]["annotations"] == {DEFAULT_CLASS: "true"}


def test_the_ebs_csi_addon_creates_no_default_class(network_plan):
    """Issue 26 item 6: the addon's own class (ebs-csi-default-sc: no parameters, so unencrypted,
    and annotated default) is turned off; its other settings (the volumes' Project tag) stay."""
    config = json.loads(network_plan.after(EBS_ADDON)["configuration_values"])
    assert config["defaultStorageClass"] == {"enabled": False}
    assert "storageClasses" not in config
    assert config["controller"]["extraVolumeTags"]
