"""The wake-up `CeleryPublisher` sends is the message `app.send_task` sends for the same order
(real Redis): same headers, properties, body, queue and exchange, one by one and in a batch,
and the queue is declared the first time, as Celery declares it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery

from domain.ports import OrderKey
from worker.celery_app import create_app
from worker.publisher import RETRY_POLICY, TASK_PROCESS, CeleryPublisher, task_id_for
from worker.settings import Settings

KEY = OrderKey("900123456", "POS-1")


@pytest.fixture
def queue(redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    name = f"wake-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    yield name, client
    client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    client.close()


@pytest.fixture
def app(redis_url: str, queue: tuple[str, redis.Redis]) -> Iterator[Celery]:
    made = create_app(Settings(broker_url=redis_url, queue=queue[0]))
    yield made
    made.close()


def _sent(client: redis.Redis, name: str) -> list[dict[str, Any]]:
    """The messages on the queue, oldest first, without the tag kombu draws for each."""
    messages = [json.loads(raw) for raw in reversed(client.lrange(name, 0, -1))]
    for message in messages:
        message["properties"].pop("delivery_tag")
    return messages


def _as_send_task_sends(app: Celery, key: OrderKey, queue: str) -> None:
    app.send_task(
        TASK_PROCESS,
        args=[str(key)],
        task_id=task_id_for(key),
        queue=queue,
        retry=True,
        retry_policy=RETRY_POLICY,
    )


def test_a_wake_up_is_the_message_send_task_sends(
    app: Celery, queue: tuple[str, redis.Redis]
) -> None:
    name, client = queue
    CeleryPublisher(app, name).publish(KEY)
    assert client.exists(f"_kombu.binding.{name}")  # declared, as Celery declares it
    ours = _sent(client, name)
    client.delete(name)
    _as_send_task_sends(app, KEY, name)
    assert ours == _sent(client, name)
    assert ours[0]["headers"]["id"] == task_id_for(KEY)
    assert ours[0]["headers"]["argsrepr"] == repr([str(KEY)])


def test_a_batch_of_wake_ups_are_the_messages_send_task_sends(
    app: Celery, queue: tuple[str, redis.Redis]
) -> None:
    name, client = queue
    keys = [OrderKey("900123456", f"POS-{n}") for n in range(3)]
    CeleryPublisher(app, name).publish_many(keys)
    ours = _sent(client, name)
    client.delete(name)
    for key in keys:
        _as_send_task_sends(app, key, name)
    assert ours == _sent(client, name)
    assert [m["headers"]["id"] for m in ours] == [task_id_for(k) for k in keys]


def test_each_issuers_lane_gets_its_own_wake_ups(
    app: Celery, queue: tuple[str, redis.Redis]
) -> None:
    name, client = queue
    lane = f"{name}-lane"
    try:
        publisher = CeleryPublisher(app, name, lambda issuer: lane if issuer == "1" else name)
        publisher.publish_many([OrderKey("1", "A"), OrderKey("2", "B"), OrderKey("1", "C")])
        assert [m["headers"]["argsrepr"] for m in _sent(client, lane)] == ["['1:A']", "['1:C']"]
        assert [m["headers"]["argsrepr"] for m in _sent(client, name)] == ["['2:B']"]
        assert client.exists(f"_kombu.binding.{lane}")
    finally:
        client.delete(lane, f"_kombu.binding.{lane}", f"_kombu.binding_permanent.{lane}")
