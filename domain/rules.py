"""Business rules an order must meet before it may become a DIAN document.

The seed's two rules (total = subtotal + taxes + tip; taxes = sum of the items' tax amounts)
plus what DIAN rejects: negative values (VLR01), unknown tributes, the same tribute twice on
a line (FAS01b), lines whose totals do not add up, payments that do not cover the total.
Each check adds to a list, so the caller sees every problem at once.

The rules read an `OrderView` (`domain.order_views`): a valid `Order`, or what could be read
of a refused payload. A value of `None` is unknown there, and a rule whose inputs are not all
known is skipped rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Protocol

from domain.amounts import CENT, MAX_AMOUNT
from domain.catalog import CONSUMIDOR_FINAL_ID, payment_means_for, tribute_for
from domain.dian_codes import is_nit_number, nit_check_digit
from domain.errors import FieldError
from domain.order_views import BuyerView, LineView, OrderView, PaymentView, TaxView

__all__ = ["CENT", "MAX_AMOUNT", "TAX_TOLERANCE", "check_order", "line_base"]

# A POS rounds each tax to pesos; DIAN itself tolerates ±2.00 on monetary checks.
TAX_TOLERANCE = Decimal("1.00")
# The most a document may carry in PayableRoundingAmount: DIAN's tolerance on its monetary
# checks. A larger gap means the POS's figures do not describe one sale.
ROUNDING_TOLERANCE = Decimal("2.00")


class _Priced(Protocol):
    @property
    def cantidad(self) -> Decimal: ...
    @property
    def precio_unitario(self) -> Decimal: ...


def line_base(item: _Priced) -> Decimal:
    """Quantity × unit price, rounded half-even to cents (NTC 3711)."""
    return _base(item.cantidad, item.precio_unitario)


def _base(quantity: Decimal, price: Decimal) -> Decimal:
    return (quantity * price).quantize(CENT, rounding="ROUND_HALF_EVEN")


def _known_sum(values: Iterable[Decimal | None]) -> Decimal | None:
    """The sum, or None when any term is unknown."""
    total = Decimal(0)
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _tax_sum(item: LineView) -> Decimal | None:
    taxes = item.impuestos
    if taxes is None:
        return None
    return _known_sum(tax.monto if tax is not None else None for tax in taxes)


def check_order(order: OrderView) -> list[FieldError]:
    errors: list[FieldError] = []
    _check_amounts(order, errors)
    for index, item in enumerate(order.items or ()):
        if item is not None:
            _check_item(f"items[{index}]", item, errors)
    _check_totals(order, errors)
    _check_payable_rounding(order, errors)
    _check_payments(order.metodos_pago, order.total_factura, errors)
    if order.adquirente is not None:
        _check_buyer(order.adquirente, errors)
    return errors


def _negative(path: str, value: Decimal | None, errors: list[FieldError]) -> None:
    if value is None:
        return
    if value < 0:
        errors.append(FieldError(path, "non_negative", "amounts may not be negative (DIAN VLR01)"))
    elif value > MAX_AMOUNT:
        errors.append(FieldError(path, "too_large", f"amount exceeds {MAX_AMOUNT}"))


def _check_amounts(order: OrderView, errors: list[FieldError]) -> None:
    _negative("subtotal", order.subtotal, errors)
    _negative("propina_voluntaria", order.propina_voluntaria, errors)
    _negative("impuestos_totales", order.impuestos_totales, errors)
    _negative("total_factura", order.total_factura, errors)
    if order.total_factura == 0:
        errors.append(
            FieldError("total_factura", "positive", "an invoice must have a total above zero")
        )


def _check_item(path: str, item: LineView, errors: list[FieldError]) -> None:
    quantity, price = item.cantidad, item.precio_unitario
    if quantity is not None and quantity <= 0:
        errors.append(FieldError(f"{path}.cantidad", "positive", "quantity must be above zero"))
    _negative(f"{path}.precio_unitario", price, errors)
    _negative(f"{path}.total_item", item.total_item, errors)
    base = _base(quantity, price) if quantity is not None and price is not None else None
    seen: set[str] = set()
    for t_index, tax in enumerate(item.impuestos or ()):
        if tax is not None:
            _check_tax(f"{path}.impuestos[{t_index}]", tax, base, seen, errors)
    taxes = _tax_sum(item)
    if item.total_item is None or base is None or taxes is None:
        return
    if abs(item.total_item - (base + taxes)) > CENT:
        errors.append(
            FieldError(
                f"{path}.total_item",
                "item_total",
                f"total_item {item.total_item} is not cantidad × precio_unitario + taxes "
                f"= {base + taxes}",
            )
        )


def _check_tax(
    path: str, tax: TaxView, base: Decimal | None, seen: set[str], errors: list[FieldError]
) -> None:
    if tax.nombre is not None:
        tribute = tribute_for(tax.nombre)
        if tribute is None:
            errors.append(
                FieldError(f"{path}.nombre", "unknown_tax", f"unknown tax name {tax.nombre!r}")
            )
        elif tribute.code in seen:
            errors.append(
                FieldError(
                    f"{path}.nombre",
                    "duplicate_tax",
                    f"tax {tax.nombre!r} appears twice on the same line (DIAN FAS01b)",
                )
            )
        else:
            seen.add(tribute.code)
    if tax.tasa is not None and not Decimal(0) <= tax.tasa < 1:
        errors.append(
            FieldError(f"{path}.tasa", "rate_fraction", "rate is a fraction from 0 to 1 (0.08)")
        )
    _negative(f"{path}.monto", tax.monto, errors)
    if base is None or tax.tasa is None or tax.monto is None:
        return
    expected = (base * tax.tasa).quantize(CENT, rounding="ROUND_HALF_EVEN")
    if abs(expected - tax.monto) > TAX_TOLERANCE:
        errors.append(
            FieldError(
                f"{path}.monto",
                "tax_matches_rate",
                f"tax amount {tax.monto} is not {tax.tasa} × line base {base} = {expected}",
            )
        )


def _items_sums(items: Sequence[LineView | None] | None) -> tuple[Decimal | None, Decimal | None]:
    """The items' tax amounts and their totals before taxes, each summed; None if unknown."""
    if items is None:
        return None, None
    taxes: list[Decimal | None] = []
    bases: list[Decimal | None] = []
    for item in items:
        tax = _tax_sum(item) if item is not None else None
        total = item.total_item if item is not None else None
        taxes.append(tax)
        bases.append(total - tax if total is not None and tax is not None else None)
    return _known_sum(taxes), _known_sum(bases)


