from __future__ import annotations

import json
from decimal import Decimal

import pytest

from domain.errors import InvalidOrder
from domain.order import MAX_ITEMS, parse_order
from tests.factories import SEED_ORDER, line, order


def errors_of(data: object) -> dict[str, str]:
    with pytest.raises(InvalidOrder) as info:
        parse_order(data)
    return {e.field: e.rule for e in info.value.errors}


def test_the_seed_payload_is_accepted_with_decimal_money() -> None:
    parsed = parse_order(SEED_ORDER)
    assert parsed.total_factura == Decimal("24600")
    assert isinstance(parsed.items[0].impuestos[0].tasa, Decimal)
    assert parsed.adquirente.is_consumidor_final
    assert parsed.adquirente.numero_documento == "222222222222"


def test_fractional_quantities_are_allowed() -> None:
    parsed = parse_order(order(lines=[line("Queso (kg)", "0.375", 24000, (("IVA", "0.19"),))]))
    assert parsed.items[0].cantidad == Decimal("0.375")


def test_the_same_order_spelled_differently_has_one_fingerprint() -> None:
    spelled = json.loads(json.dumps(SEED_ORDER).replace("24600", "24600.00"))
    assert parse_order(spelled).fingerprint() == parse_order(SEED_ORDER).fingerprint()
    changed = {**SEED_ORDER, "propina_voluntaria": 2000, "total_factura": 23600}
    changed["metodos_pago"] = [{"tipo": "Efectivo", "monto": 23600}]
    assert parse_order(changed).fingerprint() != parse_order(SEED_ORDER).fingerprint()


def test_every_business_rule_violation_is_reported_at_once_with_its_path() -> None:
    bad = order(lines=[line(), line("Postre", 1, 12000, (("IVA", "0.19"),))], tip=1000)
    bad["items"][1]["impuestos"][0]["nombre"] = "IVAA"
    bad["items"][0]["total_item"] = "1"
    bad["impuestos_totales"] = "5"
    bad["metodos_pago"][0]["tipo"] = "Bitcoin"
    found = errors_of(bad)
    assert found["items[1].impuestos[0].nombre"] == "unknown_tax"
    assert found["items[0].total_item"] == "item_total"
    assert found["impuestos_totales"] == "taxes_sum"
    assert found["metodos_pago[0].tipo"] == "unknown_payment_method"
    assert found["total_factura"] == "invoice_total"


def test_seed_rule_total_is_subtotal_plus_taxes_plus_tip() -> None:
    bad = {**SEED_ORDER, "total_factura": 24000}
    bad["metodos_pago"] = [{"tipo": "Efectivo", "monto": 24000}]
    assert errors_of(bad) == {"total_factura": "invoice_total"}


def test_negative_amounts_and_quantities_are_refused() -> None:
    bad = order(lines=[line(quantity=-1)])
    found = errors_of(bad)
    assert found["items[0].cantidad"] == "positive"
    tip = order(tip=-500)
    assert errors_of(tip)["propina_voluntaria"] == "non_negative"


def test_structure_errors_name_every_field() -> None:
    found = errors_of(
        {
            "id_pedido_origen": "POS 1",
            "items": [
                {"descripcion": "x", "cantidad": "abc", "precio_unitario": 1, "total_item": 1}
            ],
            "subtotal": "NaN",
            "impuestos_totales": "Infinity",
            "total_factura": 1,
            "metodos_pago": [],
        }
    )
    assert found["id_pedido_origen"] == "string_pattern_mismatch"
    assert found["items[0].cantidad"] == "decimal_parsing"
    assert found["subtotal"] == "finite_number"
    assert found["impuestos_totales"] == "finite_number"
    assert found["metodos_pago"] == "too_short"


def test_empty_items_and_too_many_items_are_refused() -> None:
    assert errors_of({**SEED_ORDER, "items": []})["items"] == "too_short"
    many = order(lines=[line(product_id=f"P{i}") for i in range(MAX_ITEMS + 1)])
    assert errors_of(many)["items"] == "too_long"


def test_more_than_two_decimals_and_huge_numbers_are_refused() -> None:
    cents = json.loads(json.dumps(SEED_ORDER))
    cents["subtotal"] = "20000.001"
    assert errors_of(cents)["subtotal"] == "decimal_max_places"
    huge = json.loads(json.dumps(SEED_ORDER))
    huge["total_factura"] = "1e40"
    assert errors_of(huge)["total_factura"] == "decimal_max_digits"


def test_the_same_tax_twice_on_a_line_is_refused() -> None:
    bad = order(lines=[line(taxes=(("INC", "0.08"), ("INC", "0.08")))])
    assert errors_of(bad)["items[0].impuestos[1].nombre"] == "duplicate_tax"


def test_tax_amount_must_match_the_rate() -> None:
    bad = order(lines=[line()])
    bad["items"][0]["impuestos"][0]["monto"] = "1000"
    bad["items"][0]["total_item"] = "21000"
    bad["impuestos_totales"] = "1000"
    bad["total_factura"] = "21000"
    bad["metodos_pago"][0]["monto"] = "21000"
    assert errors_of(bad) == {"items[0].impuestos[0].monto": "tax_matches_rate"}


def test_a_named_nit_buyer_with_a_wrong_check_digit_is_refused() -> None:
    buyer = {"tipo_documento": "31", "numero_documento": "900373076", "dv": "1", "nombre": "ACME"}
    assert errors_of(order(buyer=buyer)) == {"adquirente.dv": "nit_check_digit"}
    good = {**buyer, "dv": "4"}
    assert parse_order(order(buyer=good)).adquirente.dv == "4"


@pytest.mark.parametrize("number", ["²", "12³", "١٢٣", "9" * 16])
@pytest.mark.parametrize("dv", [None, "1"])
def test_a_nit_is_ascii_digits_and_at_most_15_of_them(number: str, dv: str | None) -> None:
    """Other Unicode digits pass `str.isdigit` but not `int`, or are no NIT DIAN knows."""
    buyer = {"tipo_documento": "31", "numero_documento": number, "dv": dv, "nombre": "ACME"}
    assert errors_of(order(buyer=buyer)) == {"adquirente.numero_documento": "nit_digits"}


def test_payment_method_names_are_matched_without_accents_or_case() -> None:
    data = order(payment="tarjeta de crédito")
    assert parse_order(data).metodos_pago[0].tipo == "tarjeta de crédito"


def test_non_objects_are_refused() -> None:
    assert errors_of([1, 2]) == {"(order)": "type"}


@pytest.mark.parametrize("text", ["Cerveza\x00", "Cerve\x07za", "lone \ud800 surrogate"])
def test_text_that_xml_and_jsonb_cannot_carry_is_refused(text: str) -> None:
    bad = order(lines=[line(description=text)])
    found = errors_of(bad)
    assert list(found) == ["items[0].descripcion"]
    assert found["items[0].descripcion"] in ("value_error", "string_unicode")


def test_accents_ampersands_quotes_and_emoji_are_fine() -> None:
    name = "Ñandú & Cía <Norte> \"S.A.S.\" 'x' 🍽 ; DROP TABLE orders; --"
    parsed = parse_order(order(lines=[line(description=name)]))
    assert parsed.items[0].descripcion == name
