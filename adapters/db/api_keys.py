"""API keys for POS clients: one per client, bound to the issuer it may invoice for.

Only the SHA-256 of a key is stored. Keys carry 256 random bits, so a plain hash is enough
(no slow KDF needed), and lookups can go through a unique index on the hash.

`RememberedKeys` keeps, per process, the keys it verified for a few seconds, so a POS client
posting orders back to back costs one lookup per key and period, not one per request. A
revoked key therefore keeps working for at most that long in a process that verified it just
before: the price of not asking the database on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, Integer, String, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Mapped, mapped_column

from adapters.db.models import Base

KEY_PREFIX = "eik_"
KEYS_REMEMBERED = 1024  # verified keys a process remembers at once


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class ApiClient:
    """Who is calling: the key's id and name, and the issuer its orders belong to."""

    id: int
    name: str
    issuer: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _client(row: Row[Any]) -> ApiClient:
    return ApiClient(row.id, row.name, row.issuer, _aware(row.created_at), _maybe(row.revoked_at))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _maybe(value: datetime | None) -> datetime | None:
    return _aware(value) if value is not None else None


class SqlApiKeys:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, name: str, issuer: str) -> tuple[ApiClient, str]:
        """Store a new key for `issuer`; return it in clear text, the only time it exists."""
        key = new_key()
        with self._engine.begin() as conn:
            row_id = conn.execute(
                insert(ApiKeyRow)
                .values(name=name, issuer=issuer, key_hash=hash_key(key))
                .returning(ApiKeyRow.id)
            ).scalar_one()
        client = self.get(int(row_id))
        assert client is not None
        return client, key

    def authenticate(self, key: str) -> ApiClient | None:
        """The active client holding `key`, or None."""
        if not key or len(key) > 200:
            return None
        digest = hash_key(key)
        with self._engine.connect() as conn:
            row = conn.execute(
                select(ApiKeyRow.__table__).where(ApiKeyRow.key_hash == digest)
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.key_hash, digest):
            return None
        return _client(row)

    def revoke(self, key_id: int) -> bool:
        """Revoke a key; False if there is no such active key."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return result.rowcount == 1

    def get(self, key_id: int) -> ApiClient | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(ApiKeyRow.__table__).where(ApiKeyRow.id == key_id)).first()
        return _client(row) if row is not None else None

    def all(self) -> list[ApiClient]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(ApiKeyRow.__table__).order_by(ApiKeyRow.id)).all()
        return [_client(r) for r in rows]


class RememberedKeys:
    """`SqlApiKeys.authenticate`, with each valid key remembered for `seconds` (0: ask the
    database every time). Unknown, revoked and malformed keys are never remembered: a new key
    works at once, and a revoked one stops at most `seconds` after `revoke`."""

    def __init__(
        self,
        keys: SqlApiKeys,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = KEYS_REMEMBERED,
    ) -> None:
        self.keys = keys
        self.seconds = seconds
        self._clock = clock
        self._capacity = capacity
        self._verified: dict[str, tuple[float, ApiClient]] = {}  # by the key's hash
        self._lock = threading.Lock()

    def remembered(self, key: str) -> ApiClient | None:
        """The client of `key` if it was verified less than `seconds` ago; no I/O."""
        if self.seconds <= 0:
            return None
        with self._lock:
            found = self._verified.get(hash_key(key))
        if found is None or self._clock() - found[0] >= self.seconds:
            return None
        return found[1]

    def authenticate(self, key: str) -> ApiClient | None:
        """The active client holding `key`, or None: remembered, else from the database."""
        client = self.remembered(key)
        if client is not None:
            return client
        checked_at = self._clock()  # before the lookup: the period starts no later than it
        client = self.keys.authenticate(key)
        if client is not None and self.seconds > 0:
            with self._lock:
                if len(self._verified) >= self._capacity:
                    self._verified.clear()
                self._verified[hash_key(key)] = (checked_at, client)
        return client
