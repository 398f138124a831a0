"""Publishing wake-ups: one Celery message per order, carrying only the order key."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery
from kombu.entity import Queue

from domain.ports import OrderKey

TASK_PROCESS = "einvoice.process_order"
TASK_RECONCILE = "einvoice.reconcile"
TASK_DELIVER = "einvoice.deliver_copy"
_NAMESPACE = uuid.UUID("6f1d8a52-3c55-4f43-9a53-2f8e0c5d7a10")
RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}


def task_id_for(key: OrderKey) -> str:
    """One task id per order, so Flower, logs and retries line up on it."""
    return str(uuid.uuid5(_NAMESPACE, str(key)))


class CeleryPublisher:
    """Publishes to `queue`, or to the queue `route` gives an issuer (its lane).

    A wake-up is the message `app.send_task` would send, built and sent by Celery's own
    `create_task_message` and `send_task_message` (the publish signals, the task-sent event
    while enabled, the retry policy, the queue's exchange and declaration). What `send_task`
    adds around them is left out, as a wake-up needs none of it: routing (the queue is known),
    a result object (there is no result backend) and `saferepr` of the arguments (one key,
    whose `repr` is the same text); together they cost more CPU than the publish itself.
    """

    def __init__(self, app: Celery, queue: str, route: Callable[[str], str] | None = None) -> None:
        self._app = app
        self._queue = queue
        self._route = route

    def publish(self, key: OrderKey) -> None:
        self._send(key)

    def publish_many(self, keys: Sequence[OrderKey]) -> None:
        """One message per order, sent through one producer in a publish batch: on Redis the
        pushes go out pipelined (a round trip per 1,000), elsewhere one by one."""
        with self._app.producer_or_acquire() as producer, producer.batch():
            for key in keys:
                self._send(key, producer)

    def _send(self, key: OrderKey, producer: Any = None) -> None:
        app = self._app
        amqp = app.amqp
        args = [str(key)]
        task_id = task_id_for(key)
        root_id = parent_id = None
        parent = app.current_worker_task  # a wake-up sent by a task (the reconciler) is its child
        if parent is not None:
            root_id = parent.request.root_id or parent.request.id
            parent_id = parent.request.id
        message = amqp.create_task_message(
            task_id,
            TASK_PROCESS,
            args,
            reply_to=app.thread_oid,
            create_sent_event=app.conf.task_send_sent_event,
            root_id=root_id,
            parent_id=parent_id,
            argsrepr=repr(args),
            kwargsrepr="{}",
            ignore_result=None,
        )
        queue = amqp.queues[self._route(key.issuer) if self._route else self._queue]
        with (
            app.producer_or_acquire(producer) as sending,
            sending.connection._reraise_as_library_errors(),
        ):
            amqp.send_task_message(
                sending,
                TASK_PROCESS,
                message,
                queue=queue,
                declare=None if _undeclared(queue, sending) else [],
                retry=True,
                retry_policy=RETRY_POLICY,
            )


def _undeclared(queue: Queue, producer: Any) -> bool:
    """Whether kombu has yet to declare `queue` on the producer's connection. It remembers
    what it declared there (by the entity's hash; forgotten when the connection is replaced)
    and skips it, but only after copying the queue to bind it to the channel, which costs a
    wake-up more CPU than building its message: asked first, the copy is made only when due."""
    return hash(queue) not in producer.connection.declared_entities


class DeliveryPublisher:
    """Wakes a delivery worker for a document's copy (on the delivery queue)."""

    def __init__(self, app: Celery, queue: str) -> None:
        self._app = app
        self._queue = queue

    def publish(self, key: OrderKey) -> None:
        self._app.send_task(
            TASK_DELIVER,
            args=[str(key)],
            task_id=str(uuid.uuid5(_NAMESPACE, f"copy:{key}")),
            queue=self._queue,
            retry=True,
            retry_policy=RETRY_POLICY,
        )
