"""Documents, not only orders: the state machine moves to `documents`, numbering ranges are
stored with their counters, and refused input gets a table of its own.

- `documents` takes every order's state, number and references (its id is the order's id and
  its kind `01`: every document issued so far was an invoice); `orders` keeps the order
  itself (payload, fingerprint) and the till that sold it.
- `numbering_ranges` replaces `number_sequences`: a range carries its resolution, prefix,
  bounds, validity, document kind, till and counter. The counters of `number_sequences` need
  no copy: numbers are allocated in the transaction that accepts an order, so a counter
  always equals the highest number issued from its prefix plus one, and the range the
  settings describe starts after the highest number its prefix has issued.
- `intake_refusals` holds refused input (invalid payloads, conflicting payloads), append-only.
  Refusals written to `invoice_log` before are copied there with `legacy_log_id`; the original
  rows stay in `invoice_log` untouched (the trail is never rewritten) and readers leave them
  off every document's timeline.

Downgrade moves the state back to `orders`, rebuilds `number_sequences` from the documents,
and copies refusals recorded since back to `invoice_log` in the old shape. It refuses to run
while POS documents (kind 20) exist: the old schema could only call them invoices.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATES = "state IN ('PENDIENTE', 'PROCESANDO', 'EN_ESPERA', 'SUCCESS', 'FAILED')"
APP_ROLE = "einvoice_app"

# The columns the state machine carries, in `orders` before and in `documents` after.
MOVED = (
    "issued_at, attempts, maybe_sent, claim_token, due_at, published_at, cufe, track_id, "
    "refs, reason, created_at, updated_at, finished_at, reopened_at"
)

PG_APPEND_ONLY = """
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER intake_refusals_no_update BEFORE UPDATE ON intake_refusals
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER intake_refusals_no_delete BEFORE DELETE ON intake_refusals
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER intake_refusals_no_truncate BEFORE TRUNCATE ON intake_refusals
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
"""

SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER intake_refusals_no_update BEFORE UPDATE ON intake_refusals
       BEGIN SELECT RAISE(ABORT, 'intake_refusals is append-only: UPDATE is not allowed'); END""",
    """CREATE TRIGGER intake_refusals_no_delete BEFORE DELETE ON intake_refusals
       BEGIN SELECT RAISE(ABORT, 'intake_refusals is append-only: DELETE is not allowed'); END""",
]

GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        GRANT SELECT, INSERT, UPDATE ON orders, documents, numbering_ranges TO {APP_ROLE};
        GRANT SELECT, INSERT ON intake_refusals TO {APP_ROLE};
        REVOKE UPDATE, DELETE, TRUNCATE ON intake_refusals FROM {APP_ROLE};
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
    END IF;
