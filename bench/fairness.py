"""Fairness between issuers: how long issuer B's orders take while issuer A's backlog waits.

    python -m bench.fairness [--backlog 5000] [--orders 20] [--lanes 8] [--json]

Issuer A (the settings' issuer) enqueues `backlog` orders while no worker runs; a worker
starts at the default settings (prefork, concurrency 2) against the simulated authority; once
it is ready, issuer B (stored, with its own range) enqueues `orders` orders. The figure is the
time from B's enqueue to B's last final order. It is measured twice in one run: with B in its
own lane (`--lanes`, the default) and with every issuer in one queue (`WORKER__ISSUER_LANES=1`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.common import Processes, order, queue_name, scratch_database, wait_for_log, worker_argv
from bench.pipeline import READY, gateway_env
from bench.producer import produce_parallel, producer_env, settings_from

ISSUER_B = "800197268"


def _store_issuer_b(url: str) -> None:
    from adapters.db.issuers import Issuer, SqlIssuers
    from adapters.db.ranges import SqlNumberingRanges
    from domain.documents import DocumentKind
    from domain.issuer import NumberingRange

    engine = create_engine(url)
    SqlIssuers(engine).add(Issuer(ISSUER_B, "4", "Cadena Dos S.A.S.", "Cadena Dos", "simulated"))
    own = NumberingRange(
        "18760000002", "BB", 1, 1_000_000, date(2019, 1, 1), date(2030, 1, 1), "k",
        kind=DocumentKind.INVOICE,
    )  # fmt: skip
    SqlNumberingRanges(engine).add(ISSUER_B, own)
    engine.dispose()


def _final(url: str, issuer: str) -> tuple[int, float | None]:
    engine = create_engine(url)
    with engine.connect() as conn:
        count, last = conn.execute(
            text(
                "SELECT count(*), extract(epoch FROM max(finished_at)) FROM documents "
                "WHERE issuer = :i AND state IN ('SUCCESS', 'FAILED')"
            ),
            {"i": issuer},
        ).one()
    engine.dispose()
    return int(count), float(last) if last is not None else None


def run(
    backlog: int = 5000, orders: int = 20, lanes: int = 8, timeout: float = 900
) -> dict[str, Any]:
    from worker.producer import Producer

    with tempfile.TemporaryDirectory(prefix="einvoice-fair-") as tmp, scratch_database() as url:
        workdir = Path(tmp)
        procs = Processes(workdir)
        queue = queue_name("fair")
        env = {
            **producer_env(url, queue),
            **gateway_env("simulated", workdir, None, 0.0),
            "LOG_LEVEL": "INFO",
            "WORKER__ISSUER_LANES": str(lanes),
        }
        _store_issuer_b(url)
        try:
            produce_parallel(env, "A", backlog, 2)
            procs.start(worker_argv("prefork", 2, queue, name="worker"), env, "worker")
            wait_for_log(procs, "worker", READY)
            settings = settings_from(env)
            start = time.time()
            with Producer(settings, issuer=ISSUER_B) as producer:
                for n in range(orders):
                    producer.enqueue(order(f"B-{n}"))
            enqueued = time.time() - start
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                done, last = _final(url, ISSUER_B)
                if done == orders and last is not None:
                    break
                time.sleep(0.1)
            else:
                raise TimeoutError(f"issuer B's {orders} orders not final in {timeout} s")
            a_done, _ = _final(url, settings.issuer.nit)
            return {
                "lanes": lanes,
                "backlog": backlog,
                "orders": orders,
                "enqueue_seconds": round(enqueued, 3),
                "b_last_final_seconds": round(last - start, 2),
                "a_final_when_b_done": a_done,
            }
        finally:
            procs.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--lanes", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [run(args.backlog, args.orders, lanes) for lanes in (args.lanes, 1)]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"lanes={r['lanes']}: issuer B's {r['orders']} orders final "
                f"{r['b_last_final_seconds']} s after enqueue, behind a backlog of "
                f"{r['backlog']} (issuer A had {r['a_final_when_b_done']} final by then)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
