"""An issued document's files as the authority keeps them, and the printed copy made from them.

The signed XML is asked of whoever holds it: DIAN (`GetXmlByDocumentKey` by CUFE/CUDE, each
family's endpoint in turn) or Factus (its XML download); the graphic representation is
rendered from that XML, never from the order. Errors: `NoDocumentFile` when there is nothing to
give (not issued, a gateway that keeps no files, the authority has none); the gateway's own
errors (`GatewayUnavailable`, `OutcomeUnknown`) when it cannot be asked now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

from domain.cufe import qr_url
from domain.documents import SoftwareFamily
from domain.store import DocumentRecord, State
from worker.settings import Settings

if TYPE_CHECKING:
    from adapters.dian.signer import XadesSigner


class NoDocumentFile(Exception):
    """The document has no file to give: the message says why."""


@dataclass(frozen=True)
class DocumentFile:
    name: str  # a bare file name with its extension
    content: bytes = field(repr=False)


def file_name(name: str, extension: str) -> str:
    """`name` as a bare file name ending in `.extension` (Factus names both of a bill's
    files alike, without one, so they would overwrite each other)."""
    bare = PurePath(name.replace("\\", "/")).name or "document"
    return bare if bare.lower().endswith(f".{extension}") else f"{bare}.{extension}"


def check_issued(record: DocumentRecord) -> None:
    if record.state is not State.SUCCESS:
        raise NoDocumentFile(f"order {record.key} has no issued document (state {record.state})")
    if record.gateway not in ("factus", "dian"):
        raise NoDocumentFile(f"the {record.gateway} gateway keeps no documents")


def signed_xml(
    settings: Settings, record: DocumentRecord, signer: XadesSigner | None = None
) -> DocumentFile:
    """The signed XML of an issued document, from the authority that validated it (`signer`:
    a stored issuer's certificate for DIAN's WS-Security; None: DIAN__CERT_PATH)."""
    check_issued(record)
    if record.gateway == "factus":
        from adapters.factus.gateway import FactusGateway
        from worker.wiring import build_factus_gateway

        gateway = build_factus_gateway(settings)
        assert isinstance(gateway, FactusGateway)
        try:
            got = gateway.client.download_xml(record.references["number"], _resource(record))
        finally:
            gateway.close()
        return DocumentFile(file_name(got.file_name, "xml"), got.content)
    return _dian_xml(settings, record.references, signer)


def factus_pdf(settings: Settings, record: DocumentRecord) -> DocumentFile:
    """The PDF Factus made of its bill."""
    from adapters.factus.gateway import FactusGateway
    from worker.wiring import build_factus_gateway

    gateway = build_factus_gateway(settings)
    assert isinstance(gateway, FactusGateway)
    try:
        got = gateway.client.download_pdf(record.references["number"], _resource(record))
    finally:
        gateway.close()
    return DocumentFile(file_name(got.file_name, "pdf"), got.content)


def _resource(record: DocumentRecord) -> str:
    """Where Factus keeps the document: its bills, or its credit or debit notes."""
    from adapters.factus.notes import family_of

    return family_of(record.kind).resource if record.kind.is_note else "bills"


def _dian_xml(settings: Settings, refs: dict[str, str], signer: XadesSigner | None) -> DocumentFile:
    from worker.wiring import dian_parts

    key = refs["cufe"]
    parts = dian_parts(settings, signer)
    try:
        # The families may be in different environments (endpoints): ask each one.
        for client in parts.distinct_clients():
            answer = client.get_xml_by_document_key(key)
            if answer.code == "100" and answer.xml is not None:
                break
    finally:
        parts.close()
    if answer.code != "100" or answer.xml is None:
        raise NoDocumentFile(f"DIAN has no XML for CUFE/CUDE {key}: {answer.code} {answer.message}")
    return DocumentFile(file_name(refs.get("number") or key[:12], "xml"), answer.xml)


def qr_link(settings: Settings, record: DocumentRecord) -> str | None:
    """The QR's URL (DIAN's catalogue page of the CUFE/CUDE) of an issued document: as the
    authority's answer gave it, or made from the key in the environment of its family."""
    refs = record.references
    if refs.get("qr"):
        return refs["qr"]
    if record.state is not State.SUCCESS or record.gateway != "dian" or not refs.get("cufe"):
        return None
    pos = record.kind.family is SoftwareFamily.POS
    environment = settings.dian.pos_environment if pos else settings.dian.environment
    return qr_url(refs["cufe"], environment)


def representation(
    settings: Settings, record: DocumentRecord, layout: str, signer: XadesSigner | None = None
) -> DocumentFile:
    """The graphic representation (`ticket` or `a4`) rendered from the signed XML."""
    from adapters.representation.pdf import render_pdf

    xml = signed_xml(settings, record, signer)
    pdf = render_pdf(xml.content, "a4" if layout == "a4" else "ticket")
    stem = xml.name.removesuffix(".xml")
    return DocumentFile(f"{stem}-{layout}.pdf", pdf)
