"""Every setting in one typed object, read from the environment (or a `.env` file).

Nested groups use `__`: `ISSUER__NIT=900123456`, `DIAN__CERT_PASSWORD=...`. Secrets are
`SecretStr` and are handed to adapters as plain values only in `worker.bootstrap`.
"""

from __future__ import annotations

import zlib
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.documents import DocumentMode

VAR_DIR = Path("var")


class IssuerSettings(BaseModel):
    nit: str = "900123456"
    dv: str = "8"
    legal_name: str = "Restaurante Demo S.A.S."
    trade_name: str = "Restaurante Demo"
    person_type: str = "1"
    tax_responsibilities: list[str] = Field(default_factory=lambda: ["R-99-PN"])
    tax_scheme: str = "01"
    municipality_code: str = "11001"
    city: str = "Bogotá, D.C."
    department: str = "Bogotá"
    department_code: str = "11"
    address_line: str = "Calle 93 # 11-27"
    postal_zone: str = "110221"
    email: str = "facturacion@example.co"
    phone: str = "6015550100"


class NumberingSettings(BaseModel):
    """The authorized numbering range (habilitación defaults)."""

    resolution: str = "18760000001"
    prefix: str = "SETP"
    first: int = 990000000
    last: int = 995000000
    valid_from: date = date(2019, 1, 19)
    valid_to: date = date(2030, 1, 19)
    technical_key: SecretStr = SecretStr("fc8eac422eba16e22ffd8c6f94b3f40a6e38162c")


class PosNumberingSettings(NumberingSettings):
    """The range of the POS equivalent document (habilitación defaults; no technical key)."""

    prefix: str = "EPOS"
    first: int = 1
    last: int = 1000000
    technical_key: SecretStr = SecretStr("")


class NoteNumberingSettings(BaseModel):
    """The issuer's own numbering of notes: DIAN authorizes no range for them, only a prefix
    and consecutive numbers per kind (gap-free, like every range here)."""

    credit_prefix: str = "NC"  # 91, credit notes to invoices
    debit_prefix: str = "ND"  # 92, debit notes to invoices
    pos_credit_prefix: str = "NCP"  # 94, adjustment credit notes to POS documents
    pos_debit_prefix: str = "NDP"  # 93, adjustment debit notes to POS documents
    first: int = 1
    last: int = 99999999
    valid_from: date = date(2019, 1, 1)
    valid_to: date = date(2099, 12, 31)


DIAN_ENDPOINTS = {
    "1": "https://vpfe.dian.gov.co/WcfDianCustomerServices.svc",
    "2": "https://vpfe-hab.dian.gov.co/WcfDianCustomerServices.svc",
}


class DianSettings(BaseModel):
    endpoint: str = DIAN_ENDPOINTS["2"]
    environment: Literal["1", "2"] = "2"
    software_id: str = "56f2ae4e-9812-4fad-9255-08fcfcd5ccb0"
    software_pin: SecretStr = SecretStr("12345")
    provider_nit: str | None = None  # own NIT when empty
    test_set_id: str | None = None
    # The software registered for equivalent documents (the POS family): its own id, PIN,
    # environment and test set, separate from the invoice software's.
    pos_software_id: str = "7d5c3a41-2b6e-4f0a-9c1d-5e8f2a7b4c90"
    pos_software_pin: SecretStr = SecretStr("54321")
    pos_environment: Literal["1", "2"] = "2"
    pos_test_set_id: str | None = None
    pos_endpoint: str | None = None  # the endpoint of pos_environment when empty
    cert_path: Path | None = None
    cert_password: SecretStr = SecretStr("")
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


class FactusSettings(BaseModel):
    base_url: str = "https://api-sandbox.factus.com.co"
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    username: str = ""
    password: SecretStr = SecretStr("")
    numbering_range_id: int | None = None
    # The note ranges at Factus (document 22, 23); unset: Factus uses the one active range.
    credit_note_range_id: int | None = None
    debit_note_range_id: int | None = None
    rate_limit_per_minute: int = 80
    rate_limit_window_seconds: float = 60.0  # Factus counts per minute; tests shorten it
    send_email: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


class SimulatedSettings(BaseModel):
    """The simulated gateway: an in-process stand-in for the authority."""

    state_path: Path = VAR_DIR / "simulated-authority.sqlite"
    latency: float = 0.0
    unavailable_rate: float = 0.0
    drop_rate: float = 0.0
    pending_checks: int = 0
    fail_first: int = 0  # the first N calls raise an error no gateway maps (tests, drills)


class DocumentSettings(BaseModel):
    """Which sale document an order becomes (see `domain.documents.Planner`)."""

    mode: DocumentMode = "invoice"
    default: Literal["pos", "factura"] = "factura"  # for mode `payload` without `documento`
    # Factus has no POS equivalent document: issue such orders as invoices (True) or refuse
    # to start with a configuration that would produce them (False).
    factus_pos_as_invoice: bool = True


