"""Property-based fuzzing of order payloads (hypothesis), about 12,000 cases in all.

Every payload either becomes an order or is refused with `InvalidOrder` naming the fields at
fault: never another exception, never a wake-up for a worker, never a payload on the audit
trail that PostgreSQL could not store.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.documents import Planner
from domain.errors import InvalidOrder
from domain.order import Order, parse_order
from domain.usecases.enqueue import MAX_RECORDED_PAYLOAD, enqueue
from tests.factories import line, order
from tests.unit.fakes import FakeClock, FakeStore, RecordingPublisher

FIELD_PATH = re.compile(r"^(\(order\)|[A-Za-z_]+(\[\d+\])*(\.[A-Za-z_]+(\[\d+\])*)*)$")
INVOICES = Planner(registers={"1": "invoice"}, default_register="1", numbered=False)

FUZZ = settings(
    max_examples=2500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

# Text as a JSON decoder can hand it over: any code point, lone surrogates and NUL included.
any_text = st.text(st.characters(codec=None), max_size=40)
hostile_text = st.one_of(
    any_text,
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\udcff",
            "<a>&amp;</a>",
            "'; DROP TABLE orders; --",
            "🍽️👩‍🍳",
            "NaN",
            "Infinity",
            "-0",
            "1e400",
            "9" * 40,
            "0x10",
            "١٢٣",  # Arabic-Indic digits
        ]
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**20, max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)
    ),
    max_leaves=12,
)
ORDER_KEYS = [
    "id_pedido_origen",
    "items",
    "subtotal",
    "propina_voluntaria",
    "impuestos_totales",
    "total_factura",
    "metodos_pago",
    "adquirente",
]


def assert_refusal_names_fields(exc: InvalidOrder) -> None:
    assert exc.errors, "a refusal must say what is wrong"
    for error in exc.errors:
        assert FIELD_PATH.match(error.field), error.field
        assert error.rule and error.message


def assert_storable(order_: Order) -> None:
    """What PostgreSQL JSONB takes: UTF-8 text without NUL, numbers that are finite."""
    text = order_.canonical_json()
    text.encode("utf-8")  # raises on lone surrogates
    assert "\\u0000" not in text and "\x00" not in text
    json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def check(data: Any) -> Order | None:
    try:
        parsed = parse_order(data)
    except InvalidOrder as exc:
        assert_refusal_names_fields(exc)
        return None
    assert_storable(parsed)
    again = parse_order(parsed.to_payload())  # what is stored parses to the same order
    assert again.fingerprint() == parsed.fingerprint()
    return parsed


@FUZZ
@given(json_values)
def test_any_json_value_is_an_order_or_a_refusal_naming_fields(data: Any) -> None:
    check(data)


@st.composite
def mutated_orders(draw: st.DrawFn) -> dict[str, Any]:
    data = order(
        draw(st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True)),
        [line(f"P{n}") for n in range(draw(st.integers(1, 3)))],
        tip=draw(st.sampled_from([0, 1000])),
    )
    for _ in range(draw(st.integers(1, 3))):
        target: Any = data
        key: Any = draw(st.sampled_from(ORDER_KEYS))
        if key in ("items", "metodos_pago") and draw(st.booleans()):
            target = data.get(key)
            if isinstance(target, list) and target and isinstance(target[0], dict):
                target = target[0]
                key = draw(st.sampled_from([*target.keys(), "extra"]))
        action = draw(st.sampled_from(["replace", "delete", "text"]))
        if not isinstance(target, dict):
            break
        if action == "delete":
            target.pop(key, None)
        elif action == "text":
            target[key] = draw(hostile_text)
        else:
            target[key] = draw(json_values)
    return data


@FUZZ
@given(mutated_orders())
def test_a_mutated_order_is_an_order_or_a_refusal_naming_fields(data: dict[str, Any]) -> None:
    check(data)


@st.composite
def valid_orders(draw: st.DrawFn) -> dict[str, Any]:
    printable = st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp")),
        min_size=1,
        max_size=60,
    ).filter(lambda s: s.strip() != "")
    lines = [
        line(
            draw(printable),
            draw(st.sampled_from(["1", "2", "0.5", "3", "12", "0.375"])),
            draw(st.integers(1, 5_000_000)),
            draw(st.sampled_from([(("INC", "0.08"),), (("IVA", "0.19"),), ()])),
        )
        for _ in range(draw(st.integers(1, 5)))
    ]
    buyer = {"tipo_documento": "13", "numero_documento": "1020304050", "nombre": draw(printable)}
    return order(
        draw(st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)),
        lines,
        tip=draw(st.integers(0, 100_000)),
        payment=draw(st.sampled_from(["Efectivo", "Tarjeta Débito", "Tarjeta Crédito"])),
        buyer=buyer if draw(st.booleans()) else None,
    )


@FUZZ
@given(valid_orders())
def test_a_consistent_order_with_any_printable_names_is_accepted(data: dict[str, Any]) -> None:
    parsed = check(data)
    assert parsed is not None, "a consistent order must be accepted"
    if "adquirente" in data:
        assert parsed.adquirente.nombre == data["adquirente"]["nombre"].strip()


@FUZZ
@given(st.one_of(mutated_orders(), json_values, valid_orders()))
def test_enqueue_accepts_and_wakes_once_or_records_one_refusal_and_wakes_nobody(
    data: Any,
) -> None:
    store, publisher = FakeStore(FakeClock()), RecordingPublisher()
    try:
        result = enqueue(
            data,
            issuer="900123456",
            gateway="simulated",
            planner=INVOICES,
            store=store,
            publisher=publisher,
        )
    except InvalidOrder as exc:
        assert_refusal_names_fields(exc)
        assert publisher.published == [], "a refused order must never reach a worker"
        assert store.audit == [], "refused input is never on a document's timeline"
        assert [status for _, status, _ in store.refused] == ["RECHAZADO_ENTRADA"]
        return
    assert publisher.published == [result.key]
    assert [status for _, status, _ in store.audit] == ["RECIBIDO"]
    record = store.get(result.key)
    assert record is not None
    json.dumps(record.payload, allow_nan=False).encode("utf-8")


class _RecordingStore(FakeStore):
    def __init__(self) -> None:
        super().__init__(FakeClock())
        self.recorded: list[dict[str, Any]] = []
        self.keys: list[str] = []

    def refuse(self, key: Any, payload: dict[str, Any], errors: Any, *args: Any) -> int:
        self.recorded.append(payload)
        if key is not None:
            self.keys.append(str(key))
        return super().refuse(key, payload, errors, *args)


def _has_bad_text(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_has_bad_text(k) or _has_bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_bad_text(v) for v in value)
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Decimal):
        return not value.is_finite()
    return False


@settings(FUZZ, max_examples=1000)
@given(st.one_of(mutated_orders(), json_values))
def test_what_a_refusal_puts_on_the_audit_trail_is_storable_and_bounded(data: Any) -> None:
    store = _RecordingStore()
    with contextlib.suppress(InvalidOrder):
        enqueue(
            data,
            issuer="900123456",
            gateway="simulated",
            planner=INVOICES,
            store=store,
            publisher=RecordingPublisher(),
        )
    for payload in store.recorded:
        text = json.dumps(payload, allow_nan=False, ensure_ascii=False)
        assert len(text) <= MAX_RECORDED_PAYLOAD + 1024
        assert not _has_bad_text(payload), "PostgreSQL JSONB refuses NUL and lone surrogates"


@settings(FUZZ, max_examples=500)
@given(mutated_orders(), hostile_text)
def test_the_key_a_refusal_is_recorded_under_is_storable(data: dict[str, Any], bad: str) -> None:
    data["id_pedido_origen"] = f"ID{bad}"[:64]
    data["total_factura"] = "-1"  # always refused
    store = _RecordingStore()
    with pytest.raises(InvalidOrder):
        enqueue(
            data,
            issuer="900123456",
            gateway="simulated",
            planner=INVOICES,
            store=store,
            publisher=RecordingPublisher(),
        )
    for key in store.keys:
        assert not _has_bad_text(key), "PostgreSQL text refuses NUL and lone surrogates"
