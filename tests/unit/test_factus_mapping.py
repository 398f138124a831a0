"""Order → Factus v2 bill body (adapters.factus.mapping), pure."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.factus.mapping import build_bill
from domain.errors import InvalidOrder
from domain.order import Order, parse_order
from domain.ports import OrderKey, Submission

BEER_ORDER: dict[str, Any] = {
    "id_pedido_origen": "POS-100",
    "items": [
        {
            "id_producto": "CERV-1",
            "descripcion": "Cerveza Artesanal",
            "cantidad": "2",
            "precio_unitario": "10000",
            "impuestos": [{"nombre": "INC", "tasa": "0.08", "monto": "1600"}],
            "total_item": "21600",
        }
    ],
    "subtotal": "20000",
    "propina_voluntaria": "3000",
    "impuestos_totales": "1600",
    "total_factura": "24600",
    "metodos_pago": [{"tipo": "Efectivo", "monto": "24600"}],
}


def submission_for(order: Order, attempt: int = 1) -> Submission:
    return Submission(
        key=OrderKey("900123456", order.id_pedido_origen),
        order=order,
        issued_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        attempt=attempt,
    )


def bill_for(data: dict[str, Any], **options: Any) -> dict[str, Any]:
    options.setdefault("numbering_range_id", 8)
    return build_bill(submission_for(parse_order(data)), **options)


def unchecked(data: dict[str, Any]) -> Submission:
    """An order that skipped the business rules, to prove the mapping guards itself."""
    return submission_for(Order.model_validate(data))


def test_header_fields_and_stable_reference_code() -> None:
    order = parse_order(BEER_ORDER)
    first = build_bill(submission_for(order), numbering_range_id=8)
    retry = build_bill(submission_for(order, attempt=3), numbering_range_id=8)

    assert first == retry
    assert first["reference_code"] == "900123456-POS-100"
    assert first["numbering_range_id"] == 8
    assert first["document"] == "01"
    assert first["operation_type"] == "10"
    assert first["send_email"] is False
    assert bill_for(BEER_ORDER, send_email=True)["send_email"] is True


def test_anonymous_buyer_is_consumidor_final() -> None:
    assert bill_for(BEER_ORDER)["customer"] == {
        "identification_document_code": "13",
        "identification": "222222222222",
        "names": "Consumidor final",
        "legal_organization_code": "2",
        "tribute_code": "ZZ",
    }


def test_nit_buyer_is_a_legal_person_with_check_digit() -> None:
    data = copy.deepcopy(BEER_ORDER)
    data["adquirente"] = {
        "tipo_documento": "31",
        "numero_documento": "900373076",
        "nombre": "Restaurantes del Sur SAS",
        "email": "compras@example.com",
    }
    customer = bill_for(data)["customer"]
    assert customer["identification_document_code"] == "31"
    assert customer["identification"] == "900373076"
    assert customer["legal_organization_code"] == "1"
    assert customer["dv"] == "4"
    assert customer["company"] == "Restaurantes del Sur SAS"
    assert customer["email"] == "compras@example.com"
    assert "names" not in customer


def test_person_buyer_is_a_natural_person() -> None:
    data = copy.deepcopy(BEER_ORDER)
    data["adquirente"] = {"tipo_documento": "13", "numero_documento": "1032456789", "nombre": "Ana"}
    customer = bill_for(data)["customer"]
    assert customer["legal_organization_code"] == "2"
    assert customer["names"] == "Ana"
    assert "dv" not in customer


def test_item_has_net_price_codes_and_percent_tax() -> None:
    (item,) = bill_for(BEER_ORDER)["items"]
    assert item == {
        "code_reference": "CERV-1",
        "name": "Cerveza Artesanal",
        "quantity": "2",
        "price": "10000.00",
        "discount_rate": "0.00",
        "unit_measure_code": "94",
        "standard_code": "999",
        "taxes": [{"code": "04", "rate": "8.00"}],
    }


@pytest.mark.parametrize(
    ("name", "tasa", "code", "rate"),
    [("IVA", "0.19", "01", "19.00"), ("iva", "0.05", "01", "5.00"), ("INC", "0.08", "04", "8.00")],
)
def test_rates_become_percent_strings(name: str, tasa: str, code: str, rate: str) -> None:
    data = copy.deepcopy(BEER_ORDER)
    monto = str(int(20000 * float(tasa)))
    data["items"][0]["impuestos"] = [{"nombre": name, "tasa": tasa, "monto": monto}]
    data["items"][0]["total_item"] = str(20000 + int(monto))
    data["impuestos_totales"] = monto
    total = str(20000 + int(monto) + 3000)
    data["total_factura"] = total
    data["metodos_pago"] = [{"tipo": "Efectivo", "monto": total}]
    assert bill_for(data)["items"][0]["taxes"] == [{"code": code, "rate": rate}]


def test_fractional_quantity_is_a_decimal_string() -> None:
    data = copy.deepcopy(BEER_ORDER)
    data["items"][0].update(cantidad="1.5", precio_unitario="20000", total_item="32400")
    data["items"][0]["impuestos"][0]["monto"] = "2400"
    data.update(subtotal="30000", impuestos_totales="2400", total_factura="35400")
    data["metodos_pago"] = [{"tipo": "Efectivo", "monto": "35400"}]
    assert bill_for(data)["items"][0]["quantity"] == "1.5"


def test_tip_is_a_surcharge_outside_the_taxable_base() -> None:
    assert bill_for(BEER_ORDER)["allowance_charges"] == [
        {
            "concept_type": "03",
            "is_surcharge": True,
            "reason": "Propina",
            "base_amount": "20000.00",
            "amount": "3000.00",
        }
    ]
    data = copy.deepcopy(BEER_ORDER)
    data.update(propina_voluntaria="0", total_factura="21600")
    data["metodos_pago"] = [{"tipo": "Efectivo", "monto": "21600"}]
    assert "allowance_charges" not in bill_for(data)


def test_one_payment_detail_per_payment_method() -> None:
    data = copy.deepcopy(BEER_ORDER)
    data["metodos_pago"] = [
        {"tipo": "Efectivo", "monto": "4600"},
        {"tipo": "Tarjeta de Crédito", "monto": "20000"},
    ]
    assert bill_for(data)["payment_details"] == [
        {"payment_form": "1", "payment_method_code": "10", "amount": "4600.00"},
        {"payment_form": "1", "payment_method_code": "48", "amount": "20000.00"},
    ]


def test_unmappable_order_raises_invalid_order_with_every_field() -> None:
    data = copy.deepcopy(BEER_ORDER)
    data["items"][0]["impuestos"] = [{"nombre": "VAT", "tasa": "0.08125", "monto": "1625"}]
    data["metodos_pago"] = [{"tipo": "Bitcoin", "monto": "24600"}]
    with pytest.raises(InvalidOrder) as caught:
        build_bill(unchecked(data), numbering_range_id=8)
    found = {(e.field, e.rule) for e in caught.value.errors}
    assert found == {
        ("items[0].impuestos[0].nombre", "unknown_tax"),
        ("items[0].impuestos[0].tasa", "rate_percent"),
        ("metodos_pago[0].tipo", "unknown_payment_method"),
    }


def test_nit_with_wrong_check_digit_is_invalid() -> None:
    data = copy.deepcopy(BEER_ORDER)
    data["adquirente"] = {
        "tipo_documento": "31",
        "numero_documento": "900373076",
        "dv": "7",
        "nombre": "Restaurantes del Sur SAS",
    }
    with pytest.raises(InvalidOrder) as caught:
        build_bill(unchecked(data), numbering_range_id=8)
    assert [e.field for e in caught.value.errors] == ["adquirente.dv"]
