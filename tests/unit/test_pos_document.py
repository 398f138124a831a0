"""The POS equivalent document (20) as written before signing: header literals, the CUDE keyed
with the POS software's PIN, the POS family's software and environment, numbering from the
submission's range (leading zeros, an empty prefix), the three POS extensions and the
register they describe."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import etree

from adapters.dian.document import DianSetup, cufe_for
from adapters.dian.ubl import UnsignedInvoice, build_invoice
from domain.cufe import cude, key_input
from domain.documents import DocumentKind, Register, SoftwareFamily
from domain.errors import GatewayMisconfigured, NumberingError
from domain.issuer import NumberingRange
from domain.ports import DocumentNumber, Submission
from tests.pos_data import (
    INVOICE_RANGE,
    INVOICE_SOFTWARE,
    ISSUER,
    LUNCH,
    LUNCH_CUDE,
    LUNCH_CUDE_INPUT,
    MAKER,
    POS_RANGE,
    POS_SOFTWARE,
    REGISTER,
    SETUP,
    pos_submission,
)

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
}
INV = "{" + NS["inv"] + "}"
CONTROL = "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/sts:DianExtensions/"


def unsigned(submission: Submission, setup: DianSetup = SETUP) -> UnsignedInvoice:
    return build_invoice(
        submission,
        setup.issuer,
        setup.software_for(submission.kind),
        setup.numbering_for(submission),
        setup.point_of_sale(submission),
    )


def text(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list) and len(found) == 1, f"{path}: {found!r}"
    value = found[0]
    return str(value.text if isinstance(value, etree._Element) else value)


def pairs(content: etree._Element) -> tuple[str, str, list[tuple[str, str]]]:
    """(extension element, group element, [(Name, Value)...]) of one ExtensionContent."""
    outer = content[0]
    group = outer[0]
    children = list(group)
    names = [(c.tag, c.text or "") for c in children[0::2]]
    values = [(c.tag, c.text or "") for c in children[1::2]]
    assert {t for t, _ in names} == {INV + "Name"} and {t for t, _ in values} == {INV + "Value"}
    listed = [(n, v) for (_, n), (_, v) in zip(names, values, strict=True)]
    return etree.QName(outer).localname, etree.QName(group).localname, listed


# ------------------------------------------------------------------------------- CUDE


def test_the_worked_cude_vector() -> None:
    """The chain written out by hand from [ATDE] 14.1.3 (the CUFE's fields, the POS software's
    PIN in place of the technical key) and its SHA-384."""
    fields = {
        "number": "EPOS1",
        "issue_date": "2024-05-02",
        "issue_time": "18:30:05-05:00",
        "line_extension": Decimal("20000"),
        "taxes": {"04": Decimal("1600")},
        "payable": Decimal("23600"),
        "supplier_nit": "900373076",
        "buyer_id": "222222222222",
        "environment": "2",
    }
    assert key_input(secret="54321", **fields) == LUNCH_CUDE_INPUT  # type: ignore[arg-type]
    assert hashlib.sha384(LUNCH_CUDE_INPUT.encode()).hexdigest() == LUNCH_CUDE
    assert cude(pin="54321", **fields) == LUNCH_CUDE  # type: ignore[arg-type]


def test_the_pos_document_carries_the_cude_of_its_software_pin() -> None:
    submission = pos_submission(LUNCH)
    document = unsigned(submission)
    root = document.root
    assert document.cufe == LUNCH_CUDE == cufe_for(submission, SETUP)
    assert text(root, "cbc:UUID") == LUNCH_CUDE
    assert text(root, "cbc:UUID/@schemeName") == "CUDE-SHA384"
    assert text(root, "cbc:UUID/@schemeID") == "2"
    # the same sale as an invoice is keyed with the range's technical key: another value
    invoice = replace(submission, kind=DocumentKind.INVOICE, numbering=INVOICE_RANGE)
    invoice = replace(invoice, number=DocumentNumber("SETP", 990000001))
    assert text(unsigned(invoice).root, "cbc:UUID/@schemeName") == "CUFE-SHA384"


def test_header_literals_of_the_pos_document() -> None:
    root = unsigned(pos_submission(LUNCH)).root
    assert text(root, "cbc:InvoiceTypeCode") == "20"
    assert text(root, "cbc:CustomizationID") == "10"
    assert text(root, "cbc:ProfileID") == "DIAN 2.1: Documento Equivalente POS"
    assert text(root, "cbc:UBLVersionID") == "UBL 2.1"
    assert text(root, "cbc:ID") == "EPOS1"


def test_software_id_security_code_qr_and_environment_are_the_pos_familys() -> None:
    """POS in production while invoices are still in habilitación: each document follows
    its own family's registration."""
    production = replace(POS_SOFTWARE, environment="1")
    setup = replace(
        SETUP, software={SoftwareFamily.INVOICE: INVOICE_SOFTWARE, SoftwareFamily.POS: production}
    )
    submission = pos_submission(LUNCH)
    document = unsigned(submission, setup)
    root = document.root
    assert text(root, CONTROL + "sts:SoftwareProvider/sts:SoftwareID") == POS_SOFTWARE.software_id
    expected_ssc = hashlib.sha384(b"7d5c3a41-2b6e-4f0a-9c1d-5e8f2a7b4c90" + b"54321" + b"EPOS1")
    assert text(root, CONTROL + "sts:SoftwareSecurityCode") == expected_ssc.hexdigest()
    assert text(root, "cbc:ProfileExecutionID") == "1"
    assert text(root, "cbc:UUID/@schemeID") == "1"
    assert document.cufe == cude(
        number="EPOS1",
        issue_date="2024-05-02",
        issue_time="18:30:05-05:00",
        line_extension=Decimal("20000"),
        taxes={"04": Decimal("1600")},
        payable=Decimal("23600"),
        supplier_nit="900373076",
        buyer_id="222222222222",
        pin="54321",
        environment="1",
    )
    assert text(root, CONTROL + "sts:QRCode") == (
        f"https://catalogo-vpfe.dian.gov.co/document/searchqr?documentkey={document.cufe}"
    )
    invoice = replace(
        submission,
        kind=DocumentKind.INVOICE,
        numbering=INVOICE_RANGE,
        number=DocumentNumber("SETP", 990000001),
    )
    invoice_root = unsigned(invoice, setup).root
    assert text(invoice_root, "cbc:ProfileExecutionID") == "2"
    assert text(invoice_root, CONTROL + "sts:SoftwareProvider/sts:SoftwareID") == (
        INVOICE_SOFTWARE.software_id
    )


