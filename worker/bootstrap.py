"""The composition root: settings in, engines, gateway, store and use cases out.

Built lazily once per process (after a prefork worker forks), never at import time.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from adapters.db.deliveries import SqlDeliveryStore
from adapters.db.engine import make_engine
from adapters.db.ranges import SqlNumberingRanges
from adapters.db.store import SqlDocumentStore, utc_now
from adapters.secretbox import SecretBox
from domain.delivery import Channel, Courier
from domain.dian_codes import nit_check_digit
from domain.documents import DocumentKind, Planner, Register, SoftwareMaker
from domain.issuer import Address, IssuerProfile, NumberingRange, SoftwareRegistration
from domain.order import Order
from domain.ports import Gateway, OrderKey, Publisher
from domain.usecases.deliver import DeliverCopy, DeliveryPolicy
from domain.usecases.notes import NoteOffer
from domain.usecases.process import ProcessOrder, RetryPolicy
from worker.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

    from adapters.dian.signer import XadesSigner
    from worker.issuers import IssuerDirectory


@dataclass
class Container:
    settings: Settings
    publisher: Publisher | None = None
    delivery_publisher: Publisher | None = None

    @cached_property
    def engine(self) -> Engine:
        # Transactions are short and never span a gateway call, so a few connections serve
        # many threads; a pool per thread would exhaust PostgreSQL's max_connections.
        return make_engine(
            self.settings.database_url, pool_size=min(10, max(2, self.settings.worker.concurrency))
        )

    @cached_property
    def store(self) -> SqlDocumentStore:
        return SqlDocumentStore(self.engine, utc_now)

    @cached_property
    def issuers(self) -> IssuerDirectory:
        from worker.issuers import IssuerDirectory

        return IssuerDirectory(self.settings, self.engine)

    @cached_property
    def gateway(self) -> Gateway:
        """Each document goes through its own issuer's gateway (the settings' issuer's
        unless another is stored, see worker.issuers)."""
        from worker.issuers import IssuerGateway

        nit = self.settings.issuer.nit
        if self.issuers.setup(nit).refusal is None:
            # the settings' issuer's gateway is built now, so a worker that cannot build it
            # (no certificate, say) fails before it claims anything, as it always has
            self.issuers.gateway(nit)
        return IssuerGateway(self.issuers)

    @cached_property
    def policy(self) -> RetryPolicy:
        w = self.settings.worker
        return RetryPolicy(
            backoff_base=w.retry_backoff_base,
            backoff_max=w.retry_backoff_max,
            max_attempts=w.max_attempts,
            give_up_after=w.give_up_after,
            pending_poll_interval=w.pending_poll_interval,
            lease_seconds=w.lease_seconds,
            max_claims=w.max_claims,
            outcome_unknown_delay=w.outcome_unknown_delay,
            # a submission may take two calls (DIAN rule 90 check; Factus 409 then resend)
            submit_budget=2 * self.settings.gateway_timeout + 1.0,
            quick_retry_limit=w.celery_retry_max_countdown,
        )

    @cached_property
    def process_order(self) -> ProcessOrder:
        return ProcessOrder(
            self.store,
            self.gateway,
            self.policy,
            utc_now,
            registers(self.settings),
            self.copy_channel,
        )

    def copy_channel(self, key: OrderKey) -> Channel | None:
        """How the copy of `key`'s document reaches its buyer: its issuer's gateway decides."""
        channel = self.issuers.settings(key.issuer).copy_channel
        return Channel(channel) if channel else None

    @cached_property
    def deliveries(self) -> SqlDeliveryStore:
        return SqlDeliveryStore(self.engine, utc_now)

    @cached_property
    def deliver_copy(self) -> DeliverCopy:
        d = self.settings.delivery
        policy = DeliveryPolicy(d.lease_seconds, d.backoff_base, d.backoff_max)
        from worker.issuers import IssuerCourier

        def courier(settings: Settings, signer: XadesSigner | None) -> Courier:
            return build_courier(settings, self.deliveries, self.store, signer)

        return DeliverCopy(self.deliveries, IssuerCourier(self.issuers, courier), policy, utc_now)

    @cached_property
    def planner(self) -> Planner:
        """What accepted orders become; the ranges the settings describe are stored first."""
        sync_configured_ranges(self.settings, self.engine)
        return planner(self.settings)

    def planner_for(self, nit: str) -> Planner:
        """What accepted orders of issuer `nit` become (its gateway decides numbering)."""
        return self.issuers.planner(nit, self.planner)

    def dispose(self) -> None:
        if "issuers" in self.__dict__:
            self.issuers.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


def planner(settings: Settings) -> Planner:
    d = settings.documents
    return Planner(
        registers={code: r.mode or d.mode for code, r in settings.registers.items()},
        default_register=settings.default_register,
        numbered=settings.needs_numbering,
        default=d.default,
        pos_as_invoice=settings.gateway == "factus" and d.factus_pos_as_invoice,
        gateway_check=_factus_check() if settings.gateway == "factus" else None,
    )


def _factus_check() -> Callable[[Order], None]:
    from adapters.factus.mapping import check_order

    return check_order


def sync_configured_ranges(settings: Settings, engine: Engine) -> list[NumberingRange]:
    """Store the ranges the settings describe, one per kind (when numbering is ours), their
    technical keys sealed when SECRETS_KEY is set."""
    if not settings.needs_numbering:
        return []
    stored = SqlNumberingRanges(engine, secret_box(settings))
    return [
        stored.sync_configured(settings.issuer.nit, numbering_range(settings, kind))
        for kind in DocumentKind
    ]


def secret_box(settings: Settings) -> SecretBox | None:
    """The master key SECRETS_KEY (None: not set); SecretsKeyError when it is malformed."""
    key = settings.secrets_key.get_secret_value()
    return SecretBox.from_setting(key) if key.strip() else None


def offered_notes(settings: Settings) -> NoteOffer | None:
    """The note kinds the gateway issues (None: all). Factus: credit and debit notes to
    invoices (its v2 API documents both); it has no POS document, so no notes 93/94."""
    if settings.gateway != "factus":
        return None
    from adapters.factus.notes import NOT_OFFERED_RULE, OFFERED

    return NoteOffer(OFFERED, NOT_OFFERED_RULE)


def registers(settings: Settings) -> dict[str, Register]:
    """Every till the settings describe, with its default cashier."""
    found = (register(settings, code) for code in settings.registers)
    return {r.code: r for r in found if r is not None}


def issuer_profile(settings: Settings) -> IssuerProfile:
    i = settings.issuer
    return IssuerProfile(
        nit=i.nit,
        dv=i.dv,
        legal_name=i.legal_name,
        trade_name=i.trade_name,
        person_type=i.person_type,
        tax_responsibilities=tuple(i.tax_responsibilities),
        tax_scheme=i.tax_scheme,
        address=Address(
            municipality_code=i.municipality_code,
            city=i.city,
            department=i.department,
            department_code=i.department_code,
            line=i.address_line,
            postal_zone=i.postal_zone,
        ),
        email=i.email,
        phone=i.phone,
    )


def numbering_range(
    settings: Settings, kind: DocumentKind = DocumentKind.INVOICE
) -> NumberingRange:
    """The range the settings give for `kind`: NUMBERING__* (invoices), POS_NUMBERING__*,
    NOTE_NUMBERING__* (notes)."""
    if kind.is_note:
        notes = settings.note_numbering
        prefix = {
            DocumentKind.CREDIT_NOTE: notes.credit_prefix,
            DocumentKind.DEBIT_NOTE: notes.debit_prefix,
            DocumentKind.POS_CREDIT_NOTE: notes.pos_credit_prefix,
            DocumentKind.POS_DEBIT_NOTE: notes.pos_debit_prefix,
        }[kind]
        return NumberingRange(
            "", prefix, notes.first, notes.last, notes.valid_from, notes.valid_to, kind=kind
        )
    n = settings.pos_numbering if kind is DocumentKind.POS else settings.numbering
    return NumberingRange(
        resolution=n.resolution,
        prefix=n.prefix,
        first=n.first,
        last=n.last,
        valid_from=n.valid_from,
        valid_to=n.valid_to,
        technical_key=n.technical_key.get_secret_value(),
        kind=kind,
    )


def software_registration(
    settings: Settings, kind: DocumentKind = DocumentKind.INVOICE
) -> SoftwareRegistration:
    """The DIAN software registration of `kind`'s family (DIAN__* or DIAN__POS_*)."""
    d = settings.dian
    provider = d.provider_nit or settings.issuer.nit
    if kind.family is DocumentKind.POS.family:
        return SoftwareRegistration(
            software_id=d.pos_software_id,
            pin=d.pos_software_pin.get_secret_value(),
            provider_nit=provider,
            provider_dv=nit_check_digit(provider),
            environment=d.pos_environment,
            test_set_id=d.pos_test_set_id or None,
        )
    return SoftwareRegistration(
        software_id=d.software_id,
        pin=d.software_pin.get_secret_value(),
        provider_nit=provider,
        provider_dv=nit_check_digit(provider),
        environment=d.environment,
        test_set_id=d.test_set_id or None,
    )


