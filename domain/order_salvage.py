"""What can still be read of a payload the order model refused.

`salvage(data, error_locations, whole)` takes the payload and the locations of its structural
errors (pydantic's `loc`s) and returns a `PartialOrder`. A line, tax, payment or buyer with no
error under it is read whole by the order model's own classes (`whole`); in one with errors,
each field with no error at or under its location is read exactly as the model reads it (same
`Decimal` types, same stripping, same defaults), and every other value is `None`. The
business rules then run on it, so a payload with a missing `total_factura` still hears about
its negative `items[0].cantidad`.

Only refused payloads come here: the cost of a valid order does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import StringConstraints, TypeAdapter, ValidationError

from domain.amounts import NO_TIP, Money, Quantity, Rate
from domain.catalog import CONSUMIDOR_FINAL_ID, DEFAULT_IDENTIFICATION_TYPE
from domain.order_views import (
    BuyerView,
    LineView,
    PartialBuyer,
    PartialLine,
    PartialOrder,
    PartialPayment,
    PartialTax,
    PaymentView,
    TaxView,
)

Loc = tuple[int | str, ...]
T = TypeVar("T")

_MONEY: TypeAdapter[Decimal] = TypeAdapter(Money)
_QUANTITY: TypeAdapter[Decimal] = TypeAdapter(Quantity)
_RATE: TypeAdapter[Decimal] = TypeAdapter(Rate)
_TEXT: TypeAdapter[str] = TypeAdapter(Annotated[str, StringConstraints(strip_whitespace=True)])
_OPTIONAL_TEXT: TypeAdapter[str | None] = TypeAdapter(
    Annotated[str, StringConstraints(strip_whitespace=True)] | None
)


@dataclass(frozen=True)
class WholeReaders:
    """The order model's validators for parts with no error (e.g. `Item.model_validate`);
    a part without one is read field by field."""

    line: Callable[[Any], LineView] | None = None
    tax: Callable[[Any], TaxView] | None = None
    payment: Callable[[Any], PaymentView] | None = None
    buyer: Callable[[Any], BuyerView] | None = None


class _Reader:
    def __init__(self, error_locations: Iterable[Loc], whole: WholeReaders) -> None:
        self.whole = whole
        self.exact: set[Loc] = set()
        self.under: set[Loc] = set()  # every location with an error at or below it
        for loc in error_locations:
            self.exact.add(loc)
            self.under.update(loc[:n] for n in range(len(loc) + 1))

    def value(
        self, parent: dict[Any, Any], loc: Loc, adapter: TypeAdapter[T], default: T | None = None
    ) -> T | None:
        if loc in self.under:
            return None
        if loc[-1] not in parent:
            return default
        try:
            return adapter.validate_python(parent[loc[-1]])
        except ValidationError:  # cannot happen for a value the model accepted; stay safe
            return None

    def records(
        self,
        parent: dict[Any, Any],
        loc: Loc,
        whole: Callable[[Any], T] | None,
        partial: Callable[[dict[Any, Any], Loc], T],
        default: tuple[T | None, ...] | None = None,
    ) -> tuple[T | None, ...] | None:
        """A list of objects: None when the list itself is refused (missing, too long, not a
        list); inside it, None for each element that is not an object."""
        if loc in self.exact:
            return None
        if loc[-1] not in parent:
            return default
        raw = parent[loc[-1]]
        if not isinstance(raw, list | tuple):
            return None
        return tuple(
            self._element(element, (*loc, n), whole, partial) for n, element in enumerate(raw)
        )

    def _element(
        self,
        raw: Any,
        loc: Loc,
        whole: Callable[[Any], T] | None,
        partial: Callable[[dict[Any, Any], Loc], T],
    ) -> T | None:
        if not isinstance(raw, dict):
            return None
        if whole is not None and loc not in self.under:
            try:
                return whole(raw)
            except ValidationError:  # cannot happen for a part the model accepted; stay safe
                return None
        return partial(raw, loc)

    def tax(self, raw: dict[Any, Any], loc: Loc) -> TaxView:
        return PartialTax(
            nombre=self.value(raw, (*loc, "nombre"), _TEXT),
            tasa=self.value(raw, (*loc, "tasa"), _RATE),
            monto=self.value(raw, (*loc, "monto"), _MONEY),
        )

    def line(self, raw: dict[Any, Any], loc: Loc) -> LineView:
        return PartialLine(
            cantidad=self.value(raw, (*loc, "cantidad"), _QUANTITY),
            precio_unitario=self.value(raw, (*loc, "precio_unitario"), _MONEY),
            impuestos=self.records(raw, (*loc, "impuestos"), self.whole.tax, self.tax, default=()),
            total_item=self.value(raw, (*loc, "total_item"), _MONEY),
        )

    def payment(self, raw: dict[Any, Any], loc: Loc) -> PaymentView:
        return PartialPayment(
            tipo=self.value(raw, (*loc, "tipo"), _TEXT),
            monto=self.value(raw, (*loc, "monto"), _MONEY),
        )

    def buyer(self, data: dict[Any, Any]) -> BuyerView | None:
        loc: Loc = ("adquirente",)
        if loc in self.exact:
            return None
        raw = data.get("adquirente", {})
        if not isinstance(raw, dict):
            return None
        return self._element(raw, loc, self.whole.buyer, self._partial_buyer)

    def _partial_buyer(self, raw: dict[Any, Any], loc: Loc) -> BuyerView:
        return PartialBuyer(
            tipo_documento=self.value(
                raw, (*loc, "tipo_documento"), _TEXT, DEFAULT_IDENTIFICATION_TYPE
            ),
            numero_documento=self.value(
                raw, (*loc, "numero_documento"), _TEXT, CONSUMIDOR_FINAL_ID
            ),
            dv=self.value(raw, (*loc, "dv"), _OPTIONAL_TEXT),
        )


def salvage(
    data: dict[Any, Any], error_locations: Iterable[Loc], whole: WholeReaders = WholeReaders()
) -> PartialOrder:
    """Every value of `data` that has no structural error, read as the order model reads it."""
    read = _Reader(error_locations, whole)
    return PartialOrder(
        subtotal=read.value(data, ("subtotal",), _MONEY),
        propina_voluntaria=read.value(data, ("propina_voluntaria",), _MONEY, NO_TIP),
        impuestos_totales=read.value(data, ("impuestos_totales",), _MONEY),
        total_factura=read.value(data, ("total_factura",), _MONEY),
        items=read.records(data, ("items",), whole.line, read.line),
        metodos_pago=read.records(data, ("metodos_pago",), whole.payment, read.payment),
        adquirente=read.buyer(data),
    )
