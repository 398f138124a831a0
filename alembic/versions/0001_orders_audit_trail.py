"""Orders (the state machine), the append-only audit trail, number sequences.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ORDER_STATES = "state IN ('PENDIENTE', 'PROCESANDO', 'EN_ESPERA', 'SUCCESS', 'FAILED')"
AUDIT_STATUSES = (
    "status IN ('RECIBIDO', 'PROCESANDO', 'EN_ESPERA', 'REINTENTO', 'SUCCESS', 'FAILED', "
    "'CONFLICTO')"
)

PG_APPEND_ONLY = """
CREATE FUNCTION invoice_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'invoice_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER invoice_log_no_update BEFORE UPDATE ON invoice_log
    FOR EACH ROW EXECUTE FUNCTION invoice_log_append_only();
CREATE TRIGGER invoice_log_no_delete BEFORE DELETE ON invoice_log
    FOR EACH ROW EXECUTE FUNCTION invoice_log_append_only();
"""

SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER invoice_log_no_update BEFORE UPDATE ON invoice_log
       BEGIN SELECT RAISE(ABORT, 'invoice_log is append-only: UPDATE is not allowed'); END""",
    """CREATE TRIGGER invoice_log_no_delete BEFORE DELETE ON invoice_log
       BEGIN SELECT RAISE(ABORT, 'invoice_log is append-only: DELETE is not allowed'); END""",
]


def upgrade() -> None:
    op.create_table(
        "invoice_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("order_key", sa.String(length=90), nullable=True),
        sa.Column("payload_in", JSON_DOC, nullable=False),
        sa.Column("response_out", JSON_DOC, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(AUDIT_STATUSES, name=op.f("ck_invoice_log_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_log")),
    )
    op.create_index("ix_invoice_log_created_at", "invoice_log", ["created_at"])
    op.create_index("ix_invoice_log_order_key_id", "invoice_log", ["order_key", "id"])

    op.create_table(
        "number_sequences",
        sa.Column("prefix", sa.String(length=10), nullable=False),
        sa.Column("next_number", sa.BigInteger(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_number_sequences")),
    )

    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("issuer", sa.String(length=20), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("gateway", sa.String(length=16), nullable=False),
        sa.Column("payload", JSON_DOC, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("doc_prefix", sa.String(length=10), nullable=True),
        sa.Column("doc_number", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("maybe_sent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("claim_token", sa.String(length=36), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cufe", sa.String(length=96), nullable=True),
        sa.Column("track_id", sa.String(length=100), nullable=True),
        sa.Column("refs", JSON_DOC, server_default=sa.text("'{}'"), nullable=False),
        sa.Column("reason", JSON_DOC, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(ORDER_STATES, name=op.f("ck_orders_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("doc_prefix", "doc_number", name="uq_orders_doc_prefix_doc_number"),
        sa.UniqueConstraint("issuer", "order_id", name="uq_orders_issuer_order_id"),
    )
    op.create_index(
        "ix_orders_due_at_open",
        "orders",
        ["due_at"],
        postgresql_where=sa.text("due_at IS NOT NULL"),
        sqlite_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index("ix_orders_state_updated_at", "orders", ["state", "updated_at"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_APPEND_ONLY)
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS invoice_log_no_update ON invoice_log")
        op.execute("DROP TRIGGER IF EXISTS invoice_log_no_delete ON invoice_log")
        op.execute("DROP FUNCTION IF EXISTS invoice_log_append_only()")
    op.drop_table("orders")
    op.drop_table("number_sequences")
    op.drop_table("invoice_log")
