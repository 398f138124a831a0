"""`einvoice range add|list|retire`: the numbering ranges DIAN authorized, per kind and till.

Ranges live in the database; the range the settings describe (NUMBERING__*, POS_NUMBERING__*)
is stored there too, as the shared range of its kind. A till's own ranges serve it before the
shared ones; among several, numbers come from the oldest until it is used up or expires.

A range's technical key is stored encrypted with SECRETS_KEY when it is set; without it, only
the settings' issuer (ISSUER__NIT) may store one, in clear text, as the demo does.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from domain.documents import DocumentKind
from domain.issuer import NumberingRange
from worker.settings import Settings

PREFIX = re.compile(r"[A-Za-z0-9]{0,4}")
DIGITS = re.compile(r"[0-9]{1,18}")
KINDS = {"factura": DocumentKind.INVOICE, "pos": DocumentKind.POS}
BOGOTA = timedelta(hours=-5)


def add_range_commands(sub: Any) -> None:
    p = sub.add_parser(
        "range",
        help="numbering ranges: add, list, retire",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = p.add_subparsers(dest="range_command", required=True)

    a = commands.add_parser("add", help="store a range DIAN authorized")
    a.add_argument("--kind", choices=sorted(KINDS), required=True, help="factura (01) or pos (20)")
    a.add_argument("--prefix", default="", help="the authorized prefix, up to 4 letters/digits")
    a.add_argument("--resolution", required=True, help="the authorization (resolution) number")
    a.add_argument("--from", dest="first", required=True, help="first number, as authorized")
    a.add_argument("--to", dest="last", required=True, help="last number, as authorized")
    a.add_argument("--valid-from", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD")
    a.add_argument("--valid-to", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD")
    a.add_argument("--register", help="the till it serves (default: every till without its own)")
    a.add_argument(
        "--technical-key-env",
        metavar="VAR",
        help="environment variable holding the range's technical key (invoices); asked for "
        "when omitted on a terminal",
    )
    a.add_argument("--issuer", help="issuer NIT (defaults to ISSUER__NIT)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_add)

    ls = commands.add_parser("list", help="stored ranges with their use and warnings")
    ls.add_argument("--all", action="store_true", help="include retired ranges")
    ls.add_argument("--issuer", help="issuer NIT (defaults to ISSUER__NIT)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    r = commands.add_parser("retire", help="stop numbering from a range (numbers given stay)")
    r.add_argument("id", type=int, help="the range's id (see `range list`)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_retire)


def _ranges(settings: Settings) -> Any:
    from adapters.db.ranges import SqlNumberingRanges
    from worker.bootstrap import container, secret_box, sync_configured_ranges

    c = container(settings)
    sync_configured_ranges(settings, c.engine)
    return SqlNumberingRanges(c.engine, secret_box(settings))


def check_sealable(settings: Settings, issuer: str, numbering: NumberingRange) -> None:
    """ValueError when the technical key of another issuer than the settings' one would be
    stored in clear text (SECRETS_KEY not set)."""
    sealable = bool(settings.secrets_key.get_secret_value().strip())
    if numbering.technical_key and issuer != settings.issuer.nit and not sealable:
        raise ValueError(
            f"SECRETS_KEY is not set: the technical key of issuer {issuer}'s range is stored "
            "encrypted with it (make one with `einvoice issuer new-secrets-key`)"
        )


def _today() -> date:
    return (datetime.now(UTC) + BOGOTA).date()


def parse_range(args: argparse.Namespace, technical_key: str) -> NumberingRange:
    """The range the arguments describe; ValueError saying which argument breaks which rule."""
    if not PREFIX.fullmatch(args.prefix):
        raise ValueError("--prefix: up to 4 letters or digits (DIAN)")
    for name, value in (("--from", args.first), ("--to", args.last)):
        if not DIGITS.fullmatch(value):
            raise ValueError(f"{name}: digits only, as the authorization writes them")
    first, last = int(args.first), int(args.last)
    if first > last:
        raise ValueError("--from must not be above --to")
    if args.valid_from > args.valid_to:
        raise ValueError("--valid-from must not be after --valid-to")
    width = len(args.first) if args.first.startswith("0") and len(args.first) > 1 else 0
    if width and len(args.last) != width:
        raise ValueError("--from and --to must have the same number of digits when zero-padded")
    kind = KINDS[args.kind]
    if kind is DocumentKind.INVOICE and not technical_key:
        raise ValueError("an invoice range needs its technical key (--technical-key-env VAR)")
    return NumberingRange(
        resolution=args.resolution,
        prefix=args.prefix,
        first=first,
        last=last,
        valid_from=args.valid_from,
        valid_to=args.valid_to,
        technical_key=technical_key,
        kind=kind,
        register=args.register,
        width=width,
    )


def _technical_key(args: argparse.Namespace) -> str:
    if args.technical_key_env:
        value = os.environ.get(args.technical_key_env)
        if not value:
            raise ValueError(f"--technical-key-env: {args.technical_key_env} is not set")
        return value
    if KINDS[args.kind] is DocumentKind.INVOICE and sys.stdin.isatty():
        return getpass.getpass("technical key: ")
    return ""


def cmd_add(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        numbering = parse_range(args, _technical_key(args))
    except ValueError as exc:
        print(f"range add: {exc}", file=sys.stderr)
        return 2
    if numbering.register and numbering.register not in settings.registers:
        print(
            f"warning: register {numbering.register!r} is not in REGISTERS; orders from it are "
            "refused until it is",
            file=sys.stderr,
        )
    issuer = args.issuer or settings.issuer.nit
    try:
        check_sealable(settings, issuer, numbering)
        stored = _ranges(settings).add(issuer, numbering)
    except ValueError as exc:
        print(f"range add: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(stored.as_dict(_today()), ensure_ascii=False))
    else:
        print(f"added range {stored.range.id}: {_line(stored)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    settings = Settings()
    stored = _ranges(settings).list(args.issuer or settings.issuer.nit, args.all)
    today = _today()
    if args.json:
        print(json.dumps([s.as_dict(today) for s in stored], ensure_ascii=False, indent=2))
        return 0
    from worker.ops.tables import render_table

    rows = []
    for s in stored:
        d = s.as_dict(today)
        rows.append(
            [
                d["id"],
                s.range.kind.word,
                d["register"] or "(every)",
                f"{d['prefix']}{d['first']}-{d['last']}",
                d["resolution"],
                d["next"] or "(used up)",
                f"{100 * s.used // s.size} %",
                f"{d['valid_from']}..{d['valid_to']}",
                "retired" if s.retired_at else "; ".join(d["warnings"]) or "ok",
            ]
        )
    headers = ["ID", "KIND", "REGISTER", "RANGE", "RESOLUTION", "NEXT", "USED", "VALID", "STATE"]
    print(render_table(headers, rows, max_width=70) if rows else "no numbering ranges")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    settings = Settings()
    stored = _ranges(settings).retire(args.id)
    if stored is None:
        print(f"range retire: no range {args.id}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(stored.as_dict(_today()), ensure_ascii=False))
    else:
        print(f"retired range {args.id}: {_line(stored)}")
    return 0


def _line(stored: Any) -> str:
    from adapters.db.ranges import describe

    r = stored.range
    till = f"register {r.register}" if r.register else "every register"
    return f"{r.kind.word} {describe(r)} for {till}, valid {r.valid_from} to {r.valid_to}"
