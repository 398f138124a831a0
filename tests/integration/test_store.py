"""The document store and the numbering ranges on a real PostgreSQL migrated by Alembic."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from adapters.db import engine as engine_module
from adapters.db.engine import make_engine
from adapters.db.ranges import SqlNumberingRanges
from adapters.db.store import SqlDocumentStore
from domain.documents import DocumentKind, DocumentPlan
from domain.errors import FieldError, NumberingError, OrderConflict
from domain.issuer import NumberingRange
from domain.order import parse_order
from domain.ports import DocumentNumber, OrderKey
from domain.store import Acceptance, RefusalStatus, State, StepNote, ValidOrder
from tests.conftest import APP_ROLE
from tests.factories import order
from worker.migrations import check

NUMBERING = NumberingRange(
    "18760000001", "SETP", 990000000, 995000000, date(2019, 1, 19), date(2030, 1, 19), "k"
)


def key(n: int | str = 100) -> OrderKey:
    return OrderKey("900123456", f"POS-{n}")


ISSUER = "900123456"
SALE = DocumentPlan(DocumentKind.INVOICE, "1", numbered=True)


def with_range(engine: Engine, clock: Callable[[], datetime] | None = None) -> SqlDocumentStore:
    """The store with the range the settings would describe."""
    SqlNumberingRanges(engine).sync_configured(ISSUER, NUMBERING)
    return SqlDocumentStore(engine, clock) if clock else SqlDocumentStore(engine)


@pytest.fixture
def store(clean_db: Engine) -> SqlDocumentStore:
    return with_range(clean_db)


def accept(store: SqlDocumentStore, n: int | str = 100, plan: DocumentPlan = SALE):  # type: ignore[no-untyped-def]
    return store.accept(key(n), parse_order(order(f"POS-{n}")), "simulated", plan)


def test_models_agree_with_migrations(database_url: str) -> None:
    check(database_url)  # raises when autogenerate would produce operations


def test_audit_rows_cannot_be_updated_or_deleted(store: SqlDocumentStore, clean_db: Engine) -> None:
    accept(store)
    for statement in (
        "UPDATE invoice_log SET status = 'SUCCESS'",
        "DELETE FROM invoice_log",
        "TRUNCATE invoice_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"), clean_db.begin() as conn:
            conn.execute(text(statement))
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM invoice_log")).scalar_one() == 1


def test_accept_is_idempotent_and_a_different_payload_is_a_recorded_conflict(
    store: SqlDocumentStore,
) -> None:
    first = accept(store)
    again = accept(store)
    assert first.created and not again.created
    assert again.record.number == first.record.number
    with pytest.raises(OrderConflict):
        store.accept(key(), parse_order(order("POS-100", tip=100)), "simulated", SALE)
    assert [e.status for e in store.timeline(key())] == ["RECIBIDO"]
    refused = store.refusals(key())
    assert refused.count == 1 and refused.latest[0].status == "CONFLICTO"


def test_numbers_are_unique_under_concurrency(store: SqlDocumentStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: accept(store, n), range(200)))
    numbers = [r.record.number.number for r in results]
    assert len(set(numbers)) == 200
    assert sorted(numbers) == list(range(990000000, 990000200))


def test_concurrent_accepts_of_one_order_create_it_once(store: SqlDocumentStore) -> None:
    barrier = threading.Barrier(6)

    def go(_: int) -> bool:
        barrier.wait()
        return accept(store, 7).created

    with ThreadPoolExecutor(max_workers=6) as pool:
        created = list(pool.map(go, range(6)))
    assert created.count(True) == 1
    assert [e.status for e in store.timeline(key(7))] == ["RECIBIDO"]


def test_an_exhausted_range_and_an_expired_range_are_clear_errors(
    store: SqlDocumentStore, clean_db: Engine
) -> None:
    ranges = SqlNumberingRanges(clean_db)
    tiny = NumberingRange(
        "1", "TINY", 1, 2, date(2019, 1, 1), date(2030, 1, 1), "k", register="small"
    )
    ranges.add(ISSUER, tiny)
    small = DocumentPlan(DocumentKind.INVOICE, "small", numbered=True)
    accept(store, 1, small)
    second = accept(store, 2, small)
    assert any("100 % used" in w for w in second.warnings)
    with pytest.raises(NumberingError, match=r"register 'small'.*TINY1-2.*exhausted") as raised:
        accept(store, 3, small)
    assert raised.value.error.field == "caja"
    assert raised.value.error.rule == "numbering_range_exhausted"
    assert store.get(key(3)) is None  # nothing half-written
    old = NumberingRange("2", "OLD", 1, 9, date(2019, 1, 1), date(2020, 1, 1), "k", register="old")
    ranges.add(ISSUER, old)
    with pytest.raises(NumberingError, match="expired") as expired:
        accept(store, 4, DocumentPlan(DocumentKind.INVOICE, "old", numbered=True))
    assert expired.value.error.rule == "numbering_range_expired"
    with pytest.raises(NumberingError, match="no active POS numbering range") as none:
        accept(store, 5, DocumentPlan(DocumentKind.POS, "1", numbered=True))
    assert none.value.error.rule == "no_numbering_range"


def test_only_one_worker_claims_an_order(store: SqlDocumentStore) -> None:
    accept(store)
    with ThreadPoolExecutor(max_workers=8) as pool:
        claims = list(pool.map(lambda _: store.claim(key(), 60), range(8)))
    assert sum(c is not None for c in claims) == 1


def test_a_lost_claim_cannot_overwrite_the_new_owner(engine: Engine, clean_db: Engine) -> None:
    clock = [datetime.now(UTC)]
    store = with_range(clean_db, lambda: clock[0])
    accept(store)
    stale = store.claim(key(), 10)
    assert stale is not None and not stale.was_maybe_sent
    clock[0] += timedelta(seconds=11)
    fresh = store.claim(key(), 10)
    assert fresh is not None and fresh.was_maybe_sent  # the first may have sent: ask first
    assert not store.finish(stale, State.SUCCESS, {}, StepNote("SUCCESS"), None)
    assert store.finish(fresh, State.SUCCESS, {"cufe": "c"}, StepNote("SUCCESS"), None)
    # the stale worker wakes again after the document ended: neither a second final row nor
    # an open row after it, only late reports
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert not store.defer(stale, State.EN_ESPERA, later, {}, StepNote("EN_ESPERA"), None)
    assert not store.finish(stale, State.FAILED, {}, StepNote("FAILED"), None)
    record = store.get(key())
    assert record is not None and record.state is State.SUCCESS and record.references["cufe"] == "c"
    timeline = store.timeline(key())
    statuses = [e.status for e in timeline]
    assert (
        statuses == ["RECIBIDO", "PROCESANDO", "PROCESANDO", "TARDIO", "SUCCESS"] + ["TARDIO"] * 2
    )
    late = [e.response_out for e in timeline if e.status == "TARDIO"]
    assert [r["reported"] for r in late if r] == ["SUCCESS", "EN_ESPERA", "FAILED"]
    assert all(r and r["claim_lost"] is True and r["attempt"] == 1 for r in late)


def test_two_reconcilers_get_disjoint_orders(store: SqlDocumentStore, clean_db: Engine) -> None:
    for n in range(100):
        accept(store, n)
    with clean_db.begin() as conn:
        conn.execute(text("UPDATE documents SET published_at = NULL"))
    now = datetime.now(UTC) + timedelta(seconds=1)
    barrier = threading.Barrier(2)

    def run(_: int) -> list[OrderKey]:
        barrier.wait()
        return store.due_for_publish(now, 60, 1000)

    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.map(run, range(2))
    assert len(a) + len(b) == 100 and not set(a) & set(b)
    assert store.due_for_publish(now, 60, 1000) == []  # already on their way


def test_expired_leases_are_due_for_publish(clean_db: Engine) -> None:
    clock = [datetime.now(UTC)]
    store = with_range(clean_db, lambda: clock[0])
    accept(store)
    assert store.due_for_publish(clock[0], 60, 10) == []  # published at accept
    store.claim(key(), 30)
    clock[0] += timedelta(seconds=31)
    assert store.due_for_publish(clock[0], 60, 10) == [key()]


def test_the_reconcile_query_uses_the_due_index(store: SqlDocumentStore, clean_db: Engine) -> None:
    for n in range(50):
        accept(store, n)
    with clean_db.begin() as conn:
        conn.execute(text("ANALYZE documents"))
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                text(
                    "EXPLAIN SELECT id FROM documents WHERE due_at IS NOT NULL AND due_at <= now() "
                    "ORDER BY due_at LIMIT 100"
                )
            )
        )
    assert "ix_documents_due_at_open" in plan


def test_reopen_moves_a_failed_order_back_to_waiting(store: SqlDocumentStore) -> None:
    accept(store)
    claim = store.claim(key(), 60)
    assert claim is not None
    store.finish(claim, State.FAILED, {}, StepNote("FAILED", {"error": "gateway_unavailable"}), {})
    reopened = store.reopen(key(), StepNote("REINTENTO", {"operator": "test"}))
    assert reopened is not None and reopened.state is State.EN_ESPERA and reopened.maybe_sent
    assert store.reopen(key(), StepNote("REINTENTO")) is None  # only FAILED orders


def test_refused_input_is_recorded_apart_from_the_orders_timeline(
    store: SqlDocumentStore, clean_db: Engine
) -> None:
    accept(store, 9)
    for _ in range(3):
        store.refuse(key(9), {"id_pedido_origen": "POS-9"}, [FieldError("items", "too_short", "x")])
    assert [e.status for e in store.timeline(key(9))] == ["RECIBIDO"]
    refused = store.refusals(key(9), limit=2)
    assert refused.count == 3 and len(refused.latest) == 2
    assert refused.latest[-1].status == RefusalStatus.RECHAZADO_ENTRADA
    assert refused.latest[-1].response_out["errors"][0]["field"] == "items"  # type: ignore[index]
    for statement in (
        "UPDATE intake_refusals SET status = 'CONFLICTO'",
        "DELETE FROM intake_refusals",
    ):
        with pytest.raises(DBAPIError, match="append-only"), clean_db.begin() as conn:
            conn.execute(text(statement))


def test_the_timeline_comes_in_pages(store: SqlDocumentStore) -> None:
    accept(store, 5)
    for attempt in range(4):
        claim = store.claim(key(5), 60)
        assert claim is not None
        due = datetime.now(UTC) - timedelta(seconds=1)
        store.defer(claim, State.PENDIENTE, due, {}, StepNote("REINTENTO", {"n": attempt}), None)
    everything = [e.id for e in store.timeline(key(5))]
    assert len(everything) == 9
    seen, after = [], None
    while True:
        page = store.timeline_page(key(5), after, 4)
        seen += [e.id for e in page.entries]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == everything


def test_the_application_role_can_only_append_to_the_audit_trail(
    store: SqlDocumentStore, database_url: str
) -> None:
    accept(store)
    app = create_engine(database_url.replace("postgres@", f"{APP_ROLE}@", 1))
    try:
        with app.begin() as conn:  # what the worker does: read, append, move orders along
            conn.execute(text("SELECT count(*) FROM invoice_log")).scalar_one()
            conn.execute(text("UPDATE documents SET state = 'PROCESANDO'"))
            conn.execute(
                text(
                    "INSERT INTO invoice_log (status, order_key, payload_in) "
                    "VALUES ('PROCESANDO', :key, '{}')"
                ),
                {"key": str(key())},
            )
        for statement in (
            "UPDATE invoice_log SET status = 'SUCCESS'",
            "DELETE FROM invoice_log",
            "TRUNCATE invoice_log",
            "ALTER TABLE invoice_log DISABLE TRIGGER USER",
            "ALTER TABLE invoice_log DISABLE TRIGGER invoice_log_append",
            "ALTER TABLE documents DISABLE TRIGGER documents_match_trail",
        ):
            with pytest.raises(DBAPIError), app.begin() as conn:
                conn.execute(text(statement))
    finally:
        app.dispose()


def _pooled_backend(engine: Engine) -> int:
    """The server process of the connection the pool hands out next (the one just returned)."""
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()


def test_a_step_whose_pooled_connection_died_is_sent_once_more_on_a_new_one(
    database_url: str, clean_db: Engine
) -> None:
    own = make_engine(database_url, pool_size=1)  # one pooled connection, pinged only when idle
    try:
        store = with_range(own)
        accept(store)
        _terminate(clean_db, _pooled_backend(own))  # the database restarted, say
        claim = store.claim(key(), 60)
        assert claim is not None and claim.attempt == 1
        _terminate(clean_db, _pooled_backend(own))
        assert store.finish(claim, State.SUCCESS, {"cufe": "c"}, StepNote("SUCCESS"), None)
    finally:
        own.dispose()
    assert [e.status for e in store.timeline(key())] == ["RECIBIDO", "PROCESANDO", "SUCCESS"]


def test_a_connection_idle_in_the_pool_is_pinged_and_replaced_when_dead(
    database_url: str, clean_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)  # every checkout counts as idle
    own = make_engine(database_url, pool_size=1)
    try:
        dead = _pooled_backend(own)
        _terminate(clean_db, dead)
        assert _pooled_backend(own) != dead  # no error reached the caller
    finally:
        own.dispose()


def test_a_session_that_lost_its_prepared_steps_prepares_them_again(
    database_url: str, clean_db: Engine
) -> None:
    own = make_engine(database_url, pool_size=1)
    try:
        store = with_range(own)
        accept(store, 1)
        accept(store, 2)
        first = store.claim(key(1), 60)
        assert first is not None
        assert store.finish(first, State.SUCCESS, {"cufe": "c"}, StepNote("SUCCESS"), None)
        with own.connect() as conn:  # what DISCARD ALL or a pooler does to a session
            conn.exec_driver_sql("DEALLOCATE ALL")
            conn.commit()
        second = store.claim(key(2), 60)
        assert second is not None
        assert store.finish(second, State.SUCCESS, {"cufe": "d"}, StepNote("SUCCESS"), None)
    finally:
        own.dispose()
    assert [e.status for e in store.timeline(key(2))] == ["RECIBIDO", "PROCESANDO", "SUCCESS"]


@pytest.mark.parametrize("numbered", [True, False], ids=["numbered", "numbered-by-provider"])
def test_a_batch_stores_each_order_as_a_single_accept_does(
    clean_db: Engine, numbered: bool
) -> None:
    """Rows, trail and record of an order accepted in a batch are those of a single accept:
    only its key, its number and the rows' ids differ."""
    now = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    store = with_range(clean_db, lambda: now)
    plan = DocumentPlan(DocumentKind.INVOICE, "1", numbered=numbered)
    single = store.accept(key(1), parse_order(order("POS-1")), "simulated", plan)
    batch = [ValidOrder(key(n), parse_order(order(f"POS-{n}")), plan) for n in (2, 3)]
    answers = store.accept_many(batch, "simulated")

    def stored(n: int) -> dict[str, object]:
        with clean_db.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT o.payload, o.fingerprint, o.register AS order_register, "
                    "o.created_at AS order_created_at, d.*, l.status, l.payload_in, "
                    "l.response_out FROM orders o JOIN documents d ON d.order_ref = o.id "
                    "JOIN invoice_log l ON l.order_key = d.issuer || ':' || d.order_id "
                    "WHERE o.order_id = :id"
                ),
                {"id": f"POS-{n}"},
            ).one()
        row = dict(found._mapping)
        for name in ("id", "order_ref", "order_id", "consecutive", "number", "refs"):
            row.pop(name)
        row["payload"] = {**row["payload"], "id_pedido_origen": "?"}
        row["payload_in"] = {**row["payload_in"], "order_key": "?", "order": row["payload"]}
        row["response_out"] = {**row["response_out"], "number": "?"}
        row.pop("fingerprint")
        return row

    assert stored(2) == stored(1) == stored(3)
    records = [single.record] + [a.record for a in answers if isinstance(a, Acceptance)]
    assert [r.number for r in records] == (
        [DocumentNumber("SETP", 990000000 + n) for n in range(3)] if numbered else [None] * 3
    )
    assert [r.references for r in records] == (
        [{"number": f"SETP{990000000 + n}"} for n in range(3)] if numbered else [{}] * 3
    )
    assert [r.fingerprint for r in records] == [
        parse_order(order(f"POS-{n}")).fingerprint() for n in (1, 2, 3)
    ]
    first = records[0]
    assert [
        replace(r, key=first.key, number=None, references={}, payload={}, fingerprint="")
        for r in records
    ] == [replace(first, number=None, references={}, payload={}, fingerprint="")] * 3
