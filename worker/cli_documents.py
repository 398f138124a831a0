"""Commands about the documents themselves: `render` (what DIAN would receive, for an order's
sale document or, with `--note`, for a note against it) and `documents` (fetch an issued
document's files from the authority)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.documents import DocumentKind
from domain.notes import ReferencedDocument, note_figures, note_kind, parse_note, remaining_after
from domain.order import Order, parse_order
from domain.ports import DocumentNumber, OrderKey, Submission
from worker.cli_exits import BadInput, Misconfigured
from worker.cli_files import output_folder, read_input, write_output
from worker.settings import Settings

if TYPE_CHECKING:
    from adapters.dian.document import DianSetup


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
        "--note",
        metavar="NOTE_FILE",
        help="render instead the note in this JSON file (as `note` and the intake take it: "
        "id_nota, tipo, lineas, monto, motivo) against the order's document, rendered as "
        "--number and --issued-at say, with nothing credited before it: a credit or debit "
        "note (91/92) for an invoice, an adjustment note (94/93) for a POS document",
    )
    p.add_argument(
        "--note-number", type=int, help="the note's consecutive (default: first of its range)"
    )
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
    p.add_argument("--note", metavar="NOTE_ID", help="the files of this note of the order")
    p.add_argument("--out", default=".", help="folder to write the files into")
    p.add_argument(
        "--pdf",
        choices=("ticket", "a4"),
        help="write the graphic representation instead (80 mm ticket or A4), rendered from "
        "the signed XML the authority holds",
    )
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
    note_data = _read(args.note) if args.note else None
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
        if note_data is not None:
            submission = _note_submission(settings, submission, note_data, args, parts.setup)
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


def _note_submission(
    settings: Settings, sale: Submission, data: Any, args: argparse.Namespace, setup: DianSetup
) -> Submission:
    """The note `data` asks for against the document `sale` renders (its number, issue date
    and CUFE/CUDE), numbered from the settings' range of notes of its kind."""
    from adapters.dian.document import cufe_for
    from worker.bootstrap import numbering_range

    request = parse_note(data)  # InvalidOrder: every field error, status 65
    figures = note_figures(request, sale.order, remaining_after(sale.order, []))
    kind = note_kind(sale.kind, figures.type)
    numbering = numbering_range(settings, kind)
    corrects = ReferencedDocument(
        sale.kind, str(sale.number), cufe_for(sale, setup), sale.issued_at
    )
    number = args.note_number or numbering.first
    return replace(
        sale,
        key=OrderKey(sale.key.issuer, sale.key.order_id, request.id_nota),
        number=DocumentNumber(numbering.prefix, number, numbering.width),
        kind=kind,
        numbering=numbering,
        note=figures,
        corrects=corrects,
    )


def cmd_documents(args: argparse.Namespace) -> int:
    from adapters.representation.content import UnreadableDocument
    from worker.bootstrap import container
    from worker.document_files import (
        NoDocumentFile,
        check_issued,
        factus_pdf,
        representation,
        signed_xml,
    )

    settings = Settings()
    key = (
        OrderKey.parse(args.order)
        if ":" in args.order
        else OrderKey(settings.issuer.nit, args.order)
    )
    if args.note:
        key = OrderKey(key.issuer, key.order_id, args.note)
    record = container(settings).store.get(key)
    if record is None:
        print(f"no order {key}", file=sys.stderr)
        return 2
    try:
        check_issued(record)
        out = output_folder(args.out)
        # the document's own issuer's credentials and certificate ask its authority
        issuing, signer = container(settings).issuers.signing(key.issuer)
        if args.pdf:
            files = [representation(issuing, record, args.pdf, signer)]
        elif record.gateway == "factus":
            files = [factus_pdf(issuing, record), signed_xml(issuing, record)]
        else:
            files = [signed_xml(issuing, record, signer)]
    except (NoDocumentFile, UnreadableDocument) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    for file in files:
        target = out / file.name
        write_output(target, file.content)
        print(target)
    return 0
