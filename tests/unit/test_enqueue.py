from __future__ import annotations

import pytest

from domain.errors import InvalidOrder, OrderConflict
from domain.ports import OrderKey
from domain.usecases.enqueue import enqueue
from tests.factories import SEED_ORDER, order
from tests.unit.fakes import FakeClock, FakeStore, RecordingPublisher


def run(data: object, store: FakeStore, publisher: RecordingPublisher):  # type: ignore[no-untyped-def]
    return enqueue(
        data,
        issuer="900123456",
        gateway="simulated",
        numbering=None,
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
    assert store.statuses(OrderKey("900123456", "POS-100"))[-1] == "CONFLICTO"


def test_an_invalid_order_is_recorded_as_failed_and_never_published() -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher()
    with pytest.raises(InvalidOrder):
        run({**SEED_ORDER, "total_factura": 1}, store, publisher)
    assert store.audit[-1][1] == "FAILED"
    assert publisher.published == []


def test_a_failed_publish_loses_nothing() -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher(fail=True)
    result = run(SEED_ORDER, store, publisher)
    assert result.created
    row = store.rows[result.key]
    assert row.published_at is None  # the reconciler will publish it
    assert row.record.state.value == "PENDIENTE"
