"""Signed POS equivalent documents (20) checked by tools that share no code with the builder:
the OASIS UBL 2.1 Invoice schema (the POS extensions included), DIAN's structures schema for
`sts:DianExtensions`, the signature verified by `xmlsec1` and by signxml's XAdES verifier on
the exact bytes, and the zip named as the Anexo DE names equivalent documents (`ds`)."""

from __future__ import annotations

import copy
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import pytest
from lxml import etree

from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory, SignedInvoice
from adapters.dian.signer import XadesSigner
from adapters.dian.simulator.state import DEFAULT_UBL_XSD
from tests.integration.test_dian_document import TOLERATED, _signxml
from tests.pos_data import LUNCH, NIT, SETUP, SIGNED_AT, pos_submission
from tests.xmlsec import xmlsec1_verify

NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
PASSWORD = "clave de pruebas"
BUSY: dict[str, Any] = {
    "id_pedido_origen": "BARRA-12",
    "adquirente": {
        "tipo_documento": "31",
        "numero_documento": "901210113",
        "nombre": 'Eventos "Andinos" & Cía <S.A.S.>',
    },
    "items": [
        {
            "descripcion": "Cerveza artesanal",
            "cantidad": "3",
            "precio_unitario": "925.93",
            "impuestos": [{"nombre": "INC", "tasa": "0.08", "monto": "222.22"}],
            "total_item": "3000",
        },
        {
            "descripcion": "Jugo de maracuyá",
            "cantidad": "2",
            "precio_unitario": "4500",
            "impuestos": [{"nombre": "IVA", "tasa": "0.19", "monto": "1710"}],
            "total_item": "10710",
        },
    ],
    "subtotal": "11777.78",
    "propina_voluntaria": "1234",
    "impuestos_totales": "1932.22",
    "total_factura": "14944",
    "metodos_pago": [{"tipo": "Tarjeta Débito", "monto": "14944"}],
    "cajero": "Sofía",
}
ORDERS = {"lunch": LUNCH, "busy": BUSY}


@pytest.fixture(scope="module")
def signer() -> XadesSigner:
    return XadesSigner.from_pkcs12(make_test_pkcs12(NIT, PASSWORD), PASSWORD)


@pytest.fixture(scope="module")
def documents(signer: XadesSigner) -> dict[str, SignedInvoice]:
    factory = DianDocumentFactory(SETUP, signer)
    return {
        name: factory.build(pos_submission(data, 41 + n), SIGNED_AT)
        for n, (name, data) in enumerate(ORDERS.items())
    }


def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(Path(DEFAULT_UBL_XSD) / "maindoc" / name)))


@pytest.mark.parametrize("name", ORDERS)
def test_the_signed_pos_document_is_a_valid_ubl_invoice(
    name: str, documents: dict[str, SignedInvoice]
) -> None:
    schema = _schema("UBL-Invoice-2.1.xsd")
    root = etree.fromstring(documents[name].xml)
    assert schema.validate(etree.ElementTree(root)), str(schema.error_log)
    assert root.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "20"
    # and the schema does look inside: a POS document that is not an Invoice is refused
    broken = copy.deepcopy(root)
    number = broken.find("cbc:ID", NS)
    assert number is not None
    number.addnext(etree.Element("{" + NS["cbc"] + "}NotInUbl"))
    assert not schema.validate(etree.ElementTree(broken))


def test_its_dian_extensions_match_dians_schema_but_the_known_divergence(
    documents: dict[str, SignedInvoice],
) -> None:
    schema = _schema("DIAN_UBL_Structures.xsd")
    block = etree.fromstring(documents["lunch"].xml).find(".//sts:DianExtensions", NS)
    assert block is not None
    schema.validate(etree.ElementTree(copy.deepcopy(block)))
    entries = cast(Iterable[etree._LogEntry], schema.error_log)
    assert [e.message for e in entries if not TOLERATED.match(e.message)] == []


@pytest.mark.parametrize("name", ORDERS)
def test_xmlsec1_and_signxml_verify_the_pos_signature(
    name: str, documents: dict[str, SignedInvoice], signer: XadesSigner, tmp_path: Path
) -> None:
    xml = documents[name].xml
    result = xmlsec1_verify(xml, signer.certificate_pem(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 3/3" in result.stdout + result.stderr
    _signxml(xml, signer.certificate_pem())
    slots = etree.fromstring(xml).findall(
        "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent", NS
    )
    assert len(slots) == 5 and slots[-1][0].tag == "{" + NS["ds"] + "}Signature"
    # an accent in an extension's Name is covered by the signature like any other text
    tampered = xml.replace("UbicaciónCaja".encode(), b"UbicacionCaja")
    assert tampered != xml
    assert xmlsec1_verify(tampered, signer.certificate_pem(), tmp_path).returncode != 0


def test_the_zip_holds_one_ds_entry(documents: dict[str, SignedInvoice]) -> None:
    document = documents["busy"]
    stem = f"0900373076000{24}{42:08x}"
    assert (document.xml_name, document.zip_name) == (f"ds{stem}.xml", f"z{stem}.zip")
    with zipfile.ZipFile(io.BytesIO(document.zip_bytes)) as archive:
        assert [e.filename for e in archive.infolist()] == [document.xml_name]
        assert archive.read(document.xml_name) == document.xml
    assert document.number == "EPOS42" and len(document.cufe) == 96
