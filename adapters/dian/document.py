"""From a submission to the signed, zipped factura electrónica DIAN receives.

`DianDocumentFactory.build` = UBL builder + CUFE + XAdES signature + zip (one deflated entry),
named per the Anexo convention (`fv`/`z` + NIT(10) + `000` + yy + consecutive as 8 hex digits).
`cufe_for` gives the same CUFE without building or signing, for status queries after an
unknown outcome.
"""

from __future__ import annotations

import io
import zipfile
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
    """A zip holding exactly one deflate-compressed entry (DIAN refuses stored entries)."""
    local = when.astimezone(BOGOTA)
    info = zipfile.ZipInfo(name, date_time=local.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    # Deflate is what DIAN requires, not how hard; level 1 is several times faster than 6.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr(info, data)
    return buffer.getvalue()


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
        xml = self._signer.sign(unsigned.root, when)
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
