"""Notes of the issuer of `tests.pos_data`: its own note ranges and submissions of each kind
(91/92 against an invoice, 94/93 against a POS document)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from domain.documents import DocumentKind
from domain.issuer import NumberingRange
from domain.notes import (
    NoteFigures,
    ReferencedDocument,
    note_figures,
    note_kind,
    parse_note,
    remaining_after,
)
from domain.order import parse_order
from domain.ports import DocumentNumber, OrderKey, Submission
from tests.pos_data import LUNCH, LUNCH_CUDE, NIT, SETUP

NOTE_PREFIXES = {
    DocumentKind.CREDIT_NOTE: "NC",
    DocumentKind.DEBIT_NOTE: "ND",
    DocumentKind.POS_CREDIT_NOTE: "NCP",
    DocumentKind.POS_DEBIT_NOTE: "NDP",
}
NOTE_RANGES = {
    kind: NumberingRange("", prefix, 1, 99999999, date(2019, 1, 1), date(2030, 12, 31), kind=kind)
    for kind, prefix in NOTE_PREFIXES.items()
}
NOTE_SETUP = replace(SETUP, ranges={**SETUP.ranges, **NOTE_RANGES})
SALE_ISSUED_AT = datetime(2024, 5, 1, 3, 0, 0, tzinfo=UTC)  # 22:00 on April 30 in Bogotá
NOTE_ISSUED_AT = datetime(2024, 5, 2, 23, 30, 5, tzinfo=UTC)
INVOICE_CUFE = (  # the CUFE of Odoo's signed fixture (dian-facts §3.5, vector 6)
    "7e08eb9e1c18c85cb77dd46d2000c34b553eb46d270622b7"
    "4b43401b3bfb2c6875ca88e605ab8dc854cce97002fa77fa"
)
INVOICE = ReferencedDocument(DocumentKind.INVOICE, "SETP990000007", INVOICE_CUFE, SALE_ISSUED_AT)
POS_TICKET = ReferencedDocument(DocumentKind.POS, "EPOS1", LUNCH_CUDE, SALE_ISSUED_AT)
# An identified buyer with two lines (IVA and INC) and a tip.
DINNER: dict[str, Any] = {
    "id_pedido_origen": "MESA-9",
    "adquirente": {
        "tipo_documento": "31",
        "numero_documento": "901210113",
        "nombre": "Eventos & Cía <S.A.S.>",
    },
    "items": [
        {
            "id_producto": "BEB-1",
            "descripcion": "Cerveza artesanal",
            "cantidad": "3",
            "precio_unitario": "925.93",
            "impuestos": [{"nombre": "INC", "tasa": "0.08", "monto": "222.22"}],
            "total_item": "3000",
        },
        {
            "descripcion": "Jugo de maracuyá",
            "cantidad": "2",
            "precio_unitario": "4500",
            "impuestos": [{"nombre": "IVA", "tasa": "0.19", "monto": "1710"}],
            "total_item": "10710",
        },
    ],
    "subtotal": "11777.78",
    "propina_voluntaria": "1234",
    "impuestos_totales": "1932.22",
    "total_factura": "14944",
    "metodos_pago": [{"tipo": "Tarjeta Débito", "monto": "14944"}],
}
REQUESTS: dict[str, dict[str, Any]] = {
    "void": {"id_nota": "V1", "tipo": "anulacion"},
    "return": {
        "id_nota": "R1",
        "tipo": "devolucion",
        "lineas": [{"linea": 1, "cantidad": "2"}],
    },
    "discount": {"id_nota": "D1", "tipo": "descuento", "monto": "1000", "motivo": "Cortesía"},
    "increase": {"id_nota": "A1", "tipo": "aumento", "monto": "500.50", "motivo": "Precio mal"},
}


def note_submission(
    sale: dict[str, Any],
    request: dict[str, Any],
    corrects: ReferencedDocument,
    number: int = 1,
    earlier: list[NoteFigures] | None = None,
) -> Submission:
    """The submission the worker builds for `request` against the document `corrects`."""
    order = parse_order(sale)
    parsed = parse_note(request)
    figures = note_figures(parsed, order, remaining_after(order, earlier or []))
    kind = note_kind(corrects.kind, figures.type)
    numbering = NOTE_RANGES[kind]
    return Submission(
        key=OrderKey(NIT, order.id_pedido_origen, parsed.id_nota),
        order=order,
        issued_at=NOTE_ISSUED_AT,
        number=DocumentNumber(numbering.prefix, number),
        kind=kind,
        numbering=numbering,
        note=figures,
        corrects=corrects,
    )


def every_kind() -> dict[str, Submission]:
    """One note of each kind and concept: invoice notes on the dinner, POS notes on lunch."""
    return {
        "91-void": note_submission(DINNER, REQUESTS["void"], INVOICE, 1),
        "91-return": note_submission(DINNER, REQUESTS["return"], INVOICE, 2),
        "91-discount": note_submission(DINNER, REQUESTS["discount"], INVOICE, 3),
        "92-increase": note_submission(DINNER, REQUESTS["increase"], INVOICE, 1),
        "94-void": note_submission(LUNCH, REQUESTS["void"], POS_TICKET, 1),
        "94-discount": note_submission(LUNCH, REQUESTS["discount"], POS_TICKET, 2),
        "93-increase": note_submission(LUNCH, REQUESTS["increase"], POS_TICKET, 1),
    }
