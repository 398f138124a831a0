"""Notes: how an issued document is corrected — voided, partly returned, discounted, or
its price raised — without ever being edited.

A note request (`parse_note`) names what to correct; `note_figures` works out, from the
order the document was issued for and what earlier notes already credited (`Remaining`),
exactly what the note carries: per line the quantity, base and each tax at the document's
rate, and for a void the tip. A credit never exceeds what remains of the document: a return
takes at most the quantity left on each line, a void takes everything left (once), a
discount or price adjustment at most the base left. When a line is returned to its last
unit, the note takes what is left of its base and taxes, so rounding never leaves a cent
behind nor credits one too many.

    sale document   credit note                      debit note
    invoice (01)    91  (void 2, return 1,           92  (price raised: 3)
                         discount 3, price 4)
    POS (20)        94  (same concepts)              93
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.catalog import Tribute, tribute_for
from domain.documents import DocumentKind
from domain.errors import FieldError, InvalidOrder
from domain.order import MAX_ITEMS, MAX_TEXT, ORDER_ID, Money, Order, Quantity
from domain.rules import line_base

CENT = Decimal("0.01")
ZERO = Decimal(0)
_NONE = Tribute("", "")


class NoteType(enum.StrEnum):
    VOID = "anulacion"
    RETURN = "devolucion"
    DISCOUNT = "descuento"
    PRICE_ADJUSTMENT = "ajuste_precio"
    INCREASE = "aumento"

    @property
    def is_debit(self) -> bool:
        return self is NoteType.INCREASE


# DIAN's concept codes (DiscrepancyResponse/ResponseCode) and their names.
CREDIT_CONCEPTS = {
    NoteType.RETURN: (
        "1",
        "Devolución parcial de los bienes y/o no aceptación parcial del servicio",
    ),
    NoteType.VOID: ("2", "Anulación de factura electrónica"),
    NoteType.DISCOUNT: ("3", "Rebaja o descuento parcial o total"),
    NoteType.PRICE_ADJUSTMENT: ("4", "Ajuste de precio"),
}
DEBIT_CONCEPTS = {NoteType.INCREASE: ("3", "Cambio del valor")}
NOTE_KINDS = {
    (DocumentKind.INVOICE, False): DocumentKind.CREDIT_NOTE,
    (DocumentKind.INVOICE, True): DocumentKind.DEBIT_NOTE,
    (DocumentKind.POS, False): DocumentKind.POS_CREDIT_NOTE,
    (DocumentKind.POS, True): DocumentKind.POS_DEBIT_NOTE,
}


@dataclass(frozen=True)
class ReferencedDocument:
    """The document a note corrects, as the note's BillingReference names it."""

    kind: DocumentKind
    number: str
    key: str  # its CUFE (invoice) or CUDE (POS document)
    issued_at: datetime


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True, extra="forbid")


class NoteLineRequest(_Strict):
    linea: Annotated[int, Field(ge=1, le=MAX_ITEMS)]
    cantidad: Quantity


class NoteRequest(_Strict):
    """What the POS asks: `id_nota` is its own id for the note (idempotency)."""

    id_nota: str = Field(min_length=1, max_length=64, pattern=rf"^{ORDER_ID.pattern}$")
    tipo: Literal["anulacion", "devolucion", "descuento", "ajuste_precio", "aumento"]
    lineas: list[NoteLineRequest] = Field(default_factory=list, max_length=MAX_ITEMS)
    monto: Money | None = None
    motivo: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)

    @property
    def type(self) -> NoteType:
        return NoteType(self.tipo)

    def to_payload(self) -> dict[str, Any]:
        """The request as stored and fingerprinted: amounts as plain decimal strings, so the
        same note spelled otherwise (`1`, `1.0`, `"1.000"`) is the same note."""
        data: dict[str, Any] = json.loads(
            json.dumps(
                self.model_dump(mode="python", exclude_none=True),
                default=lambda amount: format(amount.normalize(), "f"),
            )
        )
        return data


def parse_note(data: Any) -> NoteRequest:
    """Validate untrusted data; raise `InvalidOrder` with every broken rule."""
    if not isinstance(data, dict):
        raise InvalidOrder([FieldError("(note)", "type", "a note must be a JSON object")])
    try:
        request = NoteRequest.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(_path(tuple(e["loc"])), e["type"], e["msg"])
            for e in exc.errors(include_url=False)
        ]
        raise InvalidOrder(errors) from None
    problems = _shape(request)
    if problems:
        raise InvalidOrder(problems)
    return request


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(note)"


