"""Times typed by operators: `30m`, `2h`, `7d`, `2026-11-01`, `2026-11-01T08:00`.

Dates and naive times are Colombian time (UTC-05:00), as DIAN documents are.
"""

from __future__ import annotations

import argparse
import re
from datetime import date, datetime, time, timedelta

from worker.ops.tables import BOGOTA

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> float:
    """`90s`, `15m`, `2h`, `7d` → seconds (argparse type)."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 30m, 2h or 7d, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _parse_date_or_time(text: str) -> date | datetime:
    try:
        if "T" in text or " " in text.strip():
            return datetime.fromisoformat(text.strip())
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date (2026-11-01) or a time (2026-11-01T08:00), got {text!r}"
        ) from None


def _at(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=BOGOTA)
    return datetime.combine(moment, time(), BOGOTA)


def since(text: str, now: datetime) -> datetime:
    """A duration back from `now`, or a date / time."""
    if _DURATION.match(text):
        return now - timedelta(seconds=seconds(text))
    return _at(_parse_date_or_time(text))


def period_start(text: str) -> datetime:
    """`--from`: a date means the start of that day."""
    return _at(_parse_date_or_time(text))


def period_end(text: str) -> datetime:
    """`--to`: a date includes that whole day; a time is the exclusive end."""
    moment = _parse_date_or_time(text)
    if isinstance(moment, datetime):
        return _at(moment)
    return _at(moment + timedelta(days=1))
