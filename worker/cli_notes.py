"""`einvoice note ORDER ...`: void, return, discount or raise the price of an issued document.

A note is durable when the command returns; it goes out once the order's document is
SUCCESS. Without `--id` the note's id is derived from what it asks (the same command twice
issues one note); give `--id` to issue a second note that asks exactly the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import Any

from domain.ports import OrderKey
from worker.cli_exits import BadInput
from worker.cli_files import read_input
from worker.settings import Settings


def add_note_commands(sub: Any) -> None:
    p = sub.add_parser(
        "note",
        help="void, return, discount or raise the price of an order's document (a note)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("order", help="the POS order id (id_pedido_origen) or ISSUER:ORDER_ID")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--void", action="store_true", help="credit everything left (once)")
    what.add_argument(
        "--return",
        dest="returns",
        metavar="LINES_FILE",
        help='JSON list of the lines returned: [{"linea": 1, "cantidad": 2}, ...] (- for stdin)',
    )
    what.add_argument("--discount", metavar="AMOUNT", help="credit AMOUNT before taxes")
    what.add_argument(
        "--price-adjustment", metavar="AMOUNT", help="credit AMOUNT before taxes (price fixed)"
    )
    what.add_argument("--increase", metavar="AMOUNT", help="debit AMOUNT before taxes")
    p.add_argument("--reason", help="why (required for amounts; written in the note)")
    p.add_argument("--id", dest="note_id", help="the note's own id (default: from its content)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_note)


def note_request(args: argparse.Namespace) -> dict[str, Any]:
    """The note as the intake takes it (`POST /api/v1/pedidos/{id}/notas`)."""
    request: dict[str, Any]
    if args.void:
        request = {"tipo": "anulacion"}
    elif args.returns is not None:
        try:
            lines = json.loads(read_input(args.returns).decode("utf-8"), parse_float=str)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadInput(f"{args.returns}: not a JSON list of lines ({exc})") from None
        request = {"tipo": "devolucion", "lineas": lines}
    else:
        kind, amount = next(
            (kind, value)
            for kind, value in (
                ("descuento", args.discount),
                ("ajuste_precio", args.price_adjustment),
                ("aumento", args.increase),
            )
            if value is not None
        )
        request = {"tipo": kind, "monto": amount}
    if args.reason:
        request["motivo"] = args.reason
    request["id_nota"] = args.note_id or _derived_id(request)
    return request


def _derived_id(request: dict[str, Any]) -> str:
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    return f"{request['tipo']}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def cmd_note(args: argparse.Namespace) -> int:
    from worker.producer import Producer

    settings = Settings()
    key = (
        OrderKey.parse(args.order)
        if ":" in args.order
        else OrderKey(settings.issuer.nit, args.order)
    )
    if key.issuer != settings.issuer.nit:
        raise BadInput(f"{key}: this deployment issues for {settings.issuer.nit} only")
    request = note_request(args)
    with Producer(settings) as producer:
        result = producer.note(key.order_id, request)
    if args.json:
        print(json.dumps({"ok": True, **result.as_dict()}, ensure_ascii=False))
    else:
        verb = "ACCEPTED" if result.created else "EXISTING"
        print(
            f"{verb} {result.key} {result.kind.label} number={result.number or '-'} "
            f"state={result.state}"
        )
    for warning in result.warnings:
        print(f"WARNING {warning}", file=sys.stderr)
    return 0
