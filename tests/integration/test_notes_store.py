"""Notes on a real PostgreSQL: durable before the broker hears of them, waiting for their
document, never crediting more than remains whatever runs at once, idempotent by note id."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from adapters.db.ranges import SqlNumberingRanges
from adapters.db.store import SqlDocumentStore
from domain.documents import DocumentKind, DocumentPlan
from domain.errors import InvalidOrder, OrderConflict, UnknownOrder
from domain.issuer import NumberingRange
from domain.order import parse_order
from domain.ports import OrderKey
from domain.store import State, StepNote
from domain.usecases.enqueue import Enqueued
from domain.usecases.notes import enqueue_note
from tests.factories import line, order
from tests.unit.fakes import RecordingPublisher

ISSUER = "900123456"
VALID = (datetime(2019, 1, 1).date(), datetime(2030, 1, 1).date())
SALE = DocumentPlan(DocumentKind.INVOICE, "1", numbered=True)


@pytest.fixture
def store(clean_db: Engine) -> SqlDocumentStore:
    ranges = SqlNumberingRanges(clean_db)
    ranges.sync_configured(ISSUER, NumberingRange("1", "SETP", 1, 1000, *VALID, "key"))
    for kind, prefix in ((DocumentKind.CREDIT_NOTE, "NC"), (DocumentKind.DEBIT_NOTE, "ND")):
        ranges.sync_configured(ISSUER, NumberingRange("", prefix, 1, 1000, *VALID, kind=kind))
    return SqlDocumentStore(clean_db)


def sell(store: SqlDocumentStore, order_id: str = "S-1", quantity: int = 5) -> OrderKey:
    data = order(order_id, [line("Cerveza", quantity, 10000), line("Papas", 1, 8000, ())])
    key = OrderKey(ISSUER, order_id)
    store.accept(key, parse_order(data), "simulated", SALE)
    return key


def end(store: SqlDocumentStore, key: OrderKey, state: State) -> None:
    claim = store.claim(key, 60)
    assert claim is not None
    status = "SUCCESS" if state is State.SUCCESS else "FAILED"
    refs = {"cufe": "c" * 96} if state is State.SUCCESS else {}
    assert store.finish(claim, state, refs, StepNote(status), None)


def note(
    store: SqlDocumentStore,
    publisher: RecordingPublisher,
    data: dict[str, Any],
    order_id: str = "S-1",
) -> Enqueued:
    return enqueue_note(
        data,
        issuer=ISSUER,
        order_id=order_id,
        gateway="simulated",
        numbered=True,
        store=store,
        publisher=publisher,
    )


def ret(note_id: str, quantity: int = 1, line_no: int = 1) -> dict[str, Any]:
    return {
        "id_nota": note_id,
        "tipo": "devolucion",
        "lineas": [{"linea": line_no, "cantidad": quantity}],
    }


def test_a_note_waits_for_its_document_and_goes_out_when_it_succeeds(
    store: SqlDocumentStore,
) -> None:
    key = sell(store)
    publisher = RecordingPublisher()
    waiting = note(store, publisher, ret("R-1"))
    assert waiting.created and str(waiting.key) == f"{ISSUER}:S-1/R-1"
    assert waiting.kind is DocumentKind.CREDIT_NOTE and waiting.number == "NC1"
    assert publisher.published == []  # durable, not due: its document is not issued yet
    record = store.get(waiting.key)
    assert record is not None and record.due_at is None and record.corrects is not None
    assert waiting.key not in store.due_for_publish(datetime.now(UTC) + timedelta(hours=1), 0, 10)

    end(store, key, State.SUCCESS)
    due = store.due_for_publish(datetime.now(UTC) + timedelta(seconds=1), 0, 10)
    assert due == [waiting.key]
    claim = store.claim(waiting.key, 60)
    assert claim is not None and claim.record.corrects is not None
    assert claim.record.corrects.key == "c" * 96 and claim.record.corrects.number == "SETP1"
    after = note(store, publisher, ret("R-2"))
    assert publisher.published == [after.key]  # the document is SUCCESS: out at once
    assert [d.kind for d in store.documents_of(key)] == ["01", "91", "91"]


def test_no_note_credits_more_than_remains_even_all_at_once(
    store: SqlDocumentStore, clean_db: Engine
) -> None:
    key = sell(store, quantity=5)
    end(store, key, State.SUCCESS)
    barrier = threading.Barrier(8)

    def attempt(n: int) -> str:
        barrier.wait()
        try:
            note(store, RecordingPublisher(), ret(f"R-{n}"))
        except InvalidOrder as exc:
            return exc.errors[0].rule
        return "accepted"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("accepted") == 5
    assert set(outcomes) == {"accepted", "beyond_remaining"}
    with clean_db.connect() as conn:
        left = conn.execute(
            text("SELECT quantity, base FROM creditable_lines WHERE line_no = 1")
        ).one()
        refused = conn.execute(text("SELECT count(*) FROM intake_refusals")).scalar_one()
        numbers = conn.execute(
            text("SELECT number FROM documents WHERE note_id IS NOT NULL ORDER BY number")
        ).scalars()
        assert sorted(numbers) == [f"NC{n}" for n in range(1, 6)]  # nothing numbered in vain
    assert (left.quantity, left.base) == (0, 0) and refused == 3
    with pytest.raises(InvalidOrder) as void:
        note(store, RecordingPublisher(), ret("R-X", 1, 1))
    assert void.value.errors[0].rule == "beyond_remaining"
    with pytest.raises(DBAPIError, match="not_overcredited"), clean_db.begin() as conn:
        conn.execute(text("UPDATE creditable_lines SET quantity = quantity - 1 WHERE line_no = 1"))


def test_a_void_takes_everything_left_once(store: SqlDocumentStore) -> None:
    key = sell(store)
    end(store, key, State.SUCCESS)
    publisher = RecordingPublisher()
    note(store, publisher, ret("R-1", 2))
    void = note(store, publisher, {"id_nota": "V-1", "tipo": "anulacion"})
    record = store.get(void.key)
    assert record is not None and record.note is not None
    assert record.note["figures"]["total"] == "40400.00"  # 3 × 10000 + INC 8 % + 8000
    with pytest.raises(InvalidOrder) as again:
        note(store, publisher, {"id_nota": "V-2", "tipo": "anulacion"})
    assert again.value.errors[0].rule == "nothing_left"
    refused = store.refusals(OrderKey(ISSUER, "S-1", "V-2"))
    assert refused.count == 1 and refused.latest[0].status == "RECHAZADO_ENTRADA"


def test_the_same_note_again_is_the_same_note_and_another_under_its_id_a_conflict(
    store: SqlDocumentStore,
) -> None:
    sell(store)
    publisher = RecordingPublisher()
    first = note(store, publisher, ret("R-1"))
    again = note(store, publisher, ret("R-1"))
    assert first.created and not again.created and again.number == first.number
    with pytest.raises(OrderConflict):
        note(store, publisher, ret("R-1", 2))
    assert store.refusals(first.key).latest[-1].status == "CONFLICTO"
    sell(store, "S-2")
    with pytest.raises(OrderConflict):  # a note id names one note of the issuer
        note(store, publisher, ret("R-1"), order_id="S-2")


def test_notes_for_unknown_or_failed_orders_are_refused(store: SqlDocumentStore) -> None:
    with pytest.raises(UnknownOrder):
        note(store, RecordingPublisher(), ret("R-1"), order_id="NOPE")
    key = sell(store)
    end(store, key, State.FAILED)
    with pytest.raises(InvalidOrder) as failed:
        note(store, RecordingPublisher(), ret("R-1"))
    assert failed.value.errors[0].rule == "document_failed"


def test_a_failed_credit_gives_back_and_a_failed_document_fails_its_waiting_notes(
    store: SqlDocumentStore, clean_db: Engine
) -> None:
    key = sell(store, quantity=2)
    publisher = RecordingPublisher()
    waiting = note(store, publisher, ret("R-1", 2))
    end(store, key, State.FAILED)
    record = store.get(waiting.key)
    assert record is not None and record.state is State.FAILED
    assert record.reason == {
        "error": "document_failed",
        "message": "the document this note corrects failed",
    }
    assert [e.status for e in store.timeline(waiting.key)] == ["RECIBIDO", "FAILED"]

    other = sell(store, "S-2", quantity=2)
    end(store, other, State.SUCCESS)
    taken = note(store, publisher, ret("R-2", 2), order_id="S-2")
    claim = store.claim(taken.key, 60)
    assert claim is not None
    store.finish(claim, State.FAILED, {}, StepNote("FAILED", {"error": "rejected"}), None)
    again = note(store, publisher, ret("R-3", 2), order_id="S-2")  # the credit came back
    assert again.created
