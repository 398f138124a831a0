"""Self-signed test certificates. FOR TESTS AND DEMOS ONLY.

DIAN accepts only certificates from an ONAC-accredited authority; a certificate made here
is refused by the real service. It exists so tests, the demo and the local DIAN simulator
can sign documents and WS-Security headers without a real company's key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def make_test_pkcs12(
    nit: str,
    password: str,
    *,
    common_name: str = "Emisor de pruebas",
    valid_days: int = 365,
    not_before: datetime | None = None,
) -> bytes:
    """A PKCS#12 (RSA-2048 key + self-signed certificate) protected by `password`.

    The subject carries the NIT twice, as DIAN's accredited authorities do in various ways:
    `serialNumber=<nit>` and inside the CN (`<common_name> NIT <nit>`).
    """
    if not nit.isdigit():
        raise ValueError(f"a NIT holds digits only, got {nit!r}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CO"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, common_name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, nit),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} NIT {nit}"),
        ]
    )
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
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
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return pkcs12.serialize_key_and_certificates(
        name=common_name.encode("utf-8"),
        key=key,
        cert=certificate,
        cas=None,
        encryption_algorithm=(
            serialization.BestAvailableEncryption(password.encode("utf-8"))
            if password
            else serialization.NoEncryption()
        ),
    )