class RegisterSettings(BaseModel):
    """One till, as the POS document's `InformacionCajaVenta` describes it."""

    plate: str = "CAJA-1"  # PlacaCaja
    location: str = "Caja principal"  # UbicaciónCaja
    kind: str = "POS"  # TipoCaja
    cashier: str = "Cajero"  # Cajero when the payload names none
    mode: DocumentMode | None = None  # this till's own DOCUMENTS__MODE


class SoftwareSettings(BaseModel):
    """The software maker, as the POS document and the printed copy name it."""

    maker_name: str = "Equipo einvoice-worker"  # NombreApellido
    maker_legal_name: str = "Restaurante Demo S.A.S."  # RazonSocial
    maker_nit: str = "900123456"
    name: str = "einvoice-worker"  # NombreSoftware


class WorkerSettings(BaseModel):
    pool: Literal["prefork", "threads", "solo"] = "prefork"
    concurrency: int = 2
    soft_time_limit: int = 90
    hard_time_limit: int = 120
    visibility_timeout: int = 1800
    lease_seconds: int = 150
    retry_backoff_base: float = 2.0
    retry_backoff_max: float = 300.0
    celery_retry_max_countdown: float = 60.0
    max_attempts: int = 25
    max_claims: int = 100
    outcome_unknown_delay: float = 120.0
    # Task events from the start (what Flower shows). Off, a worker sends them only once asked
    # (`enable_events`, which Flower sends every few seconds while it runs): unwatched, they
    # cost a broker round trip each, three per order.
    task_events: bool = False
    # Task events asked for by a watcher (Flower) stop this long after the last request.
    events_watch_timeout: float = 60.0
    give_up_after: int = 48 * 3600
    pending_poll_interval: float = 10.0
    reconcile_interval: float = 15.0
    republish_after: float = 120.0
    reconcile_batch: int = 500
    # RabbitMQ quorum queues: deliveries of one message before the broker drops it (a message
    # that keeps killing its worker); the order stays due in the database and is published again
    delivery_limit: int = 20
    # Queues issuers' orders are spread over: the settings' issuer uses QUEUE itself, every
    # other issuer one of QUEUE.lane1..N-1 (by its NIT). A worker takes from every lane in
    # turn, so one issuer's backlog does not hold back the others' (1: one queue for all).
    issuer_lanes: int = Field(default=8, ge=1, le=64)


class SmtpSettings(BaseModel):
    """The mail server the buyer's copy is sent through (SMTP__HOST, SMTP__FROM, ...).

    `security`: `starttls` (port 587), `tls` (implicit TLS, port 465) or `none` (a local
    relay only)."""

    model_config = ConfigDict(populate_by_name=True)

    host: str = "localhost"
    port: int = 587
    username: str = ""
    password: SecretStr = SecretStr("")
    security: Literal["starttls", "tls", "none"] = "starttls"
    from_address: str = Field(default="facturacion@example.co", alias="from")
    timeout: float = 30.0


class DeliverySettings(BaseModel):
    """The buyer's copy: delivered on its own queue (`QUEUE` + `.delivery` unless named)."""

    enabled: bool = True
    queue: str | None = None
    layout: Literal["ticket", "a4"] = "a4"  # the PDF in the e-mailed ZIP
    lease_seconds: float = 120.0
    backoff_base: float = 5.0
    backoff_max: float = 1800.0


