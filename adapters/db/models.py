"""Tables: the order state machine, the append-only audit trail, numbering counters.

The audit table keeps the seed's shape (`id`, `status`, `payload_in`, `response_out`,
`created_at`) plus `order_key` to correlate rows to an order. The database refuses UPDATE and
DELETE on it (triggers created by the migration).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    MetaData,
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

ORDER_STATES = ("PENDIENTE", "PROCESANDO", "EN_ESPERA", "SUCCESS", "FAILED")
AUDIT_STATUSES = (
    "RECIBIDO",
    "PROCESANDO",
    "EN_ESPERA",
    "REINTENTO",
    "SUCCESS",
    "FAILED",
    "CONFLICTO",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class OrderRow(Base):
    """One POS order and where it stands. `due_at` is when the reconciler should look at it
    next (the retry time, the next status poll, or the end of a claim's lease)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("issuer", "order_id", name="uq_orders_issuer_order_id"),
        UniqueConstraint("doc_prefix", "doc_number", name="uq_orders_doc_prefix_doc_number"),
        CheckConstraint(_in("state", ORDER_STATES), name="state"),
        Index(
            "ix_orders_due_at_open",
            "due_at",
            postgresql_where=text("due_at IS NOT NULL"),
            sqlite_where=text("due_at IS NOT NULL"),
        ),
        Index("ix_orders_state_updated_at", "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    issuer: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[str] = mapped_column(String(64))
    gateway: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    doc_prefix: Mapped[str | None] = mapped_column(String(10))
    doc_number: Mapped[int | None] = mapped_column(BigInteger)
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
    order_key: Mapped[str | None] = mapped_column(String(90))
    payload_in: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    response_out: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NumberSequenceRow(Base):
    """Next consecutive per numbering prefix; bumped in the transaction that accepts an order."""

    __tablename__ = "number_sequences"

    prefix: Mapped[str] = mapped_column(String(10), primary_key=True)
    next_number: Mapped[int] = mapped_column(BigInteger)
    last_number: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
