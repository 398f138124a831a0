"""Unsigned documents that test where and how the signer splices the signature in, as a
hypothesis strategy, each with what the splice must do with it.

A `Layout` is written out as bytes: an optional XML declaration (UTF-8 or Latin-1), a
prolog and an epilog (comments, processing instructions, a DOCTYPE; look-alikes among
them), a root declaring (or not) the `ds`/`xades` prefixes, one to three `UBLExtension`s
whose `ExtensionContent` is empty in one of several spellings or already holds something,
namespace prefixes rebound on the way, and after the extensions look-alike slots in
comments, CDATA sections and processing instructions.

`splices(layout)` says whether the signature may be written into the text (the fast path):
it must be exactly when the document is UTF-8 and holds nothing beside its root, the last
slot of the tree is empty and spelled as an empty element in the bytes, no look-alike comes
after it, and the `ds`/`xades` prefixes the signature would borrow are the signature's own
where it lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from hypothesis import strategies as st

from tests.hostile_text import NOT_IN_XML, hostile_text

INV = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
OTHER = "urn:example:not-the-signature"

DECLARATIONS = {
    "none": "",
    "utf-8": '<?xml version="1.0" encoding="UTF-8"?>\n',
    "utf8-spaced": "<?xml version='1.0' encoding = 'utf8' ?>",
    "no-encoding": '<?xml version="1.0"?>\n',
    "latin-1": '<?xml version="1.0" encoding="ISO-8859-1"?>\n',
    "latin-1-spaced": "<?xml version='1.0' encoding = 'iso-8859-1'?>",
}
PROLOGS = {
    "none": "",
    "comment-slot": "<!-- <ext:ExtensionContent/> -->\n",
    "comment-root": f'<!-- <Invoice xmlns:ds="{DS}" xmlns:xades="{XADES}"> -->\n',
    "pi-slot": "<?note <ext:ExtensionContent/>?>\n",
    "doctype": "<!DOCTYPE Invoice>\n",
}
EPILOGS = ("", "<!-- fin -->", "\n<?note fin?>\n")
# How the last ExtensionContent is spelled; `{p}` is the extension prefix with its colon.
EMPTY_SLOTS = {
    "self-closed": "<{p}ExtensionContent/>",
    "self-closed-space": "<{p}ExtensionContent />",
    "pair": "<{p}ExtensionContent></{p}ExtensionContent>",
    "pair-blank": "<{p}ExtensionContent>\n\t </{p}ExtensionContent >",
}
FULL_SLOTS = {
    "nbsp": "<{p}ExtensionContent>\u00a0</{p}ExtensionContent>",  # empty to the tree only
    "text": "<{p}ExtensionContent>texto</{p}ExtensionContent>",
    "child": '<{p}ExtensionContent><x:Dian xmlns:x="urn:example:dian"/></{p}ExtensionContent>',
    "signed": (
        f'<{{p}}ExtensionContent><ds:Signature xmlns:ds="{DS}" Id="xmldsig-earlier">'
        "<ds:SignedInfo/></ds:Signature></{p}ExtensionContent>"
    ),
}
ROOT_NOTE_LOOK_ALIKE = f'xmlns:ds="{DS}" xmlns:xades="{XADES}"'
SLOT_LOOK_ALIKES = (
    "<ext:ExtensionContent/>",
    "<ExtensionContent></ExtensionContent>",
    "<e:ExtensionContent />",
)


# Near misses the slot finder must pass over.
NOT_SLOTS = (
    '<ds:Signature Id="xmldsig-x"/>',
    "<a:ExtensionContent></b:ExtensionContent>",
    "<ext:ExtensionContent>x</ext:ExtensionContent>",
    "<ext:ExtensionContents/>",
    "nada",
)


@dataclass(frozen=True)
class Extension:
    slot: str  # a key of EMPTY_SLOTS or FULL_SLOTS
    rebinds: str | None  # "ds" or "xades" bound to another namespace on this UBLExtension


@dataclass(frozen=True)
class Trailer:
    kind: str  # "text", "comment", "cdata", "pi"
    value: str


@dataclass(frozen=True)
class Layout:
    declaration: str
    prolog: str
    ext_prefix: str  # "" for the default namespace
    root_ds: str | None
    root_xades: str | None
    root_note: str  # an attribute value that may mention the prefixes
    extensions: tuple[Extension, ...]
    trailers: tuple[Trailer, ...]
    epilog: str = ""

    @property
    def encoding(self) -> str:
        return "latin-1" if self.declaration.startswith("latin-1") else "utf-8"

    def to_bytes(self) -> bytes:
        p = f"{self.ext_prefix}:" if self.ext_prefix else ""
        names = ""
        if self.ext_prefix:
            names += f' xmlns="{INV}" xmlns:{self.ext_prefix}="{EXT}"'
        else:
            names += f' xmlns="{EXT}"'
        if self.root_ds:
            names += f' xmlns:ds="{self.root_ds}"'
        if self.root_xades:
            names += f' xmlns:xades="{self.root_xades}"'
        parts = [
            DECLARATIONS[self.declaration],
            PROLOGS[self.prolog],
            f"<Invoice{names} note={quoteattr(self.root_note)}>",
            f"<{p}UBLExtensions>",
        ]
        for extension in self.extensions:
            rebind = f' xmlns:{extension.rebinds}="{OTHER}"' if extension.rebinds else ""
            slot = EMPTY_SLOTS.get(extension.slot) or FULL_SLOTS[extension.slot]
            parts.append(f"<{p}UBLExtension{rebind}>{slot.format(p=p)}</{p}UBLExtension>")
        parts.append(f"</{p}UBLExtensions>")
        for trailer in self.trailers:
            parts.append(_trailer(trailer))
        parts.append("</Invoice>")
        parts.append(self.epilog)
        text = "".join(parts)
        if self.encoding == "latin-1":
            return text.encode("latin-1", errors="xmlcharrefreplace")
        return text.encode("utf-8")


def _trailer(trailer: Trailer) -> str:
    if trailer.kind == "comment":
        return f"<!-- {trailer.value} -->"
    if trailer.kind == "cdata":
        return f"<Note><![CDATA[{trailer.value}]]></Note>"
    if trailer.kind == "pi":
        return f"<?note {trailer.value}?>"
    return f"<Note>{escape(trailer.value)}</Note>"


def _declares_both(ds: str | None, xades: str | None) -> bool:
    return ds == DS and xades == XADES


def splices(layout: Layout) -> bool:
    """Whether the signature may be written into the document's text (see module doc)."""
    if layout.encoding != "utf-8":
        return False
    if layout.prolog in ("comment-slot", "comment-root", "pi-slot", "doctype") or layout.epilog:
        return False  # the root must stand alone (`adapters.dian.signer._alone`)
    last = layout.extensions[-1]
    if last.slot not in EMPTY_SLOTS:
        return False
    if any(t.kind != "text" and t.value in SLOT_LOOK_ALIKES for t in layout.trailers):
        return False
    at_root = _declares_both(layout.root_ds, layout.root_xades)
    # The signer looks for the declarations of `ds` and `xades` in the first start tag of
    # the text: a look-alike in an attribute value deceives it, and then the parse of the
    # spliced text must catch the unbound prefix.
    believed = at_root or layout.root_note == ROOT_NOTE_LOOK_ALIKE
    if not believed:
        return True  # the signature declares its own prefixes
    return at_root and last.rebinds is None