def _check_totals(order: OrderView, errors: list[FieldError]) -> None:
    item_taxes, bases = _items_sums(order.items)
    declared = order.impuestos_totales
    if declared is not None and item_taxes is not None and declared != item_taxes:
        errors.append(
            FieldError(
                "impuestos_totales",
                "taxes_sum",
                f"impuestos_totales {declared} is not the sum of the items' tax amounts "
                f"{item_taxes}",
            )
        )
    if order.subtotal is not None and bases is not None and order.subtotal != bases:
        errors.append(
            FieldError(
                "subtotal",
                "subtotal_sum",
                f"subtotal {order.subtotal} is not the sum of the items before taxes {bases}",
            )
        )
    expected = _known_sum((order.subtotal, order.impuestos_totales, order.propina_voluntaria))
    total = order.total_factura
    if total is not None and expected is not None and total != expected:
        errors.append(
            FieldError(
                "total_factura",
                "invoice_total",
                f"total_factura {total} is not subtotal + impuestos_totales + "
                f"propina_voluntaria = {expected}",
            )
        )


def _check_payable_rounding(order: OrderView, errors: list[FieldError]) -> None:
    """A document's PayableAmount is `total_factura`; what the lines (quantity × unit price),
    their taxes and the tip leave between them is its PayableRoundingAmount. Each line may
    differ by a cent from quantity × unit price + taxes (`_check_item`), and many lines may
    add those cents up to more than a document may round. Lines off by more than a cent, and
    totals that do not add up, are named by their own rules; a line not known whole is
    skipped."""
    difference = Decimal(0)
    for item in order.items or ():
        if item is None or item.cantidad is None or item.precio_unitario is None:
            continue
        taxes = _tax_sum(item)
        if item.total_item is None or taxes is None:
            continue
        gap = item.total_item - _base(item.cantidad, item.precio_unitario) - taxes
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


def _check_payments(
    payments: Sequence[PaymentView | None] | None,
    total: Decimal | None,
    errors: list[FieldError],
) -> None:
    if payments is None:
        return
    for index, payment in enumerate(payments):
        if payment is None:
            continue
        path = f"metodos_pago[{index}]"
        if payment.tipo is not None and payment_means_for(payment.tipo) is None:
            errors.append(
                FieldError(
                    f"{path}.tipo",
                    "unknown_payment_method",
                    f"unknown payment method {payment.tipo!r}",
                )
            )
        _negative(f"{path}.monto", payment.monto, errors)
    paid = _known_sum(p.monto if p is not None else None for p in payments)
    if paid is not None and total is not None and paid != total:
        errors.append(
            FieldError(
                "metodos_pago",
                "payments_total",
                f"payments add up to {paid}, the invoice total is {total}",
            )
        )


def _check_buyer(buyer: BuyerView, errors: list[FieldError]) -> None:
    nit, kind = buyer.numero_documento, buyer.tipo_documento
    if nit is None or kind is None or nit == CONSUMIDOR_FINAL_ID or kind != "31":
        return
    if not is_nit_number(nit):
        errors.append(
            FieldError(
                "adquirente.numero_documento",
                "nit_digits",
                "a NIT holds 1 to 15 digits 0-9, without DV",
            )
        )
    elif buyer.dv is not None and nit_check_digit(nit) != buyer.dv:
        errors.append(
            FieldError("adquirente.dv", "nit_check_digit", "DV does not match the NIT (DIAN FAK24)")
        )
