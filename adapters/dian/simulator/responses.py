"""SOAP 1.2 answers shaped like DIAN's WCF service: envelopes, DianResponse, faults."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WCF = "http://wcf.dian.colombia"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
DC = "http://schemas.datacontract.org/2004/07/"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
ACTION_BASE = "http://wcf.dian.colombia/IWcfDianCustomerServices/"
FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"
SECURITY_REASON = "An error occurred when verifying security for the message."


@dataclass
class DianAnswer:
    """One DianResponse: what SendBillSync, GetStatus and GetStatusZip return."""

    status_code: str | None
    status_description: str = ""
    status_message: str = ""
    is_valid: bool = False
    errors: list[str] = field(default_factory=list)
    xml_base64_bytes: bytes | None = None
    xml_document_key: str | None = None
    xml_file_name: str | None = None


def _nil(parent: etree._Element, tag: str) -> None:
    etree.SubElement(parent, tag, {f"{{{XSI}}}nil": "true"})


def _text(parent: etree._Element, tag: str, value: str | None) -> None:
    if value is None:
        _nil(parent, tag)
    else:
        etree.SubElement(parent, tag).text = value


def dian_response(parent: etree._Element, tag: str, answer: DianAnswer) -> etree._Element:
    ns = DC + "DianResponse"
    node = etree.SubElement(parent, tag, nsmap={"b": ns, "i": XSI})
    if answer.errors:
        errors = etree.SubElement(node, f"{{{ns}}}ErrorMessage", nsmap={"c": ARRAYS})
        for message in answer.errors:
            etree.SubElement(errors, f"{{{ARRAYS}}}string").text = message
    else:
        etree.SubElement(node, f"{{{ns}}}ErrorMessage", nsmap={"c": ARRAYS})
    etree.SubElement(node, f"{{{ns}}}IsValid").text = "true" if answer.is_valid else "false"
    _text(node, f"{{{ns}}}StatusCode", answer.status_code)
    _text(node, f"{{{ns}}}StatusDescription", answer.status_description)
    _text(node, f"{{{ns}}}StatusMessage", answer.status_message)
    encoded = (
        base64.b64encode(answer.xml_base64_bytes).decode()
        if answer.xml_base64_bytes is not None
        else None
    )
    _text(node, f"{{{ns}}}XmlBase64Bytes", encoded)
    _nil(node, f"{{{ns}}}XmlBytes")
    _text(node, f"{{{ns}}}XmlDocumentKey", answer.xml_document_key)
    _text(node, f"{{{ns}}}XmlFileName", answer.xml_file_name)
    return node


def envelope(operation: str) -> tuple[etree._Element, etree._Element]:
    """An answer envelope for `operation`; returns (root, `<OperationResponse>`)."""
    root = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"s": SOAP12, "a": WSA})
    header = etree.SubElement(root, f"{{{SOAP12}}}Header")
    action = etree.SubElement(header, f"{{{WSA}}}Action", {f"{{{SOAP12}}}mustUnderstand": "1"})
    action.text = f"{ACTION_BASE}{operation}Response"
    body = etree.SubElement(root, f"{{{SOAP12}}}Body")
    response = etree.SubElement(body, f"{{{WCF}}}{operation}Response", nsmap={None: WCF})  # type: ignore[dict-item]
    return root, response


def single(operation: str, answer: DianAnswer) -> bytes:
    root, response = envelope(operation)
    dian_response(response, f"{{{WCF}}}{operation}Result", answer)
    return to_bytes(root)


def many(operation: str, answers: list[DianAnswer]) -> bytes:
    root, response = envelope(operation)
    ns = DC + "DianResponse"
    result = etree.SubElement(response, f"{{{WCF}}}{operation}Result", nsmap={"b": ns, "i": XSI})
    for answer in answers:
        dian_response(result, f"{{{ns}}}DianResponse", answer)
    return to_bytes(root)


def upload(operation: str, zip_key: str | None, refused: list[tuple[str, str]]) -> bytes:
    """UploadDocumentResponse; `refused` holds (xml file name, message) pairs."""
    root, response = envelope(operation)
    ns, item_ns = DC + "UploadDocumentResponse", DC + "XmlParamsResponseTrackId"
    result = etree.SubElement(response, f"{{{WCF}}}{operation}Result", nsmap={"b": ns, "i": XSI})
    if refused:
        errors = etree.SubElement(result, f"{{{ns}}}ErrorMessageList", nsmap={"c": item_ns})
        for name, message in refused:
            item = etree.SubElement(errors, f"{{{item_ns}}}XmlParamsResponseTrackId")
            _nil(item, f"{{{item_ns}}}DocumentKey")
            _text(item, f"{{{item_ns}}}ProcessedMessage", message)
            _nil(item, f"{{{item_ns}}}SenderCode")
            etree.SubElement(item, f"{{{item_ns}}}Success").text = "false"
            _text(item, f"{{{item_ns}}}XmlFileName", name)
    else:
        _nil(result, f"{{{ns}}}ErrorMessageList")
    _text(result, f"{{{ns}}}ZipKey", zip_key)
    return to_bytes(root)


def event(code: str, message: str, xml: bytes | None) -> bytes:
    root, response = envelope("GetXmlByDocumentKey")
    ns = DC + "EventResponse"
    result = etree.SubElement(
        response, f"{{{WCF}}}GetXmlByDocumentKeyResult", nsmap={"b": ns, "i": XSI}
    )
    _text(result, f"{{{ns}}}Code", code)
    _text(result, f"{{{ns}}}Message", message)
    _text(result, f"{{{ns}}}ValidationDate", datetime.now(UTC).strftime("%Y-%m-%d"))
    _text(result, f"{{{ns}}}XmlBytesBase64", base64.b64encode(xml).decode() if xml else None)
    return to_bytes(root)


def numbering(ranges: list[dict[str, str]]) -> bytes:
    root, response = envelope("GetNumberingRange")
    ns, item_ns = DC + "NumberRangeResponseList", DC + "NumberRangeResponse"
    result = etree.SubElement(
        response, f"{{{WCF}}}GetNumberingRangeResult", nsmap={"b": ns, "i": XSI}
    )
    _text(result, f"{{{ns}}}OperationCode", "100")
    _text(result, f"{{{ns}}}OperationDescription", "Acción completada OK.")
    listed = etree.SubElement(result, f"{{{ns}}}ResponseList", nsmap={"c": item_ns})
    fields = (
        "ResolutionNumber",
        "ResolutionDate",
        "Prefix",
        "FromNumber",
        "ToNumber",
        "ValidDateFrom",
        "ValidDateTo",
        "TechnicalKey",
    )
    for item in ranges:
        node = etree.SubElement(listed, f"{{{item_ns}}}NumberRangeResponse")
        for name in fields:
            etree.SubElement(node, f"{{{item_ns}}}{name}").text = item[name]
    return to_bytes(root)


def security_fault() -> bytes:
    """The fault DIAN's WCF stack sends when WS-Security does not verify."""
    root = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"s": SOAP12, "a": WSA})
    header = etree.SubElement(root, f"{{{SOAP12}}}Header")
    action = etree.SubElement(header, f"{{{WSA}}}Action", {f"{{{SOAP12}}}mustUnderstand": "1"})
    action.text = FAULT_ACTION
    body = etree.SubElement(root, f"{{{SOAP12}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP12}}}Fault")
    code = etree.SubElement(fault, f"{{{SOAP12}}}Code")
    etree.SubElement(code, f"{{{SOAP12}}}Value").text = "s:Sender"
    subcode = etree.SubElement(code, f"{{{SOAP12}}}Subcode")
    value = etree.SubElement(subcode, f"{{{SOAP12}}}Value", nsmap={"a": WSSE})
    value.text = "a:InvalidSecurity"
    reason = etree.SubElement(fault, f"{{{SOAP12}}}Reason")
    text = etree.SubElement(reason, f"{{{SOAP12}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    text.text = SECURITY_REASON
    return to_bytes(root)


def sender_fault(reason: str) -> bytes:
    return _fault("s:Sender", reason)


def receiver_fault(reason: str) -> bytes:
    return _fault("s:Receiver", reason)


def _fault(code_value: str, reason: str) -> bytes:
    root = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"s": SOAP12})
    body = etree.SubElement(root, f"{{{SOAP12}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP12}}}Fault")
    code = etree.SubElement(fault, f"{{{SOAP12}}}Code")
    etree.SubElement(code, f"{{{SOAP12}}}Value").text = code_value
    text = etree.SubElement(etree.SubElement(fault, f"{{{SOAP12}}}Reason"), f"{{{SOAP12}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    text.text = reason
    return to_bytes(root)


def to_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


XXE_DOCTYPE = '<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
LAUGHS_DOCTYPE = (
    '<!DOCTYPE s:Envelope [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


def hostile(answer: bytes, kind: str) -> bytes:
    """The same answer with an external entity (`xxe`) or entity expansion (`laughs`)."""
    doctype, reference = (XXE_DOCTYPE, "&xxe;") if kind == "xxe" else (LAUGHS_DOCTYPE, "&lol9;")
    head, sep, rest = answer.partition(b"?>")
    marker = b"<s:Header>"
    rest = rest.replace(marker, marker + f"<a:RelatesTo>{reference}</a:RelatesTo>".encode(), 1)
    return head + sep + doctype.encode() + rest
