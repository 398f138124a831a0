"""Issuers: who a deployment issues for (identity, gateway, DIAN software per family) and their
secrets, sealed with the master key before they are stored.

The services' role may read and write both tables but never delete: an issuer is disabled,
not removed, so documents always find who issued them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SECRET_NAMES = (
    "certificate",
    "certificate-password",
    "invoice-pin",
    "pos-pin",
    "factus-client-secret",
    "factus-password",
)
APP_ROLE = "einvoice_app"
GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        GRANT SELECT, INSERT, UPDATE ON issuers, issuer_secrets TO {APP_ROLE};
    END IF;
END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "issuers",
        sa.Column("nit", sa.String(length=20), nullable=False),
        sa.Column("dv", sa.String(length=1), nullable=False),
        sa.Column("legal_name", sa.String(length=450), nullable=False),
        sa.Column("trade_name", sa.String(length=450), nullable=False),
        sa.Column("person_type", sa.String(length=1), nullable=False),
        sa.Column("tax_scheme", sa.String(length=2), nullable=False),
        sa.Column("tax_responsibilities", JSON_DOC, nullable=False),
        sa.Column("address", JSON_DOC, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("gateway", sa.String(length=10), nullable=False),
        sa.Column("software", JSON_DOC, nullable=False),
        sa.Column("factus", JSON_DOC, nullable=False),
        sa.Column("certificate", JSON_DOC, nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "gateway IN ('dian', 'factus', 'simulated')", name=op.f("ck_issuers_gateway")
        ),
        sa.PrimaryKeyConstraint("nit", name=op.f("pk_issuers")),
    )
    op.create_table(
        "issuer_secrets",
        sa.Column("nit", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "name IN (" + ", ".join(f"'{n}'" for n in SECRET_NAMES) + ")",
            name=op.f("ck_issuer_secrets_name"),
        ),
        sa.ForeignKeyConstraint(
            ["nit"], ["issuers.nit"], name=op.f("fk_issuer_secrets_nit_issuers")
        ),
        sa.PrimaryKeyConstraint("nit", "name", name=op.f("pk_issuer_secrets")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GRANTS)


def downgrade() -> None:
    op.drop_table("issuer_secrets")
    op.drop_table("issuers")
