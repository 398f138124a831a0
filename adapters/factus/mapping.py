"""POS order → Factus v2 bill body (`POST /v2/bills/validate`). Pure: no I/O.

v2 semantics: `price` is the net unit price (the POS's precio_unitario), `quantity` is a
decimal string, each item carries `taxes[]{code, rate}` with the DIAN tribute code and the rate
as a percent string, payments go to `payment_details[]`, and the tip is a surcharge
(`allowance_charges[]`, concept "03"). Anything that cannot be mapped raises `InvalidOrder`,
and the intake runs the same mapping, so such an order is refused before it is accepted.

Factus' precision: quantities, prices and rates with at most two decimals; an item without
taxes in the excluded form (`{code "01", rate "0.00", is_excluded true}`), never `[]`; every
line and every line's tax rounded half up to the cent, and the payments equal to that total
plus `cash_rounding_amount` (at most 500 either way), which absorbs a POS that rounds its
taxes to whole pesos.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.catalog import CONSUMIDOR_FINAL_ID, payment_means_for, tribute_for
from domain.dian_codes import is_nit_number, nit_check_digit
from domain.errors import FieldError, InvalidOrder
from domain.order import Adquirente, Item, Order
from domain.ports import Submission

CENT = Decimal("0.01")
NIT = "31"
CONSUMIDOR_FINAL_CUSTOMER: dict[str, Any] = {
    "identification_document_code": "13",
    "identification": CONSUMIDOR_FINAL_ID,
    "names": "Consumidor final",
    "legal_organization_code": "2",
    "tribute_code": "ZZ",
}
UNIT_MEASURE_UNIDAD = "94"
STANDARD_CODE_OWN = "999"
SURCHARGE_CONDITIONAL = "03"
PAYMENT_FORM_CASH = "1"
MAX_OBSERVATION = 250
MAX_DECIMALS = 2
MAX_CASH_ROUNDING = Decimal(500)
EXCLUDED = {"code": "01", "rate": "0.00", "is_excluded": True}


def build_bill(
    submission: Submission, *, numbering_range_id: int, send_email: bool = False
) -> dict[str, Any]:
    """The v2 bill body for this submission; the same submission always gives the same body."""
    return _bill(submission.order, submission.reference_code, numbering_range_id, send_email)


def check_order(order: Order) -> None:
    """Raises `InvalidOrder` for an order no Factus bill can carry: the intake's check."""
    _bill(order, "intake-check", 0, False)


def _bill(
    order: Order, reference_code: str, numbering_range_id: int, send_email: bool
) -> dict[str, Any]:
    errors: list[FieldError] = []
    customer = _customer(order.adquirente, errors)
    items = [_item(i, item, errors) for i, item in enumerate(order.items)]
    payments = _payments(order, errors)
    rounding = _cash_rounding(order, items, payments, errors)
    if errors:
        raise InvalidOrder(errors)
    body: dict[str, Any] = {
        "numbering_range_id": numbering_range_id,
        "document": "01",
        "operation_type": "10",
        "reference_code": reference_code,
        "observation": f"Pedido POS {order.id_pedido_origen}"[:MAX_OBSERVATION],
        "send_email": send_email,
        "customer": customer,
        "items": items,
        "payment_details": payments,
        "cash_rounding_amount": _money(rounding),
    }
    if order.propina_voluntaria > 0:
        body["allowance_charges"] = [
            {
                "concept_type": SURCHARGE_CONDITIONAL,
                "is_surcharge": True,
                "reason": "Propina",
                "base_amount": _money(order.subtotal),
                "amount": _money(order.propina_voluntaria),
            }
        ]
    return body


def _cash_rounding(
    order: Order,
    items: list[dict[str, Any]],
    payments: list[dict[str, Any]],
    errors: list[FieldError],
) -> Decimal:
    """What the POS charged minus the total Factus computes from the lines: the rounding."""
    if errors:
        return Decimal(0)
    total = order.propina_voluntaria
    for item in items:
        line = cents(Decimal(item["quantity"]) * Decimal(item["price"]))
        total += line
        for tax in item["taxes"]:
            if not tax.get("is_excluded"):
                total += cents(line * Decimal(tax["rate"]) / 100)
    paid = sum((Decimal(p["amount"]) for p in payments), Decimal(0))
    rounding = paid - total
    if abs(rounding) > MAX_CASH_ROUNDING:
        errors.append(
            FieldError(
                "total_factura",
                "factus_cash_rounding",
                f"Factus computes {total} from the lines; the {paid} charged differs by "
                f"{rounding}, beyond the {MAX_CASH_ROUNDING} pesos of rounding Factus accepts",
            )
        )
    return rounding


