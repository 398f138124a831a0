"""Notes: credit and debit notes (91/92) and adjustment notes to POS documents (94/93) are
documents that correct another one; what remains creditable of a sale is kept by the database.

- `documents` gains `note_id` (the client's id for a note: one note per issuer and id),
  `corrects_id` (the document a note corrects) and `note` (what the note asked and carries);
  one sale document per order becomes a partial unique index (documents without `note_id`).
- `creditable_lines`: per line of a corrected sale document (line 0: its tip), the quantity,
  base and tax that remain; its checks refuse any credit beyond them.
- Audit and refusal rows name a note's key (`ISSUER:ORDER/NOTE`): `order_key` grows to 160.

Downgrade refuses while notes exist.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KINDS_BEFORE = "kind IN ('01', '20')"
KINDS = "kind IN ('01', '20', '91', '92', '93', '94')"
APP_ROLE = "einvoice_app"
GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        GRANT SELECT, INSERT, UPDATE ON creditable_lines TO {APP_ROLE};
    END IF;
END
$$;
"""


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("note_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("corrects_id", BIG_ID, nullable=True))
        batch.add_column(sa.Column("note", JSON_DOC, nullable=True))
        batch.create_foreign_key(
            op.f("fk_documents_corrects_id_documents"), "documents", ["corrects_id"], ["id"]
        )
        batch.drop_constraint("uq_documents_sale", type_="unique")
        batch.drop_constraint(op.f("ck_documents_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_documents_kind"), KINDS)
    op.create_index(
        "uq_documents_sale",
        "documents",
        ["issuer", "order_id"],
        unique=True,
        postgresql_where=sa.text("note_id IS NULL"),
        sqlite_where=sa.text("note_id IS NULL"),
    )
    op.create_index(
        "uq_documents_note",
        "documents",
        ["issuer", "note_id"],
        unique=True,
        postgresql_where=sa.text("note_id IS NOT NULL"),
        sqlite_where=sa.text("note_id IS NOT NULL"),
    )
    op.create_index("ix_documents_corrects_id", "documents", ["corrects_id"])
    op.create_table(
        "creditable_lines",
        sa.Column("document_id", BIG_ID, nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(24, 6), nullable=False),
        sa.Column("base", sa.Numeric(19, 2), nullable=False),
        sa.Column("tax", sa.Numeric(19, 2), nullable=False),
        sa.CheckConstraint(
            "quantity >= 0 AND base >= 0 AND tax >= 0",
            name=op.f("ck_creditable_lines_not_overcredited"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_creditable_lines_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("document_id", "line_no", name=op.f("pk_creditable_lines")),
    )
    for table in ("invoice_log", "intake_refusals"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "order_key", existing_type=sa.String(length=90), type_=sa.String(length=160)
            )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GRANTS)


def downgrade() -> None:
    bind = op.get_bind()
    notes = bind.execute(sa.text("SELECT count(*) FROM documents WHERE note_id IS NOT NULL"))
    if notes.scalar_one():
        raise RuntimeError("notes exist: the schema before revision 0006 cannot hold them")
    for table in ("invoice_log", "intake_refusals"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "order_key", existing_type=sa.String(length=160), type_=sa.String(length=90)
            )
    op.drop_table("creditable_lines")
    op.drop_index("ix_documents_corrects_id", table_name="documents")
    op.drop_index("uq_documents_note", table_name="documents")
    op.drop_index("uq_documents_sale", table_name="documents")
    with op.batch_alter_table("documents") as batch:
        batch.drop_constraint(op.f("ck_documents_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_documents_kind"), KINDS_BEFORE)
        batch.create_unique_constraint("uq_documents_sale", ["issuer", "order_id"])
        batch.drop_constraint(op.f("fk_documents_corrects_id_documents"), type_="foreignkey")
        batch.drop_column("note")
        batch.drop_column("corrects_id")
        batch.drop_column("note_id")
