"""Orders per minute at the real Factus limit, and recovery after a Factus outage.

    python -m bench.factus_limit [--orders 300] [--limit 80] [--window 60] [--token-uses 0]
                                 [--token-ttl 600] [--outage 10] [--outage-orders 60]
                                 [--only drain|outage] [--json]

Both runs start the Factus stand-in (`adapters.factus.simulator`) in this process, a real
worker and a real beat (`python -m worker worker|beat`, default settings) on a scratch
database, and read the stand-in's own counters.

drain: `--orders` are accepted before the worker starts; the stand-in allows `--limit`
requests per `--window` seconds (Factus: 80 per minute). Reported: the time from the worker's
`ready` to the last order final, against the minimum the limit allows (orders / limit ×
window), the requests of each kind (bill validations, lookups by reference_code, shows),
429s, logins and refreshes. With `--token-uses N` every access token dies after N requests.

outage: the stand-in answers 503 to everything for `--outage` seconds while `--outage-orders`
are accepted; reported: how long after Factus came back the last order was final, and how
many requests reached the stand-in during the outage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine

from adapters.factus.simulator import SimulatorServer, start_simulator
from adapters.factus.simulator.app import SimulatorOptions
from bench.common import (
    REDIS_URL,
    Processes,
    flush_redis,
    order,
    queue_name,
    scratch_database,
    wait_count,
    wait_for_log,
    worker_argv,
)
from bench.producer import producer_env, settings_from

FINAL_SQL = "SELECT count(*) FROM documents WHERE state IN ('SUCCESS', 'FAILED')"
STATES_SQL = "SELECT state, count(*) FROM documents GROUP BY state"
READY = "ready."


def _env(url: str, queue: str, factus_url: str, limit: int, window: float) -> dict[str, str]:
    options = SimulatorOptions()
    return {
        **producer_env(url, queue, "factus"),
        "REDIS_URL": REDIS_URL,
        "FACTUS__BASE_URL": factus_url,
        "FACTUS__CLIENT_ID": options.client_id,
        "FACTUS__CLIENT_SECRET": options.client_secret,
        "FACTUS__USERNAME": options.username,
        "FACTUS__PASSWORD": options.password,
        "FACTUS__NUMBERING_RANGE_ID": "8",
        "FACTUS__RATE_LIMIT_PER_MINUTE": str(limit),
        "FACTUS__RATE_LIMIT_WINDOW_SECONDS": str(window),
        "LOG_LEVEL": "INFO",
    }


@contextlib.contextmanager
def _stand_in(**options: Any) -> Iterator[SimulatorServer]:
    server, _ = start_simulator(**options)
    try:
        yield server
    finally:
        server.stop()


def _enqueue(env: dict[str, str], prefix: str, count: int) -> None:
    from worker.producer import Producer

    with Producer(settings_from(env)) as producer:
        for n in range(count):
            producer.enqueue(order(f"{prefix}-{n:04d}"))


def _states(url: str) -> dict[str, int]:
    from sqlalchemy import text

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(STATES_SQL)).all()
    engine.dispose()
    return {str(state): int(n) for state, n in rows}


def _stats(server: SimulatorServer) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(server.base_url + "/_stats", timeout=10).json()
    return answer


def _requests(stats: dict[str, Any]) -> dict[str, Any]:
    kinds = dict(stats.get("by_kind", {}))
    total = sum(kinds.values())
    validate = kinds.get("validate", 0)
    return {
        "by_kind": kinds,
        "total": total,
        "not_sales": total - validate,
        "not_sales_pct": round((total - validate) * 100 / total, 1) if total else 0.0,
        "lookups_pct": round(kinds.get("lookup", 0) * 100 / total, 1) if total else 0.0,
        "rate_limited": stats["rate_limited"],
        "unauthorized": stats["unauthorized"],
        "logins": stats["logins"],
        "refreshes": stats["refreshes"],
        "max_requests_in_window": stats["max_requests_in_window"],
        "duplicate_bills": sum(1 for n in stats["bills_created"].values() if n > 1),
    }


def run_drain(
    orders: int,
    limit: int = 80,
    window: float = 60.0,
    token_uses: int = 0,
    token_ttl: int = 600,
    concurrency: int = 2,
    timeout: float = 1200.0,
) -> dict[str, Any]:
    """Pre-enqueue `orders`, start a worker and beat, time the drain at the stand-in's limit."""
    with (
        tempfile.TemporaryDirectory(prefix="einvoice-bench-") as tmp,
        scratch_database() as url,
        _stand_in(
            rate_limit=limit, rate_limit_window=window, token_uses=token_uses, token_ttl=token_ttl
        ) as server,
    ):
        procs = Processes(Path(tmp))
        queue = queue_name("factus")
        env = {
            **_env(url, queue, server.base_url, limit, window),
            "WORKER__CONCURRENCY": str(concurrency),
        }
        try:
            _enqueue(env, "LIMIT", orders)
            procs.start(worker_argv("prefork", concurrency, queue, name="w1"), env, "w1")
            procs.start([sys.executable, "-m", "worker", "beat"], env, "beat")
            ready = wait_for_log(procs, "w1", READY)
            engine = create_engine(url)
            done, finished = wait_count(engine, FINAL_SQL, orders, timeout, poll=0.2)
            engine.dispose()
            stats = _stats(server)
            states = _states(url)
        finally:
            procs.stop()
            flush_redis()
    drain = finished - ready
    minimum = orders / limit * window
    return {
        "orders": orders,
        "final": done,
        "states": states,
        "limit": f"{limit} per {window:g} s",
        "token_uses": token_uses,
        "token_ttl": token_ttl,
        "drain_s": round(drain, 1),
        "minimum_s": round(minimum, 1),
        "drain_over_minimum": round(drain / minimum, 3),
        "orders_per_minute": round(done * 60 / drain, 1) if drain > 0 else 0.0,
        "requests": _requests(stats),
    }


