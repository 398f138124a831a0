"""From a submission to the signed, zipped factura electrónica DIAN receives.

`DianDocumentFactory.build` = UBL builder + CUFE + XAdES signature + zip (one deflated entry),
named per the Anexo convention (`fv`/`z` + NIT(10) + `000` + yy + consecutive as 8 hex digits).
`cufe_for` gives the same CUFE without building or signing, for status queries after an
unknown outcome.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.dian.signer import BOGOTA, XadesSigner
from adapters.dian.ubl import (
    InvoiceHeader,
    build_invoice,
    invoice_figures,
    invoice_header,
    invoice_key,
)
from domain.issuer import IssuerProfile, NumberingRange, SoftwareRegistration
from domain.ports import Submission

PROVIDER_CODE = "000"  # own software
_ZIP_VERSION = 20  # 2.0: deflate
_ZIP_DEFLATE = 8


@dataclass(frozen=True)
class SignedInvoice:
    """A signed invoice ready for SendBillSync: send `zip_bytes` as `zip_name`."""

    cufe: str
    number: str
    xml: bytes
    xml_name: str
    zip_name: str
    zip_bytes: bytes
    qr_url: str


def document_names(issuer_nit: str, header: InvoiceHeader) -> tuple[str, str]:
    """(`fv...xml`, `z...zip`) for this invoice."""
    if not issuer_nit.isdigit() or len(issuer_nit) > 10:
        raise ValueError(f"issuer NIT must be up to 10 digits, got {issuer_nit!r}")
    stem = f"{int(issuer_nit):010d}{PROVIDER_CODE}{header.issue_date[2:4]}{header.consecutive:08x}"
    return f"fv{stem}.xml", f"z{stem}.zip"


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


def cufe_for(
    submission: Submission,
    issuer: IssuerProfile,
    software: SoftwareRegistration,
    numbering: NumberingRange,
) -> str:
    """The CUFE `build` writes for this submission, without building or signing.

    Raises `NumberingError` / `InvalidOrder` exactly as `build` does.
    """
    header = invoice_header(submission, software, numbering)
    figures = invoice_figures(submission.order)
    return invoice_key(header, figures, submission.order, issuer, numbering)


class DianDocumentFactory:
    """Builds signed invoices for one issuer, software registration and numbering range."""

    def __init__(
        self,
        issuer: IssuerProfile,
        software: SoftwareRegistration,
        numbering: NumberingRange,
        signer: XadesSigner,
    ) -> None:
        self._issuer = issuer
        self._software = software
        self._numbering = numbering
        self._signer = signer

    def build(self, submission: Submission, signing_time: datetime | None = None) -> SignedInvoice:
        """Raises `NumberingError` (no number, outside the range or its dates) or `InvalidOrder`."""
        unsigned = build_invoice(submission, self._issuer, self._software, self._numbering)
        when = signing_time or datetime.now(UTC)
        xml = self._signer.sign(unsigned.xml, when)
        xml_name, zip_name = document_names(self._issuer.nit, unsigned.header)
        return SignedInvoice(
            cufe=unsigned.cufe,
            number=unsigned.header.number,
            xml=xml,
            xml_name=xml_name,
            zip_name=zip_name,
            zip_bytes=zip_single(xml_name, xml, when),
            qr_url=unsigned.qr_url,
        )
