"""Settings → DIAN and Factus gateways (the adapters take plain values, never settings)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from adapters.dian.client import DianSoapClient
from adapters.dian.document import DianDocumentFactory, DianSetup
from adapters.dian.gateway import DianGateway
from adapters.dian.signer import XadesSigner
from domain.delivery import Courier
from domain.documents import DocumentKind, SoftwareFamily
from domain.ports import Gateway, OrderKey
from worker.settings import Settings


@dataclass(frozen=True)
class DianParts:
    signer: XadesSigner
    clients: dict[SoftwareFamily, DianSoapClient]
    factory: DianDocumentFactory

    @property
    def setup(self) -> DianSetup:
        return self.factory.setup

    @property
    def client(self) -> DianSoapClient:
        """The invoice family's client."""
        return self.clients[SoftwareFamily.INVOICE]

    def distinct_clients(self) -> list[DianSoapClient]:
        """Each client once (families at the same endpoint share one), invoices first."""
        return list({id(c): c for c in self.clients.values()}.values())

    def close(self) -> None:
        for client in self.distinct_clients():
            client.close()


def load_signer(settings: Settings) -> XadesSigner:
    """The issuer's certificate, loaded once per process."""
    d = settings.dian
    if d.cert_path is None:
        raise ValueError("GATEWAY=dian needs DIAN__CERT_PATH (the issuer's PKCS#12 certificate)")
    return XadesSigner.from_pkcs12(d.cert_path.read_bytes(), d.cert_password.get_secret_value())


def dian_setup(settings: Settings) -> DianSetup:
    """The issuer, both software registrations, the maker, the settings' range per kind and
    the default register, as DIAN__*, DIAN__POS_*, NUMBERING__*, POS_NUMBERING__*,
    SOFTWARE__* and REGISTERS describe them."""
    from worker.bootstrap import (
        issuer_profile,
        numbering_range,
        register,
        secret_box,
        software_maker,
        software_registration,
    )

    return DianSetup(
        issuer=issuer_profile(settings),
        software={kind.family: software_registration(settings, kind) for kind in DocumentKind},
        maker=software_maker(settings),
        ranges={kind: numbering_range(settings, kind) for kind in DocumentKind},
        register=register(settings, None),
        secrets=secret_box(settings),
    )


def dian_parts(settings: Settings, signer: XadesSigner | None = None) -> DianParts:
    d = settings.dian
    signer = signer or load_signer(settings)
    by_endpoint: dict[str, DianSoapClient] = {}
    clients: dict[SoftwareFamily, DianSoapClient] = {}
    endpoints = {SoftwareFamily.INVOICE: d.endpoint, SoftwareFamily.POS: settings.pos_endpoint}
    for family, endpoint in endpoints.items():
        if endpoint not in by_endpoint:
            by_endpoint[endpoint] = DianSoapClient(
                endpoint,
                signer.private_key,
                signer.certificate,
                connect_timeout=d.connect_timeout,
                read_timeout=d.read_timeout,
            )
        clients[family] = by_endpoint[endpoint]
    factory = DianDocumentFactory(dian_setup(settings), signer)
    return DianParts(signer, clients, factory)


def build_dian_gateway(settings: Settings, signer: XadesSigner | None = None) -> Gateway:
    p = dian_parts(settings, signer)
    return DianGateway(p.clients, p.factory)


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
        credit_note_range_id=f.credit_note_range_id,
        debit_note_range_id=f.debit_note_range_id,
        rate_limit_per_minute=f.rate_limit_per_minute,
        rate_limit_window_seconds=f.rate_limit_window_seconds,
        send_email=f.send_email,
        connect_timeout=f.connect_timeout,
        read_timeout=f.read_timeout,
    )
    return build(config, settings.effective_redis_url)


def build_smtp_courier(
    settings: Settings,
    files: Callable[[OrderKey], Mapping[str, bytes]],
    signer: XadesSigner | None = None,
) -> Courier:
    """SMTP__* and the issuer's certificate (the AttachedDocument is signed like the
    document) → the courier of the buyer's copy."""
    from adapters.mail.parcel import ParcelMaker
    from adapters.mail.smtp import SmtpConfig, SmtpCourier
    from adapters.representation.pdf import render_pdf

    m = settings.smtp
    config = SmtpConfig(
        host=m.host,
        port=m.port,
        sender=m.from_address,
        username=m.username,
        password=m.password.get_secret_value(),
        security=m.security,
        timeout=m.timeout,
    )
    parcels = ParcelMaker(signer or load_signer(settings), render_pdf, settings.delivery.layout)
    return SmtpCourier(config, parcels, files)


def build_factus_courier(
    settings: Settings, references: Callable[[OrderKey], Mapping[str, str]]
) -> Courier:
    """Factus sends its own e-mail of a bill it validated (one request per delivery)."""
    from adapters.factus.email import FactusCourier
    from adapters.factus.gateway import FactusGateway

    gateway = build_factus_gateway(settings)
    assert isinstance(gateway, FactusGateway)
    return FactusCourier(gateway.client, references)