def cents(value: Decimal) -> Decimal:
    """Rounded to the cent as Factus rounds: half up."""
    return value.quantize(CENT, ROUND_HALF_UP)


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _percent(value: Decimal) -> str | None:
    """0.08 → "8.00"; None when the rate has more precision than two percent decimals."""
    percent = value * 100
    if percent != percent.quantize(CENT):
        return None
    return str(percent.quantize(CENT))


def _customer(buyer: Adquirente, errors: list[FieldError]) -> dict[str, Any]:
    if buyer.is_consumidor_final:
        return dict(CONSUMIDOR_FINAL_CUSTOMER)
    customer: dict[str, Any] = {
        "identification_document_code": buyer.tipo_documento,
        "identification": buyer.numero_documento,
        "tribute_code": "ZZ",
    }
    if buyer.tipo_documento == NIT:
        if not is_nit_number(buyer.numero_documento):
            errors.append(
                FieldError(
                    "adquirente.numero_documento",
                    "nit_digits",
                    "a NIT holds 1 to 15 digits 0-9, without DV",
                )
            )
            return customer
        dv = nit_check_digit(buyer.numero_documento)
        if buyer.dv is not None and buyer.dv != dv:
            errors.append(
                FieldError("adquirente.dv", "nit_check_digit", "DV does not match the NIT")
            )
        customer.update(legal_organization_code="1", dv=dv, company=buyer.nombre)
    else:
        customer.update(legal_organization_code="2", names=buyer.nombre)
    for source, target in (("email", "email"), ("direccion", "address"), ("telefono", "phone")):
        value = getattr(buyer, source)
        if value:
            customer[target] = value
    return customer


def _item(index: int, item: Item, errors: list[FieldError]) -> dict[str, Any]:
    path = f"items[{index}]"
    if item.cantidad <= 0:
        errors.append(FieldError(f"{path}.cantidad", "positive", "quantity must be above zero"))
    elif _places(item.cantidad) > MAX_DECIMALS:
        errors.append(
            FieldError(
                f"{path}.cantidad",
                "factus_quantity_decimals",
                f"Factus takes quantities with at most {MAX_DECIMALS} decimals; "
                f"{_quantity(item.cantidad)} has {_places(item.cantidad)}: sell it in a smaller "
                "unit (375 g rather than 0.375 kg)",
            )
        )
    if item.precio_unitario < 0:
        errors.append(
            FieldError(f"{path}.precio_unitario", "non_negative", "price may not be negative")
        )
    taxes: list[dict[str, Any]] = []
    for t_index, tax in enumerate(item.impuestos):
        t_path = f"{path}.impuestos[{t_index}]"
        tribute = tribute_for(tax.nombre)
        rate = _percent(tax.tasa)
        if tribute is None:
            errors.append(
                FieldError(f"{t_path}.nombre", "unknown_tax", f"unknown tax {tax.nombre!r}")
            )
        if rate is None or not Decimal(0) <= tax.tasa < 1:
            errors.append(
                FieldError(
                    f"{t_path}.tasa",
                    "rate_percent",
                    "rate must be a fraction from 0 to 1 with at most 4 decimals (0.08 = 8.00%)",
                )
            )
        if tribute is not None and rate is not None:
            taxes.append({"code": tribute.code, "rate": rate})
    return {
        "code_reference": item.id_producto or f"ITEM-{index + 1}",
        "name": item.descripcion,
        "quantity": _quantity(item.cantidad),
        "price": _money(item.precio_unitario),
        "discount_rate": "0.00",
        "unit_measure_code": UNIT_MEASURE_UNIDAD,
        "standard_code": STANDARD_CODE_OWN,
        "taxes": taxes or [dict(EXCLUDED)],
    }


def _payments(order: Order, errors: list[FieldError]) -> list[dict[str, Any]]:
    payments: list[dict[str, Any]] = []
    for index, payment in enumerate(order.metodos_pago):
        code = payment_means_for(payment.tipo)
        if code is None:
            errors.append(
                FieldError(
                    f"metodos_pago[{index}].tipo",
                    "unknown_payment_method",
                    f"unknown payment method {payment.tipo!r}",
                )
            )
            continue
        if payment.monto <= 0:
            continue  # a zero line (change, empty voucher) is not a payment DIAN wants to see
        payments.append(
            {
                "payment_form": PAYMENT_FORM_CASH,
                "payment_method_code": code,
                "amount": _money(payment.monto),
            }
        )
    if not payments and not errors:
        errors.append(
            FieldError("metodos_pago", "payments_present", "no payment with an amount above zero")
        )
    return payments
