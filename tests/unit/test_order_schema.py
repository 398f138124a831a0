"""The order's JSON Schema patterns allow only what the order model and the single-value rules
accept (property tests: values drawn from each pattern, checked by the model)."""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.catalog import PAYMENT_MEANS, TRIBUTES, payment_means_for, tribute_for
from domain.errors import InvalidOrder
from domain.order import Order, parse_order
from domain.order_schema import spelling_pattern
from tests.factories import SEED_ORDER

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
SCHEMA = Order.model_json_schema()
DEFS = SCHEMA["$defs"]


def drawn(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    text = next(s for s in schema.get("anyOf", [schema]) if s.get("type") == "string")
    excluded = set(text.get("not", {}).get("enum", []))
    strategy = st.from_regex(re.compile(text["pattern"]), fullmatch=True)
    if "maxLength" in text:
        strategy = strategy.filter(lambda s: len(s) <= text["maxLength"])
    if "minLength" in text:
        strategy = strategy.filter(lambda s: len(s) >= text["minLength"])
    return strategy.filter(lambda s: s not in excluded)


def errors_at(data: dict[str, Any], field: str) -> set[str]:
    try:
        parse_order(data)
    except InvalidOrder as exc:
        return {e.rule for e in exc.errors if e.field == field}
    return set()


CROSS_FIELD = {"tax_matches_rate", "item_total", "taxes_sum", "subtotal_sum", "invoice_total"}
CROSS_FIELD |= {"payments_total", "duplicate_tax", "nit_digits", "nit_check_digit"}


def placed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(SEED_ORDER)
    target: Any = data
    for step in path[:-1]:
        target = target.setdefault(step, {}) if isinstance(step, str) else target[step]
    target[path[-1]] = value
    return data


def field_of(path: tuple[Any, ...]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


CASES: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("subtotal",), SCHEMA["properties"]["subtotal"]),
    (("total_factura",), SCHEMA["properties"]["total_factura"]),
    (("items", 0, "cantidad"), DEFS["Item"]["properties"]["cantidad"]),
    (("items", 0, "descripcion"), DEFS["Item"]["properties"]["descripcion"]),
    (("items", 0, "id_producto"), DEFS["Item"]["properties"]["id_producto"]),
    (("items", 0, "impuestos", 0, "tasa"), DEFS["Impuesto"]["properties"]["tasa"]),
    (("items", 0, "impuestos", 0, "nombre"), DEFS["Impuesto"]["properties"]["nombre"]),
    (("metodos_pago", 0, "tipo"), DEFS["MetodoPago"]["properties"]["tipo"]),
    (("adquirente", "nombre"), DEFS["Adquirente"]["properties"]["nombre"]),
    (("adquirente", "numero_documento"), DEFS["Adquirente"]["properties"]["numero_documento"]),
    (("adquirente", "email"), DEFS["Adquirente"]["properties"]["email"]),
]


@PROPERTY
@given(st.sampled_from(CASES).flatmap(lambda c: st.tuples(st.just(c[0]), drawn(c[1]))))
def test_a_string_a_pattern_allows_meets_every_rule_of_its_field(case: tuple[Any, str]) -> None:
    path, value = case
    refused = errors_at(placed(path, value), field_of(path)) - CROSS_FIELD
    assert not refused, f"{field_of(path)}={value!r} allowed by the schema, refused: {refused}"


@PROPERTY
@given(st.from_regex(re.compile(spelling_pattern(PAYMENT_MEANS)), fullmatch=True))
def test_payment_spellings_the_pattern_allows_are_known(spelling: str) -> None:
    assert payment_means_for(spelling.strip()) is not None


@PROPERTY
@given(st.from_regex(re.compile(spelling_pattern(TRIBUTES)), fullmatch=True))
def test_tax_spellings_the_pattern_allows_are_known(spelling: str) -> None:
    assert tribute_for(spelling.strip()) is not None


def test_the_catalogs_own_names_match_their_pattern() -> None:
    for names in (PAYMENT_MEANS, TRIBUTES):
        pattern = re.compile(spelling_pattern(names))
        for name in names:
            assert pattern.fullmatch(name) and pattern.fullmatch(name.lower())
    assert re.fullmatch(spelling_pattern(PAYMENT_MEANS), "Tarjeta de Crédito")
    assert not re.fullmatch(spelling_pattern(PAYMENT_MEANS), "Bitcoin")
