"""Signed DIAN invoices checked by tools that share no code with the builder or the signer.

- UBL 2.1 schema (OASIS XSDs) for the whole document, signature included, and DIAN's
  `DIAN_UBL_Structures.xsd` for the `sts:DianExtensions` block;
- the signature verified on the exact bytes by `xmlsec1` (Debian package `xmlsec1`) and by
  signxml's XAdES verifier, and tampered copies refused by both;
- the CUFE recomputed from the XML text and compared with `cbc:UUID`;
- the zip: one deflated entry with the Anexo name.
"""

from __future__ import annotations

import copy
import io
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from lxml import etree
from signxml.exceptions import InvalidSignature
from signxml.xades import XAdESVerifier  # type: ignore[attr-defined]

from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory, DianSetup, SignedInvoice, cufe_for
from adapters.dian.signer import XadesSigner
from domain.cufe import cufe, software_security_code
from domain.dian_codes import nit_check_digit
from domain.documents import DocumentKind, SoftwareFamily, SoftwareMaker
from domain.errors import InvalidOrder, NumberingError
from domain.issuer import IssuerProfile, NumberingRange, SoftwareRegistration
from domain.order import Order, parse_order
from domain.ports import DocumentNumber, OrderKey, Submission
from tests.xmlsec import xmlsec1_verify

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xades": "http://uri.etsi.org/01903/v1.3.2#",
}
PASSWORD = "clave de pruebas"
ISSUER = IssuerProfile(
    nit="900373076",
    dv=nit_check_digit("900373076"),
    legal_name="Cervecería & Cocina <La 10> S.A.S.",
    trade_name='La "Diez" Cervecería',
    email="facturas@example.co",
)
SOFTWARE = SoftwareRegistration(
    software_id="56f2ae4e-9812-4fad-9255-08fcfcd5ccb0",
    pin="12345",
    provider_nit="900373076",
    provider_dv=nit_check_digit("900373076"),
    environment="2",
)
NUMBERING = NumberingRange(
    resolution="18760000001",
    prefix="SETP",
    first=990000000,
    last=995000000,
    valid_from=date(2019, 1, 19),
    valid_to=date(2030, 1, 19),
    technical_key="fc8eac422eba16e22ffd8c6f94b3f40a6e38162c",
)
SETUP = DianSetup(
    issuer=ISSUER,
    software={SoftwareFamily.INVOICE: SOFTWARE},
    maker=SoftwareMaker("Equipo de pruebas", "Pruebas S.A.S.", "900373076", "einvoice-worker"),
    ranges={DocumentKind.INVOICE: NUMBERING},
)
ISSUED_AT = datetime(2024, 5, 2, 23, 30, 5, tzinfo=UTC)  # 18:30:05 in Bogotá
SIGNED_AT = datetime(2024, 5, 2, 23, 30, 6, tzinfo=UTC)

# The one schema finding DIAN's own practice contradicts (see ubl-xsd/SOURCES.md): the
# schemeID of these two elements carries a check digit, not an identification type.
TOLERATED = re.compile(
    r"^Element '\{dian:gov:co:facturaelectronica:Structures-2-1\}"
    r"(ProviderID|AuthorizationProviderID)', attribute 'schemeID': \[facet 'enumeration'\] "
)


def _item(
    desc: str, qty: str, price: str, taxes: list[tuple[str, str, str]], total: str
) -> dict[str, Any]:
    return {
        "id_producto": None,
        "descripcion": desc,
        "cantidad": qty,
        "precio_unitario": price,
        "impuestos": [{"nombre": n, "tasa": r, "monto": m} for n, r, m in taxes],
        "total_item": total,
    }


