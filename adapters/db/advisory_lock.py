"""A PostgreSQL session advisory lock: held while one connection stays open.

The lock belongs to the database session that took it, so it is released by PostgreSQL itself
when that process dies, its connection breaks or the server restarts: a holder learns it lost
the lock by checking its own connection, and nothing ever has to expire.
"""

from __future__ import annotations

import contextlib
import hashlib

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_try_advisory_lock`, from a readable name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class AdvisoryLock:
    def __init__(self, database_url: str, name: str, application_name: str = "einvoice") -> None:
        self.name = name
        self.key = lock_key(name)
        self._engine = create_engine(
            database_url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": 5,
                "application_name": application_name,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            },
        )
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other session holds it. Raises SQLAlchemyError when the
        database cannot be reached."""
        if self.held():
            return True
        self._drop()
        conn = self._engine.connect()
        try:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def held(self) -> bool:
        """True while the session that took the lock is alive (one round trip)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1")).scalar()
            self._conn.commit()
        except SQLAlchemyError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            except SQLAlchemyError:
                pass
        self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None
