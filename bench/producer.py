"""Orders accepted per second by `Producer.enqueue` (validate, durable write with its audit
row and document number, then the Redis wake-up), one process and N concurrent processes.

    python -m bench.producer [--orders 2000] [--processes 8] [--json]

Nothing consumes the wake-ups; the scratch database and Redis index 13 are dropped after.
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

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.common import REDIS_URL, flush_redis, order, queue_name, scratch_database
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
    from worker.producer import Producer

    orders = [order(f"{prefix}-{n}", lines) for n in range(count)]
    with Producer(settings_from(env)) as producer:
        producer.enqueue(order(f"{prefix}-warm", lines))  # connections, first publish
        start = time.perf_counter()
        accepted = sum(1 for o in orders if producer.enqueue(o).created)
        elapsed = time.perf_counter() - start
    return accepted, elapsed


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


def run(orders: int = 2000, processes: int = 8, gateway: str = "simulated") -> dict[str, Any]:
    """Single producer, then `processes` concurrent ones, on a fresh database each."""
    result: dict[str, Any] = {"gateway": gateway}
    with scratch_database() as url:
        env = producer_env(url, queue_name("producer"), gateway)
        accepted, seconds = produce(env, "ONE", orders)
        result["single"] = {
            "processes": 1,
            "orders": accepted,
            "seconds": round(seconds, 3),
            "per_second": round(accepted / seconds, 1),
        }
    with scratch_database() as url:
        env = producer_env(url, queue_name("producer"), gateway)
        result["parallel"] = produce_parallel(env, "PAR", orders * 2, processes)
    flush_redis()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--gateway", default="simulated", choices=["simulated", "factus"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.orders, args.processes, args.gateway)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
