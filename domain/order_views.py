"""What the business rules read of an order, whether or not the order as a whole is valid.

A valid `Order` satisfies these views as it is. For a payload the order model refuses,
`domain.order_salvage` fills the `Partial*` records with every value that could still be read;
`None` there means "not known" (missing, or refused itself), and each rule runs only when all
of its inputs are known. So one answer can report a missing `total_factura` together with a
negative `items[0].cantidad`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class TaxView(Protocol):
    @property
    def nombre(self) -> str | None: ...
    @property
    def tasa(self) -> Decimal | None: ...
    @property
    def monto(self) -> Decimal | None: ...


class LineView(Protocol):
    @property
    def cantidad(self) -> Decimal | None: ...
    @property
    def precio_unitario(self) -> Decimal | None: ...
    @property
    def impuestos(self) -> Sequence[TaxView | None] | None: ...
    @property
    def total_item(self) -> Decimal | None: ...


class PaymentView(Protocol):
    @property
    def tipo(self) -> str | None: ...
    @property
    def monto(self) -> Decimal | None: ...


class BuyerView(Protocol):
    @property
    def tipo_documento(self) -> str | None: ...
    @property
    def numero_documento(self) -> str | None: ...
    @property
    def dv(self) -> str | None: ...


class OrderView(Protocol):
    @property
    def subtotal(self) -> Decimal | None: ...
    @property
    def propina_voluntaria(self) -> Decimal | None: ...
    @property
    def impuestos_totales(self) -> Decimal | None: ...
    @property
    def total_factura(self) -> Decimal | None: ...
    @property
    def items(self) -> Sequence[LineView | None] | None: ...
    @property
    def metodos_pago(self) -> Sequence[PaymentView | None] | None: ...
    @property
    def adquirente(self) -> BuyerView | None: ...


@dataclass(frozen=True, slots=True)
class PartialTax:
    nombre: str | None
    tasa: Decimal | None
    monto: Decimal | None


@dataclass(frozen=True, slots=True)
class PartialLine:
    cantidad: Decimal | None
    precio_unitario: Decimal | None
    impuestos: tuple[TaxView | None, ...] | None
    total_item: Decimal | None


@dataclass(frozen=True, slots=True)
class PartialPayment:
    tipo: str | None
    monto: Decimal | None


@dataclass(frozen=True, slots=True)
class PartialBuyer:
    tipo_documento: str | None
    numero_documento: str | None
    dv: str | None


@dataclass(frozen=True, slots=True)
class PartialOrder:
    subtotal: Decimal | None
    propina_voluntaria: Decimal | None
    impuestos_totales: Decimal | None
    total_factura: Decimal | None
    items: tuple[LineView | None, ...] | None
    metodos_pago: tuple[PaymentView | None, ...] | None
    adquirente: BuyerView | None
