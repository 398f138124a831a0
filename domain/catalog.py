"""Codes the POS speaks and the codes DIAN expects for them.

The POS names taxes and payment methods in words ("INC", "Tarjeta de Crédito"); DIAN and
Factus want their own codes. Every name the POS may use is listed here once, so a name that
is not here is an invalid order, never a guess.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Tribute:
    """A DIAN tribute (`TaxScheme/cbc:ID`)."""

    code: str
    name: str


# Tax names the POS may send, keyed by their normalized spelling. Only taxes charged as a
# percentage of the line are here: per-unit taxes (INC bolsas 22, ICL 32, INPP 33, IBUA 34)
# need a PerUnitAmount the POS payload does not carry, and DIAN would reject them as rates.
TRIBUTES: dict[str, Tribute] = {
    "IVA": Tribute("01", "IVA"),
    "IC": Tribute("02", "IC"),
    "ICA": Tribute("03", "ICA"),
    "INC": Tribute("04", "INC"),
    "ICUI": Tribute("35", "ICUI"),
}

# Payment method words the POS may send -> DIAN PaymentMeansCode.
PAYMENT_MEANS: dict[str, str] = {
    "EFECTIVO": "10",
    "TARJETA DE CREDITO": "48",
    "TARJETA CREDITO": "48",
    "CREDITO": "48",
    "TARJETA DE DEBITO": "49",
    "TARJETA DEBITO": "49",
    "DEBITO": "49",
    "TRANSFERENCIA": "47",
    "TRANSFERENCIA BANCARIA": "47",
    "NEQUI": "47",
    "DAVIPLATA": "47",
    "CONSIGNACION": "42",
    "CHEQUE": "20",
    "BONOS": "71",
    "VALES": "72",
    "OTRO": "ZZZ",
}

# DIAN identification types (schemeName) a buyer may carry.
IDENTIFICATION_TYPES: frozenset[str] = frozenset(
    {"11", "12", "13", "21", "22", "31", "41", "42", "47", "48", "50", "91"}
)

DEFAULT_IDENTIFICATION_TYPE = "13"  # cédula de ciudadanía
CONSUMIDOR_FINAL_ID = "222222222222"
CONSUMIDOR_FINAL_NAME = "Consumidor final"


def normalize_word(value: str) -> str:
    """Upper-case, accents removed, inner blanks and separators folded to one space."""
    decomposed = unicodedata.normalize("NFKD", value)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    for sep in ("_", "-", "."):
        plain = plain.replace(sep, " ")
    return " ".join(plain.upper().split())


def tribute_for(name: str) -> Tribute | None:
    return TRIBUTES.get(normalize_word(name))


def payment_means_for(kind: str) -> str | None:
    return PAYMENT_MEANS.get(normalize_word(kind))