def _shape(request: NoteRequest) -> list[FieldError]:
    errors: list[FieldError] = []
    kind = request.type
    if kind is NoteType.RETURN and not request.lineas:
        errors.append(FieldError("lineas", "required", "a return names the lines it returns"))
    if kind is not NoteType.RETURN and request.lineas:
        errors.append(FieldError("lineas", "not_allowed", f"a {kind} note names no lines"))
    needs_amount = kind in (NoteType.DISCOUNT, NoteType.PRICE_ADJUSTMENT, NoteType.INCREASE)
    if needs_amount and (request.monto is None or request.monto <= 0):
        errors.append(FieldError("monto", "positive", f"a {kind} note needs an amount above 0"))
    if not needs_amount and request.monto is not None:
        errors.append(FieldError("monto", "not_allowed", f"a {kind} note carries no amount"))
    if needs_amount and not request.motivo:
        errors.append(FieldError("motivo", "required", f"a {kind} note says why (motivo)"))
    for index, line in enumerate(request.lineas):
        if line.cantidad <= 0:
            errors.append(
                FieldError(f"lineas[{index}].cantidad", "positive", "quantity must be above zero")
            )
    seen = [line.linea for line in request.lineas]
    if len(seen) != len(set(seen)):
        errors.append(FieldError("lineas", "duplicate_line", "a line appears twice"))
    return errors


# ------------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class TaxPart:
    """One tax of a line, at the rate the document charged it."""

    tribute: str  # DIAN tribute code: 01 IVA, 04 INC, ...
    name: str
    rate: Decimal  # a fraction, as the order gave it (0.08)
    amount: Decimal


@dataclass(frozen=True)
class LineLeft:
    """What remains of one document line after every earlier note."""

    quantity: Decimal
    base: Decimal
    taxes: tuple[TaxPart, ...]


@dataclass(frozen=True)
class Remaining:
    """What remains creditable of a document: per line (1-based) and the tip."""

    lines: dict[int, LineLeft]
    tip: Decimal

    @property
    def total(self) -> Decimal:
        return self.tip + sum(
            (line.base + sum((t.amount for t in line.taxes), ZERO) for line in self.lines.values()),
            ZERO,
        )

    @property
    def is_empty(self) -> bool:
        return self.total <= 0 and all(line.quantity <= 0 for line in self.lines.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": str(_cents(self.total)),
            "tip": str(_cents(self.tip)),
            "lines": [
                {
                    "linea": number,
                    "cantidad": format(left.quantity.normalize(), "f"),
                    "base": str(_cents(left.base)),
                    "impuestos": str(_cents(sum((t.amount for t in left.taxes), ZERO))),
                }
                for number, left in sorted(self.lines.items())
            ],
        }


@dataclass(frozen=True)
class NoteLine:
    """One line of a note: the document line it corrects and what it credits or debits."""

    number: int  # the document line (1-based)
    description: str
    product_id: str | None
    unit_price: Decimal
    quantity: Decimal  # returned quantity (0 for pure amount corrections)
    base: Decimal
    taxes: tuple[TaxPart, ...]

    @property
    def tax_total(self) -> Decimal:
        return sum((t.amount for t in self.taxes), ZERO)


