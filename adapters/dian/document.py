"""From a submission to the signed, zipped document DIAN receives: an invoice (01), a POS
document (20), or a note correcting one (credit 91 / debit 92, adjustment 94 / 93; built by
`adapters.dian.note`).

`DianDocumentFactory.build` = UBL builder + CUFE/CUDE + XAdES signature + zip (one deflated
entry), named per the Anexo convention (`fv` for invoices, `ds` for equivalent documents as
the Anexo DE names them, `nc` / `nd` for credit / debit notes, `z` for the zip; + NIT(10) +
`000` + yy + consecutive as 8 hex digits; DIAN does not enforce the names). `cufe_for`
gives the same CUFE/CUDE without building or signing, for status queries after an unknown
outcome.

Which software, range and register a document uses comes from the submission and the
issuer's `DianSetup`: the software registered for the kind's family (its id, PIN and
environment), the range the number came from (`submission.numbering`, else the setup's range
for the kind) and the till that sold it (`submission.register`, else the setup's default).
A range whose technical key is stored sealed is opened here, with the setup's master key
(`secrets`), only for the CUFE: a key that cannot be opened keeps the document waiting.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from adapters.dian.note import build_note, note_parts
from adapters.dian.pos_extensions import PointOfSale
from adapters.dian.signer import BOGOTA, XadesSigner
from adapters.dian.ubl import (
    InvoiceHeader,
    build_invoice,
    document_key,
    invoice_figures,
    invoice_header,
)
from adapters.secretbox import SecretBox, SecretsKeyError, range_label
from domain.documents import DocumentKind, Register, SoftwareFamily, SoftwareMaker
from domain.errors import GatewayMisconfigured, GatewayUnavailable, NumberingError
from domain.issuer import IssuerProfile, NumberingRange, SoftwareRegistration
from domain.ports import Submission

PROVIDER_CODE = "000"  # own software
FILE_PREFIXES = {
    DocumentKind.INVOICE: "fv",
    DocumentKind.POS: "ds",
    DocumentKind.CREDIT_NOTE: "nc",
    DocumentKind.DEBIT_NOTE: "nd",
    DocumentKind.POS_CREDIT_NOTE: "nc",
    DocumentKind.POS_DEBIT_NOTE: "nd",
}


@dataclass(frozen=True)
class DianSetup:
    """One issuer as DIAN knows it: identity, the software registered per family, the
    software maker (POS extension), and the defaults for submissions that do not carry
    their own: a numbering range per kind and the till POS documents name.

    `software` and `ranges` are keyed by family and kind; a kind whose family has no
    registration cannot be issued (`GatewayMisconfigured`). `secrets` (SECRETS_KEY) opens
    the technical keys of ranges stored sealed.
    """

    issuer: IssuerProfile
    software: Mapping[SoftwareFamily, SoftwareRegistration]
    maker: SoftwareMaker
    ranges: Mapping[DocumentKind, NumberingRange] = field(default_factory=dict)
    register: Register | None = None
    secrets: SecretBox | None = None

    def software_for(self, kind: DocumentKind) -> SoftwareRegistration:
        found = self.software.get(kind.family)
        if found is None:
            raise GatewayMisconfigured(
                f"no DIAN software is registered for the {kind.family} family (document {kind})"
            )
        return found

    def numbering_for(self, submission: Submission) -> NumberingRange:
        """The range the submission's number came from, else the default range of its kind."""
        numbering = submission.numbering or self.ranges.get(submission.kind)
        if numbering is None:
            raise NumberingError(f"no numbering range for documents of type {submission.kind}")
        if numbering.kind is not submission.kind:
            raise NumberingError(
                f"range {numbering.prefix} (resolution {numbering.resolution}) numbers "
                f"documents of type {numbering.kind}, not {submission.kind}"
            )
        return self._opened(numbering)

    def _opened(self, numbering: NumberingRange) -> NumberingRange:
        """`numbering` with its technical key opened; GatewayUnavailable (the document waits
        for the deployment to be fixed) when SECRETS_KEY is missing or cannot open it."""
        if not numbering.sealed_key:
            return numbering
        label = range_label(self.issuer.nit, numbering)
        try:
            if self.secrets is None:
                raise SecretsKeyError(f"SECRETS_KEY is not set: it is needed to open {label}")
            key = self.secrets.open(label, numbering.sealed_key).decode("utf-8")
        except SecretsKeyError as exc:
            raise GatewayUnavailable(f"not sent: technical key of range {label}: {exc}") from None
        return replace(numbering, technical_key=key, sealed_key="")

    def point_of_sale(self, submission: Submission) -> PointOfSale | None:
        """Maker and till for a POS document (None for other kinds)."""
        if submission.kind is not DocumentKind.POS:
            return None
        register = submission.register or self.register
        if register is None:
            raise GatewayMisconfigured(
                f"order {submission.key}: a POS document names its register and none is set"
            )
        return PointOfSale(self.maker, register)


