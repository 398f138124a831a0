"""The one line Flower shows for an order that ended FAILED."""

from __future__ import annotations

from domain.ports import OrderKey
from worker.outcomes import MAX_LENGTH, order_failed

KEY = OrderKey("900123456", "POS-9")


def test_a_rejection_names_every_rule_with_its_text() -> None:
    reason = {
        "error": "rejected",
        "rules": [
            {"code": "FAD06", "kind": "Rechazo", "text": "CUFE mal calculado"},
            {"code": "FAK24", "kind": "Rechazo", "text": "DV errado"},
        ],
    }
    assert str(order_failed(KEY, reason)) == (
        "900123456:POS-9 FAILED: rejected by the authority: "
        "FAD06 Rechazo: CUFE mal calculado; FAK24 Rechazo: DV errado"
    )


def test_an_invalid_order_names_fields_and_rules_but_not_the_values_sent() -> None:
    reason = {
        "error": "invalid_order",
        "errors": [
            {"field": "metodos_pago[0].tipo", "rule": "unknown_payment_method",
             "message": "unknown payment method 'Bitcoin'"},
            {"field": "cliente.numero_documento", "rule": "nit_check_digit",
             "message": "'800197268-1' has a wrong check digit"},
        ],
    }  # fmt: skip
    text = str(order_failed(KEY, reason))
    assert text == (
        "900123456:POS-9 FAILED: invalid order: metodos_pago[0].tipo [unknown_payment_method], "
        "cliente.numero_documento [nit_check_digit]"
    )
    assert "Bitcoin" not in text and "800197268" not in text


def test_other_failures_say_their_kind_and_message() -> None:
    gave_up = {
        "error": "gateway_unavailable",
        "message": "HTTP 503",
        "gave_up": "after 25 attempts over 172800 s",
    }
    assert str(order_failed(KEY, gave_up)).endswith(
        "gateway_unavailable: gave up after 25 attempts over 172800 s: HTTP 503"
    )
    misconfigured = {"error": "gateway_misconfigured", "message": "InvalidSecurity"}
    assert str(order_failed(KEY, misconfigured)).endswith(
        "FAILED: gateway_misconfigured: InvalidSecurity"
    )
    settled = {"error": "too_many_attempts", "attempts": 101, "last_reason": {}}
    assert str(order_failed(KEY, settled)).endswith("settled after 101 attempts")
    assert str(order_failed(KEY, None)) == "900123456:POS-9 FAILED: failed"


def test_the_line_is_bounded() -> None:
    many = {"error": "rejected", "rules": [{"code": f"R{n}", "text": "x" * 50} for n in range(50)]}
    text = str(order_failed(KEY, many))
    assert len(text) == MAX_LENGTH and text.endswith("…")
