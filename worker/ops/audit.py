"""`einvoice audit verify|checkpoint`: the audit trail's evidence, checked and sealed.

`verify` recomputes every row's hash chained to the row before it of its document, checks each
document's state against its trail, and folds the rows into the checkpoints taken so far: it
reports deleted, altered and out-of-order rows (exit status 1), or none (0).
`checkpoint` seals the trail up to now and prints the head hash: keep it outside this database
(a ticket, a signed mail, a WORM bucket); `verify --head HASH` then proves the rows up to it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from adapters.db.evidence import take_checkpoint, verify
from worker.cli_exits import UsageError
from worker.ops import periods
from worker.ops.database import engine_for
from worker.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "audit",
        help="the audit trail's evidence: verify, checkpoint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = p.add_subparsers(dest="audit_command", required=True)
    v = commands.add_parser("verify", help="recompute the trail's hash chains and report")
    v.add_argument(
        "--since",
        help="rows and documents from this moment on: a duration back from now (30m, 2h, 7d) "
        "or a date/time in Colombian time (2026-11-01, 2026-11-01T08:00); default: all",
    )
    v.add_argument("--head", metavar="HASH", help="a head hash kept from `audit checkpoint`")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_verify)
    c = commands.add_parser("checkpoint", help="seal the trail up to now; print the head hash")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_checkpoint)


def _postgresql(settings: Settings) -> bool:
    return settings.database_url.startswith("postgresql")


def cmd_verify(args: argparse.Namespace) -> int:
    settings = Settings()
    if not _postgresql(settings):
        print("audit verify: the trail's hash chains are kept by PostgreSQL only")
        return 2
    try:
        since = periods.since(args.since, datetime.now(UTC)) if args.since else None
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--since: {exc}") from None
    with engine_for(settings) as engine:
        result = verify(engine, since, args.head)
    if args.json:
        print(json.dumps(asdict(result), ensure_ascii=False))
    else:
        for finding in result.findings:
            print(f"{finding.kind.upper()} {finding.ref}: {finding.message}")
        verdict = f"{len(result.findings)} findings" if result.findings else "intact"
        print(
            f"audit trail {verdict}: {result.rows} rows checked, {result.checkpoints} "
            f"checkpoints, {result.unsealed_rows} rows after the last checkpoint"
        )
    return 1 if result.findings else 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    settings = Settings()
    if not _postgresql(settings):
        print("audit checkpoint: the trail's hash chains are kept by PostgreSQL only")
        return 2
    with engine_for(settings) as engine:
        checkpoint = take_checkpoint(engine)
    if args.json:
        print(json.dumps(asdict(checkpoint), default=str))
    else:
        print(
            f"checkpoint {checkpoint.id}: rows up to {checkpoint.upto_id} "
            f"({checkpoint.row_count} new) head {checkpoint.head_hash}"
        )
    return 0
