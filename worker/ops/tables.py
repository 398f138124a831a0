"""Plain text output for operators: aligned tables, local times, and a progress bar on stderr."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

BOGOTA = timezone(timedelta(hours=-5), "COT")  # Colombia has no daylight saving time


def local_time(value: datetime | None) -> str:
    """A timestamp as Colombian time with its offset, to the second."""
    if value is None:
        return "-"
    return value.astimezone(BOGOTA).strftime("%Y-%m-%d %H:%M:%S%z")


def duration(seconds: float | None) -> str:
    """`3d 4h`, `2h 5m`, `4m 10s`, `15m`, `12s`."""
    if seconds is None:
        return "-"
    total = int(max(0.0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = 70
) -> str:
    """Columns padded to their widest cell; cells longer than `max_width` are clipped, except in
    the last column, which is shown whole (it holds the reason, the part worth reading)."""
    last = len(headers) - 1
    cells = [
        [
            clip(str(c), max_width) if i < last else " ".join(str(c).split())
            for i, c in enumerate(row)
        ]
        for row in rows
    ]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    widths[last] = min(widths[last], max(len(headers[last]), max_width))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str), file=stream or sys.stdout)


class Progress:
    """`label [#####.....]  52%  5200/10000  1830/s` redrawn on one stderr line.

    Silent when disabled (not a terminal, or `--no-progress`); redraws at most 10 times a second.
    """

    def __init__(self, label: str, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self._label = label
        self._total = max(0, total)
        self._enabled = enabled
        self._stream = stream or sys.stderr
        self._done = 0
        self._started = time.monotonic()
        self._drawn = self._started  # first drawn after 0.1 s: quick work shows only the end

    def advance(self, n: int = 1) -> None:
        self._done += n
        if self._enabled and time.monotonic() - self._drawn >= 0.1:
            self._draw()

    def close(self) -> None:
        if self._enabled:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        elapsed = max(1e-6, self._drawn - self._started)
        fraction = min(1.0, self._done / self._total) if self._total else 1.0
        bar = "#" * int(fraction * 30)
        self._stream.write(
            f"\r{self._label} [{bar:<30}] {fraction:4.0%}  {self._done}/{self._total}  "
            f"{self._done / elapsed:.0f}/s"
        )
        self._stream.flush()
