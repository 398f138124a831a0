"""The Redis transport's channel, closed after its connection was collected (broker lost).

Celery collects the broker connection when Redis goes away and closes the channel later; with
messages still unacknowledged, kombu's own channel then raised AttributeError ('NoneType' object
has no attribute 'hostname'), which ended the worker. Ours raises a connection error, which
kombu swallows when it closes the channel and Celery answers by reconnecting.
"""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection, Exchange, Producer, Queue
from kombu.transport import redis as kombu_redis

from worker.redis_transport import TRANSPORT, Transport


def _channel_holding_an_unacked_message(
    redis_url: str, transport: object
) -> tuple[Connection, object]:
    conn = Connection(redis_url, transport=transport)
    channel = conn.default_channel
    name = f"transport-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name), routing_key=name)
    Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
    received = []
    consumer = conn.Consumer(queue, callbacks=[lambda body, message: received.append(message)])
    consumer.consume()
    conn.drain_events(timeout=5)
    assert received and channel.qos._delivered  # delivered, not acknowledged
    conn.transport.client = None  # what Connection.collect() leaves behind
    return conn, channel


def test_closing_a_collected_channel_raises_a_connection_error_not_an_attribute_error(
    redis_url: str,
) -> None:
    conn, channel = _channel_holding_an_unacked_message(redis_url, TRANSPORT)
    assert isinstance(conn.transport, Transport)
    conn.maybe_close_channel(channel)  # kombu ignores connection errors here


def test_kombus_own_channel_still_fails_that_way(redis_url: str) -> None:
    """The day kombu fixes it, this fails: then the transport module can go."""
    conn, channel = _channel_holding_an_unacked_message(redis_url, kombu_redis.Transport)
    with pytest.raises(AttributeError, match="hostname"):
        conn.maybe_close_channel(channel)
