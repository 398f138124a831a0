"""Commands about the documents themselves: `render` (what DIAN would receive) and
`documents` (fetch an issued document's files from the authority)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.documents import DocumentKind
from domain.order import Order, parse_order
from domain.ports import DocumentNumber, OrderKey, Submission
from worker.cli_exits import BadInput, Misconfigured
from worker.cli_files import output_folder, read_input, write_output
from worker.settings import Settings

if TYPE_CHECKING:
    from adapters.dian.signer import XadesSigner


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
    try:
        return json.loads(read_input(path).decode("utf-8"), parse_float=str)
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8") from None
    except ValueError as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise BadInput(f"{path}: not JSON ({message})") from None


def cmd_render(args: argparse.Namespace) -> int:
    from adapters.dian.devcert import make_test_pkcs12
    from adapters.dian.signer import XadesSigner
    from worker.wiring import dian_parts

    settings = Settings()
    order = parse_order(_read(args.order_file))  # InvalidOrder: every field error, status 65
    submission = _render_submission(settings, order, args)  # an unknown caja: likewise
    if args.test_certificate:
        signer = XadesSigner.from_pkcs12(make_test_pkcs12(settings.issuer.nit, "render"), "render")
    elif settings.dian.cert_path is None:
        raise Misconfigured(
            "render needs a certificate: set DIAN__CERT_PATH (and DIAN__CERT_PASSWORD), "
            "or pass --test-certificate"
        )
    else:
        signer = None
    parts = dian_parts(settings, signer)
    try:
        document = parts.factory.build(submission, signing_time=submission.issued_at)
    finally:
        parts.close()
    if args.zip:
        write_output(args.zip, document.zip_bytes)
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
    from worker.bootstrap import numbering_range, planner, register

    plan = planner(settings).plan(order)  # InvalidOrder for an unknown caja or documento
    till = register(settings, plan.register, order.cajero)
    assert till is not None  # the planner knows only the registers the settings describe
    if args.kind:
        kind = DocumentKind.POS if args.kind == "pos" else DocumentKind.INVOICE
    else:
        kind = plan.kind
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
    if record is None:
        print(f"no order {key}", file=sys.stderr)
        return 2
    if record.state.value != "SUCCESS":
        print(f"order {key} has no issued document (state {record.state})", file=sys.stderr)
        return 1
    if record.gateway not in ("factus", "dian"):
        print(f"the {record.gateway} gateway keeps no documents", file=sys.stderr)
        return 1
    out = output_folder(args.out)
    issuing, signer = container(settings).issuers.signing(key.issuer)
    if record.gateway == "factus":
        return _factus_documents(issuing, record.references, out)
    return _dian_documents(issuing, record.references, out, signer)


def _factus_documents(settings: Settings, refs: dict[str, str], out: Path) -> int:
    from adapters.factus.gateway import FactusGateway
    from worker.wiring import build_factus_gateway

    gateway = build_factus_gateway(settings)
    assert isinstance(gateway, FactusGateway)
    number = refs["number"]
    for fetch in (gateway.client.download_pdf, gateway.client.download_xml):
        file = fetch(number)
        target = out / Path(file.file_name).name
        write_output(target, file.content)
        print(target)
    gateway.close()
    return 0


def _dian_documents(
    settings: Settings, refs: dict[str, str], out: Path, signer: XadesSigner | None
) -> int:
    from worker.wiring import dian_parts

    parts = dian_parts(settings, signer)
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
    write_output(target, answer.xml)
    print(target)
    return 0
