"""The signature written into the document's text (`XadesSigner.sign` given bytes).

The splice is a shortcut: signing the bytes must give what signing the parsed tree gives
(the same refusals, the same document around the signature, a signature in its namespace
in the last slot that an independent verifier accepts), and the shortcut must be taken
exactly for the documents where it is safe (`tests.splice_documents.splices`), among them
every invoice the builder writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml.xades import XAdESVerifier  # type: ignore[attr-defined]

from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.signer import _EMPTY_SLOT, SigningError, XadesSigner, _last_empty_slot
from tests.hostile_text import PINNED
from tests.splice_documents import (
    DS,
    EMPTY_SLOTS,
    EXT,
    NOT_SLOTS,
    XADES,
    Extension,
    Layout,
    Trailer,
    can_be_signed,
    layouts,
    splices,
)

SIGNED_AT = datetime(2024, 5, 2, 23, 30, 6, tzinfo=UTC)
BOGOTA = timezone(timedelta(hours=-5))
SLOT_PATH = f"{{{EXT}}}UBLExtensions/{{{EXT}}}UBLExtension/{{{EXT}}}ExtensionContent"
PLAIN = Layout("utf-8", "none", "ext", DS, XADES, "", (Extension("self-closed", None),), ())


@pytest.fixture(scope="module")
def signer() -> XadesSigner:
    return XadesSigner.from_pkcs12(make_test_pkcs12("900373076", "x"), "x")


def _parse(xml: bytes) -> etree._Element:
    return etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))


def _outcome(sign: Callable[[], bytes]) -> bytes | None:
    try:
        return sign()
    except SigningError:
        return None


def _without_signature(root: etree._Element) -> bytes:
    """The document with its last slot emptied, canonical."""
    slot = root.findall(SLOT_PATH)[-1]
    for child in list(slot):
        slot.remove(child)
    slot.text = None
    # Canonical form of the root element alone (the signer keeps nothing before it).
    return etree.tostring(_parse(etree.tostring(root)), method="c14n")


def assert_signed_in_place(xml: bytes, original: bytes, signer: XadesSigner) -> None:
    """One ds:Signature, ours, alone in the last slot, the rest of the document as it was,
    and a signature an independent XAdES verifier accepts with our certificate."""
    root = _parse(xml)
    slot = root.findall(SLOT_PATH)[-1]
    assert len(slot) == 1
    signature = slot[0]
    assert signature.tag == f"{{{DS}}}Signature"
    signature_id = signature.get("Id") or ""
    assert signature_id.startswith("xmldsig-")
    properties = signature.find(
        f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}SignedProperties"
    )
    assert properties is not None
    assert properties.get("Id") == f"{signature_id}-signedprops"
    signing_time = properties.findtext(f".//{{{XADES}}}SigningTime")
    assert signing_time == SIGNED_AT.astimezone(BOGOTA).isoformat(timespec="seconds")
    signatures = len(root.findall(f".//{{{DS}}}Signature"))
    assert _without_signature(root) == _without_signature(_parse(original))
    if signatures == 1:  # verifiers take the first signature of a document
        XAdESVerifier().verify(
            xml, x509_cert=signer.certificate_pem().decode("ascii"), expect_references=3
        )


@settings(PINNED, max_examples=150)
@example(layout=PLAIN)
@example(
    layout=Layout(
        "none",
        "none",
        "ext",
        DS,
        XADES,
        "",
        (Extension("signed", None),),
        (Trailer("comment", "<ext:ExtensionContent/>"),),
    )
)
@given(layout=layouts)
def test_signing_the_bytes_gives_what_signing_the_tree_gives(
    layout: Layout, signer: XadesSigner
) -> None:
    document = layout.to_bytes()
    by_text = _outcome(lambda: signer.sign(document, SIGNED_AT))
    by_tree = _outcome(lambda: signer.sign(_parse(document), SIGNED_AT))
    assert (by_text is None) == (by_tree is None) == (not can_be_signed(layout))
    if by_text is None or by_tree is None:
        return
    assert_signed_in_place(by_text, document, signer)
    assert _without_signature(_parse(by_text)) == _without_signature(_parse(by_tree))


@settings(PINNED, max_examples=300)
@given(layout=layouts)
def test_the_text_is_spliced_exactly_where_that_is_safe(
    layout: Layout, signer: XadesSigner
) -> None:
    document = layout.to_bytes()
    signature_id = "xmldsig-00000000-0000-4000-8000-000000000000"
    root = signer._spliced(document, signature_id, "2024-05-02T18:30:06-05:00")
    assert (root is not None) == splices(layout)
    if root is not None:
        placed = root.findall(SLOT_PATH)[-1][0]
        assert placed.get("Id") == signature_id
        declares = b'<ds:Signature xmlns:ds="' in etree.tostring(root)
        # Where the document declares the prefixes, the signature borrows them.
        at_root = layout.root_ds == DS and layout.root_xades == XADES
        assert declares == (not at_root)


@pytest.mark.parametrize("prefix", ["ext", "ubl-ext.2", ""])
@pytest.mark.parametrize("spelling", list(EMPTY_SLOTS))
@pytest.mark.parametrize("near_miss", [None, *NOT_SLOTS])
def test_every_spelling_of_an_empty_slot_is_spliced(
    prefix: str, spelling: str, near_miss: str | None, signer: XadesSigner
) -> None:
    trailers = (Trailer("comment", near_miss),) if near_miss else ()
    layout = replace(
        PLAIN, ext_prefix=prefix, extensions=(Extension(spelling, None),), trailers=trailers
    )
    document = layout.to_bytes()
    assert splices(layout)
    assert signer._spliced(document, "xmldsig-1", "2024-05-02T18:30:06-05:00") is not None
    assert_signed_in_place(signer.sign(document, SIGNED_AT), document, signer)


# A soup of the pieces the slot finder looks at: searching from the end must find the
# last of the slots a search from the start finds.
_pieces = st.sampled_from(
    [
        "<",
        ">",
        "/>",
        "</",
        " ",
        "\n",
        "ext:",
        "e.x-1:",
        ":",
        "x",
        "ExtensionContent",
        "<ext:ExtensionContent/>",
        "<ExtensionContent></ExtensionContent>",
        "</ext:ExtensionContent>",
        "<ext:ExtensionContent>",
    ]
)


@settings(PINNED, max_examples=500)
@example("<ExtensionContent/>")
@example("<ext:ExtensionContent/>ExtensionContent")
@example("<a:<ext:ExtensionContent></ext:ExtensionContent >")
@given(st.lists(_pieces, max_size=12).map("".join))
def test_the_slot_found_from_the_end_is_the_last_one_in_the_text(soup: str) -> None:
    text = soup.encode()
    every = list(_EMPTY_SLOT.finditer(text))
    found = _last_empty_slot(text)
    if not every:
        assert found is None
    else:
        assert found is not None
        assert (found.span(), found.group(1)) == (every[-1].span(), every[-1].group(1))


class _Floating(tzinfo):
    """A tzinfo that knows no offset: the time it qualifies is still naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


