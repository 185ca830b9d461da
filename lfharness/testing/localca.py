"""A throwaway certificate authority for local HTTPS stand-ins.

Local fakes (the Terraform Cloud fake, for one) must speak HTTPS: the `tfe`
provider and Terraform's service discovery only talk to https:// hosts. This
module makes a CA and a server certificate for 127.0.0.1/localhost, and a CA
bundle (certifi's roots plus ours) that Python `requests` (`verify=` or
`REQUESTS_CA_BUNDLE`) and Go programs (`SSL_CERT_FILE`) can trust.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

# Short-lived on purpose: the files live in a temporary folder for one test run.
_VALIDITY = dt.timedelta(days=7)
# Clock skew between the CA's "now" and a client's must not make the cert "not yet valid".
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class CaFiles:
    """PEM files written by `make_ca`."""

    ca: Path  # CA certificate: what clients must trust
    cert: Path  # server certificate for 127.0.0.1 and localhost, signed by the CA
    key: Path  # server private key (mode 0600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lfharness local test CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(folder: Path) -> CaFiles:
    """Create a CA and a server cert for 127.0.0.1/localhost; write ca.pem, cert.pem, key.pem.

    EC P-256 keys: fast to generate and accepted by Python's ssl and Go's crypto/tls.
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("lfharness throwaway CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    # Go ignores the CN and matches hosts only against the SAN, so both names go there.
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        # Strict verifiers (Python 3.13's VERIFY_X509_STRICT) require the AKI on leaves.
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    files = CaFiles(ca=folder / "ca.pem", cert=folder / "cert.pem", key=folder / "key.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    # Create the key file private before writing, so it is never world-readable.
    files.key.touch(mode=0o600)
    files.key.chmod(0o600)
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    log.info("Made a throwaway CA and a 127.0.0.1/localhost server cert in %s", folder)
    return files


def write_ca_bundle(ca: CaFiles, dest: Path | None = None) -> Path:
    """Write certifi's roots plus our CA to `dest` (default: bundle.pem next to ca.pem).

    Point `SSL_CERT_FILE` (Go, Terraform, providers) or `REQUESTS_CA_BUNDLE` at it:
    both replace the system roots, so the public roots must stay in the file.
    """
    dest = dest if dest is not None else ca.ca.parent / "bundle.pem"
    public_roots = Path(certifi.where()).read_text(encoding="utf-8")
    ours = ca.ca.read_text(encoding="utf-8")
    dest.write_text(public_roots.rstrip("\n") + "\n\n# lfharness throwaway CA\n" + ours, encoding="utf-8")
    log.info("Wrote CA bundle (certifi + throwaway CA) to %s", dest)
    return dest
