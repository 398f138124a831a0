"""The circuit breaker per Factus account: an outage costs one probe per pause, shared by
every process (Redis), and the first probe that gets through lets every order go again."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from adapters.factus.breaker import FAILURES_TO_OPEN, FIRST_PAUSE, RedisCircuitBreaker
from adapters.factus.simulator import SimulatorServer
from domain.errors import GatewayBusy, GatewayUnavailable
from domain.ports import Verdict
from tests.integration.test_factus_gateway import (  # noqa: F401  (fixtures, by name)
    control,
    gateway_factory,
    prefix,
    sim,
    simulator,
    stats,
    store,
    submission,
)


def wait_for_probe(error: GatewayBusy) -> None:
    """Sleep until the breaker lets its probe out: the time it announced, not a guess."""
    assert error.retry_after is not None
    time.sleep(error.retry_after + 0.05)


def test_an_outage_opens_the_breaker_for_every_process_after_three_failures(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    worker_a, worker_b = gateway_factory(), gateway_factory()  # two processes, one account
    worker_a.status(submission("POS-W0"))  # logged in
    control(sim, maintenance=True)
    for n in range(FAILURES_TO_OPEN):
        with pytest.raises(GatewayUnavailable) as caught:
            worker_a.submit(submission(f"POS-B{n}"))
        assert not isinstance(caught.value, GatewayBusy)
    sent = stats(sim)["requests"]
    for gateway in (worker_a, worker_b):
        with pytest.raises(GatewayBusy) as busy:
            gateway.submit(submission("POS-B9"))
        assert busy.value.retry_after is not None and 0 < busy.value.retry_after <= FIRST_PAUSE
    assert stats(sim)["requests"] == sent  # nothing left while it is open


def test_one_probe_after_the_outage_and_every_order_goes_again(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    worker_a, worker_b = gateway_factory(), gateway_factory()
    worker_a.status(submission("POS-W0"))
    control(sim, maintenance=True)
    for n in range(FAILURES_TO_OPEN):
        with pytest.raises(GatewayUnavailable):
            worker_a.submit(submission(f"POS-P{n}"))
    with pytest.raises(GatewayBusy) as busy:
        worker_b.submit(submission("POS-P9"))
    wait_for_probe(busy.value)
    sent = stats(sim)["requests"]
    with pytest.raises(GatewayUnavailable):
        worker_b.submit(submission("POS-P9"))  # the probe: Factus is still down
    with pytest.raises(GatewayBusy) as longer:
        worker_a.submit(submission("POS-P8"))
    assert stats(sim)["requests"] == sent + 1  # one probe, however many orders wait
    assert longer.value.retry_after is not None
    assert FIRST_PAUSE < longer.value.retry_after <= 2 * FIRST_PAUSE  # the pause doubled
    control(sim, maintenance=False)
    wait_for_probe(longer.value)
    assert worker_a.submit(submission("POS-P8")).verdict is Verdict.ACCEPTED  # the probe
    assert worker_b.submit(submission("POS-P9")).verdict is Verdict.ACCEPTED  # closed: goes


def test_an_account_blocked_by_a_pending_bill_stops_sending_at_once(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    gateway = gateway_factory(delete_rejected=False)
    control(sim, dian_rejections={"FAK24": "No está informado el DV del NIT"})
    assert gateway.submit(submission("POS-K1")).verdict is Verdict.REJECTED  # stays, blocks
    control(sim, dian_rejections={})
    with pytest.raises(GatewayUnavailable) as blocked:
        gateway.submit(submission("POS-K2"))  # 409, and the bill is not ours: blocked
    assert not isinstance(blocked.value, GatewayBusy)
    sent = stats(sim)["requests"]
    with pytest.raises(GatewayBusy):
        gateway.submit(submission("POS-K3"))
    assert stats(sim)["requests"] == sent


def test_a_success_closes_the_breaker_and_the_count_starts_again(
    store: redis.Redis[bytes], prefix: str
) -> None:
    breaker = RedisCircuitBreaker(store, f"{prefix}:breaker:x")
    for _ in range(FAILURES_TO_OPEN - 1):
        breaker.failed()
    breaker.succeeded()
    for _ in range(FAILURES_TO_OPEN - 1):
        breaker.failed()
    breaker.before()  # still closed: the failures were not in a row
    breaker.failed()
    with pytest.raises(GatewayBusy):
        breaker.before()
