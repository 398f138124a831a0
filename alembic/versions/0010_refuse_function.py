"""`einvoice_refuse(reason)`: raises, so that a one-statement step can refuse its own work.

A statement of several data-modifying parts (accepting an order: its row, its number, its
document, its trail row) cannot stop half way by itself; where it must not go on (the order
needs a number and no range gives one) it calls this function, and the whole statement, being
one transaction, leaves nothing behind. PostgreSQL only: SQLite runs the steps one by one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

REFUSE = """
CREATE FUNCTION einvoice_refuse(reason text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'einvoice: %', reason USING ERRCODE = 'P0001';
END;
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REFUSE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION einvoice_refuse(text)")
