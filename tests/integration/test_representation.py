"""The printed copy of signed documents, read back by tools that share no code with it:
poppler's `pdftotext` for the text (accents included), `pdftoppm` for the page image, and
zxing-cpp to find and decode the QR on that image (its position gives its printed size)."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from lxml import etree
from PIL import Image

from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory, SignedInvoice
from adapters.dian.signer import XadesSigner
from adapters.representation.content import UnreadableDocument
from adapters.representation.pdf import render_pdf
from domain.documents import DocumentKind
from domain.ports import DocumentNumber, Submission
from tests.integration.test_pos_document import BUSY
from tests.pos_data import INVOICE_RANGE, LUNCH, NIT, SETUP, SIGNED_AT, pos_submission

PASSWORD = "clave de pruebas"
CATALOGUE = "https://catalogo-vpfe-hab.dian.gov.co/document/searchqr?documentkey="
DPI = 300
MM_PER_INCH = Decimal("25.4")
INVOICE: dict[str, Any] = {
    **LUNCH,
    "id_pedido_origen": "MESA-9",
    "adquirente": {
        "tipo_documento": "31",
        "numero_documento": "901210113",
        "nombre": "Ferretería Ñandú & Cía. S.A.S.",
    },
    "metodos_pago": [{"tipo": "Transferencia", "monto": "23600"}],
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (apt-get install -y poppler-utils)")
    return path


@pytest.fixture(scope="module")
def documents() -> dict[str, SignedInvoice]:
    signer = XadesSigner.from_pkcs12(make_test_pkcs12(NIT, PASSWORD), PASSWORD)
    factory = DianDocumentFactory(SETUP, signer)
    sale = pos_submission(INVOICE, 990000007, numbering=INVOICE_RANGE)
    invoice = Submission(
        sale.key,
        sale.order,
        sale.issued_at,
        DocumentNumber(INVOICE_RANGE.prefix, 990000007, INVOICE_RANGE.width),
        kind=DocumentKind.INVOICE,
        numbering=INVOICE_RANGE,
    )
    return {
        "pos": factory.build(pos_submission(BUSY, 12), SIGNED_AT),
        "invoice": factory.build(invoice, SIGNED_AT),
    }


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "copy.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        [_tool("pdftotext"), "-layout", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
    )
    return done.stdout.decode("utf-8")


def _pages(pdf: bytes, tmp_path: Path) -> list[Path]:
    path = tmp_path / "copy.pdf"
    path.write_bytes(pdf)
    prefix = tmp_path / "page"
    subprocess.run([_tool("pdftoppm"), "-r", str(DPI), "-gray", str(path), str(prefix)], check=True)
    return sorted(tmp_path.glob("page-*.pgm"))


def _qr_codes(page: Path) -> list[tuple[str, Decimal]]:
    """Each QR on the page image: its text and its width in millimetres on paper."""
    found = []
    for code in zxingcpp.read_barcodes(Image.open(page)):
        if code.format != zxingcpp.BarcodeFormat.QRCode:
            continue
        corners = code.position
        width_px = max(corners.top_right.x, corners.bottom_right.x) - min(
            corners.top_left.x, corners.bottom_left.x
        )
        found.append((code.text, Decimal(width_px) / DPI * MM_PER_INCH))
    return found


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("layout", ["ticket", "a4"])
def test_the_pos_document_prints_its_legal_content(
    documents: dict[str, SignedInvoice], layout: str, tmp_path: Path
) -> None:
    doc = documents["pos"]
    text = _text(render_pdf(doc.xml, layout), tmp_path)  # type: ignore[arg-type]
    words = " ".join(text.split())
    assert "Documento equivalente electrónico del tiquete de máquina registradora" in words
    assert "No. EPOS12" in words
    assert "Cocina de Pruebas S.A.S." in words and "NIT 900373076-" in words
    assert 'Eventos "Andinos" & Cía <S.A.S.>' in words and "NIT 901210113-" in words
    assert "Autorización de numeración DIAN No. 18760000001: prefijo EPOS, rango 1 al" in words
    assert "vigencia 2019-01-19 a 2030-01-19" in words
    assert "Fecha y hora de generación: 2024-05-02 18:30:05-05:00" in words
    assert "Jugo de maracuyá" in words and "Sofía" in words
    assert "IVA 19% sobre 9.000,00 1.710,00" in words
    assert "INC 8%" in words
    assert "Propina voluntaria 1.234,00" in words
    assert "TOTAL 14.944,00" in words
    assert "Tarjeta débito" in words
    assert f"CUDE:{doc.cufe}" in _flat(text)
    assert "Software: Caja <Rápida>. Fabricante: Programas & Cajas S.A.S." in words


@pytest.mark.parametrize("layout", ["ticket", "a4"])
def test_the_invoice_prints_its_legal_content(
    documents: dict[str, SignedInvoice], layout: str, tmp_path: Path
) -> None:
    doc = documents["invoice"]
    text = _text(render_pdf(doc.xml, layout), tmp_path)  # type: ignore[arg-type]
    words = " ".join(text.split())
    assert "Factura electrónica de venta" in words
    assert "No. SETP990000007" in words
    assert "prefijo SETP, rango 990000000 al 995000000" in words
    assert "Ferretería Ñandú & Cía. S.A.S." in words
    assert "Almuerzo ejecutivo" in words
    assert "TOTAL 23.600,00" in words
    assert "Transferencia débito bancaria" in words
    assert f"CUFE:{doc.cufe}" in _flat(text)


def test_a_consumidor_final_is_printed_with_dians_generic_id(
    documents: dict[str, SignedInvoice], tmp_path: Path
) -> None:
    signer = XadesSigner.from_pkcs12(make_test_pkcs12(NIT, PASSWORD), PASSWORD)
    lunch = DianDocumentFactory(SETUP, signer).build(pos_submission(LUNCH, 3), SIGNED_AT)
    words = " ".join(_text(render_pdf(lunch.xml, "ticket"), tmp_path).split())
    assert "Adquirente: consumidor final" in words
    assert "CC 222222222222" in words


@pytest.mark.parametrize("name", ["pos", "invoice"])
@pytest.mark.parametrize("layout", ["ticket", "a4"])
def test_the_qr_reads_back_as_dians_catalogue_url_at_least_2_cm_wide(
    documents: dict[str, SignedInvoice], name: str, layout: str, tmp_path: Path
) -> None:
    doc = documents[name]
    root = etree.fromstring(doc.xml)
    in_xml = root.findtext(".//{dian:gov:co:facturaelectronica:Structures-2-1}QRCode")
    pages = _pages(render_pdf(doc.xml, layout), tmp_path)  # type: ignore[arg-type]
    assert len(pages) == 1
    [(text, width_mm)] = _qr_codes(pages[0])
    assert text == in_xml == CATALOGUE + doc.cufe
    assert width_mm >= 20, f"the QR is {width_mm:.1f} mm wide"


def test_every_a4_page_carries_the_qr(tmp_path: Path) -> None:
    signer = XadesSigner.from_pkcs12(make_test_pkcs12(NIT, PASSWORD), PASSWORD)
    item = LUNCH["items"][0]
    many = {
        **LUNCH,
        "items": [{**item, "descripcion": f"Plato {n} con acompañamiento"} for n in range(90)],
        "subtotal": str(20000 * 90),
        "impuestos_totales": str(1600 * 90),
        "propina_voluntaria": "0",
        "total_factura": str(21600 * 90),
        "metodos_pago": [{"tipo": "Efectivo", "monto": str(21600 * 90)}],
    }
    doc = DianDocumentFactory(SETUP, signer).build(pos_submission(many, 5), SIGNED_AT)
    pdf = render_pdf(doc.xml, "a4")
    pages = _pages(pdf, tmp_path)
    assert len(pages) >= 2
    for page in pages:
        assert [text for text, _ in _qr_codes(page)] == [CATALOGUE + doc.cufe]
    words = " ".join(_text(pdf, tmp_path).split())
    assert "Plato 0 con acompañamiento" in words and "Plato 89 con acompañamiento" in words
    assert "TOTAL 1.944.000,00" in words


def test_what_is_not_a_dian_document_is_refused_by_name() -> None:
    with pytest.raises(UnreadableDocument, match="root element 'Order'"):
        render_pdf(b"<Order/>", "ticket")
    with pytest.raises(UnreadableDocument, match="not XML"):
        render_pdf(b"%PDF-1.4", "a4")


def test_an_unknown_layout_is_refused(documents: dict[str, SignedInvoice]) -> None:
    with pytest.raises(ValueError, match="'ticket' or 'a4'"):
        render_pdf(documents["pos"].xml, "letter")  # type: ignore[arg-type]


def _as_credit_note(invoice: SignedInvoice) -> bytes:
    """The invoice's XML reshaped as UBL 2.1 CreditNote 91 correcting it (the DIAN builder
    writes no notes yet): what a note's copy must add is the document it corrects."""
    ubl = "urn:oasis:names:specification:ubl:schema:xsd:"
    cac, cbc = f"{ubl}CommonAggregateComponents-2", f"{ubl}CommonBasicComponents-2"
    root = etree.fromstring(invoice.xml)
    root.tag = f"{{{ubl}CreditNote-2}}CreditNote"
    type_code = root.find(f"{{{cbc}}}InvoiceTypeCode")
    assert type_code is not None
    type_code.tag, type_code.text = f"{{{cbc}}}CreditNoteTypeCode", "91"
    root.find(f"{{{cbc}}}ID").text = "NC7"  # type: ignore[union-attr]
    for line in root.iterfind(f"{{{cac}}}InvoiceLine"):
        line.tag = f"{{{cac}}}CreditNoteLine"
        quantity = line.find(f"{{{cbc}}}InvoicedQuantity")
        assert quantity is not None
        quantity.tag = f"{{{cbc}}}CreditedQuantity"
    discrepancy = etree.SubElement(root, f"{{{cac}}}DiscrepancyResponse")
    etree.SubElement(discrepancy, f"{{{cbc}}}Description").text = "Devolución de mercancía"
    reference = etree.SubElement(
        etree.SubElement(root, f"{{{cac}}}BillingReference"), f"{{{cac}}}InvoiceDocumentReference"
    )
    etree.SubElement(reference, f"{{{cbc}}}ID").text = invoice.number
    uuid = etree.SubElement(reference, f"{{{cbc}}}UUID", schemeName="CUFE-SHA384")
    uuid.text = invoice.cufe
    etree.SubElement(reference, f"{{{cbc}}}IssueDate").text = "2024-05-02"
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@pytest.mark.parametrize("layout", ["ticket", "a4"])
def test_a_credit_note_prints_the_document_it_corrects(
    documents: dict[str, SignedInvoice], layout: str, tmp_path: Path
) -> None:
    invoice = documents["invoice"]
    text = _text(render_pdf(_as_credit_note(invoice), layout), tmp_path)  # type: ignore[arg-type]
    words = " ".join(text.split())
    assert "Nota crédito de factura electrónica de venta" in words
    assert "No. NC7" in words
    assert f"Documento referenciado: {invoice.number} del 2024-05-02" in words
    assert f"CUFEreferenciado:{invoice.cufe}" in _flat(text)
    assert "Motivo: Devolución de mercancía" in words
    assert "Almuerzo ejecutivo" in words and "TOTAL 23.600,00" in words
