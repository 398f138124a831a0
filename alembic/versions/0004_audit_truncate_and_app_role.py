"""The audit trail refuses TRUNCATE too, and an application role may only append to it.

`invoice_log_no_truncate` closes the last way for the table owner to empty the trail. If a role
named `einvoice_app` exists (docker-compose creates it), it gets what the worker, beat and API
need and nothing more on `invoice_log`: SELECT and INSERT.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APP_ROLE = "einvoice_app"

GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        GRANT SELECT, INSERT, UPDATE ON orders, number_sequences, api_keys TO {APP_ROLE};
        GRANT SELECT ON alembic_version TO {APP_ROLE};
        GRANT SELECT, INSERT ON invoice_log TO {APP_ROLE};
        REVOKE UPDATE, DELETE, TRUNCATE ON invoice_log FROM {APP_ROLE};
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
    END IF;
END
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TRIGGER invoice_log_no_truncate BEFORE TRUNCATE ON invoice_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION invoice_log_append_only()"
    )
    op.execute(GRANTS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS invoice_log_no_truncate ON invoice_log")
