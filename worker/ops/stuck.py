"""`einvoice stuck`: orders still open after a threshold, and why."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from worker.ops import periods, queries
from worker.ops.database import engine_for
from worker.ops.listing import SubParsers
from worker.ops.reasons import why_open
from worker.ops.tables import duration, print_json, render_table
from worker.settings import Settings


def add_parser(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "stuck",
        help="orders not final after a threshold, with why",
        description="Orders accepted longer ago than the threshold that are still PENDIENTE, "
        "PROCESANDO or EN_ESPERA, oldest first, with what they wait for. "
        "Exit status 0 when there are none, 1 when there are.",
    )
    p.add_argument(
        "--older-than",
        type=periods.seconds,
        default=periods.seconds("15m"),
        metavar="DURATION",
        help="accepted longer ago than this (30m, 2h, 1d); default 15m",
    )
    p.add_argument("--issuer", help="only this issuer's orders (NIT); default: every issuer")
    p.add_argument("--limit", type=int, default=200, help="at most this many orders (200)")
    p.add_argument("--json", action="store_true", help="a JSON array, for scripts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    threshold = timedelta(seconds=args.older_than)
    with engine_for(Settings()) as engine, engine.connect() as conn:
        orders = queries.open_orders_accepted_before(conn, now - threshold, args.limit, args.issuer)
    if args.json:
        print_json(
            [
                {
                    **o.as_dict(),
                    "age_seconds": round((now - o.created_at).total_seconds()),
                    "why": why_open(o, now),
                }
                for o in orders
            ]
        )
        return 1 if orders else 0
    if not orders:
        print(f"no order has been open for more than {duration(threshold.total_seconds())}")
        return 0
    print(
        render_table(
            ["ORDER", "STATE", "AGE", "TRIES", "WHY"],
            [
                [
                    o.key,
                    o.state,
                    duration((now - o.created_at).total_seconds()),
                    o.attempts,
                    why_open(o, now),
                ]
                for o in orders
            ],
            max_width=100,
        )
    )
    more = " (limit reached: use --limit for more)" if len(orders) == args.limit else ""
    print(f"\n{len(orders)} orders open for more than {duration(threshold.total_seconds())}{more}")
    return 1
