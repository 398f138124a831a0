"""What the services' role may do, granted after every migration run.

Migrations grant only when the role exists at the time they run; applying the whole set again
after each `migrate` makes the rights independent of when the role was created. The role owns
nothing, so it cannot alter a table, switch its triggers off, or delete from the trail.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

APP_ROLE = "einvoice_app"

GRANTS = f"""
GRANT SELECT, INSERT, UPDATE ON orders, documents, numbering_ranges, creditable_lines, api_keys,
    deliveries, issuers, issuer_secrets TO {APP_ROLE};
GRANT SELECT, INSERT ON document_files TO {APP_ROLE};
GRANT SELECT, INSERT ON invoice_log, intake_refusals TO {APP_ROLE};
REVOKE UPDATE, DELETE, TRUNCATE ON invoice_log, intake_refusals, audit_checkpoints
    FROM {APP_ROLE};
GRANT SELECT ON alembic_version, audit_checkpoints TO {APP_ROLE};
GRANT EXECUTE ON FUNCTION audit_checkpoint() TO {APP_ROLE};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
"""


def grant_app_role(engine: Engine) -> bool:
    """Grant the services' role its rights; False when the role does not exist (yet)."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.begin() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": APP_ROLE}
        ).first()
        if exists is None:
            return False
        conn.execute(text(GRANTS))
    return True
