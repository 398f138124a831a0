"""The audit trail as evidence on a real PostgreSQL: chained hashes written by the database,
transitions it refuses, `audit verify` finding what a table owner or a superuser changed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from adapters.db.evidence import take_checkpoint, verify
from adapters.db.store import SqlDocumentStore
from domain.documents import DocumentKind, DocumentPlan
from domain.order import parse_order
from domain.ports import OrderKey
from domain.store import State, StepNote
from tests.conftest import ADMIN_URL, APP_ROLE, create_database, drop_database
from tests.factories import order
from worker.cli import main
from worker.migrations import upgrade

ISSUER = "900123456"
UNNUMBERED = DocumentPlan(DocumentKind.INVOICE, "1", numbered=False)


def key(n: int) -> OrderKey:
    return OrderKey(ISSUER, f"POS-{n}")


def issue(store: SqlDocumentStore, n: int, state: State = State.SUCCESS) -> OrderKey:
    """An order through accept, claim and finish, as a worker takes it."""
    store.accept(key(n), parse_order(order(f"POS-{n}")), "simulated", UNNUMBERED)
    claim = store.claim(key(n), 60)
    assert claim is not None
    assert store.finish(claim, state, {"cufe": f"cufe-{n}"}, StepNote(state.value), None)
    return key(n)


def rows(engine: Engine, k: OrderKey) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT id, status FROM invoice_log WHERE order_key = :k ORDER BY id"),
            {"k": str(k)},
        )
        return [(r.id, r.status) for r in found]


def as_superuser(engine: Engine, *statements: str) -> None:
    """What only a superuser can do: write with every trigger off for the session."""
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            conn.execute(text(statement))


@pytest.fixture
def app_engine(database_url: str) -> Iterator[Engine]:
    """The services' role: it does not own the tables."""
    engine = create_engine(database_url.replace("postgres@", f"{APP_ROLE}@", 1))
    yield engine
    engine.dispose()


def test_every_row_is_chained_and_an_intact_trail_verifies(
    store: SqlDocumentStore, clean_db: Engine
) -> None:
    for n in range(3):
        issue(store, n)
    with clean_db.connect() as conn:
        hashes = conn.execute(text("SELECT chain_hash FROM invoice_log")).scalars().all()
    assert len(hashes) == 9 and all(h and len(h) == 64 for h in hashes)
    sealed = take_checkpoint(clean_db)
    assert sealed.row_count == 9 and len(sealed.head_hash) == 64
    issue(store, 3)
    result = verify(clean_db, head=sealed.head_hash)
    assert result.findings == []
    assert (result.rows, result.checkpoints, result.unsealed_rows) == (12, 1, 3)


def test_verify_finds_a_deleted_row(store: SqlDocumentStore, clean_db: Engine) -> None:
    k = issue(store, 1)
    issue(store, 2)
    (_, _), (claimed, _), (final, _) = rows(clean_db, k)
    as_superuser(clean_db, f"DELETE FROM invoice_log WHERE id = {claimed}")
    findings = verify(clean_db).findings
    assert [(f.kind, f.ref) for f in findings] == [("row", str(final))]
    assert "deleted" in findings[0].message


def test_verify_finds_a_deleted_final_row(store: SqlDocumentStore, clean_db: Engine) -> None:
    """The last row of a document has no row after it to break: the document's state and
    the checkpoint tell."""
    k = issue(store, 1)
    take_checkpoint(clean_db)
    final = rows(clean_db, k)[-1][0]
    as_superuser(clean_db, f"DELETE FROM invoice_log WHERE id = {final}")
    findings = {(f.kind, f.ref) for f in verify(clean_db).findings}
    assert findings == {("document", str(k)), ("checkpoint", "1")}


def test_verify_finds_an_altered_response(store: SqlDocumentStore, clean_db: Engine) -> None:
    k = issue(store, 1)
    final = rows(clean_db, k)[-1][0]
    as_superuser(
        clean_db,
        'UPDATE invoice_log SET response_out = response_out || \'{"cufe": "other"}\' '
        f"WHERE id = {final}",
    )
    findings = verify(clean_db).findings
    assert [(f.kind, f.ref) for f in findings] == [("row", str(final))]
    assert "altered" in findings[0].message


