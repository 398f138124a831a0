"""Thin tasks: decode the message, call one use case, map the outcome to ack or retry."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from celery.exceptions import Retry
from sqlalchemy.exc import DBAPIError, OperationalError

from adapters.db.store import utc_now
from domain.ports import OrderKey
from domain.usecases.process import Step
from domain.usecases.reconcile import Reconciled, reconcile
from worker import bootstrap
from worker.logs import bind_order
from worker.outcomes import OrderFailed, order_failed
from worker.publisher import TASK_DELIVER, TASK_PROCESS, TASK_RECONCILE
from worker.settings import Settings

log = logging.getLogger(__name__)
DB_RETRY_COUNTDOWN = 5.0
# A worker that cannot build what a task needs (a gateway's setup failed) tries again this
# many times, 1, 2, 4 s apart, before the order is left to the reconciler.
SETUP_RETRIES = 3
# A delivery due again within this many seconds is a task retry message; later ones are
# left to the reconciler (long countdowns do not belong on Redis).
QUICK_DELIVERY_RETRY = 60.0


class WakeUp:
    """The use case's quick retry: a task retry message for a short wait, remembered so the
    task can tell Celery what happened instead of sending a second one."""

    def __init__(self, task: OrderTask, key: OrderKey) -> None:
        self._task = task
        self._key = key
        self.sent_for: float | None = None

    def __call__(self, delay: float) -> bool:
        try:
            self._task.retry(countdown=delay, throw=False)
        except Exception:  # broker down: the reconciler sends the wake-up instead
            log.warning("could not schedule a retry for %s", self._key, exc_info=True)
            return False
        self.sent_for = delay
        return True


class OrderTask(Task):  # type: ignore[misc]
    """Shared policy: per-process container, log context, retries for outages and for errors
    nothing maps, and final failures reported as what they are."""

    max_retries = None
    typing = False
    # Expected: FAILURE in Flower with the reason, logged at INFO, acked, never retried.
    throws = (OrderFailed,)

    def container(self) -> bootstrap.Container:
        settings: Settings = self.app.conf.einvoice_settings
        return bootstrap.container(settings, self.app)

    def setup_failed(self, key: OrderKey, exc: Exception) -> Exception:
        """The order was not touched: try again shortly, a bounded number of times."""
        retries = int(self.request.retries or 0)
        if retries >= SETUP_RETRIES:
            log.error("cannot process %s: the worker could not set up its gateway", key)
            return exc
        log.warning("cannot set up the gateway for %s; retrying", key, exc_info=exc)
        again: Exception = self.retry(exc=exc, countdown=2.0**retries, throw=False)
        return again

    def wake_delivery(self, key: OrderKey) -> None:
        """The document's copy, if it has one, is due now: wake a delivery worker (best
        effort: the delivery row is durable and the reconciler wakes it otherwise)."""
        c = self.container()
        if c.copy_channel(key) is None or c.delivery_publisher is None:
            return
        try:
            if c.deliveries.mark_published(key):
                c.delivery_publisher.publish(key)
        except Exception:
            log.warning("could not wake the delivery of %s", key, exc_info=True)

    def unexpected(self, key: OrderKey, exc: Exception, wake_up: WakeUp) -> Exception:
        """An error the use case did not map: it recorded the interruption and, when the order
        is due again soon, sent the wake-up; say so to Celery (a retry, not a failure)."""
        if _database_down(exc):
            if wake_up.sent_for is not None:
                return _retried(exc, wake_up.sent_for)
            log.warning("database unavailable while processing %s; retrying", key)
            again: Exception = self.retry(exc=exc, countdown=DB_RETRY_COUNTDOWN, throw=False)
            return again
        if wake_up.sent_for is not None:
            log.warning(
                "order %s interrupted by an unexpected error; due again in %.1f s",
                key,
                wake_up.sent_for,
                exc_info=exc,
            )
            return _retried(exc, wake_up.sent_for)
        return exc  # a failure: the order waits for the reconciler, as its audit row says


def _retried(exc: Exception, when: float) -> Exception:
    """Celery's signal for "retried in `when` s" for a retry message already sent."""
    signal: Exception = Retry(exc=exc, when=when)
    return signal


def _database_down(exc: Exception) -> bool:
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and bool(getattr(exc, "connection_invalidated", False))
    )


def register(app: Celery) -> None:
    @app.task(name=TASK_PROCESS, bind=True, base=OrderTask, acks_late=True)
    def process_order(self: OrderTask, order_key: str) -> str:
        key = OrderKey.parse(order_key)
        bind_order(str(key), self.request.id)
        try:
            process = self.container().process_order
        except Exception as exc:
            raise self.setup_failed(key, exc) from exc
        wake_up = WakeUp(self, key)
        try:
            outcome = process(key, wake_up)
        except Exception as exc:
            raised = self.unexpected(key, exc, wake_up)
            if raised is exc:
                raise
            raise raised from exc
        log.info("order %s: %s", key, outcome.step)
        if outcome.step is Step.FAILED:
            raise order_failed(key, outcome.reason)
        if outcome.step is Step.SUCCEEDED:
            self.wake_delivery(key)
        return str(outcome.step)

    @app.task(name=TASK_DELIVER, bind=True, base=OrderTask, acks_late=True)
    def deliver_copy(self: OrderTask, order_key: str) -> str:
        key = OrderKey.parse(order_key)
        bind_order(str(key), self.request.id)
        try:
            outcome = self.container().deliver_copy(key)
        except Exception as exc:
            if _database_down(exc):
                log.warning("database unavailable while delivering %s; retrying", key)
                raise self.retry(exc=exc, countdown=DB_RETRY_COUNTDOWN) from exc
            raise  # recorded as a retry on the trail; the reconciler wakes it when due
        log.info("copy of %s: %s", key, outcome.step)
        if outcome.retry_in is not None and outcome.retry_in <= QUICK_DELIVERY_RETRY:
            self.retry(countdown=outcome.retry_in, throw=False)
        return str(outcome.step)

    # Every few seconds, mostly finding nothing: kept out of Flower's task list (no task
    # events); the wake-ups it sends are process_order tasks and show there.
    @app.task(name=TASK_RECONCILE, bind=True, base=OrderTask, acks_late=True, send_events=False)
    def reconcile_orders(self: OrderTask) -> dict[str, Any]:
        c = self.container()
        assert c.publisher is not None
        w = c.settings.worker
        result = reconcile(c.store, c.publisher, utc_now, w.republish_after, w.reconcile_batch)
        copies = Reconciled(0, 0)
        if c.delivery_publisher is not None:
            copies = reconcile(
                c.deliveries, c.delivery_publisher, utc_now, w.republish_after, w.reconcile_batch
            )
        return {
            "published": result.published,
            "failed_to_publish": result.failed_to_publish,
            "copies_published": copies.published,
            "copies_failed_to_publish": copies.failed_to_publish,
        }
