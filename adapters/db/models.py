"""Tables: orders and their documents (the state machine), numbering ranges, the append-only
audit trail, and refused input.

The audit table keeps the seed's shape (`id`, `status`, `payload_in`, `response_out`,
`created_at`) plus `order_key`, the key of the document a row belongs to. The database refuses
UPDATE, DELETE and TRUNCATE on it and on `intake_refusals` (triggers created by the migrations).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDoc = JSON().with_variant(JSONB(), "postgresql")

DOCUMENT_STATES = ("PENDIENTE", "PROCESANDO", "EN_ESPERA", "SUCCESS", "FAILED")
DOCUMENT_KINDS = ("01", "20", "91", "92", "93", "94")
REFUSAL_STATUSES = ("RECHAZADO_ENTRADA", "CONFLICTO")
AUDIT_STATUSES = (
    "RECIBIDO",
    "PROCESANDO",
    "EN_ESPERA",
    "REINTENTO",
    "SUCCESS",
    "FAILED",
    "CONFLICTO",
    # the buyer's copy (domain.delivery.DeliveryAudit)
    "ENTREGA",
    "ENTREGADO",
    "ENTREGA_REINTENTO",
    "ENTREGA_RECHAZADA",
    "TARDIO",
)
DELIVERY_STATES = ("PENDIENTE", "ENVIANDO", "ENTREGADO", "RECHAZADO")
DELIVERY_CHANNELS = ("smtp", "factus")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class OrderRow(Base):
    """One POS order as it was accepted: the group its documents belong to."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("issuer", "order_id", name="uq_orders_issuer_order_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    issuer: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    fingerprint: Mapped[str] = mapped_column(String(64))
    register: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NumberingRangeRow(Base):
    """An authorized numbering range and its counter: numbers are allocated by bumping
    `next_number` in the transaction that accepts an order, so they are gap-free.

    `register` NULL serves every till of the issuer without an active range of its own.
    `origin` is `settings` for the range the environment describes (kept in step with it) and
    `cli` for ranges an operator added. `technical_key` is a secret (never logged or shown).
    """

    __tablename__ = "numbering_ranges"
    __table_args__ = (
        UniqueConstraint(
            "issuer", "kind", "prefix", "resolution", "first", name="uq_numbering_ranges_authorized"
        ),
        CheckConstraint('"first" <= "last"', name="bounds"),
        CheckConstraint('next_number BETWEEN "first" AND "last" + 1', name="next_number"),
        CheckConstraint("origin IN ('settings', 'cli')", name="origin"),
        Index("ix_numbering_ranges_issuer_kind", "issuer", "kind"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    issuer: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(2))
    register: Mapped[str | None] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(10), server_default=text("''"))
    resolution: Mapped[str] = mapped_column(String(40))
    first: Mapped[int] = mapped_column(BigInteger)
    last: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    technical_key: Mapped[str | None] = mapped_column(Text)
    next_number: Mapped[int] = mapped_column(BigInteger)
    origin: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DocumentRow(Base):
    """One document and where it stands (the state machine the pipeline drives).

    `issuer` and `order_id` repeat the order's key: the sale document is found by it.
    `due_at` is when the reconciler should look at it next (the retry time, the next status
    poll, or the end of a claim's lease). `number` is the full document id as written in the
    XML (prefix and the range's digits).
    """

    __tablename__ = "documents"
    __table_args__ = (
        Index(
            "uq_documents_sale",
            "issuer",
            "order_id",
            unique=True,
            postgresql_where=text("note_id IS NULL"),
            sqlite_where=text("note_id IS NULL"),
        ),
        Index(
            "uq_documents_note",
            "issuer",
            "note_id",
            unique=True,
            postgresql_where=text("note_id IS NOT NULL"),
            sqlite_where=text("note_id IS NOT NULL"),
        ),
        Index("ix_documents_corrects_id", "corrects_id"),
        UniqueConstraint("issuer", "kind", "number", name="uq_documents_number"),
        UniqueConstraint("range_id", "consecutive", name="uq_documents_range_consecutive"),
        CheckConstraint(_in("state", DOCUMENT_STATES), name="state"),
        CheckConstraint(_in("kind", DOCUMENT_KINDS), name="kind"),
        Index(
            "ix_documents_due_at_open",
            "due_at",
            postgresql_where=text("due_at IS NOT NULL"),
            sqlite_where=text("due_at IS NOT NULL"),
        ),
        Index("ix_documents_state_updated_at", "state", "updated_at"),
        Index("ix_documents_order_ref", "order_ref"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    order_ref: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("orders.id")
    )
    issuer: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(2))
    gateway: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(12))
    register: Mapped[str | None] = mapped_column(String(20))
    range_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("numbering_ranges.id")
    )
    prefix: Mapped[str | None] = mapped_column(String(10))
    consecutive: Mapped[int | None] = mapped_column(BigInteger)
    number: Mapped[str | None] = mapped_column(String(40))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    maybe_sent: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    claim_token: Mapped[str | None] = mapped_column(String(36))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cufe: Mapped[str | None] = mapped_column(String(96))
    track_id: Mapped[str | None] = mapped_column(String(100))
    refs: Mapped[dict[str, Any]] = mapped_column(JsonDoc, server_default=text("'{}'"))
    reason: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reopened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A note: the client's id for it, the document it corrects, what it asked and carries.
    note_id: Mapped[str | None] = mapped_column(String(64))
    corrects_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("documents.id")
    )
    note: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)


