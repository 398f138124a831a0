"""The POS order as the seed's REST API received it, and the rules a tax authority applies.

`parse_order(data)` turns untrusted JSON-like data into an `Order` or raises `InvalidOrder`
listing every broken rule at once, each with its field path. Money is `Decimal`, never float.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from domain.amounts import NO_TIP, Money, PositiveMoney, Quantity, Rate
from domain.catalog import (
    CONSUMIDOR_FINAL_ID,
    CONSUMIDOR_FINAL_NAME,
    DEFAULT_IDENTIFICATION_TYPE,
    IDENTIFICATION_TYPES,
    PAYMENT_MEANS,
    TRIBUTES,
)
from domain.errors import FieldError, InvalidOrder
from domain.order_salvage import WholeReaders, salvage
from domain.order_schema import CLEAN_TEXT, NON_BLANK_TEXT, CatalogSpelling, JsonPattern
from domain.rules import check_order

__all__ = [
    "MAX_ITEMS",
    "MAX_ORDER_ID",
    "MAX_PAYMENTS",
    "MAX_TAXES_PER_ITEM",
    "MAX_TEXT",
    "ORDER_ID",
    "Adquirente",
    "Impuesto",
    "Item",
    "MetodoPago",
    "Money",
    "Order",
    "Quantity",
    "Rate",
    "parse_order",
]

# Bounds that keep one order small enough to validate, sign and store in bounded memory.
MAX_ITEMS = 500
MAX_TAXES_PER_ITEM = 5
MAX_PAYMENTS = 20
MAX_TEXT = 300
MAX_ORDER_ID = 64

ORDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
REGISTER_CODE = r"^[A-Za-z0-9._-]{1,20}$"
# A mailbox the buyer's copy can be sent to: a dot-atom local part, a domain of DNS labels
# with a top-level domain of letters (RFC 5321's common form; quoted local parts and address
# literals are refused rather than guessed at).
_LOCAL_PART = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
MAILBOX = rf"^{_LOCAL_PART}@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$"
_MAILBOX = re.compile(MAILBOX)


def is_mailbox(text: str) -> bool:
    """Whether `text` is an address the buyer's copy can be e-mailed to."""
    return _MAILBOX.fullmatch(text) is not None


OPTIONAL_FIELDS = ("documento", "caja", "cajero")
_FORBIDDEN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