# -------------------------------------------------------------------------- numbering


def test_invoice_control_and_branch_code_come_from_the_pos_range() -> None:
    root = unsigned(pos_submission(LUNCH, 42)).root
    control = CONTROL + "sts:InvoiceControl/"
    assert text(root, control + "sts:InvoiceAuthorization") == "18760000001"
    assert text(root, control + "sts:AuthorizationPeriod/cbc:StartDate") == "2019-01-19"
    assert text(root, control + "sts:AuthorizationPeriod/cbc:EndDate") == "2030-01-19"
    assert text(root, control + "sts:AuthorizedInvoices/sts:Prefix") == "EPOS"
    assert text(root, control + "sts:AuthorizedInvoices/sts:From") == "1"
    assert text(root, control + "sts:AuthorizedInvoices/sts:To") == "1000000"
    branch = "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/"
    assert text(root, branch + "cac:CorporateRegistrationScheme/cbc:ID") == "EPOS"
    assert text(root, "cbc:ID") == "EPOS42"


def test_the_submissions_own_range_wins_and_keeps_its_leading_zeros() -> None:
    till_two = NumberingRange(
        resolution="18764000002",
        prefix="C2",
        first=1,
        last=9999,
        valid_from=POS_RANGE.valid_from,
        valid_to=POS_RANGE.valid_to,
        kind=DocumentKind.POS,
        register="2",
        width=4,
    )
    submission = pos_submission(LUNCH, 7, numbering=till_two)
    assert str(submission.number) == "C20007"
    root = unsigned(submission).root
    control = CONTROL + "sts:InvoiceControl/"
    assert text(root, "cbc:ID") == "C20007"
    assert text(root, control + "sts:InvoiceAuthorization") == "18764000002"
    assert text(root, control + "sts:AuthorizedInvoices/sts:Prefix") == "C2"
    assert text(root, control + "sts:AuthorizedInvoices/sts:From") == "0001"
    assert text(root, control + "sts:AuthorizedInvoices/sts:To") == "9999"
    legal = "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/"
    assert text(root, legal + "cac:CorporateRegistrationScheme/cbc:ID") == "C2"


def test_without_a_range_of_its_own_the_configured_range_of_the_kind_is_used() -> None:
    root = unsigned(pos_submission(LUNCH, 3, numbering=None)).root
    assert text(root, "cbc:ID") == "EPOS3"
    assert text(root, CONTROL + "sts:InvoiceControl/sts:AuthorizedInvoices/sts:Prefix") == "EPOS"


def test_a_range_of_another_kind_or_none_at_all_is_a_numbering_error() -> None:
    wrong = pos_submission(LUNCH, 990000001, numbering=INVOICE_RANGE)
    with pytest.raises(NumberingError, match="not 20"):
        unsigned(wrong)
    bare = replace(SETUP, ranges={})
    with pytest.raises(NumberingError, match="no numbering range"):
        unsigned(pos_submission(LUNCH, numbering=None), bare)


def _empty_elements(root: etree._Element) -> list[str]:
    slot = root.findall("ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent", NS)[-1]
    return [
        etree.QName(e).localname
        for e in root.iter()
        if e is not slot and len(e) == 0 and not (e.text or "").strip()
    ]


