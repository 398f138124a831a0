"""DIAN check digit (DV) of a NIT."""

from __future__ import annotations

import re

_WEIGHTS = (3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71)
# ASCII digits only: `str.isdigit` also takes "²" or "١", which `int` refuses or DIAN
# would never match.
_NIT = re.compile(f"[0-9]{{1,{len(_WEIGHTS)}}}")


def is_nit_number(value: str) -> bool:
    """A NIT as DIAN writes it: 1 to 15 digits 0-9, without DV or separators."""
    return _NIT.fullmatch(value) is not None


def nit_check_digit(nit: str) -> str:
    """DV of a NIT: weights applied from the rightmost digit, sum mod 11, 0/1 kept, else 11 − r."""
    if not is_nit_number(nit):
        raise ValueError(f"a NIT has 1 to {len(_WEIGHTS)} digits, got {nit!r}")
    total = sum(int(d) * w for d, w in zip(reversed(nit), _WEIGHTS, strict=False))
    r = total % 11
    return str(r if r <= 1 else 11 - r)
