"""Per-push credentials for the relay: a token and one self-signed certificate per relaying node.

Made on the sender for one push and handed to the nodes over their SSH sessions' stdin; nothing
is written to a disk here or there, and nothing outlives the push. Children pin the certificate's
sha256 (they are told it over their own SSH session), so no CA and no hostname check is needed.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass

VALID_FOR = datetime.timedelta(days=1)


@dataclass(frozen=True)
class RelayCredentials:
    """One relaying node's certificate and key (PEM) and the pin its children check."""

    cert_pem: str
    key_pem: str
    pin: str  # sha256 (hex) of the certificate's DER bytes


def new_token() -> str:
    """The push's token (64 hex characters) that every child presents to its relay."""
    return secrets.token_hex(32)


def make_credentials(name: str, host: str) -> RelayCredentials:
    """A fresh P-256 key and a self-signed certificate for ``name`` at ``host``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"envctl relay {name}"[:64])])
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return RelayCredentials(
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        hashlib.sha256(der).hexdigest(),
    )
