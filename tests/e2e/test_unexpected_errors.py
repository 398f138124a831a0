"""Errors nothing maps leave the order due again within seconds, through the task, with no
beat running: the reconciler is the safety net, not the way such orders finish."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.events import EventLog
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from worker.producer import Producer
from worker.publisher import task_id_for

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]


def test_an_unexpected_gateway_error_is_retried_by_the_task_and_the_order_succeeds(
    pipeline_factory: Factory,
) -> None:
    p = pipeline_factory(SIMULATED__FAIL_FIRST="1")  # the authority's first call raises
    with EventLog(p.env["BROKER_URL"]) as events:
        p.start_worker()  # and no beat
        events.watch_tasks()
        with Producer(p.settings()) as producer:
            key = producer.enqueue(order("ODD-1")).key

        wait_until(lambda: p.states().get("SUCCESS") == 1, 30, "SUCCESS after the error", p)
        task_id = task_id_for(key)
        events.wait_for(lambda: events.task_state(task_id) == "SUCCESS", 10, "task SUCCESS")
        kinds = [e["type"] for e in events.for_task(task_id)]

    timeline = p.store.timeline(key)
    statuses = [e.status for e in timeline]
    assert statuses == ["RECIBIDO", "PROCESANDO", "EN_ESPERA", "PROCESANDO", "SUCCESS"]
    interrupted = timeline[2].response_out or {}
    assert interrupted["error"] == "interrupted" and interrupted["type"] == "RuntimeError"
    assert timeline[3].response_out is not None
    assert timeline[3].response_out["ask_authority_first"] is True  # asked before sending
    assert p.authority.submissions() == {f"{key.issuer}-{key.order_id}": 1}
    # Flower saw a retry with the error, then the success; never a failure
    assert "task-retried" in kinds and "task-failed" not in kinds
    retried = next(e for e in events.for_task(task_id) if e["type"] == "task-retried")
    assert "RuntimeError" in retried["exception"]


def test_a_worker_that_cannot_set_up_its_gateway_retries_a_few_times_then_fails(
    pipeline_factory: Factory,
) -> None:
    # no certificate configured: the DIAN gateway cannot be built
    p = pipeline_factory(GATEWAY="dian", DIAN__CONNECT_TIMEOUT="1", DIAN__READ_TIMEOUT="2")
    with EventLog(p.env["BROKER_URL"]) as events:
        p.start_worker()
        events.watch_tasks()
        with Producer(p.settings()) as producer:
            key = producer.enqueue(order("NOCERT-1")).key
        task_id = task_id_for(key)
        events.wait_for(lambda: events.task_state(task_id) == "FAILURE", 30, "the last failure")
        kinds = [e["type"] for e in events.for_task(task_id)]

    assert kinds.count("task-retried") == 3  # 1, 2 and 4 s apart, then it stops
    assert kinds.count("task-failed") == 1
    assert p.states() == {"PENDIENTE": 1}  # untouched: due, the reconciler will send it again
    assert [e.status for e in p.store.timeline(key)] == ["RECIBIDO"]
