"""Fixtures for the HTTP intake tests: its own migrated database, Redis (`TEST_REDIS_URL`, else
DB 11) with a queue of its own, and the API served by a real uvicorn server on loopback.

Import them explicitly: `from tests.integration.api_fixtures import ...`.
"""

from __future__ import annotations

import copy
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI

from adapters.db.api_keys import SqlApiKeys
from adapters.db.engine import make_engine
from tests.conftest import create_database, drop_database
from tests.factories import SEED_ORDER
from worker.api import create_api
from worker.api.config import ApiSettings
from worker.migrations import upgrade
from worker.settings import Settings, SimulatedSettings

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
ISSUER = "900123456"
TEST_BODY_LIMIT = 64 * 1024


def seed_order(order_id: str) -> dict[str, Any]:
    order = copy.deepcopy(SEED_ORDER)
    order["id_pedido_origen"] = order_id
    return order


def unique_id(prefix: str = "POS") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` under a real uvicorn server in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="session")
def api_database() -> Iterator[str]:
    url = create_database("einvoice_api")
    upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def api_queue() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    yield f"api-test-{uuid.uuid4().hex[:8]}"
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def settings_factory(
    api_database: str, api_queue: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    state = tmp_path_factory.mktemp("authority") / "authority.sqlite"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": api_database,
            "broker_url": REDIS_URL,
            "queue": api_queue,
            "gateway": "simulated",
            "simulated": SimulatedSettings(state_path=Path(state)),
            "issuer_refresh_seconds": 0.0,  # tests change issuers between requests
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session")
def api_settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture(scope="session")
def api_keys(api_database: str) -> Iterator[SqlApiKeys]:
    engine = make_engine(api_database, pool_size=2)
    yield SqlApiKeys(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def api_key(api_keys: SqlApiKeys) -> str:
    return api_keys.create("caja-1", ISSUER)[1]


@pytest.fixture(scope="session")
def api_url(api_settings: Settings) -> Iterator[str]:
    # keys are revoked between requests: ask the database every time (see the test of the
    # remembered keys for the served default)
    app = create_api(
        api_settings, ApiSettings(max_body_bytes=TEST_BODY_LIMIT, key_cache_seconds=0.0)
    )
    with serve(app) as url:
        yield url


@pytest.fixture
def http(api_url: str, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, headers={"X-API-Key": api_key}, timeout=10) as client:
        yield client
