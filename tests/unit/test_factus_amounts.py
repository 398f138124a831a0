"""Every valid POS order becomes a bill the Factus stand-in accepts, or is refused at intake.

The stand-in (`adapters.factus.simulator`) checks what Factus checks: two decimals on
quantities and prices, the excluded form for an item without taxes, and payments equal to the
total of Factus' cent arithmetic plus `cash_rounding_amount`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from adapters.factus.mapping import build_bill, check_order
from adapters.factus.simulator.app import validate_bill
from domain.documents import Planner
from domain.errors import InvalidOrder
from domain.order import parse_order
from domain.ports import OrderKey, Submission
from domain.usecases.enqueue import enqueue
from tests.factories import line, order
from tests.unit.fakes import FakeClock, FakeStore, RecordingPublisher
from tests.unit.test_fuzz_orders import valid_orders

RANGE = 8


def bill_for(data: dict[str, Any]) -> dict[str, Any]:
    parsed = parse_order(data)
    submission = Submission(
        OrderKey("900123456", parsed.id_pedido_origen), parsed, datetime.now(UTC)
    )
    return build_bill(submission, numbering_range_id=RANGE)


def test_an_item_without_taxes_goes_in_the_excluded_form() -> None:
    body = bill_for(order(lines=[line("Agua", 1, 3000, ())]))
    assert body["items"][0]["taxes"] == [{"code": "01", "rate": "0.00", "is_excluded": True}]
    assert validate_bill(body, [RANGE]) == {}


def test_taxes_the_pos_rounded_to_pesos_are_squared_with_cash_rounding() -> None:
    # 8333 at INC 8 %: Factus computes 666.64 of tax; the POS charged 667.
    data = order(lines=[line("Almuerzo", 1, 8333, (("INC", "0.08"),))])
    assert Decimal(data["total_factura"]) == 9000
    body = bill_for(data)
    assert body["cash_rounding_amount"] == "0.36"
    assert validate_bill(body, [RANGE]) == {}


def test_without_rounding_the_stand_in_refuses_as_factus_does() -> None:
    body = bill_for(order(lines=[line("Almuerzo", 1, 8333, (("INC", "0.08"),))]))
    body["cash_rounding_amount"] = "0.00"
    assert "payment_details" in validate_bill(body, [RANGE])
    body["cash_rounding_amount"] = "0.36"
    body["items"][0]["taxes"] = []
    assert "items.0.taxes" in validate_bill(body, [RANGE])


def test_a_quantity_with_three_decimals_is_refused_naming_the_field_and_why() -> None:
    with pytest.raises(InvalidOrder) as caught:
        check_order(parse_order(order(lines=[line("Queso", "0.375", 32000, ())])))
    (error,) = caught.value.errors
    assert error.field == "items[0].cantidad" and error.rule == "factus_quantity_decimals"
    assert "2 decimals" in error.message and "0.375" in error.message


def test_the_factus_intake_refuses_it_before_accepting_it() -> None:
    store = FakeStore(FakeClock())
    publisher = RecordingPublisher()
    planner = Planner(
        registers={"1": "invoice"},
        default_register="1",
        numbered=False,
        gateway_check=check_order,
    )
    data = order(lines=[line("Queso", "0.375", 32000, ())])
    with pytest.raises(InvalidOrder) as caught:
        enqueue(
            data,
            issuer="900123456",
            gateway="factus",
            planner=planner,
            store=store,
            publisher=publisher,
        )
    assert [e.field for e in caught.value.errors] == ["items[0].cantidad"]
    assert store.get(OrderKey("900123456", "POS-100")) is None
    assert publisher.published == []


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(valid_orders())
def test_every_valid_order_is_a_bill_factus_accepts_or_a_refusal_at_intake(
    data: dict[str, Any],
) -> None:
    parsed = parse_order(data)
    try:
        check_order(parsed)
    except InvalidOrder as exc:
        assert {e.rule for e in exc.errors} <= {"factus_quantity_decimals"}
        assert any(Decimal(i["cantidad"]).as_tuple().exponent < -2 for i in data["items"])  # type: ignore[operator]
        return
    assert validate_bill(bill_for(data), [RANGE]) == {}
