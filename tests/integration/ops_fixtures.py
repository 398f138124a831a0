"""A private PostgreSQL database per test, and a seeded set of orders in every state.

Imported explicitly by the operator-command tests. Needs PostgreSQL on 127.0.0.1:5432
(user postgres) and, for broker checks, Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from adapters.db.engine import make_engine
from adapters.db.ranges import SqlNumberingRanges
from adapters.db.store import SqlDocumentStore
from domain.documents import DocumentKind, DocumentPlan
from domain.errors import FieldError
from domain.issuer import NumberingRange
from domain.order import Order, parse_order
from domain.ports import OrderKey
from domain.store import Claim, State, StepNote
from tests.conftest import create_database, drop_database
from worker.migrations import upgrade

REDIS_URL = "redis://127.0.0.1:6379/13"
ISSUER = "900123456"
SAMPLES = Path(__file__).resolve().parents[2] / "worker" / "samples" / "orders.json"
NUMBERING = NumberingRange(
    resolution="18760000001",
    prefix="SETP",
    first=990000000,
    last=995000000,
    valid_from=date(2019, 1, 19),
    valid_to=date(2030, 1, 19),
    technical_key="fc8eac422eba16e22ffd8c6f94b3f40a6e38162c",
)
SALE = DocumentPlan(DocumentKind.INVOICE, "1", numbered=True)


def _create_database(migrate: bool) -> Iterator[str]:
    url = create_database("einvoice_ops")
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database migrated to head, dropped afterwards."""
    yield from _create_database(migrate=True)


@pytest.fixture
def bare_database_url() -> Iterator[str]:
    """A fresh database with no schema at all."""
    yield from _create_database(migrate=False)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A queue of its own on the test Redis db, emptied afterwards."""
    name = f"ops-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(name)
    client.close()


@pytest.fixture
def ops_env(monkeypatch: pytest.MonkeyPatch, database_url: str, queue_name: str) -> str:
    """Settings for the commands: this test's database, the test Redis, simulated gateway."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BROKER_URL", REDIS_URL)
    monkeypatch.setenv("QUEUE", queue_name)
    monkeypatch.setenv("GATEWAY", "simulated")
    monkeypatch.setenv("ISSUER__NIT", ISSUER)
    for name in ("NUMBERING__LAST", "NUMBERING__VALID_TO", "DIAN__CERT_PATH", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return database_url


def key(order_id: str) -> OrderKey:
    return OrderKey(ISSUER, order_id)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Seeded:
    """What `seed` wrote: order ids by the situation they are in."""

    now: datetime
    succeeded: str = "POS-OK"
    rejected: str = "POS-REJ"
    unavailable: str = "POS-DOWN"
    invalid: str = "POS-INV"
    waiting: str = "POS-WAIT"
    never_taken: str = "POS-NEW"
    lease_expired: str = "POS-LEASE"
    claims: int = 6  # PROCESANDO audit rows written


REJECTION = {
    "error": "rejected",
    "rules": [
        {
            "code": "FAD06",
            "kind": "Rechazo",
            "text": "Valor del CUFE no está calculado correctamente",
        },
        {"code": "FAJ43b", "kind": "Notificación", "text": "Nombre informado no corresponde"},
    ],
}
UNAVAILABLE = {
    "error": "gateway_unavailable",
    "message": "connection refused",
    "gave_up": "after 25 attempts over 172800 s",
}
INVALID = {
    "error": "invalid_order",
    "errors": [{"field": "items[0].cantidad", "rule": "positive", "message": "must be above 0"}],
}


def _order(order_id: str) -> Order:
    data = json.loads(SAMPLES.read_text(encoding="utf-8"))[0]
    data["id_pedido_origen"] = order_id
    return parse_order(data)


def seed(engine: Engine) -> Seeded:
    """Orders in every situation an operator meets, written through the real store."""
    now = datetime.now(UTC)
    clock = Clock(now - timedelta(hours=3))
    SqlNumberingRanges(engine).sync_configured(ISSUER, NUMBERING)
    store = SqlDocumentStore(engine, clock)
    seeded = Seeded(now)

    def accept(order_id: str, ago: timedelta) -> None:
        clock.now = now - ago
        store.accept(key(order_id), _order(order_id), "simulated", SALE)

    def claim(order_id: str, lease: float = 150.0) -> Claim:
        found = store.claim(key(order_id), lease)
        assert found is not None
        return found

    for order_id, state, reason, refs in (
        (seeded.succeeded, State.SUCCESS, None, {"cufe": "c" * 96}),
        (seeded.rejected, State.FAILED, REJECTION, {}),
        (seeded.unavailable, State.FAILED, UNAVAILABLE, {}),
        (seeded.invalid, State.FAILED, INVALID, {}),
    ):
        accept(order_id, timedelta(minutes=5))
        c = claim(order_id)
        status = "SUCCESS" if state is State.SUCCESS else "FAILED"
        assert store.finish(c, state, refs, StepNote(status, reason or {"ok": True}), reason)

    accept(seeded.waiting, timedelta(hours=2))
    c = claim(seeded.waiting)
    due = now + timedelta(minutes=10)
    outcome = {"error": "outcome_unknown", "message": "read timeout after sending"}
    assert store.defer(c, State.EN_ESPERA, due, {}, StepNote("EN_ESPERA", outcome), outcome)

    accept(seeded.never_taken, timedelta(hours=1))

    accept(seeded.lease_expired, timedelta(hours=3))
    claim(seeded.lease_expired, lease=60.0)  # the clock says 3 h ago: the lease is long over

    store.refuse(
        None,
        {"id_pedido_origen": None},
        [FieldError("id_pedido_origen", "required", "is missing")],
    )
    return seeded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