def software_maker(settings: Settings) -> SoftwareMaker:
    s = settings.software
    return SoftwareMaker(s.maker_name, s.maker_legal_name, s.maker_nit, s.name)


def register(settings: Settings, code: str | None, cashier: str | None = None) -> Register | None:
    """The till `code` (the default till when None) as settings describe it; None if unknown."""
    chosen = code or settings.default_register
    found = settings.registers.get(chosen)
    if found is None:
        return None
    return Register(chosen, found.plate, found.location, found.kind, cashier or found.cashier)


def build_gateway(settings: Settings, signer: XadesSigner | None = None) -> Gateway:
    """The gateway the settings describe; `signer` replaces DIAN__CERT_PATH (a stored
    issuer's certificate)."""
    if settings.gateway == "simulated":
        from adapters.gateways.simulated import SimulatedConfig, SimulatedGateway

        s = settings.simulated
        return SimulatedGateway(
            SimulatedConfig(
                s.state_path,
                s.latency,
                s.unavailable_rate,
                s.drop_rate,
                s.pending_checks,
                s.fail_first,
            )
        )
    if settings.gateway == "dian":
        from worker.wiring import build_dian_gateway

        return build_dian_gateway(settings, signer)
    from worker.wiring import build_factus_gateway

    return build_factus_gateway(settings)


