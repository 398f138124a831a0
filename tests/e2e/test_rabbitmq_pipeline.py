"""End to end on RabbitMQ: real worker and beat processes, a quorum queue, retries through
native delayed delivery, and beat's lock in PostgreSQL instead of Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection, Queue

from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from worker.producer import Producer

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]
ORDERS = 40


@pytest.fixture
def rabbit_pipeline(pipeline_factory: Factory, rabbitmq_url: str) -> Iterator[Pipeline]:
    p = pipeline_factory(
        BROKER_URL=rabbitmq_url,
        SIMULATED__LATENCY="0.05",
        SIMULATED__UNAVAILABLE_RATE="0.3",  # retries with a countdown
        WORKER__DELIVERY_LIMIT="5",
    )
    yield p
    p.stop_all()
    with Connection(rabbitmq_url) as conn:
        channel = conn.channel()
        channel.queue_delete(p.queue)
        channel.exchange_delete(p.queue)


def test_orders_flow_through_a_quorum_queue_once_each(rabbit_pipeline: Pipeline) -> None:
    p = rabbit_pipeline
    p.start_worker("w1")
    p.start_beat()
    p.start("beat", name="beat2")  # a second beat stands by on the PostgreSQL lock
    with Producer(p.settings()) as producer:
        keys = [producer.enqueue(order(f"RMQ-{n:03d}")).key for n in range(ORDERS)]

    wait_until(lambda: p.states().get("SUCCESS", 0) == ORDERS, 120, "every order SUCCESS", p)
    submissions = p.authority.submissions()
    assert len(submissions) == ORDERS and set(submissions.values()) == {1}
    counts = p.audit_counts()
    assert all(counts[(str(k), "SUCCESS")] == 1 for k in keys)
    logs = "\n".join(f.read_text(errors="replace") for f in p.workdir.glob("*.log"))
    assert "holding the PostgreSQL lock" in logs and "standing by" in logs, p.logs()
    assert ": retrying" in logs, "no countdown retry was exercised"
    assert "could not schedule a retry" not in logs, p.logs()

    # the queue is a quorum queue: declaring it as a classic one is refused by the broker
    with Connection(p.env["BROKER_URL"]) as conn:
        classic = Queue(p.queue, queue_arguments={"x-queue-type": "classic"})
        with pytest.raises(PreconditionFailed):
            classic.bind(conn.channel()).declare()
