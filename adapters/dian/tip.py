"""The tip's percentage (`cac:AllowanceCharge/cbc:MultiplierFactorNumeric`).

A charge states its amount, its base and the percentage linking them, and DIAN checks that
base × percentage / 100 gives the amount. A tip the customer chose freely (3,000 on 21,600)
is rarely a round percentage, so two decimals would describe another amount: the factor
carries as many decimals as it takes to give back the tip to the cent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MIN_PLACES = 2
# Enough for any base a Money field holds (17 digits): 10**places > base guarantees it.
MAX_PLACES = 20


def applied(base: Decimal, factor: Decimal) -> Decimal:
    """`base` × `factor` %, rounded half-even to the cent, as a checker computes it."""
    with localcontext() as context:
        context.prec = 60
        return (base * factor / HUNDRED).quantize(CENT, rounding=ROUND_HALF_EVEN)


def tip_factor(amount: Decimal, base: Decimal) -> Decimal:
    """The percentage `amount` is of `base`, with the fewest decimals (two at least) for
    which `applied(base, factor) == amount`. `ValueError` for a base that is not positive."""
    if base <= 0:
        raise ValueError(f"a charge's base must be positive, got {base}")
    with localcontext() as context:
        context.prec = 60
        exact = amount * HUNDRED / base
        for places in range(MIN_PLACES, MAX_PLACES + 1):
            factor = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
            if applied(base, factor) == amount:
                return factor
    raise ValueError(f"no factor of {base} gives {amount} to the cent")  # pragma: no cover
