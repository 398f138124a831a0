"""The AttachedDocument a buyer receives: schema-valid against UBL-AttachedDocument-2.1,
signed like the document (verified by `xmlsec1` on the exact bytes), carrying the signed
document and DIAN's signed ApplicationResponse (as the simulator answers it) in CDATA."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.dian.attached import AttachmentError, build_attached_document
from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory
from adapters.dian.signer import XadesSigner
from adapters.dian.simulator.application_response import dian_signer, signed_application_response
from adapters.dian.simulator.checks import Document
from domain.order import parse_order
from domain.ports import DocumentNumber, OrderKey, Submission
from tests.integration.test_dian_document import ISSUER, NASTY, NIT_BUYER, SETUP, xsd_dir
from tests.xmlsec import xmlsec1_verify

__all__ = ["xsd_dir"]
NS = {
    "at": "urn:oasis:names:specification:ubl:schema:xsd:AttachedDocument-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
ISSUED_AT = datetime(2024, 5, 2, 23, 30, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def signer() -> XadesSigner:
    return XadesSigner.from_pkcs12(make_test_pkcs12(ISSUER.nit, "x"), "x")


def _pair(signer: XadesSigner, data: dict[str, Any]) -> tuple[bytes, bytes]:
    order = parse_order(data)
    submission = Submission(
        key=OrderKey(ISSUER.nit, order.id_pedido_origen),
        order=order,
        issued_at=ISSUED_AT,
        number=DocumentNumber("SETP", 990000007),
    )
    signed = DianDocumentFactory(SETUP, signer).build(submission, signing_time=ISSUED_AT)
    tree = etree.fromstring(signed.xml)
    document = Document(
        signed.xml, signed.xml_name, signed.number, signed.cufe, ISSUER.nit, tree, "01"
    )
    notes = [
        "Regla: FAJ43b, Notificación: Nombre informado No corresponde al registrado en el RUT."
    ]
    return signed.xml, signed_application_response(document, notes)


@pytest.fixture(scope="module", params=["nit_buyer", "text"])
def attached(request: pytest.FixtureRequest, signer: XadesSigner) -> tuple[bytes, bytes, bytes]:
    data = NIT_BUYER if request.param == "nit_buyer" else NASTY
    document, answer = _pair(signer, data)
    container = build_attached_document(document, answer, signer, ISSUED_AT)
    return container, document, answer


def test_schema_valid_against_ubl_attached_document(
    attached: tuple[bytes, bytes, bytes], xsd_dir: Path
) -> None:
    schema = etree.XMLSchema(etree.parse(str(xsd_dir / "maindoc" / "UBL-AttachedDocument-2.1.xsd")))
    container = etree.fromstring(attached[0])
    assert schema.validate(container), [e.message for e in schema.error_log]  # type: ignore[attr-defined]


def test_the_application_response_is_schema_valid(
    attached: tuple[bytes, bytes, bytes], xsd_dir: Path
) -> None:
    path = xsd_dir / "maindoc" / "UBL-ApplicationResponse-2.1.xsd"
    schema = etree.XMLSchema(etree.parse(str(path)))
    answer = etree.fromstring(attached[2])
    assert schema.validate(answer), [e.message for e in schema.error_log]  # type: ignore[attr-defined]


def test_xmlsec1_verifies_the_container_and_dians_answer(
    attached: tuple[bytes, bytes, bytes], signer: XadesSigner, tmp_path: Path
) -> None:
    result = xmlsec1_verify(attached[0], signer.certificate_pem(), tmp_path)
    assert result.returncode == 0, result.stderr
    answer = xmlsec1_verify(attached[2], dian_signer().certificate_pem(), tmp_path)
    assert answer.returncode == 0, answer.stderr


def test_a_changed_container_no_longer_verifies(
    attached: tuple[bytes, bytes, bytes], signer: XadesSigner, tmp_path: Path
) -> None:
    tampered = attached[0].replace(b"<cbc:ValidationResultCode>02", b"<cbc:ValidationResultCode>04")
    assert tampered != attached[0]
    assert xmlsec1_verify(tampered, signer.certificate_pem(), tmp_path).returncode != 0


def test_carries_the_signed_document_and_dians_answer_as_cdata(
    attached: tuple[bytes, bytes, bytes],
) -> None:
    container, document, answer = attached
    assert b"<cbc:Description><![CDATA[" + document + b"]]></cbc:Description>" in container
    assert b"<![CDATA[" + answer + b"]]>" in container
    root = etree.fromstring(container)
    descriptions = root.findall(".//cac:ExternalReference/cbc:Description", NS)
    assert [d.text.encode() for d in descriptions] == [document, answer]  # type: ignore[union-attr]


def test_says_what_the_document_and_the_answer_say(attached: tuple[bytes, bytes, bytes]) -> None:
    container, document, _ = attached
    root, invoice = etree.fromstring(container), etree.fromstring(document)
    assert root.findtext("cbc:CustomizationID", namespaces=NS) == "Documentos adjuntos"
    assert root.findtext("cbc:ProfileID", namespaces=NS) == "Factura Electrónica de Venta"
    assert root.findtext("cbc:ProfileExecutionID", namespaces=NS) == "2"
    assert root.findtext("cbc:DocumentType", namespaces=NS) == "Contenedor de Factura Electrónica"
    assert root.findtext("cbc:ParentDocumentID", namespaces=NS) == "SETP990000007"
    sender = root.findtext("cac:SenderParty/cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS)
    assert sender == ISSUER.nit
    receiver = root.findtext("cac:ReceiverParty/cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS)
    buyer = invoice.findtext(
        "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS
    )
    assert receiver == buyer
    line = root.find("cac:ParentDocumentLineReference/cac:DocumentReference", NS)
    assert line is not None
    assert line.findtext("cbc:DocumentType", namespaces=NS) == "ApplicationResponse"
    assert line.findtext("cbc:UUID", namespaces=NS) == invoice.findtext("cbc:UUID", namespaces=NS)
    code = line.findtext("cac:ResultOfVerification/cbc:ValidationResultCode", namespaces=NS)
    assert code == "02"
    assert len(root.findall(".//{*}UBLExtension")) == 1


def test_an_answer_that_is_not_a_validation_is_refused(
    signer: XadesSigner, attached: tuple[bytes, bytes, bytes]
) -> None:
    _, document, answer = attached
    refused = answer.replace(b"<cbc:ResponseCode>02<", b"<cbc:ResponseCode>04<")
    with pytest.raises(AttachmentError, match="04"):
        build_attached_document(document, refused, signer, ISSUED_AT)
