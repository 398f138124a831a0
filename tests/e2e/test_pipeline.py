"""End to end: real worker and beat processes, real Redis and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from domain.errors import InvalidOrder
from domain.ports import OrderKey
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from worker.producer import Producer

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]


def test_a_hundred_orders_succeed_once_each_with_a_duplicate_and_an_invalid_one(
    pipeline_factory: Factory,
) -> None:
    p = pipeline_factory()
    p.start_worker()
    p.start_beat()
    orders = [order(f"E2E-{n:03d}") for n in range(100)]
    with Producer(p.settings()) as producer:
        results = [producer.enqueue(o) for o in orders]
        duplicates = [producer.enqueue(o) for o in orders[:10]]  # the POS sends again
        with pytest.raises(InvalidOrder) as invalid:
            producer.enqueue({**order("E2E-BAD"), "total_factura": "1"})
    assert all(r.created for r in results) and not any(d.created for d in duplicates)
    assert invalid.value.errors[0].field == "total_factura"

    wait_until(lambda: p.states().get("SUCCESS") == 100, 90, "100 SUCCESS", p)
    counts = p.audit_counts()
    for r in results:
        assert counts[(str(r.key), "PROCESANDO")] == 1, r.key
        assert counts[(str(r.key), "SUCCESS")] == 1, r.key
    submissions = p.authority.submissions()
    assert len(submissions) == 100 and set(submissions.values()) == {1}
    bad_key = OrderKey(p.settings().issuer.nit, "E2E-BAD")
    assert p.store.refusals(bad_key).count == 1
    assert p.store.get(bad_key) is None  # refused at intake: never numbered, never sent
    assert not [k for k in counts if k[0] == str(bad_key)]
    timeline = p.store.timeline(results[0].key)
    assert [e.status for e in timeline] == ["RECIBIDO", "PROCESANDO", "SUCCESS"]


def test_a_worker_killed_mid_call_loses_nothing_and_submits_nothing_twice(
    pipeline_factory: Factory,
) -> None:
    p = pipeline_factory(SIMULATED__LATENCY="1.5")
    worker = p.start_worker("w1")
    p.start_beat()
    with Producer(p.settings()) as producer:
        keys = [producer.enqueue(order(f"KILL-{n:02d}")).key for n in range(12)]

    wait_until(lambda: p.states().get("PROCESANDO", 0) >= 2, 30, "calls in flight", p)
    time.sleep(0.5)  # well inside the 1.5 s gateway call
    p.kill(worker)  # SIGKILL to the main process and its pool children
    in_flight = p.states().get("PROCESANDO", 0)
    assert in_flight >= 1

    p.start_worker("w2")
    wait_until(lambda: p.states().get("SUCCESS") == 12, 120, "all 12 SUCCESS after the kill", p)
    submissions = p.authority.submissions()
    assert sorted(submissions) == sorted(f"{k.issuer}-{k.order_id}" for k in keys)
    assert set(submissions.values()) == {1}, submissions
    counts = p.audit_counts()
    assert all(counts[(str(k), "SUCCESS")] == 1 for k in keys)


def test_a_publish_that_fails_after_the_commit_loses_nothing(pipeline_factory: Factory) -> None:
    p = pipeline_factory()
    settings = p.settings().model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    started = time.monotonic()
    with Producer(settings) as producer:  # the broker is unreachable for this producer
        keys = [producer.enqueue(order(f"LOST-{n}")).key for n in range(3)]
    assert time.monotonic() - started < 30  # the producer does not hang on the broker
    assert p.states() == {"PENDIENTE": 3}  # durable, though no wake-up was sent
    p.start_worker()
    p.start_beat()  # the reconciler sends the wake-ups
    wait_until(lambda: p.states().get("SUCCESS") == 3, 60, "reconciled orders", p)
    assert all(p.authority.submissions()[f"{k.issuer}-{k.order_id}"] == 1 for k in keys)