_ZIP_VERSION = 20  # 2.0: deflate
_ZIP_DEFLATE = 8


@dataclass(frozen=True)
class SignedInvoice:
    """A signed document ready for SendBillSync: send `zip_bytes` as `zip_name`. `cufe` is
    the document key: the CUFE of an invoice, the CUDE of a POS document or a note."""

    cufe: str
    number: str
    xml: bytes
    xml_name: str
    zip_name: str
    zip_bytes: bytes
    qr_url: str
    kind: DocumentKind = DocumentKind.INVOICE


def document_names(
    issuer_nit: str, header: InvoiceHeader, kind: DocumentKind = DocumentKind.INVOICE
) -> tuple[str, str]:
    """(`fv...xml` or `ds...xml`, `z...zip`) for this document."""
    if not issuer_nit.isdigit() or len(issuer_nit) > 10:
        raise ValueError(f"issuer NIT must be up to 10 digits, got {issuer_nit!r}")
    stem = f"{int(issuer_nit):010d}{PROVIDER_CODE}{header.issue_date[2:4]}{header.consecutive:08x}"
    return f"{FILE_PREFIXES[kind]}{stem}.xml", f"z{stem}.zip"


def zip_single(name: str, data: bytes, when: datetime) -> bytes:
    """A zip holding exactly one deflate-compressed entry (DIAN refuses stored entries).

    Written directly from the zip specification (APPNOTE 4.3: local header, data, central
    directory, end record), without data descriptor or extra fields: for one entry in
    memory this takes half the time `zipfile` needs. The entry's time is Bogotá local time.
    """
    encoded = name.encode("ascii")
    local = when.astimezone(BOGOTA)
    dos_time = (local.hour << 11) | (local.minute << 5) | (local.second // 2)
    dos_date = ((local.year - 1980) << 9) | (local.month << 5) | local.day
    # Deflate is what DIAN requires, not how hard; level 1 is several times faster than 6.
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(data) + compressor.flush()
    common = struct.pack(
        "<HHHHHIII",
        _ZIP_VERSION,
        0,  # flags: no data descriptor, ASCII name
        _ZIP_DEFLATE,
        dos_time,
        dos_date,
        zlib.crc32(data),
        len(body),
        len(data),
    )
    local_header = b"PK\x03\x04" + common + struct.pack("<HH", len(encoded), 0) + encoded
    central = (
        b"PK\x01\x02"
        + struct.pack("<H", _ZIP_VERSION)
        + common
        + struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, 0)
        + encoded
    )
    offset = len(local_header) + len(body)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central), offset, 0)
    return local_header + body + central + end


def cufe_for(submission: Submission, setup: DianSetup) -> str:
    """The CUFE/CUDE `build` writes for this submission, without building or signing.

    Raises `NumberingError` / `InvalidOrder` exactly as `build` does.
    """
    software = setup.software_for(submission.kind)
    numbering = setup.numbering_for(submission)
    if submission.kind.is_note:
        return note_parts(submission, setup.issuer, software, numbering)[-1]
    header = invoice_header(submission, software, numbering)
    figures = invoice_figures(submission.order)
    return document_key(
        submission.kind, header, figures, submission.order, setup.issuer, software, numbering
    )


class DianDocumentFactory:
    """Builds signed documents of every kind for one issuer (`DianSetup`) and certificate."""

    def __init__(self, setup: DianSetup, signer: XadesSigner) -> None:
        self.setup = setup
        self._signer = signer

    def build(self, submission: Submission, signing_time: datetime | None = None) -> SignedInvoice:
        """Raises `NumberingError` (no number, outside the range or its dates) or `InvalidOrder`."""
        setup = self.setup
        software = setup.software_for(submission.kind)
        numbering = setup.numbering_for(submission)
        if submission.kind.is_note:
            note = build_note(submission, setup.issuer, software, numbering)
            unsigned_xml, header, key, url = note.xml, note.header, note.cude, note.qr_url
        else:
            unsigned = build_invoice(
                submission, setup.issuer, software, numbering, setup.point_of_sale(submission)
            )
            unsigned_xml, header = unsigned.xml, unsigned.header
            key, url = unsigned.cufe, unsigned.qr_url
        when = signing_time or datetime.now(UTC)
        xml = self._signer.sign(unsigned_xml, when)
        xml_name, zip_name = document_names(setup.issuer.nit, header, submission.kind)
        return SignedInvoice(
            cufe=key,
            number=header.number,
            xml=xml,
            xml_name=xml_name,
            zip_name=zip_name,
            zip_bytes=zip_single(xml_name, xml, when),
            qr_url=url,
            kind=submission.kind,
        )
