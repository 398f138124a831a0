from __future__ import annotations

import pytest

from domain.documents import DocumentKind, Planner
from domain.errors import InvalidOrder, OrderConflict
from domain.ports import OrderKey
from domain.usecases.enqueue import enqueue
from tests.factories import SEED_ORDER, order
from tests.unit.fakes import FakeClock, FakeStore, RecordingPublisher

INVOICES = Planner(registers={"1": "invoice"}, default_register="1", numbered=False)


def run(data: object, store: FakeStore, publisher: RecordingPublisher, planner: Planner = INVOICES):  # type: ignore[no-untyped-def]
    return enqueue(
        data,
        issuer="900123456",
        gateway="simulated",
        planner=planner,
        store=store,
        publisher=publisher,
    )


def test_an_accepted_order_is_stored_then_published() -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher()
    result = run(SEED_ORDER, store, publisher)
    assert result.created and str(result.key) == "900123456:POS-100"
    assert publisher.published == [OrderKey("900123456", "POS-100")]
    assert store.statuses(result.key) == ["RECIBIDO"]


def test_the_same_order_again_returns_the_existing_one_without_a_second_publish() -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher()
    run(SEED_ORDER, store, publisher)
    again = run(SEED_ORDER, store, publisher)
    assert not again.created
    assert len(publisher.published) == 1


def test_the_same_key_with_another_payload_is_a_recorded_conflict() -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher()
    run(SEED_ORDER, store, publisher)
    with pytest.raises(OrderConflict):
        run(order("POS-100", tip=500), store, publisher)
    assert store.refused[-1][:2] == ("900123456:POS-100", "CONFLICTO")
    assert store.statuses(OrderKey("900123456", "POS-100")) == ["RECIBIDO"]


def test_an_invalid_order_is_recorded_as_refused_input_and_never_published() -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher()
    run(SEED_ORDER, store, publisher)
    with pytest.raises(InvalidOrder):
        run({**SEED_ORDER, "total_factura": 1}, store, publisher)
    assert store.refused[-1][:2] == ("900123456:POS-100", "RECHAZADO_ENTRADA")
    # the accepted order's own story is untouched
    assert store.statuses(OrderKey("900123456", "POS-100")) == ["RECIBIDO"]
    assert len(publisher.published) == 1


def test_a_failed_publish_loses_nothing() -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher(fail=True)
    result = run(SEED_ORDER, store, publisher)
    assert result.created
    row = store.rows[result.key]
    assert row.published_at is None  # the reconciler will publish it
    assert row.record.state.value == "PENDIENTE"


def _planner(mode: str, **registers: str) -> Planner:
    return Planner(
        registers={"1": mode, **registers},  # type: ignore[dict-item]
        default_register="1",
        numbered=False,
    )


def test_the_planner_decides_the_document_per_order() -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher()
    buyer = {"tipo_documento": "13", "numero_documento": "1020304050", "nombre": "Ana"}
    pos = _planner("pos")
    assert run(order("A"), store, publisher, pos).kind is DocumentKind.POS
    asked = {**order("B"), "adquirente": buyer, "documento": "factura"}
    assert run(asked, store, publisher, pos).kind is DocumentKind.INVOICE
    chosen = _planner("payload")
    assert run({**order("C"), "documento": "pos"}, store, publisher, chosen).kind == "20"
    assert run(order("D"), store, publisher, chosen).kind is DocumentKind.INVOICE
    assert run({**order("E"), "documento": "factura"}, store, publisher, INVOICES).kind == "01"


@pytest.mark.parametrize(
    ("planner", "data", "field", "rule"),
    [
        (INVOICES, {"caja": "9"}, "caja", "unknown_register"),
        (_planner("invoice"), {"documento": "pos"}, "documento", "document_kind_not_offered"),
        (_planner("pos"), {"documento": "factura"}, "documento", "invoice_needs_buyer"),
        (INVOICES, {"documento": "ticket"}, "documento", "literal_error"),
    ],
)
def test_an_order_the_planner_cannot_place_is_refused_at_intake(
    planner: Planner, data: dict[str, str], field: str, rule: str
) -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher()
    with pytest.raises(InvalidOrder) as refused:
        run({**order("X"), **data}, store, publisher, planner)
    assert [(e.field, e.rule) for e in refused.value.errors] == [(field, rule)]
    assert store.rows == {} and publisher.published == []
    assert store.refused[-1][1] == "RECHAZADO_ENTRADA"
