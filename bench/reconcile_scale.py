"""One reconciliation pass at scale: how long `SqlDocumentStore.due_for_publish` takes per batch
of 500 with 1,000,000 orders and 2,000,000 audit rows, and the plan PostgreSQL uses for it.

    python -m bench.reconcile_scale [--orders 1000000] [--batch 500] [--json]

Rows are loaded with `INSERT ... SELECT generate_series` into a scratch database migrated to
head (constraints and indexes in place; triggers off for the load), then VACUUM ANALYZE. One order
in 200 is stuck and due (half accepted but never published, half claims whose lease ran out),
one in 200 is waiting with `due_at` in the future, one in 200 is due but was published a
moment ago (must be skipped), and the rest are final. Every audit row is a RECIBIDO or SUCCESS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import event, text

from adapters.db.engine import make_engine
from adapters.db.store import SqlDocumentStore, utc_now
from bench.common import scratch_database

LOAD_ORDERS = """
INSERT INTO orders (issuer, order_id, payload, fingerprint, created_at)
SELECT '900123456', 'SCALE-' || g,
       jsonb_build_object('id_pedido_origen', 'SCALE-' || g, 'total_factura', '46200'),
       md5(g::text), now() - interval '30 days' + g * interval '2 seconds'
FROM generate_series(1, :n) AS g;
INSERT INTO documents (order_ref, issuer, order_id, kind, gateway, state, issued_at,
                       prefix, consecutive, number, attempts, maybe_sent, claim_token, due_at,
                       published_at, cufe, refs, created_at, updated_at, finished_at)
SELECT o.id, o.issuer, o.order_id, '01', 'dian',
       CASE g % 200 WHEN 0 THEN 'PENDIENTE' WHEN 100 THEN 'PROCESANDO'
                    WHEN 1 THEN 'EN_ESPERA' WHEN 2 THEN 'PENDIENTE' ELSE 'SUCCESS' END,
       now() - interval '30 days' + g * interval '2 seconds',
       'SETP', 990000000 + g, 'SETP' || (990000000 + g),
       CASE WHEN g % 200 IN (0, 1, 2) THEN 0 ELSE 1 END,
       g % 200 NOT IN (0, 2),
       CASE g % 200 WHEN 100 THEN md5(g::text)::uuid::text END,
       CASE g % 200
            WHEN 0 THEN now() - interval '10 minutes' - (g % 997) * interval '1 second'
            WHEN 100 THEN now() - interval '5 minutes' - (g % 991) * interval '1 second'
            WHEN 1 THEN now() + interval '1 hour'
            WHEN 2 THEN now() - interval '1 minute'
       END,
       CASE g % 200
            WHEN 0 THEN NULL
            WHEN 2 THEN now() - interval '10 seconds'
            ELSE now() - interval '30 days' + g * interval '2 seconds'
       END,
       CASE WHEN g % 200 IN (0, 1, 2, 100) THEN NULL ELSE md5(g::text) || md5(g::text) END,
       '{}'::jsonb,
       now() - interval '30 days' + g * interval '2 seconds',
       now() - interval '30 days' + g * interval '2 seconds',
       CASE WHEN g % 200 IN (0, 1, 2, 100) THEN NULL
            ELSE now() - interval '30 days' + g * interval '2 seconds' END
FROM orders o, LATERAL (SELECT substr(o.order_id, 7)::int AS g) AS n
"""
LOAD_AUDIT = """
INSERT INTO invoice_log (status, order_key, payload_in, response_out, created_at)
SELECT CASE WHEN g % 2 = 1 THEN 'RECIBIDO' ELSE 'SUCCESS' END,
       '900123456:SCALE-' || ((g + 1) / 2),
       jsonb_build_object('order_key', '900123456:SCALE-' || ((g + 1) / 2)),
       jsonb_build_object('state', CASE WHEN g % 2 = 1 THEN 'PENDIENTE' ELSE 'SUCCESS' END),
       now() - interval '30 days' + g * interval '1 second'
FROM generate_series(1, :n) AS g
"""
STUCK_SQL = """
SELECT count(*) FROM documents
WHERE due_at IS NOT NULL AND due_at <= now()
  AND (published_at IS NULL OR published_at < due_at
       OR published_at < now() - interval '120 seconds')