@pytest.mark.parametrize("when", [datetime(2024, 5, 2), datetime(2024, 5, 2, tzinfo=_Floating())])
def test_a_signing_time_without_offset_is_refused(when: datetime, signer: XadesSigner) -> None:
    with pytest.raises(SigningError, match=r"^signing_time must be timezone-aware$"):
        signer.sign(PLAIN.to_bytes(), when)


def test_the_signing_time_is_written_in_bogota_time(signer: XadesSigner) -> None:
    xml = signer.sign(PLAIN.to_bytes(), datetime(2024, 5, 3, 2, 0, 1, tzinfo=UTC))
    written = _parse(xml).findtext(f".//{{{XADES}}}SigningTime")
    assert written == "2024-05-02T21:00:01-05:00"


@pytest.mark.parametrize("entity", ["SYSTEM", "internal"])
def test_signing_expands_no_entity_a_document_declares(
    entity: str, signer: XadesSigner, tmp_path: Path
) -> None:
    """Neither a file named by the document (XXE) nor an internal entity (the seed of an
    entity-expansion bomb) is read into the signed document, whichever path signs it."""
    secret = tmp_path / "secret.txt"
    secret.write_text("PIN 12345")
    value = f'SYSTEM "{secret.as_uri()}"' if entity == "SYSTEM" else '"PIN 12345"'
    document = (
        f"<!DOCTYPE Invoice [<!ENTITY leak {value}>]>"
        f'<Invoice xmlns="{EXT}"><UBLExtensions><UBLExtension><ExtensionContent/>'
        "</UBLExtension></UBLExtensions><Note>&leak;</Note></Invoice>"
    ).encode()
    try:
        xml = signer.sign(document, SIGNED_AT)
    except (SigningError, etree.XMLSyntaxError):
        return  # refused: nothing expanded either
    assert b"12345" not in xml
