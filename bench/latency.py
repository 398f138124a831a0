"""Latency hiding: the simulated gateway takes 1 s per call; how many orders per second does
one worker sustain on 2 cores, and what memory does each of its processes hold?

    python -m bench.latency [--orders 3000] [--latency 1.0] [--config threads:128 ...] [--json]

Each configuration `[WORKERSx]POOL:CONCURRENCY` (e.g. `threads:128`, `2xthreads:100`: two
worker processes of 100 threads each) runs the same pipeline as `bench.pipeline` (orders
accepted first, then one worker drains them) with SIMULATED__LATENCY seconds of sleep inside
every gateway call. Late acks on Redis throughout (the product's setting). The gevent pool is
not offered: with late acks on Redis it collapses (reference notes, §6.2).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench.pipeline import run_pipeline

DEFAULT_CONFIGS = ("threads:128", "2xthreads:100")


def run(
    orders: int, latency: float, configs: tuple[str, ...] = DEFAULT_CONFIGS
) -> list[dict[str, Any]]:
    results = []
    for config in configs:
        count, _, rest = config.rpartition("x")
        pool, _, concurrency = rest.partition(":")
        workers = int(count or 1)
        result = run_pipeline(
            orders,
            "simulated",
            pool,
            int(concurrency),
            latency=latency,
            timeout=orders / 5 + 120,
            workers=workers,
        )
        result["config"] = config
        result["latency_s"] = latency
        result["ideal_per_second"] = round(workers * int(concurrency) / latency, 1)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument(
        "--config", action="append", help="[WORKERSx]POOL:CONCURRENCY, e.g. 2xthreads:100"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = run(args.orders, args.latency, tuple(args.config or DEFAULT_CONFIGS))
    print(json.dumps(results, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
