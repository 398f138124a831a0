"""Commands about the documents themselves: `render` (what DIAN would receive) and
`documents` (fetch an issued document's files from the authority)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.documents import DocumentKind, KindRefused, choose_kind
from domain.errors import DomainError
from domain.order import Order, parse_order
from domain.ports import DocumentNumber, OrderKey, Submission
from worker.settings import Settings


def add_document_commands(sub: Any) -> None:
    p = sub.add_parser(
        "render",
        help="print the signed UBL XML (or write the zip) DIAN would receive for an order, "
        "without sending it",
    )
    p.add_argument("order_file", help="a JSON file with one order, or - for standard input")
    p.add_argument(
        "--kind",
        choices=("pos", "invoice"),
        help="the document: POS equivalent document (20) or invoice (01); default: what the "
        "worker would choose for this order (DOCUMENTS__MODE, the register's mode, documento)",
    )
    p.add_argument("--number", type=int, help="consecutive to use (default: first of the range)")
    p.add_argument("--issued-at", help="issue time, ISO 8601 with offset (default: now)")
    p.add_argument("--zip", metavar="OUT", help="write the zip DIAN receives to this file")
    p.add_argument(
        "--test-certificate",
        action="store_true",
        help="sign with a throwaway self-signed certificate instead of DIAN__CERT_PATH",
    )
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "documents", help="download an issued order's files (Factus PDF and XML; DIAN XML)"
    )
    p.add_argument("order", help="the POS order id or ISSUER:ORDER_ID")
    p.add_argument("--out", default=".", help="folder to write the files into")
    p.set_defaults(func=cmd_documents)


def _read(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text, parse_float=str)


def cmd_render(args: argparse.Namespace) -> int:
    from adapters.dian.devcert import make_test_pkcs12
    from adapters.dian.signer import XadesSigner
    from worker.wiring import dian_parts

    settings = Settings()
    try:
        order = parse_order(_read(args.order_file))
        submission = _render_submission(settings, order, args)
    except (DomainError, KindRefused, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.test_certificate:
        signer = XadesSigner.from_pkcs12(make_test_pkcs12(settings.issuer.nit, "render"), "render")
    elif settings.dian.cert_path is None:
        print(
            "set DIAN__CERT_PATH (and DIAN__CERT_PASSWORD), or pass --test-certificate",
            file=sys.stderr,
        )
        return 2
    else:
        signer = None
    parts = dian_parts(settings, signer)
    try:
        document = parts.factory.build(submission, signing_time=submission.issued_at)
    except DomainError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        parts.close()
    if args.zip:
        Path(args.zip).write_bytes(document.zip_bytes)
        key = "CUDE" if document.kind.uses_cude else "CUFE"
        print(
            f"{args.zip}: {document.zip_name} holding {document.xml_name}; {key} {document.cufe}",
            file=sys.stderr,
        )
    else:
        sys.stdout.buffer.write(document.xml)
        sys.stdout.buffer.write(b"\n")
    return 0


def _render_submission(settings: Settings, order: Order, args: argparse.Namespace) -> Submission:
    """The submission the worker would build for `order`: its kind (as chosen at intake
    unless `--kind` says), the settings' range of that kind, and its register."""
    from worker.bootstrap import numbering_range, register

    till = register(settings, order.caja, order.cajero)
    if till is None:
        raise ValueError(f"caja {order.caja!r} is not a register of this deployment (REGISTERS)")
    if args.kind:
        kind = DocumentKind.POS if args.kind == "pos" else DocumentKind.INVOICE
    else:
        configured = settings.registers.get(till.code)
        mode = (configured.mode if configured else None) or settings.documents.mode
        identified = not order.adquirente.is_consumidor_final
        kind = choose_kind(order.documento, identified, mode, settings.documents.default)
    numbering = numbering_range(settings, kind)
    issued = datetime.fromisoformat(args.issued_at) if args.issued_at else datetime.now(UTC)
    number = DocumentNumber(numbering.prefix, args.number or numbering.first, numbering.width)
    return Submission(
        OrderKey(settings.issuer.nit, order.id_pedido_origen),
        order,
        issued,
        number,
        kind=kind,
        numbering=numbering,
        register=till,
    )


def cmd_documents(args: argparse.Namespace) -> int:
    from worker.bootstrap import container

    settings = Settings()
    key = (
        OrderKey.parse(args.order)
        if ":" in args.order
        else OrderKey(settings.issuer.nit, args.order)
    )
    record = container(settings).store.get(key)
    if record is None or record.state.value != "SUCCESS":
        state = record.state if record else "unknown"
        print(f"order {key} has no issued document (state {state})", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if record.gateway == "factus":
        return _factus_documents(settings, record.references, out)
    if record.gateway == "dian":
        return _dian_documents(settings, record.references, out)
    print(f"the {record.gateway} gateway keeps no documents", file=sys.stderr)
    return 2


def _factus_documents(settings: Settings, refs: dict[str, str], out: Path) -> int:
    from adapters.factus.gateway import FactusGateway
    from worker.wiring import build_factus_gateway

    gateway = build_factus_gateway(settings)
    assert isinstance(gateway, FactusGateway)
    number = refs["number"]
    for fetch in (gateway.client.download_pdf, gateway.client.download_xml):
        file = fetch(number)
        target = out / Path(file.file_name).name
        target.write_bytes(file.content)
        print(target)
    gateway.close()
    return 0


def _dian_documents(settings: Settings, refs: dict[str, str], out: Path) -> int:
    from worker.wiring import dian_parts

    parts = dian_parts(settings)
    try:
        # The families may be in different environments (endpoints): ask each one.
        for client in parts.distinct_clients():
            answer = client.get_xml_by_document_key(refs["cufe"])
            if answer.code == "100" and answer.xml is not None:
                break
    finally:
        parts.close()
    if answer.code != "100" or answer.xml is None:
        print(
            f"DIAN has no XML for CUFE/CUDE {refs['cufe']}: {answer.code} {answer.message}",
            file=sys.stderr,
        )
        return 1
    target = out / f"{refs.get('number', refs['cufe'][:12])}.xml"
    target.write_bytes(answer.xml)
    print(target)
    return 0