class MetricsSettings(BaseModel):
    """Where `einvoice metrics` listens: loopback unless told otherwise (a container sets
    METRICS__ADDRESS=0.0.0.0 so its published port reaches it)."""

    address: str = "127.0.0.1"
    port: int = 9808


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_nested_delimiter="__", env_file=".env", extra="ignore", case_sensitive=False
    )

    database_url: str = f"sqlite:///{VAR_DIR}/einvoice.sqlite"
    broker_url: str = f"sqla+sqlite:///{VAR_DIR}/broker.sqlite"
    # Factus token cache and rate limit, beat lock on a Redis broker; defaults to a redis broker
    redis_url: str | None = None
    gateway: Literal["simulated", "dian", "factus"] = "simulated"
    queue: str = "einvoice"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "text"
    # Fernet keys sealing issuers' secrets, the current one first (see adapters.secretbox).
    secrets_key: SecretStr = SecretStr("")
    # how long a process trusts what it read of a stored issuer (enabled, gateway, software)
    issuer_refresh_seconds: float = 30.0

    issuer: IssuerSettings = Field(default_factory=IssuerSettings)
    numbering: NumberingSettings = Field(default_factory=NumberingSettings)
    pos_numbering: PosNumberingSettings = Field(default_factory=PosNumberingSettings)
    note_numbering: NoteNumberingSettings = Field(default_factory=NoteNumberingSettings)
    documents: DocumentSettings = Field(default_factory=DocumentSettings)
    software: SoftwareSettings = Field(default_factory=SoftwareSettings)
    default_register: str = "1"
    registers: dict[str, RegisterSettings] = Field(
        default_factory=lambda: {"1": RegisterSettings()}
    )
    dian: DianSettings = Field(default_factory=DianSettings)
    factus: FactusSettings = Field(default_factory=FactusSettings)
    simulated: SimulatedSettings = Field(default_factory=SimulatedSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @model_validator(mode="after")
    def _nested_timeouts(self) -> Settings:
        w = self.worker
        gateway_timeout = self.gateway_timeout
        if not gateway_timeout < w.soft_time_limit < w.hard_time_limit < w.lease_seconds:
            raise ValueError(
                "timeouts must nest: gateway connect+read < worker.soft_time_limit < "
                "worker.hard_time_limit < worker.lease_seconds"
            )
        if 2 * gateway_timeout + 1 >= w.lease_seconds:
            raise ValueError(
                "worker.lease_seconds must leave room for a submission of two gateway calls "
                "(2 × (connect + read) + 1 s)"
            )
        if w.lease_seconds + w.celery_retry_max_countdown >= w.visibility_timeout:
            raise ValueError(
                "worker.visibility_timeout must exceed the lease plus any retry countdown"
            )
        return self

    @model_validator(mode="after")
    def _documents(self) -> Settings:
        if self.default_register not in self.registers:
            raise ValueError(
                f"default_register {self.default_register!r} is not one of REGISTERS "
                f"({', '.join(sorted(self.registers)) or 'none'})"
            )
        d = self.documents
        modes = {d.mode, *(r.mode for r in self.registers.values() if r.mode)}
        if self.gateway == "factus" and not d.factus_pos_as_invoice and modes - {"invoice"}:
            raise ValueError(
                "GATEWAY=factus cannot issue POS equivalent documents (Factus has none): set "
                "DOCUMENTS__MODE=invoice (and no register mode other than invoice), or "
                "DOCUMENTS__FACTUS_POS_AS_INVOICE=true to issue them as invoices"
            )
        return self

    @model_validator(mode="after")
    def _shared_state(self) -> Settings:
        # Factus' token and its per-minute limit are per account: every worker process must
        # share them, which they do through Redis (REDIS_URL, or a Redis broker)
        rabbitmq = self.broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))
        if self.gateway == "factus" and rabbitmq and self.effective_redis_url is None:
            raise ValueError(
                "GATEWAY=factus with a RabbitMQ BROKER_URL needs REDIS_URL: the Factus "
                "token and rate limit are shared by every worker process through Redis"
            )
        return self

    def implicit_gateway_problem(self) -> str | None:
        """Why this deployment must name its gateway before a worker starts, or None.

        The simulated gateway is the default so that the demo and a first try need no settings.
        A deployment whose store is PostgreSQL and whose broker is a network broker (Redis,
        RabbitMQ: anything but the embedded SQLite transport) looks like production, where
        issuing against the simulator because GATEWAY was left out would go unnoticed; there
        the choice must be explicit (GATEWAY=simulated included, for a test deployment)."""
        if "gateway" in self.model_fields_set:
            return None
        if not self.database_url.startswith("postgresql"):
            return None
        if self.broker_url.startswith("sqla+"):
            return None
        return (
            "GATEWAY is not set, and PostgreSQL with a network broker looks like production: "
            "set GATEWAY=dian or GATEWAY=factus (GATEWAY=simulated for a test deployment)"
        )

    @property
    def gateway_timeout(self) -> float:
        """The longest one gateway call may take (connect + read)."""
        return {
            "dian": self.dian.connect_timeout + self.dian.read_timeout,
            "factus": self.factus.connect_timeout + self.factus.read_timeout,
            "simulated": self.simulated.latency,
        }[self.gateway]

    @property
    def pos_endpoint(self) -> str:
        d = self.dian
        if d.pos_endpoint:
            return d.pos_endpoint
        return (
            d.endpoint if d.pos_environment == d.environment else DIAN_ENDPOINTS[d.pos_environment]
        )

    @property
    def queues(self) -> list[str]:
        """Every queue the worker consumes: QUEUE, then its issuer lanes."""
        return [self.queue] + [f"{self.queue}.lane{n}" for n in range(1, self.worker.issuer_lanes)]

    def queue_for(self, issuer: str) -> str:
        """The queue of `issuer`'s wake-ups (see `WorkerSettings.issuer_lanes`)."""
        lanes = self.worker.issuer_lanes
        if issuer == self.issuer.nit or lanes == 1:
            return self.queue
        return f"{self.queue}.lane{1 + zlib.crc32(issuer.encode('ascii')) % (lanes - 1)}"

    @property
    def effective_redis_url(self) -> str | None:
        if self.redis_url:
            return self.redis_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None

    @property
    def delivery_queue(self) -> str:
        return self.delivery.queue or f"{self.queue}.delivery"

    @property
    def copy_channel(self) -> Literal["smtp", "factus"] | None:
        """How an accepted document's copy reaches a buyer with an e-mail: our own SMTP
        message (DIAN), Factus' own e-mail (Factus); none for the simulated gateway (it
        keeps no signed document) or when deliveries are switched off."""
        if not self.delivery.enabled:
            return None
        if self.gateway == "factus" and self.factus.send_email:
            return None  # Factus e-mails the buyer when it validates the bill
        return {"dian": "smtp", "factus": "factus"}.get(self.gateway)  # type: ignore[return-value]

    @property
    def needs_numbering(self) -> bool:
        """Own numbering is allocated here for DIAN; Factus numbers its bills itself."""
        return self.gateway in ("dian", "simulated")
