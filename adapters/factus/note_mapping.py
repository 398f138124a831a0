"""A note against an invoice → its Factus v2 body (`POST /v2/credit-notes/validate`,
`POST /v2/debit-notes/validate`). Pure: no I/O.

The fields are the ones Factus documents for v2 notes:
- `reference_code`: the note's own idempotency key (never the invoice's);
- `correction_concept_code`: credit 1 return, 2 void, 3 discount, 4 price adjustment; debit
  3 "Cambio del valor" (DIAN's concept lists);
- `customization_id`: 20 (credit) / 30 (debit), a note that references an electronic invoice;
- `bill_number`: the invoice's number at Factus (v1 took the bill's internal `bill_id`);
- `numbering_range_id`: only when configured; Factus uses the single active range otherwise;
- `payment_details`: what is paid back (credit) or charged (debit), adding up, in Factus'
  own arithmetic, to the note's total;
- `items`: net unit price, quantity with at most two decimals, `taxes[]{code, rate}`; a line
  that corrects an amount rather than returning units (discount, price change, or units whose
  value is not quantity × price to the cent) is one unit of that amount;
- `allowance_charges`: the tip a void gives back, as the invoice carried it (surcharge "03").

`customer` is left out: Factus then takes the invoice's customer, which is the note's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapters.factus.mapping import (
    CENT,
    EXCLUDED,
    PAYMENT_FORM_CASH,
    STANDARD_CODE_OWN,
    SURCHARGE_CONDITIONAL,
    UNIT_MEASURE_UNIDAD,
    cents,
)
from domain.catalog import payment_means_for
from domain.documents import DocumentKind
from domain.errors import FieldError, InvalidOrder
from domain.notes import NoteFigures, NoteLine
from domain.ports import Submission

CASH = "10"
MAX_NOTE_OBSERVATION = 500
# customization_id: the note references an electronic invoice (credit 20, debit 30).
WITH_INVOICE = {DocumentKind.CREDIT_NOTE: "20", DocumentKind.DEBIT_NOTE: "30"}


def build_note(
    submission: Submission, *, numbering_range_id: int | None, send_email: bool = False
) -> dict[str, Any]:
    """The v2 note body; the same submission always gives the same body. `InvalidOrder` when
    the submission is not a note Factus issues (an adjustment note to a POS document)."""
    figures, corrects = submission.note, submission.corrects
    if figures is None or corrects is None or submission.kind not in WITH_INVOICE:
        raise InvalidOrder(
            [
                FieldError(
                    "tipo",
                    "note_kind_not_offered",
                    f"Factus issues notes to invoices only (91, 92), not {submission.kind}",
                )
            ]
        )
    if not corrects.number:
        raise InvalidOrder(
            [
                FieldError(
                    "(note)",
                    "invoice_number_unknown",
                    "the invoice this note corrects has no Factus number on record",
                )
            ]
        )
    items = [_item(line) for line in figures.lines]
    charges = _tip(figures)
    body: dict[str, Any] = {
        "reference_code": submission.reference_code,
        "correction_concept_code": figures.concept()[0],
        "customization_id": WITH_INVOICE[submission.kind],
        "bill_number": corrects.number,
        "observation": _observation(submission, figures),
        "send_email": send_email,
        "payment_details": [
            {
                "payment_form": PAYMENT_FORM_CASH,
                "payment_method_code": _payment_method(submission),
                "amount": _money(factus_total(items, charges)),
            }
        ],
        "items": items,
    }
    if numbering_range_id is not None:
        body["numbering_range_id"] = numbering_range_id
    if charges:
        body["allowance_charges"] = charges
    return body


def factus_total(items: list[dict[str, Any]], charges: list[dict[str, Any]]) -> Decimal:
    """The total Factus computes for these items and charges: per line quantity × price and
    each tax on it, each rounded to the cent, plus the surcharges."""
    total = Decimal(0)
    for item in items:
        line = cents(Decimal(item["quantity"]) * Decimal(item["price"]))
        total += line
        for tax in item["taxes"]:
            if not tax.get("is_excluded"):
                total += cents(line * Decimal(tax["rate"]) / 100)
    return total + sum((Decimal(c["amount"]) for c in charges if c["is_surcharge"]), Decimal(0))


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _item(line: NoteLine) -> dict[str, Any]:
    quantity, price = line.quantity, line.unit_price
    exact = quantity == quantity.quantize(CENT) and (quantity * price).quantize(CENT) == line.base
    if quantity <= 0 or not exact:
        quantity, price = Decimal(1), line.base
    return {
        "code_reference": line.product_id or f"ITEM-{line.number}",
        "name": line.description or f"Línea {line.number}",
        "quantity": format(quantity.normalize(), "f"),
        "price": _money(price),
        "discount_rate": "0.00",
        "unit_measure_code": UNIT_MEASURE_UNIDAD,
        "standard_code": STANDARD_CODE_OWN,
        # an untaxed line goes in Factus' excluded form, as the bills' lines do (never `[]`)
        "taxes": [{"code": tax.tribute, "rate": _percent(tax.rate)} for tax in line.taxes]
        or [dict(EXCLUDED)],
    }


def _percent(rate: Decimal) -> str:
    """0.08 → "8.00" (the invoice's rate, which Factus accepted with two decimals)."""
    return str((rate * 100).quantize(CENT))


def _tip(figures: NoteFigures) -> list[dict[str, Any]]:
    if figures.tip <= 0:
        return []
    return [
        {
            "concept_type": SURCHARGE_CONDITIONAL,
            "is_surcharge": True,
            "reason": "Propina",
            "base_amount": _money(figures.base),
            "amount": _money(figures.tip),
        }
    ]


def _payment_method(submission: Submission) -> str:
    """How the sale was paid (its first payment with an amount): a credit pays back by it."""
    for payment in submission.order.metodos_pago:
        code = payment_means_for(payment.tipo)
        if code is not None and payment.monto > 0:
            return code
    return CASH


def _observation(submission: Submission, figures: NoteFigures) -> str:
    key = submission.key
    text = f"{figures.reason} (pedido POS {key.order_id}, nota {key.note})"
    return text.strip()[:MAX_NOTE_OBSERVATION]
