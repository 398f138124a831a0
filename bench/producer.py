"""Orders accepted per second by `Producer.enqueue` (validate, durable write with its audit
row and document number, then the Redis wake-up), beside the bare baseline measured in the same
run (one INSERT of a JSONB row in its transaction + one LPUSH per order, one process, the same
driver); `Producer.enqueue_many` for a till syncing `--many` orders in batches; N concurrent
producers; and what validating a typical order costs (pydantic's share).

    python -m bench.producer [--orders 2000] [--many 10000] [--batch 500] [--processes 8]

Nothing consumes the wake-ups; the scratch databases and our Redis index are emptied after.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import threading
import time
from collections import Counter
from typing import Any

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.common import REDIS_URL, flush_redis, order, queue_name, scratch_database
from domain.usecases.enqueue import Enqueued
from worker.settings import Settings


def settings_from(env: dict[str, str]) -> Settings:
    """`Settings` as a process started with `env` would read them."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def producer_env(database_url: str, queue: str, gateway: str = "simulated") -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "BROKER_URL": REDIS_URL,
        "QUEUE": queue,
        "GATEWAY": gateway,
        "LOG_LEVEL": "WARNING",
    }


def produce(env: dict[str, str], prefix: str, count: int, lines: int = 2) -> tuple[int, float]:
    """Enqueue `count` new orders from this process; returns (accepted, seconds)."""
    accepted, elapsed, _ = produce_timed(env, prefix, count, lines)
    return accepted, elapsed


def produce_timed(
    env: dict[str, str], prefix: str, count: int, lines: int = 2, batch: int = 0
) -> tuple[int, float, float]:
    """Enqueue `count` new orders from this process, one by one (`batch` 0) or with
    `enqueue_many` in batches; returns (accepted, seconds, CPU seconds of this process)."""
    from worker.producer import Producer

    orders = [order(f"{prefix}-{n}", lines) for n in range(count)]
    with Producer(settings_from(env)) as producer:
        producer.enqueue(order(f"{prefix}-warm", lines))  # connections, first publish
        start, cpu = time.perf_counter(), time.process_time()
        if batch:
            answers = producer.enqueue_many(orders, batch=batch)
            accepted = sum(1 for a in answers if isinstance(a, Enqueued) and a.created)
        else:
            accepted = sum(1 for o in orders if producer.enqueue(o).created)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return accepted, elapsed, cpu


def bare(database_url: str, count: int) -> tuple[float, float]:
    """The baseline: per order one INSERT of the order's JSONB in its own transaction, then
    one LPUSH of a small message; (seconds, CPU seconds)."""
    engine = create_engine(database_url)
    client = redis.Redis.from_url(REDIS_URL)
    queue = queue_name("bare")
    insert = text(
        "INSERT INTO bare_orders (order_key, payload) VALUES (:key, CAST(:payload AS jsonb))"
    )
    payloads = [(f"BARE-{n}", json.dumps(order(f"BARE-{n}"))) for n in range(count)]
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE bare_orders (id bigserial PRIMARY KEY, order_key text UNIQUE,"
                    " payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
                )
            )
        start, cpu = time.perf_counter(), time.process_time()
        for key, payload in payloads:
            with engine.begin() as conn:
                conn.execute(insert, {"key": key, "payload": payload})
            client.lpush(queue, json.dumps({"task": "bare", "args": [key]}))
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        client.delete(queue)
        client.close()
        engine.dispose()


def _produce_star(args: tuple[dict[str, str], str, int, int]) -> tuple[int, float]:
    return produce(*args)


def produce_parallel(
    env: dict[str, str], prefix: str, total: int, processes: int, lines: int = 2
) -> dict[str, Any]:
    """`processes` producers, `total` orders between them (plus one warm-up order each,
    not timed); the rate is over the slowest producer's timed loop."""
    share = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
    jobs = [(env, f"{prefix}-p{i}", n, lines) for i, n in enumerate(share)]
    ctx = multiprocessing.get_context("spawn")
    waits = WaitSampler(env["DATABASE_URL"])
    waits.start()
    with ctx.Pool(processes) as pool:
        results = pool.map(_produce_star, jobs)
    waits.stop()
    accepted = sum(a for a, _ in results)
    slowest = max(s for _, s in results)
    return {
        "processes": processes,
        "orders": accepted,
        "seconds": round(slowest, 3),
        "per_second": round(accepted / slowest, 1),
        "backend_states_pct": waits.shares(),
    }


class WaitSampler(threading.Thread):
    """What our PostgreSQL backends are doing, sampled every 20 ms from pg_stat_activity:
    running, waiting for a lock (and which), for the client, or for I/O."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self._url = database_url
        self._stop_event = threading.Event()
        self.counts: Counter[str] = Counter()

    def run(self) -> None:
        engine = create_engine(self._url, poolclass=NullPool)
        sql = text(
            "SELECT coalesce(wait_event_type || ':' || wait_event, 'running') FROM "
            "pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state = 'active'"
        )
        with engine.connect() as conn:
            while not self._stop_event.wait(0.02):
                self.counts.update(conn.execute(sql).scalars())
                conn.rollback()
        engine.dispose()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def shares(self) -> dict[str, float]:
        total = sum(self.counts.values()) or 1
        return {k: round(v * 100 / total, 1) for k, v in self.counts.most_common(6)}


def _rate(orders: int, seconds: float, cpu: float, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "orders": orders,
        "seconds": round(seconds, 3),
        "per_second": round(orders / seconds, 1),
        "cpu_ms_per_order": round(cpu * 1000 / orders, 3),
    }


def run(
    orders: int = 2000,
    processes: int = 8,
    gateway: str = "simulated",
    many: int = 10000,
    batch: int = 500,
) -> dict[str, Any]:
    """The bare baseline and a single producer, enqueue_many, then `processes` concurrent
    producers, on a fresh database each."""
    from bench.bench_validate import typical

    result: dict[str, Any] = {"gateway": gateway, "validation": typical(order("TYPICAL"))}
    with scratch_database() as url:
        seconds, cpu = bare(url, orders)
        result["bare"] = _rate(orders, seconds, cpu, processes=1)
    with scratch_database() as url:
        env = producer_env(url, queue_name("producer"), gateway)
        accepted, seconds, cpu = produce_timed(env, "ONE", orders)
        result["single"] = _rate(accepted, seconds, cpu, processes=1)
        flush_redis()
    with scratch_database() as url:
        env = producer_env(url, queue_name("producer"), gateway)
        accepted, seconds, cpu = produce_timed(env, "MANY", many, batch=batch)
        result["many"] = _rate(accepted, seconds, cpu, processes=1, batch=batch)
        flush_redis()
    result["single_vs_bare"] = round(
        result["single"]["per_second"] / result["bare"]["per_second"], 3
    )
    with scratch_database() as url:
        env = producer_env(url, queue_name("producer"), gateway)
        # the configured ranges are stored once first: producers starting at the same moment
        # on an empty database would race to store them (that is not what is measured here)
        produce(env, "PAR-setup", 0)
        result["parallel"] = produce_parallel(env, "PAR", orders * 2, processes)
    flush_redis()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--gateway", default="simulated", choices=["simulated", "factus"])
    parser.add_argument("--many", type=int, default=10000, help="orders for enqueue_many")
    parser.add_argument("--batch", type=int, default=500, help="orders per enqueue_many batch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.orders, args.processes, args.gateway, args.many, args.batch)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
