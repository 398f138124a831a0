"""The AttachedDocument: the container a buyer receives (never sent to DIAN).

    AttachedDocument (UBL 2.1, CustomizationID "Documentos adjuntos")
    ├── ext:UBLExtensions: one extension, the container's own XAdES signature
    ├── ProfileID, ProfileExecutionID, ID, IssueDate/Time, DocumentType, ParentDocumentID
    ├── SenderParty / ReceiverParty: the document's supplier and customer PartyTaxScheme
    ├── Attachment/ExternalReference/Description: the signed document, as CDATA
    └── ParentDocumentLineReference: DIAN's ApplicationResponse (as CDATA) and its
        verification (ValidationResultCode 02, DIAN's validation date and time)

Everything is read from the two XML files kept with the document, so the container says only
what the document and DIAN's answer say. It is signed like the document (`XadesSigner`).
"""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from adapters.dian.signer import XadesSigner

ATTACHED = "urn:oasis:names:specification:ubl:schema:xsd:AttachedDocument-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
XADES141 = "http://uri.etsi.org/01903/v1.4.1#"
DIAN_NAME = "Unidad Especial Dirección de Impuestos y Aduanas Nacionales"
VALIDATED = "02"

# (ProfileID, DocumentType) by the document's root and type code.
_CONTAINERS = {
    ("Invoice", "01"): ("Factura Electrónica de Venta", "Contenedor de Factura Electrónica"),
    ("Invoice", "20"): ("Documento Equivalente POS", "Contenedor de Documento Equivalente"),
    ("CreditNote", "91"): ("Nota de Crédito de Venta", "Contenedor de Nota de Crédito"),
    ("DebitNote", "92"): ("Nota de Débito de Venta", "Contenedor de Nota de Débito"),
    ("CreditNote", "94"): (
        "Nota de Ajuste al Documento Equivalente",
        "Contenedor de Nota de Ajuste al Documento Equivalente",
    ),
    ("DebitNote", "93"): (
        "Nota de Ajuste al Documento Equivalente",
        "Contenedor de Nota de Ajuste al Documento Equivalente",
    ),
}


class AttachmentError(Exception):
    """The files cannot make a container (not XML, or lacking what it must say)."""


def _parse(xml: bytes, what: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise AttachmentError(f"the {what} is not well-formed XML: {exc}") from exc


def _text(root: etree._Element, path: str, what: str) -> str:
    found = root.findtext(path, namespaces={"cac": CAC, "cbc": CBC})
    if not found:
        raise AttachmentError(f"the {what} has no {path}")
    return found


def _cbc(parent: etree._Element, tag: str, text: str, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{CBC}}}{tag}", attrs)
    node.text = text
    return node


def _cdata(parent: etree._Element, xml: bytes) -> None:
    text = xml.decode("utf-8")
    node = _cbc(parent, "Description", "")
    # A CDATA section cannot hold "]]>"; such a document is carried as escaped text, which
    # says the same to any XML reader.
    node.text = etree.CDATA(text) if "]]>" not in text else text


def _type_code(document: etree._Element) -> tuple[str, str]:
    root = etree.QName(document).localname
    code = (
        document.findtext(f"{{{CBC}}}InvoiceTypeCode")
        or document.findtext(f"{{{CBC}}}CreditNoteTypeCode")
        or ""
    )
    if root == "DebitNote":
        customization = document.findtext(f"{{{CBC}}}CustomizationID") or ""
        code = "93" if customization.startswith("9") else "92"
    if root == "CreditNote" and not code:
        code = "91"
    return root, code


def _party(parent: etree._Element, tag: str, document: etree._Element, side: str) -> None:
    scheme = document.find(f"cac:{side}/cac:Party/cac:PartyTaxScheme", {"cac": CAC})
    if scheme is None:
        raise AttachmentError(f"the document has no {side}/Party/PartyTaxScheme")
    holder = etree.SubElement(parent, f"{{{CAC}}}{tag}")
    copied = etree.SubElement(holder, f"{{{CAC}}}PartyTaxScheme")
    for child in scheme:
        if etree.QName(child).localname in ("RegistrationName", "CompanyID", "TaxLevelCode"):
            copied.append(_copy(child))
    tax = scheme.find(f"{{{CAC}}}TaxScheme")
    if tax is None:
        raise AttachmentError(f"the document's {side} has no TaxScheme")
    copied.append(_copy(tax))


