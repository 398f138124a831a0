"""`Producer.enqueue_many`: batches stored in one transaction each, numbered gap-free, then
woken; duplicates, conflicts and invalid orders answered one by one as `enqueue` answers them
(real PostgreSQL migrated by Alembic, real Redis, SQLite for the demo's path)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from domain.errors import InvalidOrder, OrderConflict
from domain.order import parse_order
from domain.ports import OrderKey
from domain.store import RefusalStatus, State
from domain.usecases.enqueue import Answer, Enqueued
from tests.factories import order
from worker.migrations import upgrade
from worker.producer import Producer
from worker.settings import Settings, SimulatedSettings

FIRST = 990000000  # the settings' invoice range starts here (SETP)


def settings_for(database_url: str, redis_url: str, queue: str, tmp: Path) -> Settings:
    return Settings(
        database_url=database_url,
        broker_url=redis_url,
        queue=queue,
        gateway="simulated",
        simulated=SimulatedSettings(state_path=tmp / "authority.sqlite"),
    )


@pytest.fixture
def queue(redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    name = f"many-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    yield name, client
    client.delete(name)
    client.close()


@pytest.fixture
def producer(
    database_url: str,
    clean_db: Engine,
    redis_url: str,
    queue: tuple[str, redis.Redis],
    tmp_path: Path,
) -> Iterator[Producer]:
    with Producer(settings_for(database_url, redis_url, queue[0], tmp_path)) as made:
        yield made


def woken(queue: tuple[str, redis.Redis]) -> list[str]:
    """The order keys of the wake-ups waiting on the queue, oldest first."""
    name, client = queue
    keys = []
    for raw in reversed(client.lrange(name, 0, -1)):
        message = json.loads(raw)
        assert message["headers"]["task"] == "einvoice.process_order"
        keys.append(message["headers"]["argsrepr"].strip("[]'"))
    return keys


def enqueued(answers: list[Answer]) -> list[Enqueued]:
    assert all(isinstance(a, Enqueued) for a in answers), answers
    return [a for a in answers if isinstance(a, Enqueued)]


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_batches_are_durable_numbered_gap_free_in_order_then_woken(
    producer: Producer, clean_db: Engine, queue: tuple[str, redis.Redis]
) -> None:
    orders = [order(f"SYNC-{n}") for n in range(1200)]

    answers = enqueued(producer.enqueue_many(orders, batch=500))

    assert [a.key.order_id for a in answers] == [o["id_pedido_origen"] for o in orders]
    assert all(a.created and a.state is State.PENDIENTE for a in answers)
    assert [a.number for a in answers] == [f"SETP{FIRST + n}" for n in range(1200)]
    assert count(clean_db, "SELECT count(*) FROM documents WHERE state = 'PENDIENTE'") == 1200
    assert count(clean_db, "SELECT count(*) FROM invoice_log WHERE status = 'RECIBIDO'") == 1200
    assert count(clean_db, "SELECT count(DISTINCT order_key) FROM invoice_log") == 1200
    assert (
        count(clean_db, "SELECT next_number FROM numbering_ranges WHERE kind = '01'")
        == FIRST + 1200
    )
    assert woken(queue) == [str(a.key) for a in answers]
    # the trail of a batch's document is the one a single accept writes, and it chains
    trail = producer._container.store.timeline(answers[700].key)
    assert [e.status for e in trail] == ["RECIBIDO"]
    assert trail[0].response_out == {
        "state": "PENDIENTE",
        "kind": "01",
        "register": "1",
        "number": f"SETP{FIRST + 700}",
        "gateway": "simulated",
    }
    assert count(clean_db, "SELECT count(*) FROM invoice_log WHERE chain_hash IS NULL") == 0


def test_duplicates_conflicts_and_invalid_orders_inside_a_batch(
    producer: Producer, queue: tuple[str, redis.Redis]
) -> None:
    stored = producer.enqueue(order("A"))
    changed_a = order("A", tip=1000)
    invalid = {**order("C"), "subtotal": "1"}
    batch = [
        order("A"),
        changed_a,
        order("B"),
        order("B"),
        order("B", tip=500),
        invalid,
        order("D"),
    ]

    answers = producer.enqueue_many(batch)

    same_a, conflict_a, new_b, again_b, conflict_b, refused_c, new_d = answers
    assert isinstance(same_a, Enqueued) and not same_a.created
    assert same_a.number == stored.number == f"SETP{FIRST}"
    assert isinstance(conflict_a, OrderConflict) and "A" in str(conflict_a)
    assert isinstance(new_b, Enqueued) and new_b.created and new_b.number == f"SETP{FIRST + 1}"
    assert isinstance(again_b, Enqueued) and not again_b.created
    assert again_b.number == new_b.number
    assert isinstance(conflict_b, OrderConflict)
    assert isinstance(refused_c, InvalidOrder)
    assert {(e.field, e.rule) for e in refused_c.errors} >= {("subtotal", "subtotal_sum")}
    # refused and repeated orders take no number: the next new one follows without a gap
    assert isinstance(new_d, Enqueued) and new_d.number == f"SETP{FIRST + 2}"

    store = producer._container.store
    issuer = producer.issuer
    assert [e.status for e in store.refusals(OrderKey(issuer, "A")).latest] == [
        RefusalStatus.CONFLICTO.value
    ]
    assert [e.status for e in store.refusals(OrderKey(issuer, "B")).latest] == [
        RefusalStatus.CONFLICTO.value
    ]
    assert [e.status for e in store.refusals(OrderKey(issuer, "C")).latest] == [
        RefusalStatus.RECHAZADO_ENTRADA.value
    ]
    assert store.get(OrderKey(issuer, "C")) is None
    record_b = store.get(OrderKey(issuer, "B"))
    assert record_b is not None  # the first B stands
    assert record_b.fingerprint == parse_order(order("B")).fingerprint()
    # one wake-up per new document: A's from its own enqueue, then B's and D's
    assert woken(queue) == [f"{issuer}:A", f"{issuer}:B", f"{issuer}:D"]


def test_a_batch_whose_transaction_fails_stores_nothing_uses_no_number_publishes_nothing(
    producer: Producer, clean_db: Engine, queue: tuple[str, redis.Redis]
) -> None:
    producer.enqueue_many([order("WARM")])  # the configured range is stored; one number used
    with clean_db.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.order_id = 'BOOM' THEN RAISE EXCEPTION 'disk full'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON documents "
                "FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
            )
        )
    batch = [order("X1"), order("X2"), order("BOOM"), order("X3")]
    try:
        with pytest.raises(DBAPIError, match="disk full"):
            producer.enqueue_many(batch)
    finally:
        with clean_db.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_boom ON documents"))
            conn.execute(text("DROP FUNCTION refuse_boom()"))

    assert count(clean_db, "SELECT count(*) FROM orders") == 1
    assert count(clean_db, "SELECT count(*) FROM documents") == 1
    assert count(clean_db, "SELECT count(*) FROM invoice_log") == 1
    assert (
        count(clean_db, "SELECT next_number FROM numbering_ranges WHERE kind = '01'") == FIRST + 1
    )
    assert woken(queue) == [f"{producer.issuer}:WARM"]
    # the same batch sent again takes the numbers the failed one gave back
    again = enqueued(producer.enqueue_many(batch))
    assert [a.number for a in again] == [f"SETP{FIRST + n}" for n in range(1, 5)]


def test_the_same_batch_api_works_on_sqlite(
    tmp_path: Path, redis_url: str, queue: tuple[str, redis.Redis]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    orders: list[Any] = [order(f"S-{n}") for n in range(30)]
    orders.insert(10, order("S-3"))  # a repeat
    orders.insert(20, {"id_pedido_origen": "S-BAD"})
    with Producer(settings_for(url, redis_url, queue[0], tmp_path)) as producer:
        answers = producer.enqueue_many(orders, batch=7)
    numbers = [a.number for a in answers if isinstance(a, Enqueued) and a.created]
    assert numbers == [f"SETP{FIRST + n}" for n in range(30)]
    repeat = answers[10]
    assert isinstance(repeat, Enqueued) and not repeat.created
    assert repeat.number == f"SETP{FIRST + 3}"
    assert isinstance(answers[20], InvalidOrder)
    assert len(woken(queue)) == 30