def can_be_signed(layout: Layout) -> bool:
    """Whether the last slot of the tree is free for the signature (by either path)."""
    return layout.extensions[-1].slot in (*EMPTY_SLOTS, "nbsp")


_text_values = hostile_text().filter(lambda v: NOT_IN_XML.search(v) is None)
_trailers = st.one_of(
    st.builds(Trailer, st.just("text"), _text_values),
    st.builds(
        Trailer,
        st.sampled_from(["comment", "cdata", "pi"]),
        st.sampled_from([*SLOT_LOOK_ALIKES, *NOT_SLOTS]),
    ),
)
_namespace = st.sampled_from([None, None, OTHER])
layouts = st.builds(
    Layout,
    # Half of the draws in the plain spelling, so the splice is taken often enough.
    declaration=st.one_of(st.sampled_from(["none", "utf-8"]), st.sampled_from(list(DECLARATIONS))),
    prolog=st.one_of(st.just("none"), st.sampled_from(list(PROLOGS))),
    ext_prefix=st.sampled_from(["ext", "ext", "ubl-ext.2", ""]),
    root_ds=st.one_of(st.just(DS), _namespace),
    root_xades=st.one_of(st.just(XADES), _namespace),
    root_note=st.one_of(st.just(ROOT_NOTE_LOOK_ALIKE), _text_values),
    extensions=st.lists(
        st.builds(
            Extension,
            st.one_of(st.sampled_from(list(EMPTY_SLOTS)), st.sampled_from(list(FULL_SLOTS))),
            st.sampled_from([None, None, None, "ds", "xades"]),
        ),
        min_size=1,
        max_size=3,
    ).map(tuple),
    trailers=st.lists(_trailers, max_size=3).map(tuple),
    epilog=st.one_of(st.just(""), st.sampled_from(EPILOGS)),
)
