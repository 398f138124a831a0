"""Thin tasks: decode the message, call one use case, map the outcome to ack or retry."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from sqlalchemy.exc import DBAPIError, OperationalError

from adapters.db.store import utc_now
from domain.ports import OrderKey
from domain.usecases.reconcile import reconcile
from worker import bootstrap
from worker.logs import bind_order
from worker.publisher import TASK_PROCESS, TASK_RECONCILE
from worker.settings import Settings

log = logging.getLogger(__name__)
DB_RETRY_COUNTDOWN = 5.0


class OrderTask(Task):  # type: ignore[misc]
    """Shared policy: per-process container, log context, database-outage retries."""

    max_retries = None
    typing = False

    def container(self) -> bootstrap.Container:
        settings: Settings = self.app.conf.einvoice_settings
        return bootstrap.container(settings, self.app)


def register(app: Celery) -> None:
    @app.task(name=TASK_PROCESS, bind=True, base=OrderTask, acks_late=True)
    def process_order(self: OrderTask, order_key: str) -> str:
        key = OrderKey.parse(order_key)
        bind_order(str(key), self.request.id)
        c = self.container()

        def quick_retry(delay: float) -> bool:
            try:
                self.retry(countdown=delay, throw=False)
            except Exception:  # broker down: the reconciler sends the wake-up instead
                log.warning("could not schedule a retry for %s", key, exc_info=True)
                return False
            return True

        try:
            outcome = c.process_order(key, quick_retry)
        except (OperationalError, DBAPIError) as exc:
            if getattr(exc, "connection_invalidated", False) or isinstance(exc, OperationalError):
                log.warning("database unavailable while processing %s; retrying", key)
                raise self.retry(exc=exc, countdown=DB_RETRY_COUNTDOWN) from exc
            raise
        log.info("order %s: %s", key, outcome.step)
        return str(outcome.step)

    @app.task(name=TASK_RECONCILE, bind=True, base=OrderTask, acks_late=True)
    def reconcile_orders(self: OrderTask) -> dict[str, Any]:
        c = self.container()
        assert c.publisher is not None
        w = c.settings.worker
        result = reconcile(c.store, c.publisher, utc_now, w.republish_after, w.reconcile_batch)
        return {"published": result.published, "failed_to_publish": result.failed_to_publish}