SEED: dict[str, Any] = {
    "id_pedido_origen": "SEED-1",
    "items": [_item("Cerveza Artesanal", "2", "10000", [("INC", "0.08", "1600")], "21600")],
    "subtotal": "20000",
    "propina_voluntaria": "3000",
    "impuestos_totales": "1600",
    "total_factura": "24600",
    "metodos_pago": [{"tipo": "Efectivo", "monto": "24600"}],
}
MIXED: dict[str, Any] = {
    "id_pedido_origen": "MIX-7",
    "items": [
        _item("Hamburguesa doble", "1", "30000", [("INC", "0.08", "2400")], "32400"),
        _item("Gaseosa 400 ml", "2", "4500", [("IVA", "0.19", "1710")], "10710"),
        _item("Agua con gas", "1", "3000", [], "3000"),
        _item("Vino de la casa", "1", "20000", [("IVA", "0.19", "3800")], "23800"),
    ],
    "subtotal": "62000",
    "propina_voluntaria": "0",
    "impuestos_totales": "7910",
    "total_factura": "69910",
    "metodos_pago": [
        {"tipo": "Tarjeta de Crédito", "monto": "40000"},
        {"tipo": "Nequi", "monto": "29910"},
    ],
}
FRACTIONAL: dict[str, Any] = {
    "id_pedido_origen": "KG-3",
    "items": [_item("Queso campesino (kg)", "0.375", "28000", [("IVA", "0.19", "1995")], "12495")],
    "subtotal": "10500",
    "impuestos_totales": "1995",
    "total_factura": "12495",
    "metodos_pago": [{"tipo": "Tarjeta Débito", "monto": "12495"}],
}
NIT_BUYER: dict[str, Any] = {
    "id_pedido_origen": "B2B-9",
    "adquirente": {
        "tipo_documento": "31",
        "numero_documento": "901210113",
        "nombre": "Eventos Andinos S.A.S.",
        "email": "compras@example.co",
    },
    "items": [_item("Menú ejecutivo", "10", "18000", [("INC", "0.08", "14400")], "194400")],
    "subtotal": "180000",
    "propina_voluntaria": "18000",
    "impuestos_totales": "14400",
    "total_factura": "212400",
    "metodos_pago": [{"tipo": "Transferencia", "monto": "212400"}],
}
NASTY_TEXT = "Jugo \"natural\" & <fresco> de maracuyá, ñame y piña 🍹 'light'"
NASTY: dict[str, Any] = {
    "id_pedido_origen": "TXT-1",
    "adquirente": {
        "tipo_documento": "13",
        "numero_documento": "1018419008",
        "nombre": 'José "Pepe" Muñoz & Hijos <test> 😀',
    },
    "items": [_item(NASTY_TEXT, "3", "5000", [("INC", "0.08", "1200")], "16200")],
    "subtotal": "15000",
    "propina_voluntaria": "1500",
    "impuestos_totales": "1200",
    "total_factura": "17700",
    "metodos_pago": [{"tipo": "Efectivo", "monto": "17700"}],
}
ORDERS = {
    "seed": SEED,
    "mixed": MIXED,
    "fractional": FRACTIONAL,
    "nit_buyer": NIT_BUYER,
    "text": NASTY,
}


def _submission(data: dict[str, Any], number: int = 990000001) -> Submission:
    order = parse_order(data)
    return Submission(
        key=OrderKey(ISSUER.nit, order.id_pedido_origen),
        order=order,
        issued_at=ISSUED_AT,
        number=DocumentNumber("SETP", number),
    )


# --------------------------------------------------------------------------- fixtures


PACKAGED_XSD = Path(__file__).resolve().parents[2] / "adapters" / "dian" / "schemas" / "ubl-xsd"


def _shared_dir() -> Path:
    configured = os.environ.get("SHARED_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[3] / "shared"


@pytest.fixture(scope="module")
def xsd_dir() -> Path:
    """The reference schemas in shared/, else the copy the DIAN simulator validates with
    (the same files, shipped in the package), so a checkout without shared/ beside it
    still validates instead of skipping."""
    for folder in (_shared_dir() / "reference" / "ubl-xsd", PACKAGED_XSD):
        if (folder / "maindoc" / "UBL-Invoice-2.1.xsd").is_file():
            return folder
    pytest.skip("UBL 2.1 schemas not found (set SHARED_DIR to the shared/ folder)")


@pytest.fixture(scope="module")
def invoice_schema(xsd_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(xsd_dir / "maindoc" / "UBL-Invoice-2.1.xsd")))


@pytest.fixture(scope="module")
def dian_schema(xsd_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(xsd_dir / "maindoc" / "DIAN_UBL_Structures.xsd")))


@pytest.fixture(scope="module")
def signer() -> XadesSigner:
    return XadesSigner.from_pkcs12(make_test_pkcs12(ISSUER.nit, PASSWORD), PASSWORD)


