"""A worker paused past its lease with a call in flight (SIGSTOP) never writes a second
outcome onto a document another worker finished: what it learns late is a TARDIO row."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text

from adapters.db.evidence import verify
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from worker.producer import Producer

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]
LEASE = 12.0  # the harness's WORKER__LEASE_SECONDS


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_worker_paused_past_its_lease_writes_no_second_outcome(
    pipeline_factory: Factory, pool: str
) -> None:
    p = pipeline_factory(SIMULATED__LATENCY="3", WORKER__POOL=pool, WORKER__CONCURRENCY="1")
    paused = p.start_worker("w1")
    with Producer(p.settings()) as producer:
        k = producer.enqueue(order("PAUSED-1")).key
    wait_until(lambda: p.states().get("PROCESANDO") == 1, 30, "the call in flight", p)
    time.sleep(0.5)  # inside the 3 s gateway call
    os.killpg(paused.pid, signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        p.start_beat()  # its reconciler hands the order on once the lease has expired
        p.start_worker("w2")
        wait_until(lambda: p.states().get("SUCCESS") == 1, 60, "the order finished by w2", p)
        assert time.monotonic() - stopped_at > LEASE
    finally:
        os.killpg(paused.pid, signal.SIGCONT)
    # the paused worker wakes with its call's answer, or its time limit, and reports late
    wait_until(lambda: len(_statuses(p, str(k))) > 4, 30, "the paused worker's report", p)
    time.sleep(2)  # anything else it would write
    statuses = _statuses(p, str(k))
    assert statuses.count("SUCCESS") == 1, statuses
    final = statuses.index("SUCCESS")
    assert set(statuses[final + 1 :]) <= {"TARDIO"}, statuses
    assert "TARDIO" in statuses and [s for s in statuses if s != "TARDIO"] == [
        "RECIBIDO",
        "PROCESANDO",
        "PROCESANDO",
        "SUCCESS",
    ], statuses
    record = p.store.get(k)
    assert record is not None and record.state.value == "SUCCESS"
    assert verify(p.engine).findings == []


def _statuses(p: Pipeline, key: str) -> list[str]:
    with p.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status FROM invoice_log WHERE order_key = :k ORDER BY id"), {"k": key}
        )
        return [r.status for r in rows]
