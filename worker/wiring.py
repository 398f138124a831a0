"""Settings → DIAN and Factus gateways (the adapters take plain values, never settings)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.dian.client import DianSoapClient
from adapters.dian.document import DianDocumentFactory
from adapters.dian.gateway import DianGateway
from adapters.dian.signer import XadesSigner
from domain.issuer import IssuerProfile, NumberingRange, SoftwareRegistration
from domain.ports import Gateway
from worker.settings import Settings


@dataclass(frozen=True)
class DianParts:
    signer: XadesSigner
    client: DianSoapClient
    factory: DianDocumentFactory
    issuer: IssuerProfile
    software: SoftwareRegistration
    numbering: NumberingRange


def load_signer(settings: Settings) -> XadesSigner:
    """The issuer's certificate, loaded once per process."""
    d = settings.dian
    if d.cert_path is None:
        raise ValueError("GATEWAY=dian needs DIAN__CERT_PATH (the issuer's PKCS#12 certificate)")
    return XadesSigner.from_pkcs12(d.cert_path.read_bytes(), d.cert_password.get_secret_value())


def dian_parts(settings: Settings, signer: XadesSigner | None = None) -> DianParts:
    from worker.bootstrap import issuer_profile, numbering_range, software_registration

    d = settings.dian
    signer = signer or load_signer(settings)
    client = DianSoapClient(
        d.endpoint,
        signer.private_key,
        signer.certificate,
        connect_timeout=d.connect_timeout,
        read_timeout=d.read_timeout,
    )
    issuer = issuer_profile(settings)
    software = software_registration(settings)
    numbering = numbering_range(settings)
    factory = DianDocumentFactory(issuer, software, numbering, signer)
    return DianParts(signer, client, factory, issuer, software, numbering)


def build_dian_gateway(settings: Settings) -> Gateway:
    p = dian_parts(settings)
    return DianGateway(p.client, p.factory, p.issuer, p.software, p.numbering)


def build_factus_gateway(settings: Settings) -> Gateway:
    from adapters.factus.config import FactusConfig
    from adapters.factus.config import build_factus_gateway as build

    f = settings.factus
    if f.numbering_range_id is None:
        raise ValueError("GATEWAY=factus needs FACTUS__NUMBERING_RANGE_ID")
    config = FactusConfig(
        base_url=f.base_url,
        client_id=f.client_id,
        client_secret=f.client_secret.get_secret_value(),
        username=f.username,
        password=f.password.get_secret_value(),
        numbering_range_id=f.numbering_range_id,
        rate_limit_per_minute=f.rate_limit_per_minute,
        rate_limit_window_seconds=f.rate_limit_window_seconds,
        send_email=f.send_email,
        connect_timeout=f.connect_timeout,
        read_timeout=f.read_timeout,
    )
    return build(config, settings.effective_redis_url)
