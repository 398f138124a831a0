"""`einvoice stuck`: orders still open after a threshold, and why."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from adapters.db.deliveries import SqlDeliveryStore
from domain.delivery import Delivery
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
    with engine_for(Settings()) as engine:
        with engine.connect() as conn:
            orders = queries.open_orders_accepted_before(
                conn, now - threshold, args.limit, args.issuer
            )
        copies = SqlDeliveryStore(engine, lambda: now).undelivered(now - threshold, args.limit)
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
            + [_copy_row(c, now) for c in copies]
        )
        return 1 if orders or copies else 0
    _print_copies(copies, now)
    if not orders:
        print(f"no order has been open for more than {duration(threshold.total_seconds())}")
        return 1 if copies else 0
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


def _why_undelivered(copy: Delivery, now: datetime) -> str:
    reason = copy.reason or {}
    said = str(reason.get("detail") or reason.get("error") or "")
    if copy.state.value == "RECHAZADO":
        return f"refused: {said} (einvoice resend ORDER --to ADDRESS)"
    if copy.due_at is not None and copy.due_at > now:
        waiting = f"next try in {duration((copy.due_at - now).total_seconds())}"
        return f"{said}; {waiting}" if said else waiting
    return said or "due now"


def _copy_row(copy: Delivery, now: datetime) -> dict[str, object]:
    return {
        "order_key": str(copy.key),
        "delivery_state": copy.state.value,
        "channel": copy.channel.value,
        "round": copy.round,
        "attempts": copy.attempts,
        "age_seconds": round((now - copy.created_at).total_seconds()),
        "why": _why_undelivered(copy, now),
    }


def _print_copies(copies: list[Delivery], now: datetime) -> None:
    """Buyers' copies not delivered: apart from issuing (their documents are SUCCESS)."""
    if not copies:
        return
    print(
        render_table(
            ["COPY OF", "DELIVERY", "AGE", "TRIES", "WHY"],
            [
                [
                    str(c.key),
                    c.state.value,
                    duration((now - c.created_at).total_seconds()),
                    c.attempts,
                    _why_undelivered(c, now),
                ]
                for c in copies
            ],
            max_width=100,
        )
    )
    print(f"\n{len(copies)} buyers' copies not delivered (their documents are issued)\n")
