"""What one API process needs, built once at startup (never at import time)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from adapters.db.api_keys import RememberedKeys, SqlApiKeys
from adapters.db.engine import make_engine
from adapters.db.store import SqlDocumentStore, utc_now
from domain.documents import Planner
from worker.bootstrap import planner, sync_configured_ranges
from worker.issuers import IssuerDirectory
from worker.publisher import CeleryPublisher
from worker.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    store: SqlDocumentStore
    keys: RememberedKeys
    celery: Celery
    publisher: CeleryPublisher
    document_planner: Planner
    issuers: IssuerDirectory
    _ranges_stored: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def planner(self) -> Planner:
        """The planner, once the ranges the settings describe are stored (on first use, so
        the intake starts, and answers health checks, while the database is down)."""
        if not self._ranges_stored:
            with self._lock:
                if not self._ranges_stored:
                    sync_configured_ranges(self.settings, self.engine)
                    self._ranges_stored = True
        return self.document_planner

    def planner_for(self, nit: str) -> Planner:
        """What accepted orders of issuer `nit` become (its gateway decides numbering)."""
        return self.issuers.planner(nit, self.planner)

    def database_ok(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            log.warning("health: database unreachable", exc_info=True)
            return False
        return True

    def broker_ok(self) -> bool:
        try:
            with self.celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
                conn.default_channel.client  # noqa: B018  (opens the channel: a real round trip)
        except Exception:
            log.warning("health: broker unreachable", exc_info=True)
            return False
        return True

    def close(self) -> None:
        self.issuers.close()
        self.engine.dispose()
        self.celery.close()


def build_services(
    settings: Settings, db_pool_size: int = 10, key_cache_seconds: float = 0.0
) -> Services:
    from worker.celery_app import create_app

    engine = make_engine(settings.database_url, pool_size=db_pool_size)
    celery = create_app(settings)
    return Services(
        settings=settings,
        engine=engine,
        store=SqlDocumentStore(engine, utc_now),
        keys=RememberedKeys(SqlApiKeys(engine), key_cache_seconds),
        celery=celery,
        publisher=CeleryPublisher(celery, settings.queue, settings.queue_for),
        document_planner=planner(settings),
        issuers=IssuerDirectory(settings, engine),
    )
