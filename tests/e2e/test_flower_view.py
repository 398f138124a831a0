"""What Flower sees, from the task events a real worker and beat send on Redis: a rejected order
is a failed task with its reason, handled once; the reconciler does not fill the task list."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.events import EventLog
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from worker.ops.broker import queue_depth
from worker.producer import Producer
from worker.publisher import TASK_RECONCILE, task_id_for

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]


def test_a_rejected_order_is_a_failed_task_with_its_rule_handled_once(
    pipeline_factory: Factory,
) -> None:
    p = pipeline_factory()
    with EventLog(p.env["BROKER_URL"]) as events:
        p.start_worker()
        events.wait_for(lambda: events.of_type("worker-online"), 60, "the worker online")
        with Producer(p.settings()) as producer:  # nobody watches yet: no task events
            unwatched = task_id_for(producer.enqueue(order("FLW-UNWATCHED-1")).key)
        wait_until(lambda: p.states() == {"SUCCESS": 1}, 60, "the unwatched order", p)
        beats = len(events.of_type("worker-heartbeat"))  # a later event of the same worker
        events.wait_for(lambda: len(events.of_type("worker-heartbeat")) > beats, 15, "a beat")
        unwatched_events = events.for_task(unwatched)
        events.watch_tasks()
        with Producer(p.settings()) as producer:
            rejected = producer.enqueue(order("FLW-RECHAZO-1")).key  # the simulator rejects it
            accepted = producer.enqueue(order("FLW-OK-1")).key
        wait_until(lambda: p.states() == {"FAILED": 1, "SUCCESS": 2}, 60, "both final", p)
        failed_id, ok_id = task_id_for(rejected), task_id_for(accepted)
        events.wait_for(lambda: events.task_state(failed_id) == "FAILURE", 15, "FAILURE")
        events.wait_for(lambda: events.task_state(ok_id) == "SUCCESS", 15, "SUCCESS")
        kinds = [e["type"] for e in events.for_task(failed_id)]
        failure = next(e for e in events.for_task(failed_id) if e["type"] == "task-failed")

        def settled() -> bool:  # acknowledged: the ack follows the task's last event closely
            depth = queue_depth(p.env["BROKER_URL"], p.queue)
            return depth is not None and (depth.ready, depth.unacked) == (0, 0)

        wait_until(settled, 15, "every message acknowledged", p)

    assert unwatched_events == []
    # Flower's "Failed" filter is state FAILURE; the exception column carries the reason
    assert "OrderFailed" in failure["exception"]
    assert f"{rejected} FAILED: rejected by the authority: FAD06 Rechazo" in failure["exception"]
    # handled once: no retry, no redelivery, acknowledged
    assert kinds.count("task-received") == 1 and "task-retried" not in kinds
    counts = p.audit_counts()
    assert counts[(str(rejected), "PROCESANDO")] == 1 and counts[(str(rejected), "FAILED")] == 1
    # an expected outcome, not a crash: no traceback in the worker's log
    log = (p.workdir / "w1.log").read_text()
    assert "OrderFailed" in log and "Traceback" not in log and "raised unexpected" not in log


def test_the_reconciler_works_without_appearing_in_the_task_list(
    pipeline_factory: Factory,
) -> None:
    p = pipeline_factory()
    unreachable = p.settings().model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with Producer(unreachable) as producer:  # durable, but no wake-up sent: only beat can
        key = producer.enqueue(order("FLW-RECONCILED-1")).key
    with EventLog(p.env["BROKER_URL"]) as events:
        p.start_worker()
        events.watch_tasks()
        p.start_beat()  # reconciling every second
        wait_until(lambda: p.states() == {"SUCCESS": 1}, 60, "the reconciled order", p)
        events.wait_for(lambda: events.task_state(task_id_for(key)) == "SUCCESS", 15, "SUCCESS")
        names = {e.get("name") for e in events.of_type("task-")}

    assert "einvoice.process_order" in names  # the wake-up it sent is there
    assert TASK_RECONCILE not in names  # the reconcile runs themselves are not
    assert set(events.state.tasks) == {task_id_for(key)}


def test_task_events_stop_once_nobody_asks_for_them(pipeline_factory: Factory) -> None:
    p = pipeline_factory(WORKER__EVENTS_WATCH_TIMEOUT="8")
    log = p.workdir / "w1.log"
    with EventLog(p.env["BROKER_URL"]) as events, Producer(p.settings()) as producer:
        p.start_worker()
        events.watch_tasks()  # asked once, then never again
        watched = task_id_for(producer.enqueue(order("FLW-WATCHED-1")).key)
        events.wait_for(lambda: events.task_state(watched) == "SUCCESS", 30, "the watched task")
        assert "nobody asked for task events" not in log.read_text()
        wait_until(
            lambda: "nobody asked for task events" in log.read_text(), 30, "events stopped", p
        )
        unwatched = task_id_for(producer.enqueue(order("FLW-UNWATCHED-2")).key)
        wait_until(lambda: p.states() == {"SUCCESS": 2}, 30, "the unwatched order", p)
        beats = len(events.of_type("worker-heartbeat"))  # a later event of the same worker
        events.wait_for(lambda: len(events.of_type("worker-heartbeat")) > beats, 15, "a beat")

    assert events.for_task(unwatched) == []
