"""The bare Celery baseline: a no-op task that writes two rows, through the same broker and
the same database as the pipeline, with the same delivery settings (JSON, late acks,
prefetch 1, no results).

The worker is `celery -A bench.baseline worker ...`, configured by BENCH_BROKER_URL,
BENCH_DATABASE_URL and BENCH_QUEUE. `publish(n)` sends n wake-ups carrying a key, as the
producer does; each task inserts one row shaped like `orders` and one shaped like
`invoice_log` (small JSONB payloads) in one transaction.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

from celery import Celery
from sqlalchemy import Engine, create_engine, text

TASK = "bench.baseline.noop"
DDL = (
    """
    CREATE TABLE IF NOT EXISTS baseline_orders (
        id bigserial PRIMARY KEY,
        order_key varchar(90) NOT NULL UNIQUE,
        state varchar(12) NOT NULL,
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS baseline_log (
        id serial PRIMARY KEY,
        status varchar(20) NOT NULL,
        order_key varchar(90),
        payload_in jsonb NOT NULL,
        response_out jsonb,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
)
INSERT_ORDER = text(
    "INSERT INTO baseline_orders (order_key, state, payload) "
    "VALUES (:key, 'SUCCESS', CAST(:payload AS jsonb))"
)
INSERT_LOG = text(
    "INSERT INTO baseline_log (status, order_key, payload_in, response_out) "
    "VALUES ('SUCCESS', :key, CAST(:payload AS jsonb), CAST('{\"ok\": true}' AS jsonb))"
)
PAYLOAD = '{"id_pedido_origen": "X", "items": [{"descripcion": "Cerveza", "cantidad": "2"}]}'
RATE_SQL = "SELECT count(*), min(created_at), max(created_at) FROM baseline_orders"
COUNT_SQL = "SELECT count(*) FROM baseline_orders"


def make_app(broker_url: str, queue: str) -> Celery:
    app = Celery("baseline", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queue,
        broker_transport_options={"visibility_timeout": 1800},
        broker_connection_retry_on_startup=True,
    )
    return app


app = make_app(
    os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"),
    os.environ.get("BENCH_QUEUE", "bench-baseline"),
)
_engines: dict[int, Engine] = {}
_lock = threading.Lock()


def _engine() -> Engine:
    pid = os.getpid()
    with _lock:
        if pid not in _engines:
            _engines.clear()
            _engines[pid] = create_engine(
                os.environ["BENCH_DATABASE_URL"], pool_size=4, max_overflow=4
            )
        return _engines[pid]


@app.task(name=TASK, acks_late=True)  # type: ignore[misc]
def noop(key: str) -> None:
    with _engine().begin() as conn:
        conn.execute(INSERT_ORDER, {"key": key, "payload": PAYLOAD})
        conn.execute(INSERT_LOG, {"key": key, "payload": PAYLOAD})


def create_tables(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for ddl in DDL:
            conn.execute(text(ddl))
    engine.dispose()


def publish(broker_url: str, queue: str, count: int) -> float:
    """Send `count` wake-ups; returns the seconds it took."""
    import time

    sender = make_app(broker_url, queue)
    start = time.perf_counter()
    with sender.producer_or_acquire() as producer:
        for _ in range(count):
            key = f"900123456:{uuid.uuid4().hex[:16]}"
            sender.send_task(TASK, args=[key], queue=queue, producer=producer)
    elapsed = time.perf_counter() - start
    sender.close()
    return elapsed


def env(broker_url: str, database_url: str, queue: str) -> dict[str, Any]:
    return {
        "BENCH_BROKER_URL": broker_url,
        "BENCH_DATABASE_URL": database_url,
        "BENCH_QUEUE": queue,
    }
