"""Signed notes (91, 92, 94, 93) checked by tools that share no code with the builder: the
OASIS UBL 2.1 CreditNote / DebitNote schemas, the signature verified by `xmlsec1` and by
signxml's XAdES verifier on the exact bytes, and the CUDE recomputed here from the XML's own
text with the PIN of the right software family."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest
from lxml import etree

from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory, SignedInvoice, cufe_for
from adapters.dian.signer import XadesSigner
from adapters.dian.simulator.state import DEFAULT_UBL_XSD
from domain.documents import DocumentKind
from domain.errors import InvalidOrder
from domain.ports import DocumentNumber, Submission
from tests.integration.test_dian_document import _signxml
from tests.note_data import (
    DINNER,
    INVOICE,
    NOTE_RANGES,
    NOTE_SETUP,
    POS_TICKET,
    REQUESTS,
    every_kind,
    note_submission,
)
from tests.pos_data import INVOICE_SOFTWARE, LUNCH, NIT, POS_SOFTWARE, SIGNED_AT
from tests.xmlsec import xmlsec1_verify

NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
PASSWORD = "clave de pruebas"
PINS = {"91": INVOICE_SOFTWARE.pin, "92": INVOICE_SOFTWARE.pin, "94": POS_SOFTWARE.pin}
PINS["93"] = POS_SOFTWARE.pin
NAMES = list(every_kind())


@pytest.fixture(scope="module")
def signer() -> XadesSigner:
    return XadesSigner.from_pkcs12(make_test_pkcs12(NIT, PASSWORD), PASSWORD)


@pytest.fixture(scope="module")
def notes(signer: XadesSigner) -> dict[str, SignedInvoice]:
    factory = DianDocumentFactory(NOTE_SETUP, signer)
    return {name: factory.build(s, SIGNED_AT) for name, s in every_kind().items()}


def _root(note: SignedInvoice) -> etree._Element:
    return etree.fromstring(note.xml)


def _text(root: etree._Element, path: str) -> str:
    return (root.findtext(path, "", NS) or "").strip()


def _schema(root_name: str) -> etree.XMLSchema:
    path = Path(DEFAULT_UBL_XSD) / "maindoc" / f"UBL-{root_name}-2.1.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


@pytest.mark.parametrize("name", NAMES)
def test_every_note_is_valid_against_its_ubl_schema(
    name: str, notes: dict[str, SignedInvoice]
) -> None:
    root = _root(notes[name])
    expected = "DebitNote" if name[:2] in ("92", "93") else "CreditNote"
    assert etree.QName(root).localname == expected
    schema = _schema(expected)
    assert schema.validate(etree.ElementTree(root)), str(schema.error_log)


@pytest.mark.parametrize("name", NAMES)
def test_xmlsec1_and_signxml_verify_every_note(
    name: str, notes: dict[str, SignedInvoice], signer: XadesSigner, tmp_path: Path
) -> None:
    xml = notes[name].xml
    result = xmlsec1_verify(xml, signer.certificate_pem(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 3/3" in result.stdout + result.stderr
    _signxml(xml, signer.certificate_pem())
    tampered = xml.replace(b"<cbc:ResponseCode>", b"<cbc:ResponseCode>9", 1)
    assert tampered != xml
    assert xmlsec1_verify(tampered, signer.certificate_pem(), tmp_path).returncode != 0


def _amount(text: str) -> str:
    return str(Decimal(text or "0").quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def _tax(root: etree._Element, scheme: str) -> str:
    for total in root.findall("cac:TaxTotal", NS):
        if total.findtext("cac:TaxSubtotal/cac:TaxCategory/cac:TaxScheme/cbc:ID", "", NS) == scheme:
            return _amount(total.findtext("cbc:TaxAmount", "", NS) or "")
    return "0.00"


def recomputed_cude(root: etree._Element, pin: str) -> str:
    """NumNota + FecNota + HorNota + ValNota + 01 + ValIVA + 04 + ValINC + 03 + ValICA +
    ValTot + NitOFE + NumAdq + Software-PIN + TipoAmbiente, read from the XML."""
    totals = root.find("cac:LegalMonetaryTotal", NS)
    if totals is None:
        totals = root.find("cac:RequestedMonetaryTotal", NS)
    assert totals is not None
    customer = "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"
    supplier = "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"
    chain = (
        _text(root, "cbc:ID")
        + _text(root, "cbc:IssueDate")
        + _text(root, "cbc:IssueTime")
        + _amount(totals.findtext("cbc:LineExtensionAmount", "", NS) or "")
        + "01"
        + _tax(root, "01")
        + "04"
        + _tax(root, "04")
        + "03"
        + _tax(root, "03")
        + _amount(totals.findtext("cbc:PayableAmount", "", NS) or "")
        + _text(root, supplier)
        + _text(root, customer)
        + pin
        + _text(root, "cbc:ProfileExecutionID")
    )
    return hashlib.sha384(chain.encode()).hexdigest()


@pytest.mark.parametrize("name", NAMES)
def test_the_cude_is_keyed_with_the_pin_of_the_corrected_documents_family(
    name: str, notes: dict[str, SignedInvoice]
) -> None:
    note = notes[name]
    root = _root(note)
    pin = PINS[name[:2]]
    assert _text(root, "cbc:UUID") == note.cufe == recomputed_cude(root, pin)
    other = POS_SOFTWARE.pin if pin == INVOICE_SOFTWARE.pin else INVOICE_SOFTWARE.pin
    assert recomputed_cude(root, other) != note.cufe
    assert root.find("cbc:UUID", NS).get("schemeName") == "CUDE-SHA384"  # type: ignore[union-attr]
    assert cufe_for(every_kind()[name], NOTE_SETUP) == note.cufe


def test_a_pos_void_matches_the_cude_written_out_by_hand(
    notes: dict[str, SignedInvoice],
) -> None:
    chain = (
        "NCP1"
        + "2024-05-02"
        + "18:30:05-05:00"
        + "20000.00"
        + "01"
        + "0.00"
        + "04"
        + "1600.00"
        + "03"
        + "0.00"
        + "23600.00"  # the lunch, its INC and its 2000 tip, all credited back
        + "900373076"
        + "222222222222"
        + "54321"  # the POS software's PIN
        + "2"
    )
    assert notes["94-void"].cufe == hashlib.sha384(chain.encode()).hexdigest()


LITERALS = {
    # name: CustomizationID, ProfileID, CreditNoteTypeCode, DiscrepancyResponse code
    "91-void": ("20", "DIAN 2.1: Nota Crédito de Factura Electrónica de Venta", "91", "2"),
    "91-return": ("20", "DIAN 2.1: Nota Crédito de Factura Electrónica de Venta", "91", "1"),
    "91-discount": ("20", "DIAN 2.1: Nota Crédito de Factura Electrónica de Venta", "91", "3"),
    "92-increase": ("30", "DIAN 2.1: Nota Débito de Factura Electrónica de Venta", "", "3"),
    "94-void": ("20", "DIAN 2.1: Nota de ajuste crédito al documento equivalente", "94", "2"),
    "94-discount": ("20", "DIAN 2.1: Nota de ajuste crédito al documento equivalente", "94", "3"),
    "93-increase": ("20", "DIAN 2.1: Nota de ajuste débito al documento equivalente", "", "3"),
}


@pytest.mark.parametrize("name", NAMES)
def test_header_reference_and_extensions_of_each_kind(
    name: str, notes: dict[str, SignedInvoice]
) -> None:
    root = _root(notes[name])
    customization, profile, type_code, concept = LITERALS[name]
    assert _text(root, "cbc:CustomizationID") == customization
    assert root.findtext("cbc:ProfileID", "", NS) == profile
    assert _text(root, "cbc:CreditNoteTypeCode") == type_code
    assert _text(root, "cac:DiscrepancyResponse/cbc:ResponseCode") == concept
    corrected = INVOICE if name[:2] in ("91", "92") else POS_TICKET
    reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
    assert reference is not None
    assert _text(reference, "cbc:ID") == corrected.number
    assert _text(root, "cac:DiscrepancyResponse/cbc:ReferenceID") == corrected.number
    assert _text(reference, "cbc:UUID") == corrected.key
    scheme = "CUFE-SHA384" if corrected is INVOICE else "CUDE-SHA384"
    assert reference.find("cbc:UUID", NS).get("schemeName") == scheme  # type: ignore[union-attr]
    assert _text(reference, "cbc:IssueDate") == "2024-04-30"  # the sale's date in Bogotá
    assert _text(reference, "cbc:DocumentTypeCode") == ("20" if name[:2] == "94" else "")
    # DianExtensions of the family's software, no InvoiceControl, no POS extensions
    software = INVOICE_SOFTWARE if name[:2] in ("91", "92") else POS_SOFTWARE
    assert _text(root, ".//sts:SoftwareID") == software.software_id
    assert root.find(".//sts:InvoiceControl", NS) is None
    contents = root.findall("ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent", NS)
    assert len(contents) == 2 and contents[-1][0].tag == "{" + NS["ds"] + "}Signature"
    debit = name[:2] in ("92", "93")
    assert (root.find("cac:RequestedMonetaryTotal", NS) is not None) is debit
    assert (root.find("cac:LegalMonetaryTotal", NS) is not None) is not debit


def test_a_credit_note_line_puts_its_taxes_before_the_item_and_sums_to_the_header(
    notes: dict[str, SignedInvoice],
) -> None:
    root = _root(notes["91-return"])
    lines = root.findall("cac:CreditNoteLine", NS)
    assert len(lines) == 1
    children = [etree.QName(c).localname for c in lines[0]]
    assert children == [
        "ID",
        "CreditedQuantity",
        "LineExtensionAmount",
        "TaxTotal",
        "Item",
        "Price",
    ]
    assert _text(lines[0], "cbc:CreditedQuantity") == "2.00"
    assert _text(lines[0], "cbc:LineExtensionAmount") == "1851.86"  # 2 × 925.93
    assert _text(lines[0], "cac:Price/cbc:PriceAmount") == "925.93"
    assert _text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "2000.01"  # + INC 148.15


def test_a_void_credits_the_tip_as_a_charge(notes: dict[str, SignedInvoice]) -> None:
    root = _root(notes["91-void"])
    assert _text(root, "cac:AllowanceCharge/cbc:ChargeIndicator") == "true"
    assert _text(root, "cac:AllowanceCharge/cbc:Amount") == "1234.00"
    # the lines, taxes and tip as the invoice wrote them; the POS charged 14944 (the invoice's
    # PayableRoundingAmount was -0.01)
    assert _text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "14944.01"
    assert _text(root, "cbc:LineCountNumeric") == "2"


def as_kind(submission: Submission, kind: DocumentKind) -> Submission:
    numbering = NOTE_RANGES[kind]
    number = DocumentNumber(numbering.prefix, 1)
    return replace(submission, kind=kind, numbering=numbering, number=number)


def test_a_credit_note_91_never_references_a_pos_ticket(signer: XadesSigner) -> None:
    factory = DianDocumentFactory(NOTE_SETUP, signer)
    on_ticket = note_submission(LUNCH, REQUESTS["void"], POS_TICKET)
    wrong = as_kind(on_ticket, DocumentKind.CREDIT_NOTE)
    with pytest.raises(InvalidOrder) as refused:
        factory.build(wrong, SIGNED_AT)
    error = refused.value.errors[0]
    assert error.rule == "note_reference" and "94/93" in error.message
    on_invoice = note_submission(DINNER, REQUESTS["void"], INVOICE)
    with pytest.raises(InvalidOrder):
        factory.build(as_kind(on_invoice, DocumentKind.POS_CREDIT_NOTE), SIGNED_AT)
    unkeyed = replace(on_invoice, corrects=replace(INVOICE, key=""))
    with pytest.raises(InvalidOrder, match="no CUFE/CUDE"):
        factory.build(unkeyed, SIGNED_AT)
