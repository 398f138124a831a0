"""How long validating one order takes: `parse_order` (structure, then the business rules).

    python -m bench.bench_validate [--count 5000] [--warmup 500] [--json]

Single process, payloads as the intake hands them over (decoded JSON, amounts as strings).
Prints the median and 99th percentile per case, in microseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from domain.errors import InvalidOrder
from domain.order import parse_order
from tests.factories import line, order


def _valid(lines: int) -> dict[str, Any]:
    return order(lines=[line(f"Producto {n}", 2, 10000, (("INC", "0.08"),)) for n in range(lines)])


def _negative_quantity_and_missing_total() -> dict[str, Any]:
    data = _valid(1)
    data["items"][0]["cantidad"] = "-2"
    del data["total_factura"]
    return data


def _one_bad_line_of_twenty() -> dict[str, Any]:
    data = _valid(20)
    data["items"][7]["precio_unitario"] = "diez mil"
    data["items"][3]["impuestos"][0]["nombre"] = "IVAA"
    return data


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "valid, 1 line": lambda: _valid(1),
    "valid, 5 lines": lambda: _valid(5),
    "valid, 50 lines": lambda: _valid(50),
    "invalid: negative quantity + missing total": _negative_quantity_and_missing_total,
    "invalid: 20 lines, one unreadable price": _one_bad_line_of_twenty,
}


def measure(data: dict[str, Any], count: int, warmup: int) -> list[float]:
    samples: list[float] = []
    for n in range(warmup + count):
        payload = copy.deepcopy(data)  # outside the timed part: the intake decodes a new one
        start = time.perf_counter()
        with contextlib.suppress(InvalidOrder):
            parse_order(payload)
        elapsed = time.perf_counter() - start
        if n >= warmup:
            samples.append(elapsed * 1e6)
    return samples


def _per_call_us(call: Callable[[], Any], count: int) -> float:
    """Best of three timed loops of `count` calls, microseconds per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(count):
            call()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def typical(data: dict[str, Any], count: int = 3000) -> dict[str, float]:
    """What validating one order costs the producer, and its parts: the pydantic model, the
    business rules, and the normalised payload with its fingerprint (what is stored)."""
    from domain.order import Order, fingerprint_of
    from domain.rules import check_order

    order = parse_order(data)
    validate = _per_call_us(lambda: parse_order(data), count)
    model = _per_call_us(lambda: Order.model_validate(data), count)
    rules = _per_call_us(lambda: check_order(order), count)
    stored = _per_call_us(lambda: fingerprint_of(order.to_payload()), count)
    total = validate + stored
    return {
        "validate_and_fingerprint_us": round(total, 1),
        "parse_order_us": round(validate, 1),
        "pydantic_model_us": round(model, 1),
        "business_rules_us": round(rules, 1),
        "payload_and_fingerprint_us": round(stored, 1),
        "pydantic_share_pct": round(100 * model / total, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_validate", description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    for name, make in CASES.items():
        samples = sorted(measure(make(), args.count, args.warmup))
        results[name] = {
            "median_us": round(statistics.median(samples), 1),
            "p99_us": round(samples[int(len(samples) * 0.99) - 1], 1),
        }
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return 0
    width = max(len(name) for name in results)
    print(f"{'case':<{width}}  {'median µs':>10}  {'p99 µs':>10}")
    for name, figures in results.items():
        print(f"{name:<{width}}  {figures['median_us']:>10}  {figures['p99_us']:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
