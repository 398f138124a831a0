"""How an order writes money, quantities and tax rates: exact `Decimal`s, bounded.

Shared by the order model (`domain.order`), the business rules and the reading of refused
payloads (`domain.order_salvage`), so the three agree on what a valid amount is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, WithJsonSchema

from domain.order_schema import (
    MONEY_SCHEMA,
    POSITIVE_MONEY_SCHEMA,
    QUANTITY_SCHEMA,
    RATE_SCHEMA,
)

_MONEY = Field(allow_inf_nan=False, max_digits=17, decimal_places=2)
Money = Annotated[Decimal, _MONEY, WithJsonSchema(MONEY_SCHEMA)]
# validated as Money; its JSON Schema also says what the rules add: above zero
PositiveMoney = Annotated[Decimal, _MONEY, WithJsonSchema(POSITIVE_MONEY_SCHEMA)]
Quantity = Annotated[
    Decimal,
    Field(allow_inf_nan=False, max_digits=15, decimal_places=6),
    WithJsonSchema(QUANTITY_SCHEMA),
]
Rate = Annotated[
    Decimal,
    Field(allow_inf_nan=False, max_digits=7, decimal_places=6),
    WithJsonSchema(RATE_SCHEMA),
]

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000000")  # one trillion pesos: far above any till
NO_TIP = Decimal("0.00")