class CreditableLineRow(Base):
    """What remains creditable of one line of a sale document (line 0: its tip), kept by the
    database: every note takes from it or adds to it in the transaction that accepts or ends
    the note, and the checks refuse a credit beyond what remains, whatever runs at once."""

    __tablename__ = "creditable_lines"
    __table_args__ = (
        CheckConstraint("quantity >= 0 AND base >= 0 AND tax >= 0", name="not_overcredited"),
    )

    document_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("documents.id"),
        primary_key=True,
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(24, 6))
    base: Mapped[Decimal] = mapped_column(Numeric(19, 2))
    tax: Mapped[Decimal] = mapped_column(Numeric(19, 2))


class InvoiceLogRow(Base):
    """The legal audit trail (seed: `invoice_log`). Append-only."""

    __tablename__ = "invoice_log"
    __table_args__ = (
        CheckConstraint(_in("status", AUDIT_STATUSES), name="status"),
        Index("ix_invoice_log_order_key_id", "order_key", "id"),
        Index("ix_invoice_log_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    order_key: Mapped[str | None] = mapped_column(String(160))
    payload_in: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    response_out: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # SHA-256 chained to the previous row of the document, written by the database's insert
    # trigger (PostgreSQL only; see migration 0008)
    chain_hash: Mapped[str | None] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    """A link of the global chain over every audit row's hash, up to `upto_id`. Append-only;
    written only by the database function `audit_checkpoint()`."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upto_id: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IntakeRefusalRow(Base):
    """Input the intake refused (append-only, like the audit trail, and apart from it): an
    invalid payload (RECHAZADO_ENTRADA) or a different payload under an accepted key
    (CONFLICTO). `order_key` is the key the input claimed, when it could have been a valid one.
    `legacy_log_id` points at the `invoice_log` row a refusal was written to before refusals
    had a table of their own (those rows stay where they are, off every timeline).
    """

    __tablename__ = "intake_refusals"
    __table_args__ = (
        CheckConstraint(_in("status", REFUSAL_STATUSES), name="status"),
        Index("ix_intake_refusals_order_key_id", "order_key", "id"),
        Index("ix_intake_refusals_created_at", "created_at"),
        Index("ix_intake_refusals_legacy_log_id", "legacy_log_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    order_key: Mapped[str | None] = mapped_column(String(160))
    payload_in: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    response_out: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    legacy_log_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DocumentFileRow(Base):
    """A file the authority's answer gave a document, kept as received: the signed document
    as sent (`document`) and DIAN's ApplicationResponse (`application_response`)."""

    __tablename__ = "document_files"

    document_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("documents.id"),
        primary_key=True,
    )
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DeliveryRow(Base):
    """The buyer's copy of one document on its way (`domain.delivery`): one row per document,
    written with its SUCCESS. `recipient` is the only place the buyer's address is kept; it
    never reaches the audit trail or the logs. `round` counts operator resends."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(_in("state", DELIVERY_STATES), name="state"),
        CheckConstraint(_in("channel", DELIVERY_CHANNELS), name="channel"),
        Index(
            "ix_deliveries_due_at_open",
            "due_at",
            postgresql_where=text("due_at IS NOT NULL"),
            sqlite_where=text("due_at IS NOT NULL"),
        ),
    )

    document_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("documents.id"),
        primary_key=True,
    )
    order_key: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(12))
    recipient: Mapped[str | None] = mapped_column(String(320))
    round: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    claim_token: Mapped[str | None] = mapped_column(String(36))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