@pytest.fixture(scope="module")
def factory(signer: XadesSigner) -> DianDocumentFactory:
    return DianDocumentFactory(SETUP, signer)


@pytest.fixture(scope="module")
def invoices(factory: DianDocumentFactory) -> dict[str, SignedInvoice]:
    return {
        name: factory.build(_submission(data, 990000001 + n), SIGNED_AT)
        for n, (name, data) in enumerate(ORDERS.items())
    }


def _entries(schema: etree.XMLSchema) -> list[etree._LogEntry]:
    return list(cast(Iterable[etree._LogEntry], schema.error_log))


def _root(invoice: SignedInvoice) -> etree._Element:
    return etree.fromstring(invoice.xml)


def _text(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list) and len(found) == 1, f"{path}: {found!r}"
    value = found[0]
    if isinstance(value, etree._Element):
        return str(value.text)
    return str(value)


# ------------------------------------------------------------------------- (a) schemas


@pytest.mark.parametrize("name", ORDERS)
def test_document_is_valid_ubl_invoice(
    name: str, invoices: dict[str, SignedInvoice], invoice_schema: etree.XMLSchema
) -> None:
    document = etree.ElementTree(_root(invoices[name]))
    assert invoice_schema.validate(document), str(invoice_schema.error_log)


@pytest.mark.parametrize("name", ORDERS)
def test_dian_extensions_match_dian_schema_but_the_known_divergence(
    name: str, invoices: dict[str, SignedInvoice], dian_schema: etree.XMLSchema
) -> None:
    block = _root(invoices[name]).find(".//sts:DianExtensions", NS)
    assert block is not None
    dian_schema.validate(etree.ElementTree(copy.deepcopy(block)))
    errors = [e.message for e in _entries(dian_schema)]
    unexpected = [m for m in errors if not TOLERATED.match(m)]
    assert unexpected == []
    # Both divergences are present (DV 4 for DIAN is never an identification type).
    assert any("AuthorizationProviderID" in m for m in errors)


def test_the_schema_check_catches_other_dian_extension_errors(
    invoices: dict[str, SignedInvoice], dian_schema: etree.XMLSchema
) -> None:
    block = copy.deepcopy(_root(invoices["seed"]).find(".//sts:DianExtensions", NS))
    assert block is not None
    qr = block.find("sts:QRCode", NS)
    assert qr is not None
    block.remove(qr)
    assert not dian_schema.validate(etree.ElementTree(block))
    assert any(not TOLERATED.match(e.message) for e in _entries(dian_schema))


# ---------------------------------------------------------------------- (b) signature


def _signxml(xml: bytes, cert_pem: bytes) -> None:
    XAdESVerifier().verify(xml, x509_cert=cert_pem.decode("ascii"), expect_references=3)


