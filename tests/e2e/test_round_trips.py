"""What one order costs a worker on the wire: its round trips to PostgreSQL and to the broker,
counted by relays between a real worker process and the real servers. The counts grow only if
the code does more per order; they are not timings."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import pytest

from bench.wire import TurnCounter, port_of
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from worker.producer import Producer
from worker.settings import Settings

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]
ORDERS = 200
# claim and finish, one statement each (a little more for the connections pool processes open)
MOST_PG_PER_ORDER = 2.2
# the wake-up fetched, its message kept as unacked, then acknowledged
MOST_BROKER_PER_ORDER = 3.1


class Counted(NamedTuple):
    pg: int
    broker: int
    seconds: float


def _turns_while(work: Callable[[], None], pg: TurnCounter, broker: TurnCounter) -> Counted:
    pg.reset()
    broker.reset()
    started = time.monotonic()
    work()
    return Counted(pg.turns, broker.turns, time.monotonic() - started)


def _orders(p: Pipeline, settings: Settings) -> None:
    with Producer(settings) as producer:
        for n in range(ORDERS):
            producer.enqueue(order(f"RT-{n:03d}"))
    wait_until(lambda: p.states().get("SUCCESS") == ORDERS + 4, 120, "every order", p)


def test_an_order_costs_the_worker_two_database_and_three_broker_round_trips(
    pipeline_factory: Factory,
) -> None:
    p = pipeline_factory()
    settings = p.settings()  # the producer's: straight to the servers, not counted
    database, broker = p.env["DATABASE_URL"], p.env["BROKER_URL"]
    with TurnCounter(port_of(database)) as pg, TurnCounter(port_of(broker)) as redis:
        p.env["DATABASE_URL"] = pg.through(database)
        p.env["BROKER_URL"] = redis.through(broker)
        p.start_worker()
        log = p.workdir / "w1.log"
        wait_until(lambda: log.exists() and "ready" in log.read_text(), 60, "worker ready", p)
        with Producer(settings) as producer:  # warm each pool process up before counting
            for n in range(4):
                producer.enqueue(order(f"RT-WARM-{n}"))
        wait_until(lambda: p.states().get("SUCCESS") == 4, 60, "the warm-up orders", p)
        # what an idle worker sends anyway (broker polls, heartbeats), per second, to take out
        idle = _turns_while(lambda: time.sleep(3), pg, redis)
        busy = _turns_while(lambda: _orders(p, settings), pg, redis)
    pg_turns = busy.pg - idle.pg / idle.seconds * busy.seconds
    broker_turns = busy.broker - idle.broker / idle.seconds * busy.seconds
    per_order = pg_turns / ORDERS, broker_turns / ORDERS
    print(
        f"round trips per order: PostgreSQL {per_order[0]:.2f}, Redis {per_order[1]:.2f} "
        f"(idle: {idle.pg} and {idle.broker} in {idle.seconds:.1f} s; "
        f"with the orders: {busy.pg} and {busy.broker} in {busy.seconds:.1f} s)"
    )
    assert per_order[0] <= MOST_PG_PER_ORDER, per_order
    assert per_order[1] <= MOST_BROKER_PER_ORDER, per_order
    # the relays saw the work: each order's two steps at least, and its message
    assert per_order[0] >= 2 and per_order[1] >= 1
