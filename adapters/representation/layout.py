"""A small top-to-bottom layout on a reportlab canvas: wrapped text, rows of columns, rules,
gaps and the QR. Each item knows its height for a width, so a ticket can be cut to its
content and A4 pages can break between items."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal, Protocol

import reportlab
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from adapters.representation.qr import draw_qr

Align = Literal["left", "center", "right"]
LEADING = 1.22


@cache
def fonts() -> tuple[str, str]:
    """The regular and bold font names, registered once per process: Bitstream Vera, which
    reportlab ships (free licence, Latin-1 glyphs: every Spanish accent, ñ, ¿ and ¡)."""
    folder = Path(reportlab.__file__).parent / "fonts"
    pdfmetrics.registerFont(TTFont("Vera", str(folder / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont("Vera-Bold", str(folder / "VeraBd.ttf")))
    return "Vera", "Vera-Bold"


class Item(Protocol):
    def height(self, width: float) -> float: ...

    def draw(self, canvas: Canvas, x: float, top: float, width: float) -> None: ...


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """`text` in lines no wider than `width`, breaking long words (a CUFE) where needed."""
    lines: list[str] = []
    for line in simpleSplit(text, font, size, width) or [""]:
        while pdfmetrics.stringWidth(line, font, size) > width and len(line) > 1:
            cut = len(line) - 1
            while cut > 1 and pdfmetrics.stringWidth(line[:cut], font, size) > width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def _draw_line(canvas: Canvas, text: str, x: float, y: float, width: float, align: Align) -> None:
    if align == "center":
        canvas.drawCentredString(x + width / 2, y, text)
    elif align == "right":
        canvas.drawRightString(x + width, y, text)
    else:
        canvas.drawString(x, y, text)


@dataclass
class Text:
    text: str
    font: str
    size: float
    align: Align = "left"
    _lines: dict[float, list[str]] = field(default_factory=dict, repr=False)

    def lines(self, width: float) -> list[str]:
        if width not in self._lines:
            self._lines[width] = wrap(self.text, self.font, self.size, width)
        return self._lines[width]

    def height(self, width: float) -> float:
        return len(self.lines(width)) * self.size * LEADING

    def draw(self, canvas: Canvas, x: float, top: float, width: float) -> None:
        canvas.setFont(self.font, self.size)
        y = top - self.size
        for line in self.lines(width):
            _draw_line(canvas, line, x, y, width, self.align)
            y -= self.size * LEADING


@dataclass
class Row:
    """Cells side by side: (text, share of the width, alignment); each cell wraps."""

    cells: tuple[tuple[str, float, Align], ...]
    font: str
    size: float
    _texts: list[Text] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._texts = [Text(text, self.font, self.size, align) for text, _, align in self.cells]

    def _widths(self, width: float) -> list[float]:
        gap = 1.5 * mm
        return [
            share * width - (gap if i < len(self.cells) - 1 else 0)
            for i, (_, share, _) in enumerate(self.cells)
        ]

    def height(self, width: float) -> float:
        return max(t.height(w) for t, w in zip(self._texts, self._widths(width), strict=True))

    def draw(self, canvas: Canvas, x: float, top: float, width: float) -> None:
        left = x
        for (_, share, _), text, w in zip(
            self.cells, self._texts, self._widths(width), strict=True
        ):
            text.draw(canvas, left, top, w)
            left += share * width


@dataclass
class Rule:
    def height(self, width: float) -> float:
        return 2 * mm

    def draw(self, canvas: Canvas, x: float, top: float, width: float) -> None:
        canvas.setLineWidth(0.4)
        canvas.line(x, top - 1 * mm, x + width, top - 1 * mm)


@dataclass
class Space:
    size: float

    def height(self, width: float) -> float:
        return self.size

    def draw(self, canvas: Canvas, x: float, top: float, width: float) -> None:
        return None


@dataclass
class Qr:
    """The QR centred in the width, `size` wide without its quiet zone."""

    url: str
    size: float

    def height(self, width: float) -> float:
        return self.size

    def draw(self, canvas: Canvas, x: float, top: float, width: float) -> None:
        draw_qr(canvas, self.url, x + (width - self.size) / 2, top - self.size, self.size)


@dataclass
class Flow:
    items: list[Item]

    def height(self, width: float) -> float:
        return sum(item.height(width) for item in self.items)

    def draw(self, canvas: Canvas, x: float, top: float, width: float) -> None:
        for item in self.items:
            item.draw(canvas, x, top, width)
            top -= item.height(width)
