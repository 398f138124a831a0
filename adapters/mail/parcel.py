"""The buyer's copy as one ZIP: the PDF and the signed AttachedDocument, named as the
Anexo names them (`ad…xml`, `ad…pdf` inside `z…zip`), and the subject DIAN's practice uses:
`NIT;Issuer name;Number;Document type code;Issuer name`.

Everything is read from the two files kept with the document (the signed document and
DIAN's ApplicationResponse), so the copy says what DIAN validated.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from lxml import etree

from adapters.dian.attached import AttachmentError, build_attached_document
from adapters.dian.signer import XadesSigner
from domain.delivery import CopyUnavailable

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
SUPPLIER = "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme"
NS = {"cbc": CBC, "cac": CAC}
PdfRenderer = Callable[[bytes, Literal["ticket", "a4"]], bytes]


@dataclass(frozen=True)
class Parcel:
    subject: str
    zip_name: str
    zip_bytes: bytes


@dataclass(frozen=True)
class _Facts:
    nit: str
    name: str
    number: str
    type_code: str
    year: str


def _facts(document_xml: bytes) -> _Facts:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(document_xml, parser)
    root_name = etree.QName(root).localname
    code = root.findtext("cbc:InvoiceTypeCode", namespaces=NS) or root.findtext(
        "cbc:CreditNoteTypeCode", namespaces=NS
    )
    if not code:
        code = {"CreditNote": "91", "DebitNote": "92"}.get(root_name, "01")
    return _Facts(
        nit=root.findtext(f"{SUPPLIER}/cbc:CompanyID", namespaces=NS) or "",
        name=root.findtext(f"{SUPPLIER}/cbc:RegistrationName", namespaces=NS) or "",
        number=root.findtext("cbc:ID", namespaces=NS) or "",
        type_code=code,
        year=(root.findtext("cbc:IssueDate", namespaces=NS) or "0000")[2:4],
    )


def _subject_text(text: str) -> str:
    """A subject field: one line, without the separator."""
    return " ".join(text.replace(";", ",").split())


def subject(facts: _Facts) -> str:
    fields = (facts.nit, facts.name, facts.number, facts.type_code, facts.name)
    return ";".join(_subject_text(f) for f in fields)


def _stem(facts: _Facts) -> str:
    """`{nit:010}000{yy}{consecutive:08X}` (the Anexo's naming, provider code 000)."""
    digits = "".join(c for c in facts.number if c.isdigit()) or "0"
    return f"{facts.nit.zfill(10)}000{facts.year}{int(digits) % 2**32:08X}"


class ParcelMaker:
    """Makes the ZIP of one document's copy; the container is signed with `signer`."""

    def __init__(self, signer: XadesSigner, render_pdf: PdfRenderer, layout: str = "a4") -> None:
        self._signer = signer
        self._render_pdf = render_pdf
        self._layout: Literal["ticket", "a4"] = "ticket" if layout == "ticket" else "a4"

    def make(self, files: Mapping[str, bytes], now: datetime) -> Parcel:
        document, answer = files.get("document"), files.get("application_response")
        if not document or not answer:
            missing = "the signed document" if not document else "DIAN's ApplicationResponse"
            raise CopyUnavailable(f"{missing} is not kept with this document")
        try:
            attached = build_attached_document(document, answer, self._signer, now)
            facts = _facts(document)
        except (AttachmentError, etree.XMLSyntaxError) as exc:
            raise CopyUnavailable(f"the AttachedDocument cannot be made: {exc}") from exc
        pdf = self._render_pdf(document, self._layout)
        stem = _stem(facts)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_entry(f"ad{stem}.xml", now), attached)
            archive.writestr(_entry(f"ad{stem}.pdf", now), pdf)
        return Parcel(subject(facts), f"z{stem}.zip", buffer.getvalue())


def _entry(name: str, now: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=now.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