def preload(settings: Settings) -> None:
    """Import, in a worker's main process, the modules its gateways are built from.

    Modules only, nothing built: a prefork pool's children (replaced every
    `worker_max_tasks_per_child` tasks) then inherit them instead of importing them again,
    which cost each child ~0.2 s of CPU for DIAN (zeep, the signer, the UBL writer).
    """
    modules = ["worker.issuers"]  # every gateway is reached through the issuer directory
    if settings.gateway == "dian":
        modules.append("worker.wiring")  # the DIAN adapters
    for name in modules:
        importlib.import_module(name)


def build_courier(
    settings: Settings,
    deliveries: SqlDeliveryStore,
    store: SqlDocumentStore,
    signer: XadesSigner | None = None,
) -> Courier:
    """SMTP with our own AttachedDocument (GATEWAY=dian), or Factus' own e-mail."""
    if settings.copy_channel == "factus":
        from worker.wiring import build_factus_courier

        def references(key: OrderKey) -> dict[str, str]:
            record = store.get(key)
            return dict(record.references) if record is not None else {}

        return build_factus_courier(settings, references)
    from worker.wiring import build_smtp_courier

    return build_smtp_courier(settings, deliveries.files, signer)


_containers: dict[int, Container] = {}
_containers_lock = threading.Lock()


def container(settings: Settings | None = None, app: Celery | None = None) -> Container:
    """This process's container (rebuilt after a fork)."""
    pid = os.getpid()
    with _containers_lock:
        current = _containers.get(pid)
        if current is None:
            current = Container(settings or Settings())
            if app is not None:
                from worker.publisher import CeleryPublisher, DeliveryPublisher

                s = current.settings
                current.publisher = CeleryPublisher(app, s.queue, s.queue_for)
                current.delivery_publisher = DeliveryPublisher(app, s.delivery_queue)
            _containers.clear()
            _containers[pid] = current
        return current


def reset() -> None:
    with _containers_lock:
        for c in _containers.values():
            c.dispose()
        _containers.clear()
