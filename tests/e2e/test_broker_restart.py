"""The broker is killed and restarted empty while orders flow: workers keep working.

Each test starts its own `redis-server` on a free port (never the machine's shared one), real
worker processes (`python -m worker worker`, prefork and threads) and beat, kills Redis with
SIGKILL several times while gateway calls are in flight, and requires that no worker process
ends, and that every order is issued once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaos.services import RedisServer
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from worker.producer import Producer

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]
ORDERS = 200
RESTARTS = 5


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_workers_outlive_redis_killed_and_restarted_under_load(
    pipeline_factory: Factory, own_redis: RedisServer
) -> None:
    p = pipeline_factory(
        BROKER_URL=own_redis.url, SIMULATED__LATENCY="0.2", WORKER__CONCURRENCY="4"
    )
    workers = {
        "prefork": p.start("worker", "--name", f"pf@{p.queue}", "--pool", "prefork", name="pf"),
        "threads": p.start("worker", "--name", f"th@{p.queue}", "--pool", "threads", name="th"),
    }
    p.start_beat()
    with Producer(p.settings()) as producer:
        for n in range(ORDERS):
            producer.enqueue(order(f"BRK-{n:03d}"))

    for restart in range(RESTARTS):
        done = (restart + 1) * ORDERS // (RESTARTS + 2)
        wait_until(lambda d=done: p.states().get("SUCCESS", 0) >= d, 90, f"{done} SUCCESS", p)
        own_redis.kill()
        time.sleep(2)
        own_redis.start()  # the same port, empty: nothing persisted
        time.sleep(4)
        ended = {name: w.returncode for name, w in workers.items() if w.poll() is not None}
        assert not ended, f"workers ended after restart {restart + 1}: {ended}\n{p.logs()}"

    wait_until(lambda: p.states().get("SUCCESS", 0) == ORDERS, 180, "every order SUCCESS", p)
    assert all(w.poll() is None for w in workers.values()), p.logs()
    submissions = p.authority.submissions()
    assert len(submissions) == ORDERS and set(submissions.values()) == {1}