def run_outage(
    orders: int, outage: float = 10.0, concurrency: int = 2, timeout: float = 600.0
) -> dict[str, Any]:
    """Factus answers 503 for `outage` seconds while `orders` arrive; time the recovery."""
    with (
        tempfile.TemporaryDirectory(prefix="einvoice-bench-") as tmp,
        scratch_database() as url,
        _stand_in() as server,
    ):
        procs = Processes(Path(tmp))
        queue = queue_name("factus-outage")
        env = {
            **_env(url, queue, server.base_url, 80, 60.0),
            "WORKER__CONCURRENCY": str(concurrency),
        }
        try:
            procs.start(worker_argv("prefork", concurrency, queue, name="w1"), env, "w1")
            procs.start([sys.executable, "-m", "worker", "beat"], env, "beat")
            wait_for_log(procs, "w1", READY)
            _enqueue(env, "WARM", 1)  # logged in, connections open
            engine = create_engine(url)
            wait_count(engine, FINAL_SQL, 1, 60)
            httpx.post(server.base_url + "/_control", json={"maintenance": True}, timeout=5)
            down_at = time.monotonic()
            before = _stats(server)["requests"]
            _enqueue(env, "OUT", orders)
            time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
            during = _stats(server)["requests"] - before
            httpx.post(server.base_url + "/_control", json={"maintenance": False}, timeout=5)
            up_at = time.monotonic()
            done, finished = wait_count(engine, FINAL_SQL, orders + 1, timeout, poll=0.1)
            engine.dispose()
            stats = _stats(server)
            states = _states(url)
        finally:
            procs.stop()
            flush_redis()
    return {
        "orders": orders,
        "final": done - 1,
        "states": states,
        "outage_s": round(up_at - down_at, 1),
        "requests_during_outage": during,
        "last_final_after_recovery_s": round(finished - up_at, 1),
        "requests": _requests(stats),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--token-uses", type=int, default=0)
    parser.add_argument("--token-ttl", type=int, default=600)
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument("--outage-orders", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--only", choices=["drain", "outage"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if args.only in (None, "drain"):
        results["drain"] = run_drain(
            args.orders, args.limit, args.window, args.token_uses, args.token_ttl, args.concurrency
        )
        _print_drain(results["drain"])
    if args.only in (None, "outage"):
        results["outage"] = run_outage(args.outage_orders, args.outage, args.concurrency)
        _print_outage(results["outage"])
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _print_drain(r: dict[str, Any]) -> None:
    q = r["requests"]
    print(
        f"drain: {r['final']}/{r['orders']} final {r['states']} at {r['limit']}: "
        f"{r['drain_s']} s vs {r['minimum_s']} s minimum ({r['drain_over_minimum']}x), "
        f"{r['orders_per_minute']} orders/min"
    )
    print(
        f"  requests {q['total']} {q['by_kind']}: not sales {q['not_sales_pct']} %, "
        f"lookups {q['lookups_pct']} %; 429s {q['rate_limited']}, 401s {q['unauthorized']}, "
        f"logins {q['logins']}, refreshes {q['refreshes']}, "
        f"peak window {q['max_requests_in_window']}, duplicate bills {q['duplicate_bills']}"
    )


def _print_outage(r: dict[str, Any]) -> None:
    q = r["requests"]
    print(
        f"outage: {r['final']}/{r['orders']} final {r['states']}; {r['outage_s']} s of 503s, "
        f"{r['requests_during_outage']} requests reached Factus during it; last order final "
        f"{r['last_final_after_recovery_s']} s after Factus came back"
    )
    print(f"  requests {q['total']} {q['by_kind']}: lookups {q['lookups_pct']} %")


if __name__ == "__main__":
    raise SystemExit(main())
