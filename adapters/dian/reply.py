"""DIAN's `DianResponse`, read straight from the SOAP answer that carries it.

zeep reads an answer by walking its schema types (0.15-0.3 ms per answer); SendBillSync's
answer, on the path of every document, has one known shape (dian-response.xsd):

    soap:Envelope / soap:Body / SendBillSyncResponse / SendBillSyncResult
        ErrorMessage (strings), IsValid, StatusCode, StatusDescription, StatusMessage,
        XmlBase64Bytes, XmlBytes, XmlDocumentKey, XmlFileName   (each optional, in this order)

`read_dian_response` reads exactly that shape with the parser settings zeep uses and gives the
values zeep would give; for anything else (a fault, a DTD, an element out of place, a value
that does not decode) it returns None and the caller lets zeep read the answer, so every
error is raised and translated as before.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from lxml import etree

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WCF = "http://wcf.dian.colombia"
DIAN_RESPONSE = "http://schemas.datacontract.org/2004/07/DianResponse"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

FIELDS = (
    "ErrorMessage",
    "IsValid",
    "StatusCode",
    "StatusDescription",
    "StatusMessage",
    "XmlBase64Bytes",
    "XmlBytes",
    "XmlDocumentKey",
    "XmlFileName",
)
_POSITION = {f"{{{DIAN_RESPONSE}}}{name}": n for n, name in enumerate(FIELDS)}
_STRING = f"{{{ARRAYS}}}string"


@dataclass(frozen=True)
class DianResponse:
    """DianResponse as DIAN sends it; `xml_base64_bytes` is already decoded once."""

    status_code: str
    status_description: str
    status_message: str
    is_valid: bool
    error_messages: tuple[str, ...]
    xml_base64_bytes: bytes | None
    xml_document_key: str
    xml_file_name: str


class _Unexpected(Exception):
    """Not the known shape: zeep reads it."""


def _parser() -> etree.XMLParser:
    # zeep's `parse_xml` settings (strict, no entities, no huge trees), without its resolver:
    # nothing is loaded, and an answer with a DTD goes to zeep, which refuses it.
    return etree.XMLParser(
        remove_comments=True,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )


def _only_child(parent: etree._Element, tag: str) -> etree._Element:
    if len(parent) != 1 or parent[0].tag != tag or NIL in parent[0].attrib:
        raise _Unexpected
    return parent[0]


def _value(element: etree._Element) -> str | None:
    """A leaf's text as zeep gives it (None when empty or nil); only xsi:nil may be set."""
    if len(element) or any(name != NIL for name in element.attrib):
        raise _Unexpected
    return element.text


def _strings(element: etree._Element) -> tuple[str, ...]:
    messages = []
    for item in element:
        if item.tag != _STRING:
            raise _Unexpected
        messages.append(_value(item) or "")
    return tuple(messages)


def read_dian_response(content: bytes, operation: str) -> DianResponse | None:
    """The `<operation>Result` of this answer, or None when zeep must read it."""
    try:
        root = etree.fromstring(content, parser=_parser())
        doctype = getattr(root.getroottree().docinfo, "doctype", None)
        if doctype or root.tag != f"{{{SOAP12}}}Envelope":
            return None
        bodies = [child for child in root if child.tag == f"{{{SOAP12}}}Body"]
        if len(bodies) != 1:
            return None
        answer = _only_child(bodies[0], f"{{{WCF}}}{operation}Response")
        result = _only_child(answer, f"{{{WCF}}}{operation}Result")
        return _dian_response(result)
    except (_Unexpected, etree.XMLSyntaxError, ValueError):
        return None


def _dian_response(result: etree._Element) -> DianResponse:
    values: dict[str, str | None] = {}
    errors: tuple[str, ...] = ()
    last = -1
    for child in result:
        position = _POSITION.get(child.tag) if isinstance(child.tag, str) else None
        if position is None or position <= last:
            raise _Unexpected  # unknown, repeated or out of order
        last = position
        if position == 0:
            errors = _strings(child)
        else:
            values[FIELDS[position]] = _value(child)
    encoded = values.get("XmlBase64Bytes")
    return DianResponse(
        status_code=(values.get("StatusCode") or "").strip(),
        status_description=values.get("StatusDescription") or "",
        status_message=values.get("StatusMessage") or "",
        is_valid=(values.get("IsValid") or "").strip() in ("true", "1"),
        error_messages=errors,
        # zeep decodes base64Binary leniently (b64decode without validate); so does this
        xml_base64_bytes=base64.b64decode(encoded) if encoded else None,
        xml_document_key=values.get("XmlDocumentKey") or "",
        xml_file_name=values.get("XmlFileName") or "",
    )
