"""Every document totals to the cent what the POS charged.

- `PayableAmount` is `total_factura`; the cents the lines' rounding leaves go to
  `PayableRoundingAmount` (either sign), and the CUFE/CUDE's ValTot is that PayableAmount;
- a gap beyond DIAN's tolerance (2.00) is refused at intake, and by the builder;
- the tip's `MultiplierFactorNumeric` × `BaseAmount` / 100 gives its `Amount` to the cent.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.dian.tip import applied, tip_factor
from domain.cufe import cude, cufe
from domain.documents import DocumentKind
from domain.errors import InvalidOrder
from domain.order import Order, parse_order
from domain.ports import DocumentNumber
from domain.rules import check_order
from tests.pos_data import INVOICE_RANGE, LUNCH, pos_submission
from tests.unit.test_pos_document import NS, text, unsigned

CENT = Decimal("0.01")


def _order(lines: list[tuple[str, str, str, str]], tip: str = "0") -> dict[str, Any]:
    """Lines of (cantidad, precio_unitario, INC amount, total_item as the POS charged it)."""
    items = [
        {
            "descripcion": f"Plato {n}",
            "cantidad": qty,
            "precio_unitario": price,
            "impuestos": [{"nombre": "INC", "tasa": "0.08", "monto": inc}],
            "total_item": total,
        }
        for n, (qty, price, inc, total) in enumerate(lines)
    ]
    taxes = sum((Decimal(i[2]) for i in lines), Decimal(0))
    charged = sum((Decimal(i[3]) for i in lines), Decimal(0))
    total = charged + Decimal(tip)
    return {
        "id_pedido_origen": "CENT-1",
        "items": items,
        "subtotal": str(charged - taxes),
        "propina_voluntaria": tip,
        "impuestos_totales": str(taxes),
        "total_factura": str(total),
        "metodos_pago": [{"tipo": "Efectivo", "monto": str(total)}],
    }


# A price that includes INC: 1,000 charged for 925.93 + 74.07 ... or, three at a time,
# 2,777.79 + 222.22 = 3,000.01 for 3,000 charged: the POS rounds each line, not the sum.
UNDER = _order([("3", "925.93", "222.22", "3000.00")] * 3)  # lines add up to 9,000.03
OVER = _order([("1", "925.92", "74.07", "1000.00")] * 2, tip="500")  # lines add up to 1,999.98


def _totals(root: etree._Element) -> dict[str, str]:
    monetary = root.find("cac:LegalMonetaryTotal", NS)
    assert monetary is not None
    return {etree.QName(e).localname: str(e.text) for e in monetary}


@pytest.mark.parametrize("kind", [DocumentKind.POS, DocumentKind.INVOICE])
@pytest.mark.parametrize(
    ("data", "rounding", "payable"),
    [(UNDER, "-0.03", "9000.00"), (OVER, "0.02", "2500.00")],
)
def test_payable_is_what_the_pos_charged_and_the_rounding_is_written(
    kind: DocumentKind, data: dict[str, Any], rounding: str, payable: str
) -> None:
    submission = pos_submission(data)
    if kind is DocumentKind.INVOICE:
        submission = replace(
            submission,
            kind=kind,
            numbering=INVOICE_RANGE,
            number=DocumentNumber("SETP", 990000001),
        )
    document = unsigned(submission)
    totals = _totals(document.root)
    assert Decimal(totals["PayableAmount"]) == Decimal(payable) == Decimal(data["total_factura"])
    assert totals["PayableAmount"] == payable
    assert totals["PayableRoundingAmount"] == rounding
    assert list(totals) == [
        "LineExtensionAmount",
        "TaxExclusiveAmount",
        "TaxInclusiveAmount",
        "ChargeTotalAmount",
        "PayableRoundingAmount",
        "PayableAmount",
    ]
    # PayableAmount = TaxInclusive + ChargeTotal + PayableRoundingAmount, exactly
    assert Decimal(totals["TaxInclusiveAmount"]) + Decimal(totals["ChargeTotalAmount"]) + Decimal(
        rounding
    ) == Decimal(payable)
    # the key's ValTot is the PayableAmount the XML carries
    root = document.root
    taxes = {"04": Decimal(text(root, "cac:TaxTotal/cbc:TaxAmount"))}
    fields = {
        "number": text(root, "cbc:ID"),
        "issue_date": text(root, "cbc:IssueDate"),
        "issue_time": text(root, "cbc:IssueTime"),
        "line_extension": Decimal(totals["LineExtensionAmount"]),
        "taxes": taxes,
        "payable": Decimal(payable),
        "supplier_nit": "900373076",
        "buyer_id": "222222222222",
        "environment": "2",
    }
    if kind is DocumentKind.POS:
        assert document.cufe == cude(pin="54321", **fields)  # type: ignore[arg-type]
    else:
        assert document.cufe == cufe(  # type: ignore[arg-type]
            technical_key=INVOICE_RANGE.technical_key, **fields
        )


def test_no_rounding_element_when_the_lines_add_up() -> None:
    totals = _totals(unsigned(pos_submission(LUNCH)).root)
    assert "PayableRoundingAmount" not in totals
    assert totals["PayableAmount"] == "23600.00"


def test_a_gap_beyond_the_tolerance_is_refused_at_intake() -> None:
    within = _order([("1", "925.92", "74.07", "1000.00")] * 200)  # +2.00: DIAN's tolerance
    assert _totals(unsigned(pos_submission(within)).root)["PayableRoundingAmount"] == "2.00"
    beyond = _order([("1", "925.92", "74.07", "1000.00")] * 250)  # +2.50
    with pytest.raises(InvalidOrder) as refused:
        parse_order(beyond)
    assert [(e.field, e.rule) for e in refused.value.errors] == [
        ("total_factura", "payable_rounding")
    ]
    assert "2.50" in refused.value.errors[0].message


def test_a_gap_beyond_the_tolerance_is_refused_by_the_builder_too() -> None:
    """An order that never went through the rules (stored before them) is still never
    issued with a total the customer did not pay."""
    data = copy.deepcopy(LUNCH)
    data["total_factura"] = "23603.50"
    data["metodos_pago"][0]["monto"] = "23603.50"
    order = Order.model_validate(data)
    assert {e.rule for e in check_order(order)} == {"invoice_total"}
    submission = replace(pos_submission(LUNCH), order=order)
    with pytest.raises(InvalidOrder) as refused:
        unsigned(submission)
    assert refused.value.errors[0].rule == "payable_rounding"


# -------------------------------------------------------------------------------- tip


def _charge(root: etree._Element) -> tuple[Decimal, Decimal, Decimal]:
    factor = Decimal(text(root, "cac:AllowanceCharge/cbc:MultiplierFactorNumeric"))
    base = Decimal(text(root, "cac:AllowanceCharge/cbc:BaseAmount"))
    amount = Decimal(text(root, "cac:AllowanceCharge/cbc:Amount"))
    return factor, base, amount


def test_a_tip_that_is_no_round_percentage_keeps_enough_decimals() -> None:
    data = copy.deepcopy(LUNCH)
    data["propina_voluntaria"] = "1000"
    data["items"][0]["precio_unitario"] = "30000"
    data["items"][0]["impuestos"][0]["monto"] = "2400"
    data["items"][0]["total_item"] = "32400"
    data.update(subtotal="30000", impuestos_totales="2400", total_factura="33400")
    data["metodos_pago"][0]["monto"] = "33400"
    factor, base, amount = _charge(unsigned(pos_submission(data)).root)
    assert (base, amount) == (Decimal("30000.00"), Decimal("1000.00"))
    assert factor == Decimal("3.33333")  # 3.33 gives 999.00 and 3.3333 gives 999.99
    assert (base * factor / 100).quantize(CENT, ROUND_HALF_EVEN) == amount


money = st.integers(min_value=1, max_value=10**14).map(lambda cents: Decimal(cents) / 100)


@given(tip=money, base=money)
def test_the_factor_gives_back_the_tip_to_the_cent(tip: Decimal, base: Decimal) -> None:
    factor = tip_factor(tip, base)
    assert applied(base, factor) == tip
    assert (base * factor / 100).quantize(CENT, ROUND_HALF_EVEN) == tip
    assert -factor.as_tuple().exponent >= 2  # `exponent` is an int for a finite Decimal


@settings(max_examples=60, deadline=None)
@given(
    price=st.integers(min_value=1, max_value=10**11),
    tip=st.integers(min_value=1, max_value=10**11),
)
def test_the_written_factor_times_the_written_base_is_the_written_tip(price: int, tip: int) -> None:
    price_text, tip_text = str(Decimal(price) / 100), str(Decimal(tip) / 100)
    total = str(Decimal(price + tip) / 100)
    data = {
        "id_pedido_origen": "TIP-1",
        "items": [
            {
                "descripcion": "Plato",
                "cantidad": "1",
                "precio_unitario": price_text,
                "total_item": price_text,
            }
        ],
        "subtotal": price_text,
        "propina_voluntaria": tip_text,
        "impuestos_totales": "0",
        "total_factura": total,
        "metodos_pago": [{"tipo": "Efectivo", "monto": total}],
    }
    factor, base, amount = _charge(unsigned(pos_submission(data)).root)
    assert (base * factor / 100).quantize(CENT, ROUND_HALF_EVEN) == amount == Decimal(tip_text)
