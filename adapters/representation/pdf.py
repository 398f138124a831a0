"""The graphic representation as PDF: an 80 mm ticket (what a register prints) or A4 pages.

Both show the legal content of the printed copy (Res. 165/2023, art. 11 requirements) from the
signed XML alone (`content.read_document`): the denomination, seller and buyer, number with
its numbering authorization, generation date and time, items, taxes by rate, tip, total,
payment means, CUFE/CUDE, the QR and the software. The font is embedded so accents print.
"""

from __future__ import annotations

import io
from typing import Literal

from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from adapters.representation.content import Document, read_document
from adapters.representation.layout import Flow, Item, Qr, Rule, Space, fonts
from adapters.representation.sections import body, header, legal_footer

Layout = Literal["ticket", "a4"]

TICKET_WIDTH = 80 * mm
TICKET_MARGIN = 4 * mm
TICKET_QR = 25 * mm
A4_WIDTH, A4_HEIGHT = 210 * mm, 297 * mm
A4_MARGIN = 15 * mm
A4_QR = 30 * mm


def render_pdf(document_xml: bytes, layout: Layout) -> bytes:
    """The PDF of the document in `layout`. Raises `UnreadableDocument` for XML that is not a
    DIAN document, ValueError for an unknown layout."""
    document = read_document(document_xml)
    regular, bold = fonts()
    buffer = io.BytesIO()
    title = f"{document.kind.label} {document.number}"
    if layout == "ticket":
        items: list[Item] = [
            *header(document, regular, bold, 7.5),
            *body(document, regular, bold, 7.5, wide=False),
            Space(2 * mm),
            Qr(document.qr_url, TICKET_QR),
            Space(2 * mm),
            *legal_footer(document, regular, 6.5),
        ]
        width = TICKET_WIDTH - 2 * TICKET_MARGIN
        height = Flow(items).height(width) + 2 * TICKET_MARGIN
        canvas = _canvas(buffer, (TICKET_WIDTH, height), title)
        Flow(items).draw(canvas, TICKET_MARGIN, height - TICKET_MARGIN, width)
        canvas.showPage()
    elif layout == "a4":
        canvas = _canvas(buffer, (A4_WIDTH, A4_HEIGHT), title)
        _a4_pages(canvas, document, regular, bold)
    else:
        raise ValueError(f"layout must be 'ticket' or 'a4', not {layout!r}")
    canvas.save()
    return buffer.getvalue()


def _a4_pages(canvas: Canvas, document: Document, regular: str, bold: str) -> None:
    """Pages with the seller, the number and the QR on top of each (DIAN: the QR on every
    page), the body flowing below, and the CUFE/CUDE and software at the foot of each."""
    width = A4_WIDTH - 2 * A4_MARGIN
    text_width = width - A4_QR - 6 * mm
    top_items = header(document, regular, bold, 9, align="left")
    foot = Flow([Rule(), *legal_footer(document, regular, 7)])
    foot_height = foot.height(width)
    pending: list[Item] = [*body(document, regular, bold, 9, wide=True)]
    page = 1
    while True:
        top = A4_HEIGHT - A4_MARGIN
        head = Flow(top_items)
        head_height = max(head.height(text_width), A4_QR)
        head.draw(canvas, A4_MARGIN, top, text_width)
        Qr(document.qr_url, A4_QR).draw(canvas, A4_MARGIN + width - A4_QR, top, A4_QR)
        y = top - head_height - 3 * mm
        Rule().draw(canvas, A4_MARGIN, y, width)
        y -= 3 * mm
        bottom = A4_MARGIN + foot_height
        placed = False  # the first item of a page goes on it even if taller than the page
        while pending and (not placed or y - pending[0].height(width) >= bottom):
            item = pending.pop(0)
            item.draw(canvas, A4_MARGIN, y, width)
            y -= item.height(width)
            placed = True
        foot.draw(canvas, A4_MARGIN, A4_MARGIN + foot_height, width)
        canvas.setFont(regular, 7)
        canvas.drawRightString(A4_MARGIN + width, A4_MARGIN / 2, f"Página {page}")
        canvas.showPage()
        if not pending:
            return
        page += 1


def _canvas(buffer: io.BytesIO, size: tuple[float, float], title: str) -> Canvas:
    canvas = Canvas(buffer, pagesize=size, pageCompression=1)
    canvas.setTitle(title)
    canvas.setCreator("einvoice-worker")
    return canvas
