"""The order's JSON Schema side: what a client may send, written as tightly as the rules that
can be checked one value at a time.

Every value these schemas allow is accepted by the order model and by the business rules that
look at that value alone (non-negative amounts, a total above zero, a quantity above zero, a
rate below one, a known tax or payment name, text a document can carry). The schemas describe
the canonical spellings; the server also tolerates a few others (surrounding blanks, leading
zeros, trailing zeros after the second decimal) without advertising them. Rules that compare
several values (totals, tax = rate × base, NIT check digit) cannot be written in JSON Schema
and are listed in the order's description.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from domain.catalog import normalize_word

# Characters no XML 1.0 document and no PostgreSQL JSONB value can hold. Lone surrogates (which
# JSON can only carry as `\udXXX` escapes) are refused too, but cannot be written in a pattern
# every JSON Schema dialect accepts: they are left to the server.
_FORBIDDEN = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f\\ufffe\\uffff"
# What stripping removes (Unicode White_Space, minus the forbidden ones above).
_BLANK = "\\t\\n\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"

CLEAN_TEXT = f"^[^{_FORBIDDEN}]*$"
NON_BLANK_TEXT = f"^[^{_FORBIDDEN}]*[^{_FORBIDDEN}{_BLANK}][^{_FORBIDDEN}]*$"

_MONEY_TEXT = r"^(?:(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,2})?|1000000000000(?:\.00?)?)$"
_QUANTITY_TEXT = r"^(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,6})?$"
_RATE_TEXT = r"^0(?:\.[0-9]{1,6})?$"


def _zeros(decimals: int) -> list[str]:
    return ["0", *(f"0.{'0' * n}" for n in range(1, decimals + 1))]


def _amount(
    text: str, number: dict[str, Any], description: str, not_zero: int = 0
) -> JsonSchemaValue:
    as_text: dict[str, Any] = {"type": "string", "pattern": text}
    if not_zero:
        as_text["not"] = {"enum": _zeros(not_zero)}
    return {"anyOf": [as_text, {"type": "number", **number}], "description": description}


_READ_EXACTLY = "JSON numbers are read exactly as written, never through binary floating point."

MONEY_SCHEMA = _amount(
    _MONEY_TEXT,
    {"minimum": 0, "maximum": 1000000000000, "multipleOf": 0.01},
    'Pesos from 0 to 1000000000000 with at most 2 decimals: a string (`"24600"`, '
    f'`"24600.50"`) or a number. {_READ_EXACTLY}',
)
POSITIVE_MONEY_SCHEMA = _amount(
    _MONEY_TEXT,
    {"exclusiveMinimum": 0, "maximum": 1000000000000, "multipleOf": 0.01},
    "Pesos above 0, up to 1000000000000, with at most 2 decimals: a string or a number. "
    + _READ_EXACTLY,
    not_zero=2,
)
QUANTITY_SCHEMA = _amount(
    _QUANTITY_TEXT,
    {"exclusiveMinimum": 0, "maximum": 999999999.999999, "multipleOf": 0.000001},
    'Above 0, at most 9 digits before the point and 6 after (`2`, `"0.375"`). ' + _READ_EXACTLY,
    not_zero=6,
)
RATE_SCHEMA = _amount(
    _RATE_TEXT,
    {"minimum": 0, "exclusiveMaximum": 1, "multipleOf": 0.000001},
    "The tax rate as a fraction from 0 to below 1, at most 6 decimals (`0.08` for 8 %). "
    + _READ_EXACTLY,
)


@dataclass(frozen=True)
class JsonPattern:
    """Adds a `pattern` to a string's JSON Schema (inside `anyOf` when the field is nullable);
    it does not change validation, which the model's own validators do."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


@dataclass(frozen=True)
class CatalogSpelling:
    """The JSON Schema of a name looked up in a catalog through `normalize_word`: any case,
    Latin accents, words separated by blanks, `_`, `-` or `.`."""

    names: tuple[str, ...]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = spelling_pattern(self.names)
        schema["examples"] = list(self.names)
        return schema


_SEPARATOR = "[ _.-]"


@functools.cache
def _letter(letter: str) -> str:
    """A character class of every Latin character that `normalize_word` turns into `letter`."""
    variants = [chr(c) for c in range(0x20, 0x250) if normalize_word(chr(c)) == letter]
    return "[" + "".join(variants) + "]"


def spelling_pattern(names: Iterable[str]) -> str:
    words = [
        f"{_SEPARATOR}+".join("".join(_letter(ch) for ch in word) for word in name.split())
        for name in sorted(names)
    ]
    return f"^{_SEPARATOR}*(?:{'|'.join(words)}){_SEPARATOR}*$"
