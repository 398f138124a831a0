"""Structural and business errors reported together: a refused structure does not hide the
business rules whose inputs could still be read, and no rule runs on an input it cannot read."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidOrder
from domain.order import Order, parse_order
from domain.order_salvage import salvage
from domain.rules import check_order
from tests.factories import SEED_ORDER, line, order
from tests.unit.test_fuzz_orders import mutated_orders, valid_orders

PROPERTY = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


def reported(data: Any) -> set[tuple[str, str]]:
    try:
        parse_order(data)
    except InvalidOrder as exc:
        return {(e.field, e.rule) for e in exc.errors}
    return set()


def test_a_negative_quantity_is_reported_with_a_missing_total() -> None:
    data = copy.deepcopy(SEED_ORDER)
    data["items"][0]["cantidad"] = -2
    del data["total_factura"]

    found = reported(data)

    assert ("total_factura", "missing") in found
    assert ("items[0].cantidad", "positive") in found


def test_items_payments_and_buyer_are_checked_when_a_top_level_field_has_the_wrong_type() -> None:
    data = order(
        lines=[line(), line("Postre", 1, 12000, (("IVA", "0.19"),))],
        buyer={"tipo_documento": "31", "numero_documento": "900373076", "dv": "1", "nombre": "X"},
    )
    data["subtotal"] = {"amount": 1}
    data["id_pedido_origen"] = 100
    data["items"][1]["impuestos"][0]["nombre"] = "IVAA"
    data["items"][0]["precio_unitario"] = "-10000"
    data["metodos_pago"][0]["tipo"] = "Bitcoin"

    found = reported(data)

    assert {("subtotal", "decimal_type"), ("id_pedido_origen", "string_type")} <= found
    assert ("items[1].impuestos[0].nombre", "unknown_tax") in found
    assert ("items[0].precio_unitario", "non_negative") in found
    assert ("metodos_pago[0].tipo", "unknown_payment_method") in found
    assert ("adquirente.dv", "nit_check_digit") in found


def test_a_line_with_a_broken_field_still_has_its_other_fields_checked() -> None:
    data = order(lines=[line(), line("Postre", 1, 12000, (("IVA", "0.19"),))])
    del data["items"][0]["descripcion"]
    data["items"][0]["impuestos"][0]["tasa"] = "1.5"
    data["items"][1]["cantidad"] = "0"
    data["items"][1]["impuestos"] = [{"nombre": "IVA"}, {"nombre": "iva", "tasa": 0, "monto": 0}]

    found = reported(data)

    assert ("items[0].descripcion", "missing") in found
    assert ("items[0].impuestos[0].tasa", "rate_fraction") in found
    assert ("items[1].cantidad", "positive") in found
    assert ("items[1].impuestos[0].monto", "missing") in found
    assert ("items[1].impuestos[1].nombre", "duplicate_tax") in found


def test_a_rule_whose_input_is_unreadable_is_not_guessed() -> None:
    data = order(lines=[line(), line("Postre", 1, 12000, (("IVA", "0.19"),))], tip=500)
    data["items"][1]["total_item"] = "doce mil"
    data["total_factura"] = "abc"
    data["impuestos_totales"] = "1"  # wrong, and checkable: every item's taxes are readable

    found = reported(data)

    assert found == {
        ("items[1].total_item", "decimal_parsing"),
        ("total_factura", "decimal_parsing"),
        ("impuestos_totales", "taxes_sum"),
    }, "subtotal, invoice and payment totals need the unreadable values: not reported"


def test_an_unreadable_list_hides_only_the_rules_that_need_it() -> None:
    data = order(tip=1000)
    data["items"] = "two beers"
    data["metodos_pago"][0]["monto"] = "-5"
    data["propina_voluntaria"] = "-1000"

    found = reported(data)

    assert ("items", "list_type") in found
    assert ("metodos_pago[0].monto", "non_negative") in found
    assert ("metodos_pago", "payments_total") in found
    assert ("propina_voluntaria", "non_negative") in found
    assert ("total_factura", "invoice_total") in found
    assert not any(rule in {"taxes_sum", "subtotal_sum"} for _, rule in found)


@PROPERTY
@given(st.one_of(valid_orders(), mutated_orders()))
def test_what_is_read_of_a_payload_agrees_with_the_order_model(data: dict[str, Any]) -> None:
    """For every payload the model accepts, the salvaged reading gives the same business
    errors as the model itself: same conversions, same stripping, same defaults."""
    try:
        model = Order.model_validate(data)
    except Exception:
        return
    assert check_order(salvage(data, [])) == check_order(model)


# fields no business rule reads: breaking them must leave every business error in the report
UNREAD_FIELDS: list[tuple[tuple[str | int, ...], str]] = [
    (("id_pedido_origen",), "missing"),
    (("items", 0, "descripcion"), "missing"),
    (("items", 0, "id_producto"), "string_type"),
    (("adquirente", "nombre"), "string_too_short"),
]
business_breaks = st.lists(
    st.sampled_from(
        [
            ("items", 0, "cantidad", "-1"),
            ("items", 0, "precio_unitario", "-100"),
            ("items", 0, "total_item", "5"),
            ("subtotal", "7"),
            ("impuestos_totales", "-3"),
            ("total_factura", "0"),
            ("propina_voluntaria", "-10"),
            ("metodos_pago", 0, "tipo", "Trueque"),
            ("metodos_pago", 0, "monto", "1"),
            ("items", 0, "impuestos", 0, "nombre", "IVA 2"),
            ("items", 0, "impuestos", 0, "tasa", "0.5"),
        ]
    ),
    min_size=1,
    max_size=4,
)


def _put(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        data = data[step]
    data[path[-1]] = value


def _break(data: dict[str, Any], path: tuple[str | int, ...], rule: str) -> None:
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    if rule == "missing":
        target.pop(path[-1], None)
    elif rule == "string_type":
        target[path[-1]] = 12
    else:
        target[path[-1]] = "   "


@PROPERTY
@given(
    business_breaks,
    st.lists(st.sampled_from(UNREAD_FIELDS), min_size=1, max_size=3, unique=True),
)
def test_structural_errors_never_hide_a_business_error(
    breaks: list[tuple[Any, ...]], unread: list[tuple[tuple[str | int, ...], str]]
) -> None:
    data = order(
        lines=[line(), line("Postre", 1, 12000, (("IVA", "0.19"),))],
        tip=1000,
        buyer={"tipo_documento": "13", "numero_documento": "1020304050", "nombre": "Ana"},
    )
    for *path, value in breaks:
        _put(data, tuple(path), value)
    business = reported(data)
    assert business, "each break above violates a business rule"

    for path, how in unread:
        _break(data, path, how)
    found = reported(data)

    structural = {(f, r) for f, r in found if (f, r) not in business}
    assert {_field(path) for path, _ in unread} <= {f for f, _ in structural}
    assert business <= found, "a broken structure hid business errors"


def _field(path: tuple[str | int, ...]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out
