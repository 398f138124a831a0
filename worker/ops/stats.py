"""`einvoice stats`: documents by state and rejection rule, queue depth, oldest open order,
throughput over the last minutes, and input refused at intake (counted apart)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from worker.ops import queries
from worker.ops.broker import QueueDepth, queue_depth
from worker.ops.database import engine_for
from worker.ops.listing import SubParsers
from worker.ops.tables import duration, local_time, print_json, render_table
from worker.settings import Settings


@dataclass(frozen=True)
class Stats:
    at: datetime
    by_state: dict[str, int]
    failures_by_kind: dict[str, int]
    rejections: list[queries.RuleCount]
    oldest_open: tuple[str, str, datetime] | None
    queue: QueueDepth | None
    queue_error: str | None
    minutes: int
    per_minute: dict[datetime, dict[str, int]]
    refused: dict[str, int]  # input refused at intake, ever
    refused_recently: dict[str, int]  # ... in the throughput window
    by_issuer: dict[str, dict[str, int]]  # documents by issuer, then state

    def throughput(self) -> dict[str, float]:
        success = sum(m["SUCCESS"] for m in self.per_minute.values())
        failed = sum(m["FAILED"] for m in self.per_minute.values())
        return {
            "success": success,
            "failed": failed,
            "per_minute": round((success + failed) / self.minutes, 2),
        }

    def as_dict(self) -> dict[str, Any]:
        oldest = None
        if self.oldest_open is not None:
            key, state, created = self.oldest_open
            age = round((self.at - created).total_seconds())
            oldest = {"order_key": key, "state": state, "age_seconds": age}
        return {
            "at": self.at.isoformat(),
            "orders_by_state": self.by_state,
            "orders_by_issuer": self.by_issuer,
            "failed_by_kind": self.failures_by_kind,
            "rejections_by_rule": [
                {"code": r.code, "text": r.text, "orders": r.orders} for r in self.rejections
            ],
            "oldest_unfinished": oldest,
            "queue": (
                {"name": self.queue.queue, "ready": self.queue.ready, "unacked": self.queue.unacked}
                if self.queue
                else None
            ),
            "queue_error": self.queue_error,
            "intake_refusals": {"total": self.refused, "last_minutes": self.refused_recently},
            "throughput": {
                "minutes": self.minutes,
                **self.throughput(),
                "by_minute": [
                    {"minute": at.isoformat(), **counts}
                    for at, counts in sorted(self.per_minute.items())
                ],
            },
        }


def gather(settings: Settings, minutes: int) -> Stats:
    now = datetime.now(UTC)
    with engine_for(settings) as engine, engine.connect() as conn:
        by_state = queries.count_by_state(conn)
        kinds = queries.failures_by_kind(conn)
        rules = queries.rejections_by_rule(conn)
        oldest = queries.oldest_unfinished(conn)
        since = now - timedelta(minutes=minutes)
        per_minute = queries.outcomes_per_minute(conn, since)
        refused = queries.refusals_by_status(conn)
        refused_recently = queries.refusals_by_status(conn, since)
        by_issuer = queries.count_by_issuer_and_state(conn)
    depth, error = None, None
    try:
        depth = queue_depth(settings.broker_url, settings.queue, lanes=settings.queues[1:])
    except redis.RedisError as exc:
        error = f"broker unreachable ({type(exc).__name__})"
    return Stats(
        now,
        by_state,
        kinds,
        rules,
        oldest,
        depth,
        error,
        minutes,
        per_minute,
        refused,
        refused_recently,
        by_issuer,
    )


def add_parser(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "stats",
        help="counts by state and rejection rule, queue depth, oldest open order, throughput",
    )
    p.add_argument(
        "--minutes", type=int, default=15, help="throughput window in minutes (default 15)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stats = gather(Settings(), max(1, args.minutes))
    if args.json:
        print_json(stats.as_dict())
        return 0
    print(render(stats))
    return 0


def render(stats: Stats) -> str:
    out = [f"at {local_time(stats.at)}", "", "orders by state"]
    out.append(render_table(["STATE", "ORDERS"], list(stats.by_state.items())))
    if len(stats.by_issuer) > 1:
        out += ["", "orders by issuer"]
        states = list(stats.by_state)
        rows = [[nit, *counts.values()] for nit, counts in stats.by_issuer.items()]
        out.append(render_table(["ISSUER", *states], rows))
    if stats.failures_by_kind:
        out += ["", "failed orders by kind"]
        out.append(render_table(["KIND", "ORDERS"], list(stats.failures_by_kind.items())))
    out += ["", "rejections by DIAN rule"]
    if stats.rejections:
        rows = [[r.code, r.orders, r.text] for r in stats.rejections]
        out.append(render_table(["RULE", "ORDERS", "TEXT"], rows, max_width=90))
    else:
        out.append("  none")
    out.append("")
    if stats.queue is not None:
        q = stats.queue
        out.append(f"queue {q.queue}: {q.ready} waiting, {q.unacked} delivered and not acked")
    else:
        out.append(f"queue: {stats.queue_error or 'n/a (the broker is not Redis)'}")
    if stats.oldest_open is None:
        out.append("oldest unfinished order: none")
    else:
        key, state, created = stats.oldest_open
        age = duration((stats.at - created).total_seconds())
        out.append(f"oldest unfinished order: {key} ({state}), accepted {age} ago")
    t = stats.throughput()
    out += [
        "",
        f"throughput over the last {stats.minutes} min: {t['success']:.0f} SUCCESS, "
        f"{t['failed']:.0f} FAILED, {t['per_minute']} per minute",
    ]
    if stats.per_minute:
        rows = [
            [local_time(at)[11:16], c["SUCCESS"], c["FAILED"]]
            for at, c in sorted(stats.per_minute.items())
        ]
        out.append(render_table(["MINUTE", "SUCCESS", "FAILED"], rows))
    total, recent = stats.refused, stats.refused_recently
    out += [
        "",
        "input refused at intake (not orders; never on an order's timeline): "
        f"{total['RECHAZADO_ENTRADA']} invalid, {total['CONFLICTO']} conflicting "
        f"({recent['RECHAZADO_ENTRADA']} and {recent['CONFLICTO']} in the last "
        f"{stats.minutes} min)",
    ]
    return "\n".join(out)
