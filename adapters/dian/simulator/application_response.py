"""DIAN's ApplicationResponse for a validated document, signed as DIAN signs it.

SendBillSync and GetStatus carry it base64-encoded in `XmlBase64Bytes`: ResponseCode 02
("Documento validado por la DIAN"), the document's number and CUFE/CUDE, one LineResponse per
notification, and DIAN's XAdES signature (ClaimedRole `supplier`). The simulator signs with its
own self-signed certificate (NIT 800197268), made once per process.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta, timezone

from lxml import etree

from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.signer import XadesSigner
from adapters.dian.simulator.checks import Document

AR = "urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
DIAN_NIT, DIAN_DV = "800197268", "4"
DIAN_NAME = "Unidad Especial Dirección de Impuestos y Aduanas Nacionales"
VALIDATED = "Documento validado por la DIAN"
BOGOTA = timezone(timedelta(hours=-5))

_signer: XadesSigner | None = None
_signer_lock = threading.Lock()


def dian_signer() -> XadesSigner:
    """The simulated DIAN's own signing certificate (one per process)."""
    global _signer
    with _signer_lock:
        if _signer is None:
            data = make_test_pkcs12(DIAN_NIT, "dian", common_name="DIAN simulada")
            _signer = XadesSigner.from_pkcs12(data, "dian", role="supplier")
        return _signer


def _cbc(parent: etree._Element, tag: str, text: str, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{CBC}}}{tag}", attrs)
    node.text = text
    return node


def _party(parent: etree._Element, tag: str, name: str, nit: str, dv: str | None) -> None:
    scheme = etree.SubElement(
        etree.SubElement(parent, f"{{{CAC}}}{tag}"), f"{{{CAC}}}PartyTaxScheme"
    )
    _cbc(scheme, "RegistrationName", name)
    attrs = {"schemeAgencyID": "195", "schemeID": dv} if dv else {"schemeAgencyID": "195"}
    _cbc(scheme, "CompanyID", nit, **attrs)
    tax = etree.SubElement(scheme, f"{{{CAC}}}TaxScheme")
    _cbc(tax, "ID", "01")
    _cbc(tax, "Name", "IVA")


def _supplier_name(tree: etree._Element) -> str:
    found = tree.findtext(
        f"{{{CAC}}}AccountingSupplierParty/{{{CAC}}}Party/{{{CAC}}}PartyTaxScheme/"
        f"{{{CBC}}}RegistrationName"
    )
    return found or ""


def signed_application_response(
    document: Document, notifications: list[str], now: datetime | None = None
) -> bytes:
    """The ApplicationResponse DIAN returns for `document` once validated, signed."""
    when = (now or datetime.now(UTC)).astimezone(BOGOTA)
    environment = document.tree.findtext(f"{{{CBC}}}ProfileExecutionID") or "2"
    key = f"{document.cufe}|{document.number}|{when.isoformat()}"
    root = etree.Element(
        f"{{{AR}}}ApplicationResponse",
        nsmap={None: AR, "cac": CAC, "cbc": CBC, "ext": EXT, "ds": DS, "xades": XADES},  # type: ignore[dict-item]
    )
    extension = etree.SubElement(
        etree.SubElement(root, f"{{{EXT}}}UBLExtensions"), f"{{{EXT}}}UBLExtension"
    )
    etree.SubElement(extension, f"{{{EXT}}}ExtensionContent")
    _cbc(root, "UBLVersionID", "UBL 2.1")
    _cbc(root, "CustomizationID", "1")
    _cbc(root, "ProfileID", "DIAN 2.1")
    _cbc(root, "ProfileExecutionID", environment)
    _cbc(root, "ID", str(int(hashlib.sha256(key.encode()).hexdigest()[:12], 16)))
    _cbc(root, "UUID", hashlib.sha384(key.encode()).hexdigest(), schemeName="CUDE-SHA384")
    _cbc(root, "IssueDate", when.strftime("%Y-%m-%d"))
    _cbc(root, "IssueTime", when.strftime("%H:%M:%S-05:00"))
    _party(root, "SenderParty", DIAN_NAME, DIAN_NIT, DIAN_DV)
    _party(root, "ReceiverParty", _supplier_name(document.tree), document.supplier_nit, None)
    response = etree.SubElement(root, f"{{{CAC}}}DocumentResponse")
    status = etree.SubElement(response, f"{{{CAC}}}Response")
    _cbc(status, "ResponseCode", "02")
    _cbc(status, "Description", VALIDATED)
    reference = etree.SubElement(response, f"{{{CAC}}}DocumentReference")
    _cbc(reference, "ID", document.number)
    scheme = "CUDE-SHA384" if document.type_code not in ("01", "02", "03", "04") else "CUFE-SHA384"
    _cbc(reference, "UUID", document.cufe, schemeName=scheme)
    for line_no, text in enumerate(notifications or [VALIDATED], start=1):
        line = etree.SubElement(response, f"{{{CAC}}}LineResponse")
        _cbc(etree.SubElement(line, f"{{{CAC}}}LineReference"), "LineID", str(line_no))
        answer = etree.SubElement(line, f"{{{CAC}}}Response")
        code, _, said = text.partition(", ")
        _cbc(answer, "ResponseCode", code.removeprefix("Regla: ").strip() or "0000")
        _cbc(answer, "Description", said or text)
    return dian_signer().sign(root, when)
