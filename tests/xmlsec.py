"""The independent verifier of our XML signatures: xmlsec1 (Debian package `xmlsec1`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

KEYINFO = "http://www.w3.org/2000/09/xmldsig#:KeyInfo"
SIGNED_PROPERTIES = "http://uri.etsi.org/01903/v1.3.2#:SignedProperties"


def xmlsec1_verify(xml: bytes, cert_pem: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`xmlsec1 --verify` of `xml` with only the key of `cert_pem` (never one taken from the
    document); skips the test when xmlsec1 is not installed."""
    binary = shutil.which("xmlsec1")
    if binary is None:
        pytest.skip("xmlsec1 not installed (apt-get install -y xmlsec1)")
    document, certificate = tmp_path / "signed.xml", tmp_path / "cert.pem"
    document.write_bytes(xml)
    certificate.write_bytes(cert_pem)
    return subprocess.run(
        [
            binary,
            "--verify",
            "--enabled-key-data",
            "rsa",
            "--enabled-reference-uris",
            "empty,same-doc",
            "--id-attr:Id",
            KEYINFO,
            "--id-attr:Id",
            SIGNED_PROPERTIES,
            "--pubkey-cert-pem",
            str(certificate),
            str(document),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