END
$$;
"""


def _is_pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _legacy_refusal() -> str:
    """The `invoice_log` rows the intake wrote for refused input: conflicts, and FAILED rows
    with an invalid-order error that no claim wrote (a claim's rows always carry `attempt`)."""
    if _is_pg():
        invalid = "response_out->>'error' = 'invalid_order' AND NOT response_out ? 'attempt'"
    else:
        invalid = (
            "json_extract(response_out, '$.error') = 'invalid_order' "
            "AND json_type(response_out, '$.attempt') IS NULL"
        )
    return f"(status = 'CONFLICTO' OR (status = 'FAILED' AND {invalid}))"


def upgrade() -> None:
    op.create_table(
        "numbering_ranges",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("issuer", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=2), nullable=False),
        sa.Column("register", sa.String(length=20), nullable=True),
        sa.Column("prefix", sa.String(length=10), server_default=sa.text("''"), nullable=False),
        sa.Column("resolution", sa.String(length=40), nullable=False),
        sa.Column("first", sa.BigInteger(), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("technical_key", sa.Text(), nullable=True),
        sa.Column("next_number", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('"first" <= "last"', name=op.f("ck_numbering_ranges_bounds")),
        sa.CheckConstraint(
            'next_number BETWEEN "first" AND "last" + 1',
            name=op.f("ck_numbering_ranges_next_number"),
        ),
        sa.CheckConstraint(
            "origin IN ('settings', 'cli')", name=op.f("ck_numbering_ranges_origin")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_numbering_ranges")),
        sa.UniqueConstraint(
            "issuer", "kind", "prefix", "resolution", "first", name="uq_numbering_ranges_authorized"
        ),
    )
    op.create_index("ix_numbering_ranges_issuer_kind", "numbering_ranges", ["issuer", "kind"])

    op.create_table(
        "documents",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("order_ref", BIG_ID, nullable=False),
        sa.Column("issuer", sa.String(length=20), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=2), nullable=False),
        sa.Column("gateway", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("register", sa.String(length=20), nullable=True),
        sa.Column("range_id", BIG_ID, nullable=True),
        sa.Column("prefix", sa.String(length=10), nullable=True),
        sa.Column("consecutive", sa.BigInteger(), nullable=True),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
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
        sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(STATES, name=op.f("ck_documents_state")),
        sa.CheckConstraint("kind IN ('01', '20')", name=op.f("ck_documents_kind")),
        sa.ForeignKeyConstraint(
            ["order_ref"], ["orders.id"], name=op.f("fk_documents_order_ref_orders")
        ),
        sa.ForeignKeyConstraint(
            ["range_id"],
            ["numbering_ranges.id"],
            name=op.f("fk_documents_range_id_numbering_ranges"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("issuer", "order_id", name="uq_documents_sale"),
        sa.UniqueConstraint("issuer", "kind", "number", name="uq_documents_number"),
        sa.UniqueConstraint("range_id", "consecutive", name="uq_documents_range_consecutive"),
    )
    op.create_index(
        "ix_documents_due_at_open",
        "documents",
        ["due_at"],
        postgresql_where=sa.text("due_at IS NOT NULL"),
        sqlite_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index("ix_documents_state_updated_at", "documents", ["state", "updated_at"])
    op.create_index("ix_documents_order_ref", "documents", ["order_ref"])

    number = (
        "doc_prefix || CAST(doc_number AS TEXT)"
        if not _is_pg()
        else "doc_prefix || doc_number::text"
    )
    op.execute(
        f"""
        INSERT INTO documents (id, order_ref, issuer, order_id, kind, gateway, state,
                               prefix, consecutive, number, {MOVED})
        SELECT id, id, issuer, order_id, '01', gateway, state, doc_prefix, doc_number,
               CASE WHEN doc_number IS NULL THEN NULL ELSE {number} END, {MOVED}
        FROM orders
        """
    )
    if _is_pg():
        op.execute(
            "SELECT setval(pg_get_serial_sequence('documents', 'id'), "
            "COALESCE((SELECT max(id) FROM documents), 0) + 1, false)"
        )

    op.drop_index("ix_orders_due_at_open", table_name="orders")
    op.drop_index("ix_orders_state_updated_at", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("uq_orders_doc_prefix_doc_number"), type_="unique")
        batch.drop_constraint(op.f("ck_orders_state"), type_="check")
        for column in (
            "gateway",
            "state",
            "doc_prefix",
            "doc_number",
            *(c.strip() for c in MOVED.split(",") if c.strip() != "created_at"),
        ):
            batch.drop_column(column)
        batch.add_column(sa.Column("register", sa.String(length=20), nullable=True))
    op.drop_table("number_sequences")

    op.create_table(
        "intake_refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("order_key", sa.String(length=90), nullable=True),
        sa.Column("payload_in", JSON_DOC, nullable=False),
        sa.Column("response_out", JSON_DOC, nullable=True),
        sa.Column("legacy_log_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('RECHAZADO_ENTRADA', 'CONFLICTO')", name=op.f("ck_intake_refusals_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_refusals")),
    )
    op.create_index("ix_intake_refusals_order_key_id", "intake_refusals", ["order_key", "id"])
    op.create_index("ix_intake_refusals_created_at", "intake_refusals", ["created_at"])
    op.create_index("ix_intake_refusals_legacy_log_id", "intake_refusals", ["legacy_log_id"])
    op.execute(
        f"""
        INSERT INTO intake_refusals (status, order_key, payload_in, response_out, legacy_log_id,
                                     created_at)
        SELECT CASE WHEN status = 'CONFLICTO' THEN 'CONFLICTO' ELSE 'RECHAZADO_ENTRADA' END,
               order_key, payload_in, response_out, id, created_at
        FROM invoice_log WHERE {_legacy_refusal()} ORDER BY id
        """
    )
    if _is_pg():
        op.execute(PG_APPEND_ONLY)
        op.execute(GRANTS)
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    pos = bind.execute(sa.text("SELECT count(*) FROM documents WHERE kind <> '01'")).scalar_one()
    if pos:
        raise RuntimeError(
            f"{pos} documents are not invoices (POS equivalent documents): the schema before "
            "revision 0005 cannot hold them; downgrade refused"
        )
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("gateway", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("state", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("doc_prefix", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("doc_number", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column("maybe_sent", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch.add_column(sa.Column("claim_token", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cufe", sa.String(length=96), nullable=True))
        batch.add_column(sa.Column("track_id", sa.String(length=100), nullable=True))
        batch.add_column(
            sa.Column("refs", JSON_DOC, server_default=sa.text("'{}'"), nullable=False)
        )
        batch.add_column(sa.Column("reason", JSON_DOC, nullable=True))
        batch.add_column(
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                server_default=sa.func.now(),
                nullable=False,
            )
        )
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_column("register")
    columns = [c.strip() for c in MOVED.split(",") if c.strip() != "created_at"]
    assignments = ", ".join(
        f"{c} = (SELECT d.{c} FROM documents d WHERE d.order_ref = orders.id)"
        for c in ("gateway", "state", *columns)
    )
    op.execute(
        f"""UPDATE orders SET {assignments},
            doc_prefix = (SELECT d.prefix FROM documents d WHERE d.order_ref = orders.id),
            doc_number = (SELECT d.consecutive FROM documents d WHERE d.order_ref = orders.id)"""
    )
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("gateway", existing_type=sa.String(length=16), nullable=False)
        batch.alter_column("state", existing_type=sa.String(length=12), nullable=False)
        batch.alter_column("issued_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_unique_constraint(
            op.f("uq_orders_doc_prefix_doc_number"), ["doc_prefix", "doc_number"]
        )
        batch.create_check_constraint(op.f("ck_orders_state"), STATES)
    op.create_index(
        "ix_orders_due_at_open",
        "orders",
        ["due_at"],
        postgresql_where=sa.text("due_at IS NOT NULL"),
        sqlite_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index("ix_orders_state_updated_at", "orders", ["state", "updated_at"])

    op.create_table(
        "number_sequences",
        sa.Column("prefix", sa.String(length=10), nullable=False),
        sa.Column("next_number", sa.BigInteger(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_number_sequences")),
    )
    op.execute(
        """
        INSERT INTO number_sequences (prefix, next_number, last_number)
        SELECT d.prefix, max(d.consecutive) + 1,
               COALESCE((SELECT max(r."last") FROM numbering_ranges r
                         WHERE r.prefix = d.prefix AND r.kind = '01'), max(d.consecutive))
        FROM documents d WHERE d.consecutive IS NOT NULL GROUP BY d.prefix
        """
    )
    op.execute(
        """
        INSERT INTO invoice_log (status, order_key, payload_in, response_out, created_at)
        SELECT CASE WHEN status = 'CONFLICTO' THEN 'CONFLICTO' ELSE 'FAILED' END,
               order_key, payload_in, response_out, created_at
        FROM intake_refusals WHERE legacy_log_id IS NULL ORDER BY id
        """
    )
    if _is_pg():
        op.execute("DROP TRIGGER IF EXISTS intake_refusals_no_update ON intake_refusals")
        op.execute("DROP TRIGGER IF EXISTS intake_refusals_no_delete ON intake_refusals")
        op.execute("DROP TRIGGER IF EXISTS intake_refusals_no_truncate ON intake_refusals")
        op.execute("DROP FUNCTION IF EXISTS append_only()")
    op.drop_table("intake_refusals")
    op.drop_table("documents")
    op.drop_table("numbering_ranges")
