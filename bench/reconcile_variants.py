"""A candidate for a faster reconciliation pass, measured on the same data as
`bench.reconcile_scale`: two partial indexes that split open orders in two, and the pass as
two index scans that stop after one batch.

    python -m bench.reconcile_variants [--orders 1000000] [--batch 500] [--json]

The store's query asks for orders that are due and (never published, or became due after
their last wake-up, or whose wake-up is older than `republish_after`). Its only index is
`due_at WHERE due_at IS NOT NULL`, so PostgreSQL reads every due order, including the ones
woken a moment ago, sorts them and keeps 500. Split:

- `ix_orders_due_unpublished (due_at) WHERE due_at IS NOT NULL AND (published_at IS NULL
  OR published_at < due_at)`: orders needing a wake-up, in due order;
- `ix_orders_published_inflight (published_at) WHERE due_at IS NOT NULL AND published_at >=
  due_at`: orders whose wake-up is on its way, oldest wake-up first (lost ones are > 120 s).

Same rows, same locks (FOR UPDATE SKIP LOCKED), same `published_at = now` update; the only
difference in behaviour is that never-woken orders come before lost wake-ups in a batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from adapters.db.engine import make_engine
from bench.common import scratch_database
from bench.reconcile_scale import load

INDEXES = (
    "CREATE INDEX ix_orders_due_unpublished ON orders (due_at) "
    "WHERE due_at IS NOT NULL AND (published_at IS NULL OR published_at < due_at)",
    "CREATE INDEX ix_orders_published_inflight ON orders (published_at) "
    "WHERE due_at IS NOT NULL AND published_at >= due_at",
)
NEEDS_WAKEUP = """
SELECT id, issuer, order_id FROM documents
WHERE due_at IS NOT NULL AND (published_at IS NULL OR published_at < due_at)
  AND due_at <= %(now)s
ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
"""
# The planner underestimates how many orders are due (it sees few non-null `due_at` in its
# sample) and picks a bitmap scan that reads and sorts every due order; an ordered index scan
# stops after one batch.
NO_BITMAP = "SET LOCAL enable_bitmapscan = off"
LOST_WAKEUP = """
SELECT id, issuer, order_id FROM documents
WHERE due_at IS NOT NULL AND published_at >= due_at
  AND published_at < %(stale)s AND due_at <= %(now)s
ORDER BY published_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
"""


def due_for_publish_split(
    engine: Engine, now: datetime, republish_after: float, limit: int, no_bitmap: bool = False
) -> list[tuple[str, str]]:
    stale = now - timedelta(seconds=republish_after)
    with engine.begin() as conn:
        if no_bitmap:
            conn.exec_driver_sql(NO_BITMAP)
        rows = list(conn.exec_driver_sql(NEEDS_WAKEUP, {"now": now, "limit": limit}))
        if len(rows) < limit:
            params = {"now": now, "stale": stale, "limit": limit - len(rows)}
            rows += list(conn.exec_driver_sql(LOST_WAKEUP, params))
        if rows:
            conn.execute(
                text("UPDATE documents SET published_at = :now WHERE id = ANY(:ids)"),
                {"now": now, "ids": [r.id for r in rows]},
            )
    return [(r.issuer, r.order_id) for r in rows]


def _explain(url: str, sql: str, params: dict[str, Any], no_bitmap: bool) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        if no_bitmap:
            conn.exec_driver_sql(NO_BITMAP)
        plan = [r[0] for r in conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)]
        conn.rollback()
    engine.dispose()
    return plan


def run(orders: int = 1_000_000, batch: int = 500, no_bitmap: bool = False) -> dict[str, Any]:
    with scratch_database() as url:
        loaded = load(url, orders)
        engine = make_engine(url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            start = time.perf_counter()
            for ddl in INDEXES:
                conn.execute(text(ddl))
            conn.execute(text("ANALYZE orders"))
            index_s = time.perf_counter() - start
        due_for_publish_split(engine, datetime(2000, 1, 1, tzinfo=UTC), 120.0, batch)  # warm
        timings, found = [], []
        plans: dict[str, list[str]] = {}
        while True:
            now = datetime.now(UTC)
            start = time.perf_counter()
            keys = due_for_publish_split(engine, now, 120.0, batch, no_bitmap)
            timings.append((time.perf_counter() - start) * 1000)
            found.append(len(keys))
            if len(found) == 2:
                needs = {"now": now, "limit": batch}
                plans["needs_wakeup"] = _explain(url, NEEDS_WAKEUP, needs, no_bitmap)
                stale = now - timedelta(seconds=120)
                lost = {"now": now, "stale": stale, "limit": batch}
                plans["lost_wakeup"] = _explain(url, LOST_WAKEUP, lost, no_bitmap)
            if not keys or len(found) > 10_000:
                break
        engine.dispose()
    full = [t for t, n in zip(timings, found, strict=True) if n == batch]
    return {
        "orders": orders,
        "batch": batch,
        "no_bitmap": no_bitmap,
        "load": loaded,
        "index_build_s": round(index_s, 1),
        "batches": len(timings),
        "published": sum(found),
        "ms_per_batch": [round(t, 2) for t in timings],
        "median_ms_full_batch": round(statistics.median(full), 2) if full else None,
        "max_ms_full_batch": round(max(full), 2) if full else None,
        "ms_empty_pass": round(timings[-1], 2),
        "plans": plans,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--no-bitmap", action="store_true", help="SET LOCAL enable_bitmapscan")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.orders, args.batch, args.no_bitmap)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps({k: v for k, v in result.items() if k != "plans"}, indent=2))
        for name, plan in result["plans"].items():
            print(f"--- plan ({name})")
            print("\n".join(plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
