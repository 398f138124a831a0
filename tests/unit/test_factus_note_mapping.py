"""A note → its Factus v2 body, and a Factus note answer → its verdict (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from adapters.factus.note_mapping import build_note, factus_total
from adapters.factus.notes import note_result
from domain.documents import DocumentKind
from domain.errors import InvalidOrder
from domain.notes import ReferencedDocument, note_figures, note_kind, parse_note, remaining_after
from domain.order import parse_order
from domain.ports import OrderKey, Submission, Verdict
from tests.factories import line, order

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
SALE = order(
    "POS-7",
    [
        line("Cerveza", 3, 10000),
        line("Empanada", 2, 4500, (), product_id="EMP-01"),
        line("Queso", "0.375", 32000, (("IVA", "0.19"),), product_id="QSO-01"),
    ],
    tip=2000,
    payment="Tarjeta Débito",
)


def note(request: dict[str, Any], corrected: DocumentKind = DocumentKind.INVOICE) -> Submission:
    the_order = parse_order(SALE)
    asked = parse_note(request)
    figures = note_figures(asked, the_order, remaining_after(the_order, []))
    return Submission(
        OrderKey("900123456", "POS-7", asked.id_nota),
        the_order,
        NOW,
        kind=note_kind(corrected, figures.type),
        note=figures,
        corrects=ReferencedDocument(corrected, "SETP990000007", "c" * 96, NOW),
    )


def test_a_return_credits_whole_units_at_their_net_price() -> None:
    body = build_note(
        note({"id_nota": "NC-1", "tipo": "devolucion", "lineas": [{"linea": 1, "cantidad": 2}]}),
        numbering_range_id=9,
    )
    assert body == {
        "reference_code": "900123456-5-POS-7-NC-1",
        "correction_concept_code": "1",
        "customization_id": "20",
        "bill_number": "SETP990000007",
        "numbering_range_id": 9,
        "observation": "Devolución de productos (pedido POS POS-7, nota NC-1)",
        "send_email": False,
        "payment_details": [
            {"payment_form": "1", "payment_method_code": "49", "amount": "21600.00"}
        ],
        "items": [
            {
                "code_reference": "BEB-01",
                "name": "Cerveza",
                "quantity": "2",
                "price": "10000.00",
                "discount_rate": "0.00",
                "unit_measure_code": "94",
                "standard_code": "999",
                "taxes": [{"code": "04", "rate": "8.00"}],
            }
        ],
    }
    assert "customer" not in body  # Factus takes the invoice's


def test_a_void_gives_back_every_line_and_the_tip_and_pays_back_factus_total() -> None:
    submission = note({"id_nota": "NC-2", "tipo": "anulacion"})
    body = build_note(submission, numbering_range_id=None)
    assert "numbering_range_id" not in body  # Factus uses its one active range
    assert body["correction_concept_code"] == "2"
    # 0.375 kg has more decimals than Factus takes: one unit of the line's value
    cheese = body["items"][2]
    assert (cheese["quantity"], cheese["price"]) == ("1", "12000.00")
    assert body["allowance_charges"] == [
        {
            "concept_type": "03",
            "is_surcharge": True,
            "reason": "Propina",
            "base_amount": "51000.00",
            "amount": "2000.00",
        }
    ]
    paid = Decimal(body["payment_details"][0]["amount"])
    assert paid == factus_total(body["items"], body["allowance_charges"])
    assert submission.note is not None and paid == submission.note.total


@pytest.mark.parametrize(
    ("request_", "concept", "customization"),
    [
        ({"id_nota": "D", "tipo": "descuento", "monto": "1000", "motivo": "cortesía"}, "3", "20"),
        ({"id_nota": "P", "tipo": "ajuste_precio", "monto": "1000", "motivo": "error"}, "4", "20"),
        ({"id_nota": "I", "tipo": "aumento", "monto": "1000", "motivo": "error"}, "3", "30"),
    ],
)
def test_amount_notes_are_one_unit_of_their_share_per_line(
    request_: dict[str, Any], concept: str, customization: str
) -> None:
    body = build_note(note(request_), numbering_range_id=None)
    assert (body["correction_concept_code"], body["customization_id"]) == (concept, customization)
    assert {item["quantity"] for item in body["items"]} == {"1"}
    assert sum(Decimal(item["price"]) for item in body["items"]) == Decimal("1000")
    assert body["observation"].startswith(request_["motivo"])


def test_a_note_to_a_pos_document_or_an_unnumbered_invoice_has_no_factus_body() -> None:
    pos = note({"id_nota": "A", "tipo": "anulacion"}, corrected=DocumentKind.POS)
    with pytest.raises(InvalidOrder) as caught:
        build_note(pos, numbering_range_id=None)
    assert caught.value.errors[0].rule == "note_kind_not_offered"
    submission = note({"id_nota": "A", "tipo": "anulacion"})
    assert submission.corrects is not None
    blank = Submission(
        submission.key,
        submission.order,
        NOW,
        kind=submission.kind,
        note=submission.note,
        corrects=ReferencedDocument(DocumentKind.INVOICE, "", "c" * 96, NOW),
    )
    with pytest.raises(InvalidOrder) as caught:
        build_note(blank, numbering_range_id=None)
    assert caught.value.errors[0].rule == "invoice_number_unknown"


def test_note_reference_codes_never_collide_when_ids_hold_dashes() -> None:
    def code(order_id: str, note_id: str | None) -> str:
        sale = parse_order({**SALE, "id_pedido_origen": order_id})
        return Submission(OrderKey("900", order_id, note_id), sale, NOW).reference_code

    assert code("A-B", "C") != code("A", "B-C")
    assert code("POS-100", "NC-1") == "900-7-POS-100-NC-1"
    assert code("POS-100", None) == "900-POS-100"  # a sale keeps its code


def test_a_note_answer_keeps_its_cude_never_the_invoice_cufe() -> None:
    answer = {
        "number": "NC5",
        "reference_code": "900-7-POS-100-NC-1",
        "cude": "d" * 96,
        "cufe": "c" * 96,  # the invoice it corrects, as some answers name it
        "is_validated": True,
        "errors": {},
    }
    result = note_result(answer)
    assert result.verdict is Verdict.ACCEPTED
    assert result.references["cufe"] == "d" * 96 and result.references["number"] == "NC5"
    pending = note_result({**answer, "is_validated": False})
    assert pending.verdict is Verdict.PENDING
    rejected = note_result(
        {**answer, "is_validated": False, "errors": {"CAD06": "Regla: CAD06, Rechazo: CUDE"}}
    )
    assert rejected.verdict is Verdict.REJECTED and rejected.rules[0].code == "CAD06"