@pytest.mark.parametrize("kind", [DocumentKind.POS, DocumentKind.INVOICE])
def test_an_empty_prefix_writes_no_empty_elements(kind: DocumentKind) -> None:
    base = POS_RANGE if kind is DocumentKind.POS else INVOICE_RANGE
    no_prefix = replace(base, prefix="")
    submission = pos_submission(LUNCH, base.first, numbering=no_prefix)
    submission = replace(submission, kind=kind)
    root = unsigned(submission).root
    assert _empty_elements(root) == []
    assert text(root, "cbc:ID") == str(base.first)
    assert root.find(CONTROL + "sts:InvoiceControl/sts:AuthorizedInvoices/sts:Prefix", NS) is None
    assert root.find(".//cac:CorporateRegistrationScheme", NS) is None
    assert _empty_elements(unsigned(pos_submission(LUNCH)).root) == []


# ------------------------------------------------------------------------- extensions


def test_the_three_pos_extensions_with_their_exact_names_signature_slot_last() -> None:
    document = unsigned(pos_submission(LUNCH))
    contents = document.root.findall("ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent", NS)
    assert len(contents) == 5
    assert contents[0][0].tag == "{" + NS["sts"] + "}DianExtensions"
    assert len(contents[4]) == 0 and not contents[4].text  # the signature's place, last
    assert [pairs(c) for c in contents[1:4]] == [
        (
            "FabricanteSoftware",
            "InformacionDelFabricanteDelSoftware",
            [
                ("NombreApellido", "Ana María Pérez"),
                ("RazonSocial", "Programas & Cajas S.A.S."),
                ("NombreSoftware", "Caja <Rápida>"),
            ],
        ),
        (
            "BeneficiosComprador",
            "InformacionBeneficiosComprador",
            [("Codigo", "222222222222"), ("NombresApellidos", "consumidor final"), ("Puntos", "0")],
        ),
        (
            "PuntoVenta",
            "InformacionCajaVenta",
            [
                ("PlacaCaja", "CAJA-01"),
                ("UbicaciónCaja", "Barra, 2º piso"),
                ("Cajero", "Luis Gómez"),
                ("TipoCaja", "Caja principal"),
                ("CódigoVenta", "MESA-7"),
                ("SubTotal", "20000.00"),
            ],
        ),
    ]
    assert "UbicaciónCaja".encode() in document.xml and "CódigoVenta".encode() in document.xml


def test_the_buyer_and_the_cashier_come_from_the_order() -> None:
    data = copy.deepcopy(LUNCH)
    data["adquirente"] = {
        "tipo_documento": "13",
        "numero_documento": "1018419008",
        "nombre": "Marta Ruiz",
    }
    data["cajero"] = "Sofía"
    contents = unsigned(pos_submission(data)).root.findall(
        "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent", NS
    )
    assert pairs(contents[2])[2] == [
        ("Codigo", "1018419008"),
        ("NombresApellidos", "Marta Ruiz"),
        ("Puntos", "0"),
    ]
    assert ("Cajero", "Sofía") in pairs(contents[3])[2]


def test_without_a_register_on_the_submission_the_default_till_is_described() -> None:
    other = Register("2", "CAJA-02", "Terraza", "Autoservicio", "Turno noche")
    setup = replace(SETUP, register=other)
    contents = unsigned(pos_submission(LUNCH, register=None), setup).root.findall(
        "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent", NS
    )
    assert pairs(contents[3])[2][:4] == [
        ("PlacaCaja", "CAJA-02"),
        ("UbicaciónCaja", "Terraza"),
        ("Cajero", "Turno noche"),
        ("TipoCaja", "Autoservicio"),
    ]
    with pytest.raises(GatewayMisconfigured, match="register"):
        unsigned(pos_submission(LUNCH, register=None), replace(SETUP, register=None))


def test_an_invoice_carries_no_pos_extension() -> None:
    submission = replace(
        pos_submission(LUNCH),
        kind=DocumentKind.INVOICE,
        numbering=INVOICE_RANGE,
        number=DocumentNumber("SETP", 990000001),
    )
    root = unsigned(submission).root
    assert len(root.findall("ext:UBLExtensions/ext:UBLExtension", NS)) == 2
    assert text(root, "cbc:ProfileID") == "DIAN 2.1: Factura Electrónica de Venta"
    assert text(root, "cbc:InvoiceTypeCode") == "01"


def test_a_pos_family_without_a_registration_is_a_misconfiguration() -> None:
    invoices_only = DianSetup(
        ISSUER, {SoftwareFamily.INVOICE: INVOICE_SOFTWARE}, MAKER, SETUP.ranges, REGISTER
    )
    with pytest.raises(GatewayMisconfigured, match="pos family"):
        unsigned(pos_submission(LUNCH), invoices_only)
