"""The QR code of the printed copy, drawn as vector squares so it prints sharp at any size.

It holds the `sts:QRCode` URL of the XML (DIAN's catalogue with the CUFE/CUDE as the document
key) and is at least 2 cm wide on paper (DIAN's minimum), not counting the quiet zone (keep
four modules of white around it, as ISO/IEC 18004 asks).
"""

from __future__ import annotations

import segno
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

MIN_SIZE = 20 * mm  # DIAN: at least 2 cm
# Any of the eight masks gives a valid symbol; choosing the best one by score costs eight
# encodings (most of a ticket's render time) for no gain on paper, so one is fixed.
MASK = 2


def qr_code(url: str) -> segno.QRCode:
    return segno.make(url, error="m", micro=False, mask=MASK)


def draw_qr(canvas: Canvas, url: str, x: float, y: float, size: float) -> None:
    """Draw the QR of `url` with its lower left corner at (`x`, `y`), `size` points wide."""
    if size < MIN_SIZE:
        raise ValueError(f"a QR of {size / mm:.1f} mm is below DIAN's 20 mm minimum")
    matrix = qr_code(url).matrix
    count = len(matrix)
    # One filled path of runs of dark modules, in module units (integers: short and exact).
    runs = []
    for row_index, row in enumerate(matrix):
        y_module = count - 1 - row_index
        start = -1
        for col, dark in enumerate((*row, 0)):
            if dark and start < 0:
                start = col
            elif not dark and start >= 0:
                runs.append(f"{start} {y_module} {col - start} 1 re")
                start = -1
    canvas.saveState()
    canvas.translate(x, y)
    canvas.scale(size / count, size / count)
    canvas.setFillColorRGB(0, 0, 0)
    canvas.addLiteral("\n".join(runs) + "\nf")
    canvas.restoreState()