def test_verify_finds_forged_rows(store: SqlDocumentStore, clean_db: Engine) -> None:
    k = issue(store, 1, State.FAILED)
    take_checkpoint(clean_db)
    (_, _), (_, _), (final, _) = rows(clean_db, k)
    # a forged SUCCESS written around the trigger, in a gap of the ids before the FAILED row
    as_superuser(
        clean_db,
        "INSERT INTO invoice_log (id, status, order_key, payload_in, response_out) "
        f"VALUES ({final - 1}, 'SUCCESS', '{k}', '{{}}', '{{\"cufe\": \"forged\"}}')",
    )
    findings = {(f.kind, f.ref) for f in verify(clean_db).findings}
    assert findings == {
        ("row", str(final - 1)),  # no hash
        ("row", str(final)),  # no longer follows the row before it
        ("checkpoint", "1"),  # a row the seal did not have
    }


def test_a_rehashed_chain_is_caught_by_the_checkpoint_and_the_kept_head(
    store: SqlDocumentStore, clean_db: Engine
) -> None:
    """A superuser who deletes a row and recomputes every hash after it passes the per-document
    chain; the global one and the head hash kept elsewhere do not pass."""
    k = issue(store, 1)
    sealed = take_checkpoint(clean_db)
    (received, _), (claimed, _), (final, _) = rows(clean_db, k)
    as_superuser(
        clean_db,
        f"DELETE FROM invoice_log WHERE id = {claimed}",
        "UPDATE invoice_log l SET chain_hash = invoice_log_digest(p.chain_hash, l.id, l.status, "
        "l.order_key, l.payload_in, l.response_out, l.created_at) FROM invoice_log p "
        f"WHERE l.id = {final} AND p.id = {received}",
        "DELETE FROM audit_checkpoints",
    )
    assert (
        verify(clean_db).findings
        == [
            # the document still ends as its state says: only the seal knows
        ]
    )
    findings = verify(clean_db, head=sealed.head_hash).findings
    assert [(f.kind, f.ref) for f in findings] == [("checkpoint", "head")]


def test_the_services_role_cannot_disable_the_triggers_delete_or_forge(
    store: SqlDocumentStore, clean_db: Engine, app_engine: Engine
) -> None:
    done = issue(store, 1)
    store.accept(key(2), parse_order(order("POS-2")), "simulated", UNNUMBERED)
    for statement in (
        "ALTER TABLE invoice_log DISABLE TRIGGER USER",
        "ALTER TABLE invoice_log DISABLE TRIGGER invoice_log_append",
        "ALTER TABLE documents DISABLE TRIGGER documents_match_trail",
        "DELETE FROM invoice_log",
        "UPDATE invoice_log SET response_out = '{}'",
        "DROP TRIGGER invoice_log_append ON invoice_log",
        "SET session_replication_role = replica",
        "DELETE FROM audit_checkpoints",
    ):
        with pytest.raises(DBAPIError), app_engine.begin() as conn:
            conn.execute(text(statement))
    forgeries = [
        # SUCCESS for a document never claimed, with or without moving its state first
        [_append(key(2), "SUCCESS")],
        [
            "UPDATE documents SET state = 'SUCCESS' WHERE order_id = 'POS-2'",
            _append(key(2), "SUCCESS"),
        ],
        # a second final row, and an open row after the final one
        [_append(done, "SUCCESS")],
        [_append(done, "EN_ESPERA")],
        # a state moved without its row: refused at commit
        ["UPDATE documents SET state = 'FAILED' WHERE order_id = 'POS-2'"],
        # a row for no document, a second RECIBIDO
        [_append(OrderKey(ISSUER, "NEVER"), "RECIBIDO")],
        [_append(done, "RECIBIDO")],
    ]
    for statements in forgeries:
        refused = pytest.raises(DBAPIError, match=r"not a step|no document|trail ends")
        with refused, app_engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    assert [s for _, s in rows(clean_db, done)] == ["RECIBIDO", "PROCESANDO", "SUCCESS"]
    assert [s for _, s in rows(clean_db, key(2))] == ["RECIBIDO"]
    with app_engine.begin() as conn:  # it may seal the trail, which the owner's function does
        assert conn.execute(text("SELECT row_count FROM audit_checkpoint()")).scalar_one() == 4
    assert verify(clean_db).findings == []


def _append(k: OrderKey, status: str) -> str:
    return (
        "INSERT INTO invoice_log (status, order_key, payload_in) "
        f"VALUES ('{status}', '{k}', '{{}}')"
    )


def test_the_one_insert_path_works_inside_a_statement_that_moves_the_state(
    store: SqlDocumentStore, clean_db: Engine
) -> None:
    """A claim as one statement: the state moves and its row is appended together."""
    store.accept(key(1), parse_order(order("POS-1")), "simulated", UNNUMBERED)
    with clean_db.begin() as conn:
        _claim_in_one_statement(conn, key(1))
    assert [s for _, s in rows(clean_db, key(1))] == ["RECIBIDO", "PROCESANDO"]
    assert verify(clean_db).findings == []


