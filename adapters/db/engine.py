"""Engine factory: pooled PostgreSQL, or SQLite with writer-safe transactions for the demo."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

# A pooled connection idle longer than this is pinged before it is used again. A busy worker
# checks its connections in and out many times a second and never pays the ping; a connection
# that sat idle (a quiet hour, a database restarted meanwhile) is checked first.
IDLE_PING_SECONDS = 5.0
# Dead peers are found by the kernel within about a minute, even on an idle connection.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def make_engine(url: str, pool_size: int = 5) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "einvoice", **KEEPALIVES},
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Instead of a ping before every checkout (a round trip per statement batch): a ping only
    for a connection that was idle, and a disconnect met on first use invalidates the pool
    (SQLAlchemy does that), so one failed statement at most per process after a restart."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping opened a transaction: end it
        except engine.dialect.loaded_dbapi.Error as exc:
            # the pool drops this connection and checks out another (a new one if need be)
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself, so it can be BEGIN IMMEDIATE: a transaction that
        # reads then writes must hold the write lock from the start, or two processes deadlock.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
