"""One beat per deployment when Redis is not the broker: a PostgreSQL advisory lock.

A beat that starts while another holds the lock waits (standby) and takes over once the holder
is gone. A beat whose lock connection breaks (PostgreSQL restarted, network cut) stops at its
next tick, as redbeat's scheduler does when it loses its Redis lock; `python -m worker beat`
starts it again, and it waits for the lock like any other beat.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.beat import PersistentScheduler
from sqlalchemy.exc import SQLAlchemyError

from adapters.db.advisory_lock import AdvisoryLock

log = logging.getLogger(__name__)
STANDBY_POLL_SECONDS = 2.0


class AdvisoryLockScheduler(PersistentScheduler):  # type: ignore[misc]
    _lock: AdvisoryLock | None = None

    def setup_schedule(self) -> None:
        # not in __init__: Celery also builds a lazy instance, only to print the banner
        settings = self.app.conf.einvoice_settings
        self._lock = AdvisoryLock(
            settings.database_url, f"einvoice:beat:{settings.queue}", "einvoice-beat"
        )
        self._wait_for_lock(self._lock)
        super().setup_schedule()

    @staticmethod
    def _wait_for_lock(lock: AdvisoryLock) -> None:
        announced = False
        while True:
            try:
                if lock.try_acquire():
                    log.info("beat: holding the PostgreSQL lock %s", lock.name)
                    return
                if not announced:
                    log.info("beat: another beat holds %s; standing by", lock.name)
                    announced = True
            except SQLAlchemyError as exc:
                log.warning("beat: database unavailable for the lock: %s", type(exc).__name__)
            time.sleep(STANDBY_POLL_SECONDS)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self._lock is not None and not self._lock.held():
            log.error("beat: lost the PostgreSQL lock %s; stopping", self._lock.name)
            raise SystemExit(1)
        interval: float = super().tick(*args, **kwargs)
        return interval

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._lock is not None:
                self._lock.release()
