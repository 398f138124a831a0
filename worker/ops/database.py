"""A short-lived engine for one operator command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from adapters.db.engine import make_engine
from worker.settings import Settings


@contextmanager
def engine_for(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()
