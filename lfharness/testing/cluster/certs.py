"""The local cluster's throwaway credentials: a CA with a serving certificate for 127.0.0.1 (from
``localca``, shared by the API server and kwok), the service-account signing key pair, a static
admin token, and the admin kubeconfig that kubectl, helm and the kubernetes client all accept.

Everything lives in the cluster's temporary folder for one session; secret files are 0600.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lfharness.testing import localca


@dataclass(frozen=True)
class Credentials:
    """What `write_credentials` put in the pki folder."""

    ca: localca.CaFiles  # CA, and the serving cert and key for 127.0.0.1
    sa_key: Path  # service-account signing key (controller-manager, API server)
    sa_pub: Path  # its public half (API server: verifies the tokens)
    token: str  # the admin's static bearer token (system:masters)
    tokens: Path  # the API server's --token-auth-file holding it


def _private_file(path: Path) -> Path:
    path.touch(mode=0o600)
    return path


def write_credentials(pki: Path) -> Credentials:
    """A fresh CA, service-account key pair and admin token in `pki`."""
    ca = localca.make_ca(pki)  # serving cert for 127.0.0.1: the API server's and kwok's
    sa_key = ec.generate_private_key(ec.SECP256R1())
    key_file = _private_file(pki / "sa.key")
    key_file.write_bytes(sa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    pub_file = pki / "sa.pub"
    pub_file.write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    token = os.urandom(24).hex()
    tokens = _private_file(pki / "tokens.csv")
    tokens.write_text(f'{token},admin,admin-uid,"system:masters"\n')
    return Credentials(ca, key_file, pub_file, token, tokens)


def write_kubeconfig(path: Path, server: str, ca: Path, token: str) -> Path:
    """An admin kubeconfig (static token, CA inline) at `path`, 0600."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "local",
              "clusters": [{"name": "local", "cluster": {
                  "server": server, "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode()}}],
              "users": [{"name": "admin", "user": {"token": token}}],
              "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}]}
    _private_file(path).write_text(json.dumps(config))
    return path