@dataclass(frozen=True)
class NoteFigures:
    """Everything a note carries, before formatting."""

    type: NoteType
    lines: tuple[NoteLine, ...]
    tip: Decimal = ZERO  # a void credits the tip left
    reason: str = ""

    @property
    def base(self) -> Decimal:
        return sum((line.base for line in self.lines), ZERO)

    @property
    def taxes(self) -> Decimal:
        return sum((line.tax_total for line in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        return self.base + self.taxes + self.tip

    def tax_amounts(self) -> dict[str, Decimal]:
        """Per tribute code, as the CUDE carries them."""
        out: dict[str, Decimal] = {}
        for line in self.lines:
            for tax in line.taxes:
                out[tax.tribute] = out.get(tax.tribute, ZERO) + tax.amount
        return out

    def concept(self) -> tuple[str, str]:
        table = DEBIT_CONCEPTS if self.type.is_debit else CREDIT_CONCEPTS
        return table[self.type]

    def as_dict(self) -> dict[str, Any]:
        return {
            "tipo": self.type.value,
            "motivo": self.reason,
            "propina": str(self.tip),
            "total": str(self.total),
            "lineas": [
                {
                    "linea": line.number,
                    "cantidad": format(line.quantity.normalize(), "f"),
                    "base": str(line.base),
                    "impuestos": [
                        {"tributo": t.tribute, "tasa": str(t.rate), "monto": str(t.amount)}
                        for t in line.taxes
                    ],
                }
                for line in self.lines
            ],
        }


def note_kind(document: DocumentKind, note: NoteType) -> DocumentKind:
    """The kind of note that corrects `document` (91/92 for invoices, 94/93 for POS)."""
    kind = NOTE_KINDS.get((document, note.is_debit))
    if kind is None:
        raise ValueError(f"a document of kind {document} is not corrected by notes")
    return kind


def _taxes_of(order: Order, number: int) -> tuple[TaxPart, ...]:
    item = order.items[number - 1]
    parts = []
    for tax in item.impuestos:
        tribute = tribute_for(tax.nombre)
        code = tribute.code if tribute else tax.nombre
        parts.append(TaxPart(code, tax.nombre, tax.tasa, tax.monto))
    return tuple(parts)


def document_lines(order: Order) -> Remaining:
    """What a document credits in full: every line as issued, and the tip."""
    lines = {
        number: LineLeft(item.cantidad, line_base(item), _taxes_of(order, number))
        for number, item in enumerate(order.items, start=1)
    }
    return Remaining(lines, order.propina_voluntaria)


def counts(figures: NoteFigures, succeeded: bool, failed: bool) -> bool:
    """Whether a note counts against what remains: a credit unless it failed (it holds its
    credit while it is pending), a debit once it succeeded (nobody may spend an increase the
    authority has not accepted)."""
    return succeeded if figures.type.is_debit else not failed


def remaining_after(order: Order, notes: list[NoteFigures]) -> Remaining:
    """What remains creditable after `notes` (credits take away, price increases add)."""
    left = document_lines(order)
    lines = dict(left.lines)
    tip = left.tip
    for note in notes:
        sign = Decimal(1) if note.type.is_debit else Decimal(-1)
        tip += sign * note.tip
        for line in note.lines:
            current = lines[line.number]
            taxes = tuple(
                replace(t, amount=t.amount + sign * _amount_of(line.taxes, t.tribute))
                for t in current.taxes
            )
            quantity = current.quantity - (line.quantity if not note.type.is_debit else ZERO)
            lines[line.number] = LineLeft(quantity, current.base + sign * line.base, taxes)
    return Remaining(lines, tip)


def _amount_of(parts: tuple[TaxPart, ...], tribute: str) -> Decimal:
    return sum((t.amount for t in parts if t.tribute == tribute), ZERO)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def note_figures(request: NoteRequest, order: Order, remaining: Remaining) -> NoteFigures:
    """The note `request` asks for against the document of `order`; `InvalidOrder` naming the
    field and the rule when it asks for more than remains, or for lines that do not exist."""
    kind = request.type
    reason = request.motivo or _default_reason(kind)
    if kind is NoteType.VOID:
        return _void(order, remaining, reason)
    if kind is NoteType.RETURN:
        return _return(request, order, remaining, reason)
    assert request.monto is not None
    return _amount(kind, request.monto, order, remaining, reason)


def _default_reason(kind: NoteType) -> str:
    return {
        NoteType.VOID: "Anulación de la venta",
        NoteType.RETURN: "Devolución de productos",
    }.get(kind, "")


def _line(order: Order, number: int, quantity: Decimal, base: Decimal, taxes: Any) -> NoteLine:
    item = order.items[number - 1]
    return NoteLine(
        number, item.descripcion, item.id_producto, item.precio_unitario, quantity, base, taxes
    )


def _void(order: Order, remaining: Remaining, reason: str) -> NoteFigures:
    if remaining.is_empty:
        raise InvalidOrder(
            [FieldError("tipo", "nothing_left", "the document has nothing left to void")]
        )
    lines = tuple(
        _line(order, number, left.quantity, left.base, left.taxes)
        for number, left in sorted(remaining.lines.items())
        if left.quantity > 0 or left.base > 0
    )
    return NoteFigures(NoteType.VOID, lines, remaining.tip, reason)


def _return(request: NoteRequest, order: Order, remaining: Remaining, reason: str) -> NoteFigures:
    errors: list[FieldError] = []
    lines: list[NoteLine] = []
    for index, asked in enumerate(request.lineas):
        path = f"lineas[{index}]"
        left = remaining.lines.get(asked.linea)
        if left is None:
            errors.append(
                FieldError(
                    f"{path}.linea",
                    "unknown_line",
                    f"the document has lines 1 to {len(order.items)}, not {asked.linea}",
                )
            )
            continue
        if asked.cantidad > left.quantity:
            errors.append(
                FieldError(
                    f"{path}.cantidad",
                    "beyond_remaining",
                    f"line {asked.linea} has {format(left.quantity.normalize(), 'f')} left "
                    f"to return, not {format(asked.cantidad.normalize(), 'f')}",
                )
            )
            continue
        if asked.cantidad == left.quantity:  # the last units take what is left, to the cent
            lines.append(_line(order, asked.linea, asked.cantidad, left.base, left.taxes))
            continue
        item = order.items[asked.linea - 1]
        base = min(_cents(asked.cantidad * item.precio_unitario), left.base)
        taxes = tuple(replace(t, amount=min(_cents(base * t.rate), t.amount)) for t in left.taxes)
        lines.append(_line(order, asked.linea, asked.cantidad, base, taxes))
    if errors:
        raise InvalidOrder(errors)
    return NoteFigures(NoteType.RETURN, tuple(lines), ZERO, reason)


def _amount(
    kind: NoteType, amount: Decimal, order: Order, remaining: Remaining, reason: str
) -> NoteFigures:
    """A discount, price adjustment or price increase of `amount` before taxes, shared among
    the lines in proportion to their base left, each taxed at its own rates."""
    open_lines = [(n, left) for n, left in sorted(remaining.lines.items()) if left.base > 0]
    base_left = sum((left.base for _, left in open_lines), ZERO)
    if base_left <= 0:
        raise InvalidOrder(
            [FieldError("monto", "nothing_left", "the document has nothing left to correct")]
        )
    if not kind.is_debit and amount > base_left:
        raise InvalidOrder(
            [
                FieldError(
                    "monto",
                    "beyond_remaining",
                    f"the document has {base_left} left before taxes, not {amount}",
                )
            ]
        )
    lines: list[NoteLine] = []
    given = ZERO
    for position, (number, left) in enumerate(open_lines):
        last = position == len(open_lines) - 1
        share = amount - given if last else _cents(amount * left.base / base_left)
        given += share
        if share <= 0:
            continue
        taxes = tuple(replace(t, amount=_cents(share * t.rate)) for t in left.taxes)
        if not kind.is_debit:
            taxes = tuple(
                replace(t, amount=min(t.amount, _amount_of(left.taxes, t.tribute))) for t in taxes
            )
        lines.append(_line(order, number, ZERO, share, taxes))
    return NoteFigures(kind, tuple(lines), ZERO, reason)


@dataclass(frozen=True)
class NoteLedger:
    """Every earlier note of a document, as stored (`as_dict` of each)."""

    notes: list[dict[str, Any]] = field(default_factory=list)

    def figures(self) -> list[NoteFigures]:
        return [figures_from_dict(n) for n in self.notes]


def figures_from_dict(data: dict[str, Any], order: Order | None = None) -> NoteFigures:
    """A stored note's figures back (the inverse of `NoteFigures.as_dict`). The lines' texts,
    prices and tax names come from `order` (the order the corrected document was issued
    for): the stored figures keep only the amounts."""

    def item(number: int) -> Any:
        return order.items[number - 1] if order is not None else None

    def tax_name(number: int, tribute: str) -> str:
        found = item(number)
        names = [t.nombre for t in found.impuestos] if found is not None else []
        return next((n for n in names if (tribute_for(n) or _NONE).code == tribute), tribute)

    lines = []
    for line in data["lineas"]:
        number = int(line["linea"])
        source = item(number)
        lines.append(
            NoteLine(
                number=number,
                description=source.descripcion if source is not None else "",
                product_id=source.id_producto if source is not None else None,
                unit_price=source.precio_unitario if source is not None else ZERO,
                quantity=Decimal(line["cantidad"]),
                base=Decimal(line["base"]),
                taxes=tuple(
                    TaxPart(
                        t["tributo"],
                        tax_name(number, t["tributo"]),
                        Decimal(t["tasa"]),
                        Decimal(t["monto"]),
                    )
                    for t in line["impuestos"]
                ),
            )
        )
    return NoteFigures(
        NoteType(data["tipo"]), tuple(lines), Decimal(data["propina"]), data["motivo"]
    )
