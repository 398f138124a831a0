"""Business rules an order must meet before it may become a DIAN document.

The seed's two rules (total = subtotal + taxes + tip; taxes = sum of the items' tax amounts)
plus what DIAN rejects: negative values (VLR01), unknown tributes, the same tribute twice on
a line (FAS01b), lines whose totals do not add up, payments that do not cover the total.
Each check adds to a list, so the caller sees every problem at once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from domain.catalog import CONSUMIDOR_FINAL_ID, payment_means_for, tribute_for
from domain.dian_codes import is_nit_number, nit_check_digit
from domain.errors import FieldError

if TYPE_CHECKING:
    from domain.order import Item, Order

CENT = Decimal("0.01")
# A POS rounds each tax to pesos; DIAN itself tolerates ±2.00 on monetary checks.
TAX_TOLERANCE = Decimal("1.00")
# The most a document may carry in PayableRoundingAmount: DIAN's tolerance on its monetary
# checks. A larger gap means the POS's figures do not describe one sale.
ROUNDING_TOLERANCE = Decimal("2.00")
MAX_AMOUNT = Decimal("1000000000000")  # one trillion pesos: far above any till


def line_base(item: Item) -> Decimal:
    """Quantity × unit price, rounded half-even to cents (NTC 3711)."""
    return (item.cantidad * item.precio_unitario).quantize(CENT, rounding="ROUND_HALF_EVEN")


def check_order(order: Order) -> list[FieldError]:
    errors: list[FieldError] = []
    _check_amounts(order, errors)
    for index, item in enumerate(order.items):
        _check_item(f"items[{index}]", item, errors)
    _check_totals(order, errors)
    _check_payable_rounding(order, errors)
    _check_payments(order, errors)
    _check_buyer(order, errors)
    return errors


def _negative(path: str, value: Decimal, errors: list[FieldError]) -> None:
    if value < 0:
        errors.append(FieldError(path, "non_negative", "amounts may not be negative (DIAN VLR01)"))
    elif value > MAX_AMOUNT:
        errors.append(FieldError(path, "too_large", f"amount exceeds {MAX_AMOUNT}"))


def _check_amounts(order: Order, errors: list[FieldError]) -> None:
    for name in ("subtotal", "propina_voluntaria", "impuestos_totales", "total_factura"):
        _negative(name, getattr(order, name), errors)
    if order.total_factura == 0:
        errors.append(
            FieldError("total_factura", "positive", "an invoice must have a total above zero")
        )


def _check_item(path: str, item: Item, errors: list[FieldError]) -> None:
    if item.cantidad <= 0:
        errors.append(FieldError(f"{path}.cantidad", "positive", "quantity must be above zero"))
    _negative(f"{path}.precio_unitario", item.precio_unitario, errors)
    _negative(f"{path}.total_item", item.total_item, errors)
    seen: set[str] = set()
    base = line_base(item)
    for t_index, tax in enumerate(item.impuestos):
        t_path = f"{path}.impuestos[{t_index}]"
        tribute = tribute_for(tax.nombre)
        if tribute is None:
            errors.append(
                FieldError(f"{t_path}.nombre", "unknown_tax", f"unknown tax name {tax.nombre!r}")
            )
        elif tribute.code in seen:
            errors.append(
                FieldError(
                    f"{t_path}.nombre",
                    "duplicate_tax",
                    f"tax {tax.nombre!r} appears twice on the same line (DIAN FAS01b)",
                )
            )
        else:
            seen.add(tribute.code)
        if not Decimal(0) <= tax.tasa < 1:
            errors.append(
                FieldError(
                    f"{t_path}.tasa", "rate_fraction", "rate is a fraction from 0 to 1 (0.08)"
                )
            )
        _negative(f"{t_path}.monto", tax.monto, errors)
        expected = (base * tax.tasa).quantize(CENT, rounding="ROUND_HALF_EVEN")
        if abs(expected - tax.monto) > TAX_TOLERANCE:
            errors.append(
                FieldError(
                    f"{t_path}.monto",
                    "tax_matches_rate",
                    f"tax amount {tax.monto} is not {tax.tasa} × line base {base} = {expected}",
                )
            )
    taxes = sum((t.monto for t in item.impuestos), Decimal(0))
    if abs(item.total_item - (base + taxes)) > CENT:
        errors.append(
            FieldError(
                f"{path}.total_item",
                "item_total",
                f"total_item {item.total_item} is not cantidad × precio_unitario + taxes "
                f"= {base + taxes}",
            )
        )


def _check_totals(order: Order, errors: list[FieldError]) -> None:
    item_taxes = sum((t.monto for i in order.items for t in i.impuestos), Decimal(0))
    if order.impuestos_totales != item_taxes:
        errors.append(
            FieldError(
                "impuestos_totales",
                "taxes_sum",
                f"impuestos_totales {order.impuestos_totales} is not the sum of the items' "
                f"tax amounts {item_taxes}",
            )
        )
    bases = sum(
        (i.total_item - sum((t.monto for t in i.impuestos), Decimal(0)) for i in order.items),
        Decimal(0),
    )
    if order.subtotal != bases:
        errors.append(
            FieldError(
                "subtotal",
                "subtotal_sum",
                f"subtotal {order.subtotal} is not the sum of the items before taxes {bases}",
            )
        )
    expected = order.subtotal + order.impuestos_totales + order.propina_voluntaria
    if order.total_factura != expected:
        errors.append(
            FieldError(
                "total_factura",
                "invoice_total",
                f"total_factura {order.total_factura} is not subtotal + impuestos_totales + "
                f"propina_voluntaria = {expected}",
            )
        )


def _check_payable_rounding(order: Order, errors: list[FieldError]) -> None:
    """A document's PayableAmount is `total_factura`; what the lines (quantity × unit price),
    their taxes and the tip leave between them is its PayableRoundingAmount. Each line may
    differ by a cent from quantity × unit price + taxes (`_check_item`), and many lines may
    add those cents up to more than a document may round. Lines off by more than a cent, and
    totals that do not add up, are named by their own rules."""
    difference = Decimal(0)
    for item in order.items:
        gap = item.total_item - line_base(item) - sum((t.monto for t in item.impuestos), Decimal(0))
        if abs(gap) <= CENT:
            difference += gap
    if abs(difference) > ROUNDING_TOLERANCE:
        errors.append(
            FieldError(
                "total_factura",
                "payable_rounding",
                f"the items' totals differ by {difference} from quantity × unit price plus "
                f"taxes; a document may round at most {ROUNDING_TOLERANCE} (DIAN's tolerance)",
            )
        )


def _check_payments(order: Order, errors: list[FieldError]) -> None:
    for index, payment in enumerate(order.metodos_pago):
        path = f"metodos_pago[{index}]"
        if payment_means_for(payment.tipo) is None:
            errors.append(
                FieldError(
                    f"{path}.tipo",
                    "unknown_payment_method",
                    f"unknown payment method {payment.tipo!r}",
                )
            )
        _negative(f"{path}.monto", payment.monto, errors)
    paid = sum((p.monto for p in order.metodos_pago), Decimal(0))
    if paid != order.total_factura:
        errors.append(
            FieldError(
                "metodos_pago",
                "payments_total",
                f"payments add up to {paid}, the invoice total is {order.total_factura}",
            )
        )


def _check_buyer(order: Order, errors: list[FieldError]) -> None:
    buyer = order.adquirente
    if buyer.numero_documento == CONSUMIDOR_FINAL_ID:
        return
    if buyer.tipo_documento == "31" and not is_nit_number(buyer.numero_documento):
        errors.append(
            FieldError(
                "adquirente.numero_documento",
                "nit_digits",
                "a NIT holds 1 to 15 digits 0-9, without DV",
            )
        )
    nit = buyer.numero_documento
    is_nit = buyer.tipo_documento == "31" and is_nit_number(nit)
    if is_nit and buyer.dv is not None and nit_check_digit(nit) != buyer.dv:
        errors.append(
            FieldError("adquirente.dv", "nit_check_digit", "DV does not match the NIT (DIAN FAK24)")
        )
