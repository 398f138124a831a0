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
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


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
                "TRUNCATE deliveries, document_files, creditable_lines, documents, orders, "
                "numbering_ranges, invoice_log, intake_refusals, audit_checkpoints, "
                "issuer_secrets, issuers "
                "RESTART IDENTITY"
            )
        )
    return engine


@pytest.fixture
def store(clean_db: Engine) -> SqlDocumentStore:
    return SqlDocumentStore(clean_db)


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The machine's RabbitMQ (scripts/services starts it). Tests use their own queue names on
    it and delete them; tests that kill a broker start their own (chaos.rabbitmq)."""
    from kombu import Connection

    try:
        with Connection(RABBITMQ_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        raise RuntimeError(
            f"tests need RabbitMQ at {RABBITMQ_URL} (start it: scripts/services)"
        ) from exc
    return RABBITMQ_URL


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