"""


def load(url: str, orders: int) -> dict[str, Any]:
    engine = make_engine(url)
    timings: dict[str, Any] = {}
    with engine.begin() as conn:
        # A synthetic history, loaded as the superuser with the trail's triggers off: it is
        # not a sequence of steps the insert trigger would take one by one.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        start = time.perf_counter()
        conn.execute(text(LOAD_ORDERS), {"n": orders})
        timings["orders_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        conn.execute(text(LOAD_AUDIT), {"n": orders * 2})
        timings["audit_s"] = round(time.perf_counter() - start, 1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        start = time.perf_counter()
        conn.execute(text("VACUUM ANALYZE documents"))
        conn.execute(text("VACUUM ANALYZE documents"))
        conn.execute(text("VACUUM ANALYZE invoice_log"))
        timings["vacuum_analyze_s"] = round(time.perf_counter() - start, 1)
        timings["orders"] = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
        timings["audit_rows"] = conn.execute(text("SELECT count(*) FROM invoice_log")).scalar_one()
        timings["due_at_start"] = conn.execute(text(STUCK_SQL)).scalar_one()
    engine.dispose()
    return timings


def explain(url: str, statement: str, parameters: Any) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the store's own SQL, in a transaction rolled back."""
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
        plan = [r[0] for r in rows]
        conn.rollback()
    engine.dispose()
    return plan


def passes(url: str, batch: int, republish_after: float) -> dict[str, Any]:
    """Call `due_for_publish` until nothing is due; time every call."""
    engine = make_engine(url)
    store = SqlDocumentStore(engine)
    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FOR UPDATE" in statement:
            captured.append((statement, parameters))

    store.due_for_publish(utc_now() - timedelta(days=365), republish_after, batch)  # warm pool
    timings: list[float] = []
    found: list[int] = []
    published: list[tuple[str, str]] = []
    plans: dict[str, list[str]] = {}
    while True:
        start = time.perf_counter()
        keys = store.due_for_publish(utc_now(), republish_after, batch)
        timings.append((time.perf_counter() - start) * 1000)
        found.append(len(keys))
        published.extend((k.issuer, k.order_id) for k in keys)
        if len(found) == 2:
            plans["mid_pass"] = explain(url, *captured[-1])
        if not keys or len(found) > 10_000:
            break
    plans["nothing_due"] = explain(url, *captured[-1])
    engine.dispose()
    full = [t for t, n in zip(timings, found, strict=True) if n == batch]
    return {
        "batches": len(timings),
        "published": sum(found),
        "ms_per_batch": [round(t, 2) for t in timings],
        "median_ms_full_batch": round(statistics.median(full), 2) if full else None,
        "max_ms_full_batch": round(max(full), 2) if full else None,
        "ms_empty_pass": round(timings[-1], 2),
        "uses_index": all(
            any("ix_orders_due_at_open" in line for line in plan) for plan in plans.values()
        ),
        "plans": plans,
        "sql": captured[-1][0] if captured else "",
        "keys": published,
    }


def reset(url: str, keys: list[tuple[str, str]]) -> None:
    """Make the orders a pass just published look never published again, for another pass."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE documents SET published_at = NULL WHERE order_id = ANY(:ids)"),
            {"ids": [order_id for _, order_id in keys]},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE documents"))
    engine.dispose()


def run(orders: int = 1_000_000, batch: int = 500, repeat: int = 1) -> dict[str, Any]:
    """Load once, then `repeat` full passes (the stuck orders are made due again between)."""
    sweeps = []
    with scratch_database() as url:
        loaded = load(url, orders)
        for n in range(repeat):
            if n:
                reset(url, sweeps[-1].pop("keys"))
            sweeps.append(passes(url, batch, 120.0))
        sweeps[-1].pop("keys")
    return {"orders": orders, "batch": batch, "load": loaded, "passes": sweeps, "target_ms": 50.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="full passes over one load")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.orders, args.batch, args.repeat)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(json.dumps({k: v for k, v in result.items() if k != "passes"}, indent=2))
        for p in result["passes"]:
            print(json.dumps({k: v for k, v in p.items() if k != "plans"}, indent=2))
        for name, plan in result["passes"][-1]["plans"].items():
            print(f"--- plan ({name})")
            print("\n".join(plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
