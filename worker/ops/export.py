"""`einvoice export`: the audit trail of a period as JSON lines or CSV, for legal requests.

Rows stream through one server-side cursor in batches, so memory stays bounded whatever the
period holds; a progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TextIO

from worker.cli_exits import UsageError
from worker.cli_files import text_output
from worker.ops import periods, queries
from worker.ops.database import engine_for
from worker.ops.listing import SubParsers
from worker.ops.tables import Progress, local_time
from worker.settings import Settings

COLUMNS = ("id", "created_at", "status", "order_key", "payload_in", "response_out")


def add_parser(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="the audit trail for a period as JSON lines or CSV (for legal requests)",
        description="Every audit row written in the period, in order. Dates are whole days "
        "in Colombian time and both ends are included (--from 2026-11-01 --to 2026-11-30 is "
        "November); a time (2026-11-01T08:00) is taken as given and --to is then exclusive.",
    )
    p.add_argument("--from", dest="start", required=True, type=periods.period_start)
    p.add_argument("--to", dest="end", required=True, type=periods.period_end)
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="default jsonl")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    p.add_argument("--issuer", help="only this issuer's rows (NIT); default: every issuer")
    p.add_argument("--batch", type=int, default=1000, help="rows fetched per round trip")
    p.add_argument(
        "--refusals",
        action="store_true",
        help="export the input the intake refused in the period (kept apart from the trail)",
    )
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None)
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.end <= args.start:
        raise UsageError("--to must be after --from")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    with engine_for(Settings()) as engine, engine.connect() as conn, _target(args.output) as out:
        total = queries.count_audit_rows(conn, args.start, args.end, args.refusals, args.issuer)
        progress = Progress("export", total, show)
        rows = queries.audit_rows(
            conn, args.start, args.end, args.batch, args.refusals, args.issuer
        )
        written = write_rows(rows, args.format, out, progress)
        progress.close()
    where = args.output or "standard output"
    what = "refused-input rows" if args.refusals else "audit rows"
    print(
        f"exported {written} {what} from {local_time(args.start)} to "
        f"{local_time(args.end)} (exclusive) as {args.format} to {where}",
        file=sys.stderr,
    )
    return 0


def write_rows(rows: Iterator[Any], fmt: str, out: TextIO, progress: Progress) -> int:
    written = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)
    for row in rows:
        record = _record(row)
        if writer is not None:
            writer.writerow(
                [
                    _cell(record[c]) if c in ("payload_in", "response_out") else record[c]
                    for c in COLUMNS
                ]
            )
        else:
            out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        written += 1
        progress.advance()
    return written


def _record(row: Any) -> dict[str, Any]:
    created = queries.aware(row.created_at)
    return {
        "id": row.id,
        "created_at": created.isoformat() if isinstance(created, datetime) else created,
        "status": row.status,
        "order_key": row.order_key,
        "payload_in": row.payload_in,
        "response_out": row.response_out,
    }


def _cell(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)


@contextmanager
def _target(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with text_output(path) as stream:
        yield stream
