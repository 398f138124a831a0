"""API keys for POS clients: one per client, bound to the issuer it may invoice for.

Only the SHA-256 of a key is stored. Keys carry 256 random bits, so a plain hash is enough
(no slow KDF needed), and lookups can go through a unique index on the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, Integer, String, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Mapped, mapped_column

from adapters.db.models import Base

KEY_PREFIX = "eik_"


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