def _claim_in_one_statement(conn: Connection, k: OrderKey) -> None:
    conn.execute(
        text(
            """
            WITH claimed AS (
                UPDATE documents SET state = 'PROCESANDO', attempts = attempts + 1
                WHERE issuer = :issuer AND order_id = :order_id AND note_id IS NULL
                RETURNING attempts
            )
            INSERT INTO invoice_log (status, order_key, payload_in, response_out)
            SELECT 'PROCESANDO', :key, '{}', jsonb_build_object('attempt', attempts)
            FROM claimed
            """
        ),
        {"issuer": k.issuer, "order_id": k.order_id, "key": str(k)},
    )


def test_the_commands_verify_and_checkpoint(
    store: SqlDocumentStore,
    clean_db: Engine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    k = issue(store, 1)
    assert main(["audit", "checkpoint", "--json"]) == 0
    head = json.loads(capsys.readouterr().out)["head_hash"]
    assert main(["audit", "verify", "--head", head]) == 0
    assert "audit trail intact: 3 rows checked, 1 checkpoints" in capsys.readouterr().out
    final = rows(clean_db, k)[-1][0]
    as_superuser(clean_db, f"UPDATE invoice_log SET response_out = '{{}}' WHERE id = {final}")
    assert main(["audit", "verify", "--since", "2020-01-01"]) == 1
    out = capsys.readouterr().out
    assert f"ROW {final}: row {final} (SUCCESS of {k})" in out
    assert "CHECKPOINT 1: rows 1..3 no longer fold" not in out  # the row's hash is unchanged
    assert "1 findings" in out
    assert main(["audit", "verify", "--since", "1h", "--json"]) == 1
    assert [f["ref"] for f in json.loads(capsys.readouterr().out)["findings"]] == [str(final)]
    assert main(["audit", "verify", "--since", "yesterday"]) == 2
    assert "--since: expected a date" in capsys.readouterr().err


def test_migrate_grants_the_services_role_whenever_it_came_to_exist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A role created after the migrations ran (so none of them granted it anything) gets its
    rights from the next `migrate`."""
    url = create_database("einvoice_grants")
    try:
        upgrade(url)
        owner = create_engine(url)
        with owner.begin() as conn:
            conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}"))
            conn.execute(text(f"REVOKE ALL ON FUNCTION audit_checkpoint() FROM {APP_ROLE}"))
        app = create_engine(url.replace("postgres@", f"{APP_ROLE}@", 1))
        with pytest.raises(DBAPIError, match="permission denied"), app.connect() as conn:
            conn.execute(text("SELECT count(*) FROM documents"))
        monkeypatch.setenv("DATABASE_URL", url)
        assert main(["migrate"]) == 0
        assert f"role {APP_ROLE}: rights granted" in capsys.readouterr().out
        store = SqlDocumentStore(app)
        store.accept(key(1), parse_order(order("POS-1")), "simulated", UNNUMBERED)
        assert store.claim(key(1), 60) is not None
        with app.begin() as conn:
            conn.execute(text("SELECT * FROM audit_checkpoint()"))
        with pytest.raises(DBAPIError), app.begin() as conn:
            conn.execute(text("DELETE FROM invoice_log"))
        app.dispose()
        owner.dispose()
    finally:
        drop_database(url)


def test_an_owner_that_is_no_superuser_migrates_and_cannot_rewrite_the_trail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docker-compose's owner: it owns the database and runs the migrations, and it may not
    switch the triggers off for its session as a superuser can."""
    url = create_database("einvoice_owner")
    name = url.rsplit("/", 1)[1]
    role = f"owner_{name[-10:]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f'ALTER DATABASE "{name}" OWNER TO {role}'))
        conn.execute(text(f"ALTER SCHEMA public OWNER TO {role}"))
    owner_url = url.replace("postgres@", f"{role}@", 1)
    try:
        monkeypatch.setenv("DATABASE_URL", owner_url)
        assert main(["migrate"]) == 0
        owner = create_engine(owner_url)
        issue(SqlDocumentStore(owner), 1)
        with pytest.raises(DBAPIError, match="permission denied"), owner.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        owner.dispose()
    finally:
        admin.dispose()
        drop_database(url)
        cluster = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with cluster.connect() as conn:
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        cluster.dispose()
