"""Checking a signing certificate before it is stored for an issuer."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.dian.signer import CertificateInfo, SigningError, XadesSigner


class CertificateRefused(ValueError):
    """The certificate cannot sign for the issuer; the message says why."""


def check_certificate(
    data: bytes, password: str, nit: str, now: datetime | None = None
) -> CertificateInfo:
    """What the PKCS#12 holds, when it can sign for the issuer `nit` now; CertificateRefused
    otherwise: wrong password or not PKCS#12, no private key, not an RSA key, not yet or no
    longer valid, or a subject that names another NIT (or none)."""
    try:
        info = XadesSigner.from_pkcs12(data, password).certificate_info()
    except SigningError as exc:
        raise CertificateRefused(_reason(exc)) from None
    now = now or datetime.now(UTC)
    if info.not_valid_before > now:
        raise CertificateRefused(f"not valid before {info.not_valid_before:%Y-%m-%d %H:%M} UTC")
    if info.not_valid_after <= now:
        raise CertificateRefused(f"expired on {info.not_valid_after:%Y-%m-%d}")
    if info.nit is None:
        raise CertificateRefused(
            f"its subject names no NIT ({info.subject}); DIAN certificates carry the issuer's "
            "NIT in serialNumber, x500UniqueIdentifier or the common name"
        )
    if info.nit != nit:
        raise CertificateRefused(f"it was issued to NIT {info.nit}, not to {nit}")
    return info


def _reason(exc: SigningError) -> str:
    text = str(exc)
    if text.startswith("cannot open the PKCS#12"):
        return "cannot open it: not a PKCS#12 file, or the password is wrong"
    return text
