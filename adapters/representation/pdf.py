"""Stand-in for the graphic representation: a one-page PDF naming the document.

It is replaced by the representation module (ticket and A4 layouts with the legal content,
the QR and embedded fonts); only its signature is relied upon here.
"""

from __future__ import annotations

from typing import Literal

from lxml import etree

_SIZES = {"ticket": (227, 600), "a4": (595, 842)}


def _document_id(document_xml: bytes) -> str:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(document_xml, parser)
    found = root.findtext(
        "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}ID"
    )
    return "".join(c for c in found or "" if c.isalnum())


def render_pdf(document_xml: bytes, layout: Literal["ticket", "a4"]) -> bytes:
    """A valid one-page PDF (`layout` sets the page size) showing the document's number."""
    width, height = _SIZES[layout]
    text = f"BT /F1 10 Tf 20 {height - 40} Td (Documento {_document_id(document_xml)}) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
        "/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".encode(),
        f"<< /Length {len(text)} >>\nstream\n{text}\nendstream".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)
