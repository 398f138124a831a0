"""Shared fixtures: a real PostgreSQL database migrated by Alembic, a real Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine, create_engine, text

from adapters.db.engine import make_engine
from adapters.db.store import SqlDocumentStore
from worker.migrations import upgrade

ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


APP_ROLE = "einvoice_app"


def create_database(prefix: str) -> str:
    """A new empty database; the application role exists so migrations grant it its rights."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text(f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}'")).first():
            conn.execute(text(f"CREATE ROLE {APP_ROLE} LOGIN"))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = create_database("einvoice_test")
    upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url, pool_size=10)
    yield eng
    eng.dispose()


@pytest.fixture
def clean_db(engine: Engine) -> Engine:
    """Per-test isolation: empty tables. The audit trail refuses TRUNCATE to everyone; only a
    superuser can switch triggers off for a session, which this test database allows."""
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text(
                "TRUNCATE creditable_lines, documents, orders, numbering_ranges, invoice_log, "
                "issuer_secrets, issuers, "
                "intake_refusals "
                "RESTART IDENTITY"
            )
        )
    return engine


@pytest.fixture
def store(clean_db: Engine) -> SqlDocumentStore:
    return SqlDocumentStore(clean_db)


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        raise RuntimeError(
            f"tests need Redis at {REDIS_URL} (start it: redis-server --daemonize yes)"
        ) from exc
    finally:
        client.close()
    return REDIS_URL