# Text fields as the JSON Schema describes them (validation is `_Strict._printable`'s).
Text = Annotated[str, JsonPattern(CLEAN_TEXT)]
Words = Annotated[str, JsonPattern(NON_BLANK_TEXT)]
Mailbox = Annotated[str, JsonPattern(MAILBOX)]
TaxName = Annotated[str, CatalogSpelling(tuple(TRIBUTES))]
PaymentName = Annotated[str, CatalogSpelling(tuple(PAYMENT_MEANS))]
_IDENTIFICATION_TYPES: list[JsonValue] = [*sorted(IDENTIFICATION_TYPES)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        # XML 1.0 cannot carry control characters or lone surrogates, and PostgreSQL JSONB
        # refuses NUL: such text could never become a document, so it is refused here.
        if isinstance(value, str) and _FORBIDDEN_TEXT.search(value):
            raise ValueError("text holds control characters or invalid Unicode")
        return value


class Impuesto(_Strict):
    nombre: TaxName = Field(min_length=1, max_length=40)
    tasa: Rate
    monto: Money


class Item(_Strict):
    id_producto: Text | None = Field(default=None, max_length=60)
    descripcion: Words = Field(min_length=1, max_length=MAX_TEXT)
    cantidad: Quantity
    precio_unitario: Money
    impuestos: list[Impuesto] = Field(default_factory=list, max_length=MAX_TAXES_PER_ITEM)
    total_item: Money


class MetodoPago(_Strict):
    tipo: PaymentName = Field(min_length=1, max_length=60)
    monto: Money


class Adquirente(_Strict):
    """The buyer. Without one, the sale is to the consumidor final (DIAN 222222222222)."""

    tipo_documento: str = Field(
        default=DEFAULT_IDENTIFICATION_TYPE,
        json_schema_extra={"enum": _IDENTIFICATION_TYPES},
    )
    numero_documento: Annotated[str, JsonPattern(r"^-*[0-9A-Za-z][0-9A-Za-z-]*$")] = Field(
        default=CONSUMIDOR_FINAL_ID, min_length=1, max_length=20
    )
    dv: Annotated[str, JsonPattern("^[0-9]$")] | None = Field(default=None, max_length=1)
    nombre: Words = Field(default=CONSUMIDOR_FINAL_NAME, min_length=1, max_length=MAX_TEXT)
    email: Mailbox | None = Field(default=None, max_length=200)
    direccion: Text | None = Field(default=None, max_length=MAX_TEXT)
    telefono: Text | None = Field(default=None, max_length=40)

    @field_validator("tipo_documento")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in IDENTIFICATION_TYPES:
            raise ValueError(f"unknown identification type {value!r}")
        return value

    @field_validator("email")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value is not None and not is_mailbox(value):
            raise ValueError("not an e-mail address (name@domain.tld, no spaces, one @)")
        return value

    @field_validator("numero_documento")
    @classmethod
    def _digits_or_letters(cls, value: str) -> str:
        if not value.replace("-", "").isalnum():
            raise ValueError("identification number may only hold letters and digits")
        return value

    @property
    def is_consumidor_final(self) -> bool:
        return self.numero_documento == CONSUMIDOR_FINAL_ID


_CROSS_FIELD_RULES = (
    "One POS order, as `POST /api/v1/pedidos/consumo-local/` received it. Besides what each "
    "value's schema says, an order must add up: `total_factura` = `subtotal` + "
    "`impuestos_totales` + `propina_voluntaria`; `impuestos_totales` = the sum of every tax "
    "`monto`; `subtotal` = the sum of the lines before taxes; each line's `total_item` = "
    "`cantidad` × `precio_unitario` + its taxes; each tax `monto` = `tasa` × the line base "
    "(±1.00); the payments add up to `total_factura`; a tax appears once per line; a NIT buyer "
    "(`tipo_documento` 31) has a NIT of digits only whose `dv`, when given, is its check digit. "
    "Text may not hold unpaired surrogates (`\\ud800` to `\\udfff` escapes), which a "
    "pattern cannot say in every JSON Schema dialect."
)


class Order(_Strict):
    """One POS order, as `POST /api/v1/pedidos/consumo-local/` received it."""

    model_config = ConfigDict(json_schema_extra={"description": _CROSS_FIELD_RULES})

    id_pedido_origen: str = Field(
        min_length=1, max_length=MAX_ORDER_ID, pattern=rf"^{ORDER_ID.pattern}$"
    )
    adquirente: Adquirente = Field(default_factory=Adquirente)
    items: list[Item] = Field(min_length=1, max_length=MAX_ITEMS)
    subtotal: Money
    propina_voluntaria: Money = NO_TIP
    impuestos_totales: Money
    total_factura: PositiveMoney
    metodos_pago: list[MetodoPago] = Field(min_length=1, max_length=MAX_PAYMENTS)
    documento: Literal["pos", "factura"] | None = None
    caja: str | None = Field(default=None, pattern=REGISTER_CODE)
    cajero: Words | None = Field(default=None, min_length=1, max_length=60)

    def canonical_json(self) -> str:
        """The order as JSON with sorted keys and amounts as fixed strings: equal orders,
        equal text, whatever spelling (`10000` or `10000.00`) the POS used."""
        return _canonical(self.to_payload())

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = _normalize(self.model_dump(mode="python"))
        for name in OPTIONAL_FIELDS:
            if payload.get(name) is None:
                payload.pop(name, None)
        return payload

    def fingerprint(self) -> str:
        return fingerprint_of(self.to_payload())


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint_of(payload: dict[str, Any]) -> str:
    """`Order.fingerprint()` of the order whose `to_payload()` is `payload` (for a caller that
    holds the payload already)."""
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


_WHOLE = WholeReaders(
    line=Item.model_validate,
    tax=Impuesto.model_validate,
    payment=MetodoPago.model_validate,
    buyer=Adquirente.model_validate,
)


def _normalize(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(order)"


def parse_order(data: Any) -> Order:
    """Validate untrusted data; raise `InvalidOrder` with every broken rule.

    Structure first (the model). When the structure is refused, the business rules still run
    on every part that could be read (`domain.order_salvage`), so the answer lists both.
    """
    if not isinstance(data, dict):
        raise InvalidOrder([FieldError("(order)", "type", "an order must be a JSON object")])
    try:
        order = Order.model_validate(data)
    except ValidationError as exc:
        details = exc.errors(include_url=False)
        errors = [FieldError(_path(tuple(e["loc"])), e["type"], e["msg"]) for e in details]
        readable = salvage(data, (tuple(e["loc"]) for e in details), _WHOLE)
        raise InvalidOrder(errors + check_order(readable)) from None
    problems = check_order(order)
    if problems:
        raise InvalidOrder(problems)
    return order
