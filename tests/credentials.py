"""Credentials for the security tests: certificates (trustme + cryptography) on disk."""

from __future__ import annotations

import datetime as dt
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.UTC)
SPIFFE = "spiffe://example.net/ns/smo/sa/smo-1"


# --------------------------------------------------------------------------- certificates


def issue_client(
    ca: trustme.CA,
    common_name: str,
    *,
    dns: tuple[str, ...] = (),
    uris: tuple[str, ...] = (),
    emails: tuple[str, ...] = (),
    not_after: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A client certificate (PEM cert, PEM key) signed by ``ca``; trustme cannot do URI SANs."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    sans += [x509.RFC822Name(e) for e in emails]
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example SMO"),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=2))
        .not_valid_after(not_after or NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def der_of(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


def write_atomically(path: Path, data: bytes) -> None:
    """How kubelet/cert-manager update a mounted secret: a new file renamed over the old."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class PKI:
    dir: Path
    server_ca: trustme.CA
    server_cert: trustme.LeafCert
    client_ca: trustme.CA
    rogue_ca: trustme.CA = field(default_factory=trustme.CA)

    @property
    def cert_file(self) -> Path:
        return self.dir / "tls.crt"

    @property
    def key_file(self) -> Path:
        return self.dir / "tls.key"

    @property
    def client_ca_file(self) -> Path:
        return self.dir / "client-ca.crt"

    def write_server(self, ca: trustme.CA) -> trustme.LeafCert:
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        write_atomically(self.cert_file, b"".join(b.bytes() for b in leaf.cert_chain_pems))
        write_atomically(self.key_file, leaf.private_key_pem.bytes())
        self.server_ca, self.server_cert = ca, leaf
        return leaf

    def write_client_ca(self, ca: trustme.CA) -> None:
        write_atomically(self.client_ca_file, ca.cert_pem.bytes())
        self.client_ca = ca


def client_context(
    trust: trustme.CA | None, cert: tuple[bytes, bytes] | None = None, *, tmp: Path
) -> ssl.SSLContext:
    if trust is None:  # fetch whatever the server presents
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cadata=trust.cert_pem.bytes().decode())
    if cert is not None:
        cert_path = tmp / f"client-{id(cert)}.pem"
        cert_path.write_bytes(cert[0] + cert[1])
        ctx.load_cert_chain(cert_path)
    return ctx


# --------------------------------------------------------------------------- tokens

ISSUER = "https://idp.example.net/realms/o2"
AUDIENCE = "netweave"


@dataclass
class TokenIssuer:
    """An identity provider's signing key; its public key is written to ``key_file``."""

    key_file: Path
    kid: str = "test-key-1"
    key: Any = field(default=None)

    def __post_init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        if self.key is None:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_file.write_bytes(
            self.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def public_pem(self) -> bytes:
        return self.key_file.read_bytes()

    def mint(
        self, subject: str, *, alg: str = "RS256", kid: str | None = None, **claims: Any
    ) -> str:
        """A signed JWT for ``subject``; ``claims`` override the defaults (None removes one)."""
        import time

        import jwt

        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.key, algorithm=alg, headers={"kid": kid or self.kid})

    def headers(self, subject: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(subject, **claims)}"}
