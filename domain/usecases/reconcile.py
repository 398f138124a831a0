"""Reconcile: wake a worker for every order that is due and has no wake-up on its way.

It never calls the gateway itself: the woken task claims the order (compare-and-set) and asks
the authority before sending anything, so two reconcilers running at once are harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.ports import OrderKey, Publisher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconciled:
    published: int
    failed_to_publish: int


class DueWork(Protocol):
    """What the reconciler reads: documents (`DocumentStore`) or deliveries."""

    def due_for_publish(self, now: datetime, republish_after: float, limit: int) -> list[OrderKey]:
        """Keys due with no wake-up on its way, marked as published now."""
        ...

    def mark_unpublished(self, key: OrderKey) -> None: ...


def reconcile(
    store: DueWork,
    publisher: Publisher,
    clock: Callable[[], datetime],
    republish_after: float,
    batch: int,
) -> Reconciled:
    keys = store.due_for_publish(clock(), republish_after, batch)
    failed = 0
    for key in keys:
        try:
            publisher.publish(key)
        except Exception:
            failed += 1
            log.warning("reconcile: could not publish %s", key, exc_info=True)
            store.mark_unpublished(key)
    if keys:
        log.info("reconcile: published %d due orders (%d failed)", len(keys) - failed, failed)
    return Reconciled(len(keys) - failed, failed)
