"""The buyer's copy: files the authority's answer gave a document, and its delivery.

- `document_files`: the signed document as sent and DIAN's ApplicationResponse, per document.
- `deliveries`: one per document that has a buyer's copy to send (state, channel, recipient,
  round, attempts, due time); the reconciler wakes the pending ones.
- The audit trail accepts the delivery statuses ENTREGA, ENTREGADO, ENTREGA_REINTENTO and
  ENTREGA_RECHAZADA (on SQLite the table is rebuilt, so its append-only triggers are made
  again).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATUSES_BEFORE = (
    "RECIBIDO",
    "PROCESANDO",
    "EN_ESPERA",
    "REINTENTO",
    "SUCCESS",
    "FAILED",
    "CONFLICTO",
)
STATUSES = (*STATUSES_BEFORE, "ENTREGA", "ENTREGADO", "ENTREGA_REINTENTO", "ENTREGA_RECHAZADA")
APP_ROLE = "einvoice_app"
GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        GRANT SELECT, INSERT ON document_files TO {APP_ROLE};
        GRANT SELECT, INSERT, UPDATE ON deliveries TO {APP_ROLE};
    END IF;
END
$$;
"""
SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER IF NOT EXISTS invoice_log_no_update BEFORE UPDATE ON invoice_log
       BEGIN SELECT RAISE(ABORT, 'invoice_log is append-only: UPDATE is not allowed'); END""",
    """CREATE TRIGGER IF NOT EXISTS invoice_log_no_delete BEFORE DELETE ON invoice_log
       BEGIN SELECT RAISE(ABORT, 'invoice_log is append-only: DELETE is not allowed'); END""",
]


def _statuses(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


def _audit_statuses(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("invoice_log") as batch:
        batch.drop_constraint(op.f("ck_invoice_log_status"), type_="check")
        batch.create_check_constraint(op.f("ck_invoice_log_status"), _statuses(values))
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "document_files",
        sa.Column("document_id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_document_files_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("document_id", "name", name=op.f("pk_document_files")),
    )
    op.create_table(
        "deliveries",
        sa.Column("document_id", BIG_ID, nullable=False),
        sa.Column("order_key", sa.String(length=160), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("round", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("claim_token", sa.String(length=36), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", JSON_DOC, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('PENDIENTE', 'ENVIANDO', 'ENTREGADO', 'RECHAZADO')",
            name=op.f("ck_deliveries_state"),
        ),
        sa.CheckConstraint("channel IN ('smtp', 'factus')", name=op.f("ck_deliveries_channel")),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_deliveries_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("order_key", name=op.f("uq_deliveries_order_key")),
    )
    op.create_index(
        "ix_deliveries_due_at_open",
        "deliveries",
        ["due_at"],
        postgresql_where=sa.text("due_at IS NOT NULL"),
        sqlite_where=sa.text("due_at IS NOT NULL"),
    )
    _audit_statuses(STATUSES)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GRANTS)


def downgrade() -> None:
    bind = op.get_bind()
    held = bind.execute(
        sa.text(
            "SELECT count(*) FROM invoice_log WHERE status IN "
            "('ENTREGA', 'ENTREGADO', 'ENTREGA_REINTENTO', 'ENTREGA_RECHAZADA')"
        )
    )
    if held.scalar_one():
        raise RuntimeError(
            "deliveries are on the audit trail: the schema before revision 0007 cannot hold them"
        )
    _audit_statuses(STATUSES_BEFORE)
    op.drop_index("ix_deliveries_due_at_open", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("document_files")
