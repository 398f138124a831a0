"""The audit trail as evidence: chained hashes, checked transitions, checkpoints.

- `invoice_log.chain_hash`: SHA-256 of the row chained to the previous row of its document,
  written by the insert trigger `invoice_log_append` (existing rows are hashed here, in id
  order). The trigger also takes the row's id and time itself, under the document's row lock,
  so a document's rows chain in id order, and it refuses any row the document's state does not
  allow: no `RECIBIDO` but the first, no `PROCESANDO` unless claimed, no `SUCCESS` / `FAILED`
  that differs from the state or follows another final row, no `SUCCESS` without a claim.
- `TARDIO`: what a worker that had lost its claim learned, written beside the outcome and
  never read as it (it carries `claim_lost`).
- `documents_match_trail`, a deferred constraint trigger: at commit a document's state equals
  the last row of its trail that counts (a final state has its final row, an open one none).
- `audit_checkpoints` and `audit_checkpoint()`: a global chain over every row's hash, taken
  when asked; the head hash is what an operator keeps elsewhere.
- The application role gets SELECT on the checkpoints and EXECUTE on `audit_checkpoint()`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

APP_ROLE = "einvoice_app"
STATUSES_BEFORE = (
    "status IN ('RECIBIDO', 'PROCESANDO', 'EN_ESPERA', 'REINTENTO', 'SUCCESS', 'FAILED', "
    "'CONFLICTO', 'ENTREGA', 'ENTREGADO', 'ENTREGA_REINTENTO', 'ENTREGA_RECHAZADA')"
)
STATUSES = (
    "status IN ('RECIBIDO', 'PROCESANDO', 'EN_ESPERA', 'REINTENTO', 'SUCCESS', 'FAILED', "
    "'CONFLICTO', 'ENTREGA', 'ENTREGADO', 'ENTREGA_REINTENTO', 'ENTREGA_RECHAZADA', 'TARDIO')"
)

PG_FUNCTIONS = r"""
CREATE FUNCTION invoice_log_digest(
    prev text, id bigint, status text, order_key text, payload_in jsonb, response_out jsonb,
    created_at timestamptz
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(
        decode(coalesce(prev, ''), 'hex') || convert_to(concat_ws(E'\x1f',
            id::text, status, coalesce(order_key, ''), payload_in::text,
            coalesce(response_out::text, ''),
            to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24\:MI\:SS.US')), 'UTF8')
    ), 'hex')
$$;

-- The last row of a document's trail that counts for its story: rows of a worker that had
-- lost its claim (`claim_lost`, `TARDIO`) do not, nor the steps of its buyer's copy (ENTREGA…,
-- written after the document's SUCCESS).
CREATE FUNCTION invoice_log_story_status(key text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT l.status FROM invoice_log l
    WHERE l.order_key = key
      AND NOT coalesce((l.response_out ->> 'claim_lost')::boolean, false)
      AND l.status NOT LIKE 'ENTREGA%'
    ORDER BY l.id DESC LIMIT 1
$$;

CREATE FUNCTION invoice_log_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k_issuer text := split_part(NEW.order_key, ':', 1);
    k_rest text := substr(NEW.order_key, length(split_part(NEW.order_key, ':', 1)) + 2);
    k_order text := split_part(k_rest, '/', 1);
    k_note text := nullif(substr(k_rest, length(split_part(k_rest, '/', 1)) + 2), '');
    doc_state text;
    last_status text;
    prev_hash text;
    lost boolean := coalesce((NEW.response_out ->> 'claim_lost')::boolean, false);
    allowed boolean;
BEGIN
    IF k_note IS NULL THEN
        SELECT d.state INTO doc_state FROM documents d
        WHERE d.issuer = k_issuer AND d.order_id = k_order AND d.note_id IS NULL FOR UPDATE;
    ELSE
        SELECT d.state INTO doc_state FROM documents d
        WHERE d.issuer = k_issuer AND d.note_id = k_note AND d.order_id = k_order FOR UPDATE;
    END IF;
    IF doc_state IS NULL THEN
        RAISE EXCEPTION 'invoice_log: no document %', coalesce(NEW.order_key, '(none)')
            USING ERRCODE = 'check_violation';
    END IF;
    -- under the document's lock: its rows are numbered in the order they chain
    NEW.id := nextval('invoice_log_id_seq');
    NEW.created_at := now();
    last_status := invoice_log_story_status(NEW.order_key);
    allowed := CASE
        WHEN NEW.status = 'TARDIO' THEN lost
        WHEN lost THEN false
        -- the buyer's copy of an issued document: its attempts, after the SUCCESS row
        WHEN NEW.status IN ('ENTREGA', 'ENTREGADO', 'ENTREGA_REINTENTO', 'ENTREGA_RECHAZADA')
            THEN doc_state = 'SUCCESS' AND last_status = 'SUCCESS'
        WHEN NEW.status = 'RECIBIDO' THEN last_status IS NULL AND doc_state = 'PENDIENTE'
        WHEN NEW.status = 'PROCESANDO' THEN doc_state = 'PROCESANDO'
            AND last_status IS NOT NULL AND last_status NOT IN ('SUCCESS', 'FAILED')
        WHEN NEW.status = 'SUCCESS' THEN doc_state = 'SUCCESS' AND last_status = 'PROCESANDO'
        WHEN NEW.status = 'FAILED' THEN doc_state = 'FAILED'
            AND last_status IS NOT NULL AND last_status NOT IN ('SUCCESS', 'FAILED')
        WHEN NEW.status IN ('EN_ESPERA', 'REINTENTO') THEN
            doc_state IN ('PENDIENTE', 'EN_ESPERA') AND last_status IS NOT NULL
            AND (last_status NOT IN ('SUCCESS', 'FAILED')
                 OR (NEW.status = 'REINTENTO' AND last_status = 'FAILED'))
        ELSE false
    END;
    IF NOT allowed THEN
        RAISE EXCEPTION 'invoice_log: % is not a step of % (state %, last row %)',
            NEW.status, NEW.order_key, doc_state, coalesce(last_status, 'none')
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT l.chain_hash INTO prev_hash FROM invoice_log l
    WHERE l.order_key = NEW.order_key ORDER BY l.id DESC LIMIT 1;
    NEW.chain_hash := invoice_log_digest(prev_hash, NEW.id, NEW.status, NEW.order_key,
        NEW.payload_in, NEW.response_out, NEW.created_at);
    RETURN NEW;
END;
$$;

CREATE TRIGGER invoice_log_append BEFORE INSERT ON invoice_log
    FOR EACH ROW EXECUTE FUNCTION invoice_log_append();

CREATE FUNCTION documents_match_trail() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    doc_state text;
    last_status text;
    key text := NEW.issuer || ':' || NEW.order_id || coalesce('/' || NEW.note_id, '');
BEGIN
    SELECT d.state INTO doc_state FROM documents d WHERE d.id = NEW.id;
    last_status := invoice_log_story_status(key);
    IF last_status IS NULL
       OR (doc_state IN ('SUCCESS', 'FAILED') AND last_status <> doc_state)
       OR (doc_state NOT IN ('SUCCESS', 'FAILED') AND last_status IN ('SUCCESS', 'FAILED'))
    THEN
        RAISE EXCEPTION 'document % is % but its trail ends with %',
            key, doc_state, coalesce(last_status, 'no row')
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER documents_match_trail AFTER INSERT OR UPDATE OF state ON documents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION documents_match_trail();

CREATE FUNCTION audit_checkpoint() RETURNS SETOF audit_checkpoints
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    last audit_checkpoints;
    head text;
    upto bigint;
    counted bigint := 0;
    r record;
BEGIN
    -- waits for the transactions writing rows now: every id up to the head is settled
    LOCK TABLE invoice_log IN SHARE MODE;
    SELECT * INTO last FROM audit_checkpoints ORDER BY id DESC LIMIT 1;
    head := last.head_hash;
    upto := coalesce(last.upto_id, 0);
    FOR r IN SELECT l.id, l.chain_hash FROM invoice_log l WHERE l.id > upto ORDER BY l.id LOOP
        head := encode(sha256(decode(coalesce(head, ''), 'hex')
                              || decode(coalesce(r.chain_hash, ''), 'hex')), 'hex');
        upto := r.id;
        counted := counted + 1;
    END LOOP;
    RETURN QUERY INSERT INTO audit_checkpoints (upto_id, row_count, head_hash, prev_hash)
        VALUES (upto, counted, coalesce(head, ''), last.head_hash) RETURNING *;
END;
$$;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
"""

# The rows written before this revision, hashed in id order per document.
PG_BACKFILL = """
DO $$
DECLARE
    r record;
    prev text;
    prev_key text;
BEGIN
    FOR r IN SELECT * FROM invoice_log ORDER BY order_key, id LOOP
        IF prev_key IS DISTINCT FROM r.order_key THEN
            prev := NULL;
        END IF;
        prev := invoice_log_digest(prev, r.id, r.status, r.order_key, r.payload_in,
                                   r.response_out, r.created_at);
        UPDATE invoice_log SET chain_hash = prev WHERE id = r.id;
        prev_key := r.order_key;
    END LOOP;
END
$$;
"""

SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER IF NOT EXISTS invoice_log_no_update BEFORE UPDATE ON invoice_log
       BEGIN SELECT RAISE(ABORT, 'invoice_log is append-only: UPDATE is not allowed'); END""",
    """CREATE TRIGGER IF NOT EXISTS invoice_log_no_delete BEFORE DELETE ON invoice_log
       BEGIN SELECT RAISE(ABORT, 'invoice_log is append-only: DELETE is not allowed'); END""",
]

GRANTS = f"""
REVOKE EXECUTE ON FUNCTION audit_checkpoint() FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        GRANT SELECT ON audit_checkpoints TO {APP_ROLE};
        GRANT EXECUTE ON FUNCTION audit_checkpoint() TO {APP_ROLE};
    END IF;
END
$$;
"""


def _is_pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    with op.batch_alter_table("invoice_log") as batch:
        batch.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=True))
        batch.drop_constraint(op.f("ck_invoice_log_status"), type_="check")
        batch.create_check_constraint(op.f("ck_invoice_log_status"), STATUSES)
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("upto_id", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )
    if not _is_pg():
        for statement in SQLITE_APPEND_ONLY:  # a batch on SQLite copies the table, not its triggers
            op.execute(statement)
        return
    op.execute("ALTER TABLE invoice_log DISABLE TRIGGER invoice_log_no_update")
    op.execute(PG_FUNCTIONS)
    op.execute(PG_BACKFILL)
    op.execute("ALTER TABLE invoice_log ENABLE TRIGGER invoice_log_no_update")
    op.execute(GRANTS)


def downgrade() -> None:
    bind = op.get_bind()
    late = bind.execute(sa.text("SELECT count(*) FROM invoice_log WHERE status = 'TARDIO'"))
    if late.scalar_one():
        raise RuntimeError("TARDIO rows exist: the schema before this revision cannot hold them")
    if _is_pg():
        op.execute("DROP TRIGGER IF EXISTS documents_match_trail ON documents")
        op.execute("DROP TRIGGER IF EXISTS invoice_log_append ON invoice_log")
        op.execute("DROP FUNCTION IF EXISTS audit_checkpoint()")
        op.execute("DROP FUNCTION IF EXISTS documents_match_trail()")
        op.execute("DROP FUNCTION IF EXISTS invoice_log_append()")
        op.execute("DROP FUNCTION IF EXISTS invoice_log_story_status(text)")
        op.execute(
            "DROP FUNCTION IF EXISTS invoice_log_digest(text, bigint, text, text, jsonb, "
            "jsonb, timestamptz)"
        )
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("invoice_log") as batch:
        batch.drop_constraint(op.f("ck_invoice_log_status"), type_="check")
        batch.create_check_constraint(op.f("ck_invoice_log_status"), STATUSES_BEFORE)
        batch.drop_column("chain_hash")