@pytest.mark.parametrize("name", ORDERS)
def test_xmlsec1_verifies_the_signature(
    name: str, invoices: dict[str, SignedInvoice], signer: XadesSigner, tmp_path: Path
) -> None:
    result = xmlsec1_verify(invoices[name].xml, signer.certificate_pem(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 3/3" in result.stdout + result.stderr


@pytest.mark.parametrize("name", ORDERS)
def test_signxml_verifies_the_xades_signature(
    name: str, invoices: dict[str, SignedInvoice], signer: XadesSigner
) -> None:
    _signxml(invoices[name].xml, signer.certificate_pem())


def _tamper_amount(xml: bytes) -> bytes:
    changed = xml.replace(
        b'"COP">24600.00</cbc:PayableAmount>', b'"COP">24601.00</cbc:PayableAmount>'
    )
    assert changed != xml
    return changed


def _tamper_name(xml: bytes) -> bytes:
    original = b"Cerveza Artesanal"
    assert original in xml
    return xml.replace(original, b"Cerveza Artesanai")


def _tamper_signing_time(xml: bytes) -> bytes:
    changed = xml.replace(b"2024-05-02T18:30:06-05:00", b"2024-05-02T18:30:07-05:00")
    assert changed != xml
    return changed


TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "amount": _tamper_amount,
    "name": _tamper_name,
    "signed_properties": _tamper_signing_time,
}


@pytest.mark.parametrize("how", TAMPERINGS)
def test_tampered_documents_fail_both_verifiers(
    how: str, invoices: dict[str, SignedInvoice], signer: XadesSigner, tmp_path: Path
) -> None:
    tampered = TAMPERINGS[how](invoices["seed"].xml)
    assert xmlsec1_verify(tampered, signer.certificate_pem(), tmp_path).returncode != 0
    with pytest.raises(InvalidSignature):
        _signxml(tampered, signer.certificate_pem())


def test_a_signature_by_another_key_fails(
    invoices: dict[str, SignedInvoice], tmp_path: Path
) -> None:
    stranger = XadesSigner.from_pkcs12(make_test_pkcs12("900000001", "x"), "x")
    assert (
        xmlsec1_verify(invoices["seed"].xml, stranger.certificate_pem(), tmp_path).returncode != 0
    )


def test_a_document_without_signature_namespaces_at_its_root_is_signed_and_verifies(
    signer: XadesSigner, tmp_path: Path
) -> None:
    """Root declaring only `ext` (another producer's layout, the slot written with an end
    tag): the signature declares its own namespaces."""
    ext = NS["ext"]
    document = (
        f'<Invoice xmlns="{NS["inv"]}" xmlns:ext="{ext}"><ext:UBLExtensions><ext:UBLExtension>'
        "<ext:ExtensionContent> </ext:ExtensionContent></ext:UBLExtension></ext:UBLExtensions>"
        "<Note>R&amp;D &lt;ñandú&gt; 🍺</Note></Invoice>"
    ).encode()
    xml = signer.sign(document, SIGNED_AT)
    assert b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"' in xml
    result = xmlsec1_verify(xml, signer.certificate_pem(), tmp_path)
    assert result.returncode == 0, result.stderr
    _signxml(xml, signer.certificate_pem())


def test_a_slot_look_alike_in_a_comment_does_not_mislead_the_signer(
    signer: XadesSigner, tmp_path: Path
) -> None:
    """The text after the real slot shows an empty ExtensionContent that is not one."""
    document = (
        f'<Invoice xmlns="{NS["inv"]}" xmlns:ext="{NS["ext"]}"><ext:UBLExtensions>'
        "<ext:UBLExtension><ext:ExtensionContent/></ext:UBLExtension></ext:UBLExtensions>"
        "<!-- <ext:ExtensionContent/> --><Note><![CDATA[<ext:ExtensionContent/>]]></Note>"
        "</Invoice>"
    ).encode()
    xml = signer.sign(document, SIGNED_AT)
    root = etree.fromstring(xml)
    slot = root.find("ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent", NS)
    assert slot is not None and slot[0].tag == f"{{{NS['ds']}}}Signature"
    assert b"<!-- <ext:ExtensionContent/> -->" in xml
    assert xmlsec1_verify(xml, signer.certificate_pem(), tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("before", "after"),
    [("<!-- prólogo -->\n", ""), ("<?note x?>", ""), ("<!DOCTYPE Invoice>\n", ""), ("", "<!---->")],
)
def test_a_document_with_company_beside_its_root_is_signed_and_verifies(
    before: str, after: str, signer: XadesSigner, tmp_path: Path
) -> None:
    """Slot elements in the default namespace, and a comment, processing instruction or
    DOCTYPE beside the root: the document digest is the one a verifier computes."""
    document = (
        f'{before}<Invoice xmlns="{NS["ext"]}"><UBLExtensions><UBLExtension>'
        f"<ExtensionContent/></UBLExtension></UBLExtensions></Invoice>{after}"
    ).encode()
    xml = signer.sign(document, SIGNED_AT)
    result = xmlsec1_verify(xml, signer.certificate_pem(), tmp_path)
    assert result.returncode == 0, result.stderr
    _signxml(xml, signer.certificate_pem())


@pytest.mark.parametrize("declaration", ['encoding="ISO-8859-1"', "encoding = 'ISO-8859-1'"])
def test_a_latin1_document_is_signed_as_utf8_with_accented_certificate_names(
    declaration: str, tmp_path: Path
) -> None:
    accented = XadesSigner.from_pkcs12(
        make_test_pkcs12(ISSUER.nit, "x", common_name="Cámara Ñandú & Cía"), "x"
    )
    document = (
        f'<?xml version="1.0" {declaration}?>\n'
        f'<Invoice xmlns="{NS["inv"]}" xmlns:ext="{NS["ext"]}"><ext:UBLExtensions>'
        "<ext:UBLExtension><ext:ExtensionContent/></ext:UBLExtension></ext:UBLExtensions>"
        "<Note>ñandú</Note></Invoice>"
    ).encode("latin-1")
    xml = accented.sign(document, SIGNED_AT)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = etree.fromstring(xml)
    assert root.findtext("inv:Note", namespaces=NS) == "ñandú"
    issuer = root.findtext(".//ds:X509IssuerName", namespaces=NS) or ""
    assert "Cámara Ñandú" in issuer
    result = xmlsec1_verify(xml, accented.certificate_pem(), tmp_path)
    assert result.returncode == 0, result.stderr


def test_signing_leaves_the_given_tree_as_it_was(signer: XadesSigner) -> None:
    tree = etree.fromstring(
        f'<Invoice xmlns="{NS["inv"]}" xmlns:ext="{NS["ext"]}"><ext:UBLExtensions>'
        "<ext:UBLExtension><ext:ExtensionContent/></ext:UBLExtension></ext:UBLExtensions>"
        "</Invoice>"
    )
    before = etree.tostring(tree)
    first = signer.sign(tree, SIGNED_AT)
    assert etree.tostring(tree) == before
    second = signer.sign(tree, SIGNED_AT)  # the slot is still free: sign again
    assert first != second  # each signature has its own id


def test_signature_sits_in_the_second_extension_with_policy_and_role(
    invoices: dict[str, SignedInvoice], signer: XadesSigner
) -> None:
    root = _root(invoices["seed"])
    extensions = root.findall("ext:UBLExtensions/ext:UBLExtension", NS)
    assert len(extensions) == 2
    assert extensions[0].find("ext:ExtensionContent/sts:DianExtensions", NS) is not None
    signature = extensions[1].find("ext:ExtensionContent/ds:Signature", NS)
    assert signature is not None
    assert _text(signature, "ds:SignedInfo/ds:CanonicalizationMethod/@Algorithm") == (
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    )
    props = ".//xades:SignedProperties/xades:SignedSignatureProperties"
    assert _text(signature, f"{props}/xades:SigningTime") == "2024-05-02T18:30:06-05:00"
    assert _text(signature, f"{props}//xades:ClaimedRole") == "supplier"
    assert _text(signature, f"{props}//xades:SigPolicyHash/ds:DigestValue") == (
        "dMoMvtcG5aIzgYo0tIsSQeVJBDnUnfSOfBpxXrmor0Y="
    )
    serial = _text(signature, f"{props}//xades:IssuerSerial/ds:X509SerialNumber")
    assert int(serial) == signer.certificate_info().serial_number


def test_certificate_info_reads_the_nit(signer: XadesSigner) -> None:
    info = signer.certificate_info()
    assert info.nit == ISSUER.nit
    assert info.not_valid_after > datetime.now(UTC)


# ---------------------------------------------------------------------------- (c) CUFE


@pytest.mark.parametrize("name", ORDERS)
def test_cufe_recomputed_from_the_xml_text(name: str, invoices: dict[str, SignedInvoice]) -> None:
    invoice = invoices[name]
    root = _root(invoice)
    amount = re.compile(r"^\d+\.\d{2}$")
    taxes: dict[str, Decimal] = {}
    for total in root.findall("cac:TaxTotal", NS):
        code = _text(total, "cac:TaxSubtotal[1]/cac:TaxCategory/cac:TaxScheme/cbc:ID")
        text = _text(total, "cbc:TaxAmount")
        assert amount.match(text)
        taxes[code] = Decimal(text)
    line_extension = _text(root, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount")
    payable = _text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount")
    assert amount.match(line_extension) and amount.match(payable)
    number = _text(root, "cbc:ID")
    expected = cufe(
        number=number,
        issue_date=_text(root, "cbc:IssueDate"),
        issue_time=_text(root, "cbc:IssueTime"),
        line_extension=Decimal(line_extension),
        taxes=taxes,
        payable=Decimal(payable),
        supplier_nit=_text(
            root, "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"
        ),
        buyer_id=_text(
            root, "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"
        ),
        technical_key=NUMBERING.technical_key,
        environment=_text(root, "cbc:ProfileExecutionID"),
    )
    assert _text(root, "cbc:UUID") == expected == invoice.cufe
    assert _text(root, "cbc:UUID/@schemeName") == "CUFE-SHA384"
    assert _text(root, "cbc:UUID/@schemeID") == "2"
    assert _text(root, ".//sts:QRCode") == invoice.qr_url
    assert invoice.qr_url == (
        f"https://catalogo-vpfe-hab.dian.gov.co/document/searchqr?documentkey={expected}"
    )
    assert _text(root, ".//sts:SoftwareSecurityCode") == software_security_code(
        SOFTWARE.software_id, SOFTWARE.pin, number
    )


@pytest.mark.parametrize("name", ORDERS)
def test_cufe_for_matches_build(name: str, invoices: dict[str, SignedInvoice]) -> None:
    submission = _submission(ORDERS[name], 990000001 + list(ORDERS).index(name))
    assert cufe_for(submission, SETUP) == invoices[name].cufe


def test_building_again_gives_the_same_cufe(
    factory: DianDocumentFactory, invoices: dict[str, SignedInvoice]
) -> None:
    again = factory.build(_submission(SEED, 990000001), datetime(2024, 5, 2, 23, 59, tzinfo=UTC))
    assert again.cufe == invoices["seed"].cufe
    assert again.xml != invoices["seed"].xml  # new signing time, new signature


# -------------------------------------------------------------------------- (d) zip


@pytest.mark.parametrize("name", ORDERS)
def test_zip_holds_one_deflated_entry_named_per_the_anexo(
    name: str, invoices: dict[str, SignedInvoice]
) -> None:
    invoice = invoices[name]
    consecutive = 990000001 + list(ORDERS).index(name)
    stem = f"0900373076000{24}{consecutive:08x}"
    assert invoice.xml_name == f"fv{stem}.xml"
    assert invoice.zip_name == f"z{stem}.zip"
    with zipfile.ZipFile(io.BytesIO(invoice.zip_bytes)) as archive:
        entries = archive.infolist()
        assert [e.filename for e in entries] == [invoice.xml_name]
        assert entries[0].compress_type == zipfile.ZIP_DEFLATED
        assert archive.testzip() is None  # CRC checked
        assert archive.read(invoice.xml_name) == invoice.xml
        # DOS time, Bogotá local, two-second resolution
        assert entries[0].date_time == (2024, 5, 2, 18, 30, 6)


def test_zip_passes_info_zip_integrity_test(
    invoices: dict[str, SignedInvoice], tmp_path: Path
) -> None:
    binary = shutil.which("unzip")
    if binary is None:
        pytest.skip("unzip not installed (apt-get install -y unzip)")
    invoice = invoices["text"]
    archive = tmp_path / invoice.zip_name
    archive.write_bytes(invoice.zip_bytes)
    tested = subprocess.run([binary, "-t", str(archive)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert f"testing: {invoice.xml_name}" in tested.stdout
    listed = subprocess.run([binary, "-Z", "-v", str(archive)], capture_output=True, text=True)
    assert "compression method:                             deflated" in listed.stdout
    extracted = subprocess.run([binary, "-p", str(archive)], capture_output=True)
    assert extracted.stdout == invoice.xml


# ------------------------------------------------------------------------- content


def test_seed_order_totals_tip_and_inc(invoices: dict[str, SignedInvoice]) -> None:
    root = _root(invoices["seed"])
    totals = "cac:LegalMonetaryTotal/cbc:"
    assert _text(root, totals + "LineExtensionAmount") == "20000.00"
    assert _text(root, totals + "TaxExclusiveAmount") == "20000.00"
    assert _text(root, totals + "TaxInclusiveAmount") == "21600.00"
    assert _text(root, totals + "ChargeTotalAmount") == "3000.00"
    assert _text(root, totals + "PayableAmount") == "24600.00"
    assert _text(root, "cac:AllowanceCharge/cbc:ChargeIndicator") == "true"
    assert _text(root, "cac:AllowanceCharge/cbc:Amount") == "3000.00"
    assert _text(root, "cac:AllowanceCharge/cbc:Amount/@currencyID") == "COP"
    assert _text(root, "cac:TaxTotal/cbc:TaxAmount") == "1600.00"
    category = "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/"
    assert _text(root, category + "cbc:Percent") == "8.00"
    assert _text(root, category + "cac:TaxScheme/cbc:ID") == "04"
    assert _text(root, category + "cac:TaxScheme/cbc:Name") == "INC"
    assert _text(root, "cac:PaymentMeans/cbc:ID") == "1"
    assert _text(root, "cac:PaymentMeans/cbc:PaymentMeansCode") == "10"
    assert _text(root, "cbc:LineCountNumeric") == "1"
    assert _text(root, "cbc:IssueDate") == "2024-05-02"
    assert _text(root, "cbc:IssueTime") == "18:30:05-05:00"
    line = "cac:InvoiceLine/"
    assert _text(root, line + "cbc:InvoicedQuantity") == "2.00"
    assert _text(root, line + "cbc:InvoicedQuantity/@unitCode") == "94"
    assert _text(root, line + "cbc:LineExtensionAmount") == "20000.00"
    assert _text(root, line + "cac:TaxTotal/cbc:TaxAmount") == "1600.00"
    assert _text(root, line + "cac:Item/cac:StandardItemIdentification/cbc:ID/@schemeID") == "999"
    assert _text(root, line + "cac:Price/cbc:PriceAmount") == "10000.00"
    customer = "cac:AccountingCustomerParty/"
    assert _text(root, customer + "cbc:AdditionalAccountID") == "2"
    assert _text(root, customer + "cac:Party/cac:PartyTaxScheme/cbc:CompanyID") == "222222222222"
    assert _text(root, customer + "cac:Party/cac:PartyTaxScheme/cbc:CompanyID/@schemeName") == "13"
    assert _text(root, customer + "cac:Party/cac:PartyTaxScheme/cbc:TaxLevelCode") == "R-99-PN"


def test_mixed_order_has_one_tax_total_per_tribute(invoices: dict[str, SignedInvoice]) -> None:
    root = _root(invoices["mixed"])
    by_code = {
        _text(t, "cac:TaxSubtotal[1]/cac:TaxCategory/cac:TaxScheme/cbc:ID"): t
        for t in root.findall("cac:TaxTotal", NS)
    }
    assert sorted(by_code) == ["01", "04"]
    assert _text(by_code["01"], "cbc:TaxAmount") == "5510.00"
    assert _text(by_code["01"], "cac:TaxSubtotal/cbc:TaxableAmount") == "29000.00"
    assert _text(by_code["01"], "cac:TaxSubtotal/cac:TaxCategory/cbc:Percent") == "19.00"
    assert _text(by_code["04"], "cbc:TaxAmount") == "2400.00"
    totals = "cac:LegalMonetaryTotal/cbc:"
    assert _text(root, totals + "LineExtensionAmount") == "62000.00"
    assert _text(root, totals + "TaxExclusiveAmount") == "59000.00"  # the water is not taxed
    assert _text(root, totals + "TaxInclusiveAmount") == "69910.00"
    assert _text(root, totals + "PayableAmount") == "69910.00"
    assert root.find("cac:AllowanceCharge", NS) is None
    codes = [m.text for m in root.findall("cac:PaymentMeans/cbc:PaymentMeansCode", NS)]
    assert codes == ["48", "47"]
    assert _text(root, "cbc:LineCountNumeric") == "4"


def test_fractional_quantity(invoices: dict[str, SignedInvoice]) -> None:
    root = _root(invoices["fractional"])
    assert _text(root, "cac:InvoiceLine/cbc:InvoicedQuantity") == "0.375"
    assert _text(root, "cac:InvoiceLine/cbc:LineExtensionAmount") == "10500.00"
    assert _text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "12495.00"


def test_nit_buyer_gets_its_check_digit(invoices: dict[str, SignedInvoice]) -> None:
    root = _root(invoices["nit_buyer"])
    company = "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"
    assert _text(root, company) == "901210113"
    assert _text(root, company + "/@schemeName") == "31"
    assert _text(root, company + "/@schemeID") == "3"
    assert _text(root, "cac:AccountingCustomerParty/cbc:AdditionalAccountID") == "1"
    party = "cac:AccountingCustomerParty/cac:Party/"
    assert _text(root, party + "cac:PartyName/cbc:Name") == "Eventos Andinos S.A.S."
    assert _text(root, party + "cac:Contact/cbc:ElectronicMail") == "compras@example.co"


def test_special_characters_survive_the_round_trip(invoices: dict[str, SignedInvoice]) -> None:
    root = _root(invoices["text"])
    assert _text(root, "cac:InvoiceLine/cac:Item/cbc:Description") == NASTY_TEXT
    name = "cac:AccountingCustomerParty/cac:Party/cac:PartyName/cbc:Name"
    assert _text(root, name) == 'José "Pepe" Muñoz & Hijos <test> 😀'
    supplier = "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:RegistrationName"
    assert _text(root, supplier) == ISSUER.legal_name
    assert b"&amp; &lt;fresco&gt;" in invoices["text"].xml


# -------------------------------------------------------------------------- errors


def test_no_number_is_a_numbering_error(factory: DianDocumentFactory) -> None:
    submission = Submission(OrderKey(ISSUER.nit, "X"), parse_order(SEED), ISSUED_AT, number=None)
    with pytest.raises(NumberingError):
        factory.build(submission, SIGNED_AT)
    with pytest.raises(NumberingError):
        cufe_for(submission, SETUP)


@pytest.mark.parametrize(
    "number",
    [DocumentNumber("SETP", 995000001), DocumentNumber("SETP", 1), DocumentNumber("FE", 990000001)],
)
def test_number_outside_the_range_is_a_numbering_error(
    factory: DianDocumentFactory, number: DocumentNumber
) -> None:
    submission = Submission(OrderKey(ISSUER.nit, "X"), parse_order(SEED), ISSUED_AT, number=number)
    with pytest.raises(NumberingError):
        factory.build(submission, SIGNED_AT)


def test_issue_date_outside_the_resolution_is_a_numbering_error(
    factory: DianDocumentFactory,
) -> None:
    # 2030-01-20 00:30 UTC is still 2030-01-19 in Bogotá: inside; one day later: outside.
    inside = Submission(
        OrderKey(ISSUER.nit, "X"),
        parse_order(SEED),
        datetime(2030, 1, 20, 0, 30, tzinfo=UTC),
        number=DocumentNumber("SETP", 990000001),
    )
    factory.build(inside, SIGNED_AT)
    outside = Submission(
        OrderKey(ISSUER.nit, "X"),
        parse_order(SEED),
        datetime(2030, 1, 20, 5, 30, tzinfo=UTC),
        number=DocumentNumber("SETP", 990000001),
    )
    with pytest.raises(NumberingError):
        factory.build(outside, SIGNED_AT)


def test_unknown_tax_name_is_an_invalid_order(factory: DianDocumentFactory) -> None:
    data = copy.deepcopy(SEED)
    data["items"][0]["impuestos"][0]["nombre"] = "IMPUESTO RARO"
    order = Order.model_validate(data)  # past the schema, not through the business rules
    submission = Submission(
        OrderKey(ISSUER.nit, "X"), order, ISSUED_AT, DocumentNumber("SETP", 990000001)
    )
    with pytest.raises(InvalidOrder) as caught:
        factory.build(submission, SIGNED_AT)
    assert caught.value.errors[0].rule == "unknown_tax"


def test_control_characters_are_an_invalid_order(factory: DianDocumentFactory) -> None:
    data = copy.deepcopy(SEED)
    data["items"][0]["descripcion"] = "Cerveza\x07"
    with pytest.raises(InvalidOrder):  # refused when the order is accepted ...
        _submission(data)
    # ... and, should such text ever reach the builder, refused there too
    good = _submission(copy.deepcopy(SEED))
    item = good.order.items[0].model_copy(update={"descripcion": "Cerveza\x07"})
    order = good.order.model_copy(update={"items": [item]})
    with pytest.raises(InvalidOrder):
        factory.build(replace(good, order=order), SIGNED_AT)


def test_unknown_payment_method_is_an_invalid_order_for_build_and_cufe_for(
    factory: DianDocumentFactory,
) -> None:
    data = copy.deepcopy(SEED)
    data["metodos_pago"][0]["tipo"] = "Trueque"
    order = Order.model_validate(data)
    submission = Submission(
        OrderKey(ISSUER.nit, "X"), order, ISSUED_AT, DocumentNumber("SETP", 990000001)
    )
    with pytest.raises(InvalidOrder):
        factory.build(submission, SIGNED_AT)
    with pytest.raises(InvalidOrder):
        cufe_for(submission, SETUP)