def _copy(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def build_attached_document(
    document_xml: bytes,
    application_response: bytes,
    signer: XadesSigner,
    signing_time: datetime,
) -> bytes:
    """The signed AttachedDocument carrying `document_xml` (the signed document as DIAN
    validated it) and `application_response` (DIAN's answer, ResponseCode 02)."""
    document = _parse(document_xml, "document")
    answer = _parse(application_response, "ApplicationResponse")
    root_name, code = _type_code(document)
    profile, container = _CONTAINERS.get(
        (root_name, code), ("Factura Electrónica de Venta", "Contenedor de Factura Electrónica")
    )
    number = _text(document, "cbc:ID", "document")
    key = document.find(f"{{{CBC}}}UUID")
    if key is None or not key.text:
        raise AttachmentError("the document has no cbc:UUID (CUFE/CUDE)")
    response_code = _text(answer, "cac:DocumentResponse/cac:Response/cbc:ResponseCode", "answer")
    if response_code != VALIDATED:
        raise AttachmentError(f"DIAN's answer says {response_code}, not 02 (validated)")

    root = etree.Element(
        f"{{{ATTACHED}}}AttachedDocument",
        nsmap={
            None: ATTACHED,  # type: ignore[dict-item]
            "cac": CAC,
            "cbc": CBC,
            "ext": EXT,
            "ds": DS,
            "xades": XADES,
            "xades141": XADES141,
        },
    )
    extension = etree.SubElement(
        etree.SubElement(root, f"{{{EXT}}}UBLExtensions"), f"{{{EXT}}}UBLExtension"
    )
    etree.SubElement(extension, f"{{{EXT}}}ExtensionContent")
    _cbc(root, "UBLVersionID", "UBL 2.1")
    _cbc(root, "CustomizationID", "Documentos adjuntos")
    _cbc(root, "ProfileID", profile)
    _cbc(root, "ProfileExecutionID", document.findtext(f"{{{CBC}}}ProfileExecutionID") or "2")
    _cbc(root, "ID", number)
    _cbc(root, "IssueDate", _text(document, "cbc:IssueDate", "document"))
    _cbc(root, "IssueTime", _text(document, "cbc:IssueTime", "document"))
    _cbc(root, "DocumentType", container)
    _cbc(root, "ParentDocumentID", number)
    _party(root, "SenderParty", document, "AccountingSupplierParty")
    _party(root, "ReceiverParty", document, "AccountingCustomerParty")
    reference = etree.SubElement(
        etree.SubElement(root, f"{{{CAC}}}Attachment"), f"{{{CAC}}}ExternalReference"
    )
    _cbc(reference, "MimeCode", "text/xml")
    _cbc(reference, "EncodingCode", "UTF-8")
    _cdata(reference, document_xml)

    line = etree.SubElement(root, f"{{{CAC}}}ParentDocumentLineReference")
    _cbc(line, "LineID", "1")
    parent = etree.SubElement(line, f"{{{CAC}}}DocumentReference")
    _cbc(parent, "ID", number)
    _cbc(parent, "UUID", key.text, schemeName=key.get("schemeName", "CUFE-SHA384"))
    _cbc(parent, "IssueDate", _text(document, "cbc:IssueDate", "document"))
    _cbc(parent, "DocumentType", "ApplicationResponse")
    held = etree.SubElement(
        etree.SubElement(parent, f"{{{CAC}}}Attachment"), f"{{{CAC}}}ExternalReference"
    )
    _cbc(held, "MimeCode", "text/xml")
    _cbc(held, "EncodingCode", "UTF-8")
    _cdata(held, application_response)
    verification = etree.SubElement(parent, f"{{{CAC}}}ResultOfVerification")
    _cbc(verification, "ValidatorID", DIAN_NAME)
    _cbc(verification, "ValidationResultCode", VALIDATED)
    _cbc(verification, "ValidationDate", _text(answer, "cbc:IssueDate", "answer"))
    _cbc(verification, "ValidationTime", _text(answer, "cbc:IssueTime", "answer"))
    return signer.sign(root, signing_time)
