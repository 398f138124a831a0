"""`einvoice list`: orders by state and recent change, with their reasons."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from domain.store import State
from worker.cli_exits import UsageError
from worker.ops import periods, queries
from worker.ops.database import engine_for
from worker.ops.reasons import describe_reason
from worker.ops.tables import local_time, print_json, render_table
from worker.settings import Settings

SubParsers = argparse._SubParsersAction  # argparse has no public name for it


def add_parser(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "list",
        help="orders by state, with their reasons (DIAN rule codes and texts)",
        description="Orders whose state changed since a moment, newest change first. "
        "Reasons show DIAN rule codes for rejections and field errors for invalid orders.",
    )
    p.add_argument(
        "--state",
        action="append",
        choices=[s.value for s in State],
        help="only this state (repeat for several); default: all",
    )
    p.add_argument(
        "--since",
        default="24h",
        help="changed since: a duration back from now (30m, 2h, 7d) or a date/time in "
        "Colombian time (2026-11-01, 2026-11-01T08:00); default 24h",
    )
    p.add_argument("--issuer", help="only this issuer's orders (NIT); default: every issuer")
    p.add_argument("--limit", type=int, default=100, help="at most this many orders (100)")
    p.add_argument("--json", action="store_true", help="a JSON array, for scripts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        since = periods.since(args.since, now)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--since: {exc}") from None
    with engine_for(Settings()) as engine, engine.connect() as conn:
        orders = queries.list_orders(conn, args.state or [], since, args.limit, args.issuer)
    if args.json:
        print_json([o.as_dict() for o in orders])
        return 0
    if not orders:
        states = ", ".join(args.state) if args.state else "any state"
        print(f"no orders in {states} changed since {local_time(since)}")
        return 0
    print(
        render_table(
            ["ORDER", "STATE", "NUMBER", "TRIES", "CHANGED", "REASON"],
            [
                [
                    o.key,
                    o.state,
                    o.number or "-",
                    o.attempts,
                    local_time(o.updated_at),
                    describe_reason(o.reason) or "-",
                ]
                for o in orders
            ],
            max_width=90,
        )
    )
    more = " (limit reached: use --limit for more)" if len(orders) == args.limit else ""
    print(f"\n{len(orders)} orders changed since {local_time(since)}{more}")
    return 0
