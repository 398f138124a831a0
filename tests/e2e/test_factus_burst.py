"""A burst of 1,000 orders through the Factus gateway drains at the allowed rate: not one 429,
not one failure. The window is shortened (80 per 3 s instead of per minute) to keep it short."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from adapters.factus.simulator.app import SimulatorOptions, start_simulator
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from worker.producer import Producer

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]
ORDERS = 1000
LIMIT, WINDOW = 80, 3.0


def test_a_burst_of_a_thousand_orders_drains_without_a_429(
    pipeline_factory: Callable[..., Pipeline], redis_url: str
) -> None:
    options = SimulatorOptions(rate_limit=LIMIT, rate_limit_window=WINDOW)
    server, url = start_simulator(rate_limit=LIMIT, rate_limit_window=WINDOW)
    try:
        p = pipeline_factory(
            GATEWAY="factus",
            FACTUS__BASE_URL=url,
            FACTUS__CLIENT_ID=options.client_id,
            FACTUS__CLIENT_SECRET=options.client_secret,
            FACTUS__USERNAME=options.username,
            FACTUS__PASSWORD=options.password,
            FACTUS__NUMBERING_RANGE_ID="8",
            FACTUS__CONNECT_TIMEOUT="1",
            FACTUS__READ_TIMEOUT="4",
            FACTUS__RATE_LIMIT_PER_MINUTE=str(LIMIT),
            FACTUS__RATE_LIMIT_WINDOW_SECONDS=str(WINDOW),
            REDIS_URL=redis_url,
            WORKER__CONCURRENCY="4",
        )
        with Producer(p.settings()) as producer:
            for n in range(ORDERS):
                producer.enqueue(order(f"BURST-{n:04d}"))
        started = time.monotonic()
        p.start_worker("w1")
        p.start_worker("w2")  # two machines' worth of workers share one Factus user
        p.start_beat()
        wait_until(lambda: p.states().get("SUCCESS") == ORDERS, 300, "the burst drained", p)
        elapsed = time.monotonic() - started
        stats = httpx.get(f"{url}/_stats").json()
    finally:
        server.stop()
    assert stats["rate_limited"] == 0, stats  # the shared bucket kept every process under the limit
    assert p.states() == {"SUCCESS": ORDERS}  # nothing failed
    assert set(stats["bills_created"].values()) == {1}
    # at most LIMIT requests per WINDOW: a thousand bills cannot drain faster than this
    assert elapsed >= (ORDERS / LIMIT - 1) * WINDOW
    assert stats["max_requests_in_window"] <= LIMIT
