"""XML written as text (`adapters.dian.xmltext`) against a real parser.

Whatever a value holds, a parser must give back exactly that value, as element text and as
attribute value; a document holding a character XML 1.0 cannot carry is refused, naming the
first one; and elements written with `XmlText` nest as lxml would have built them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from adapters.dian.xmltext import XmlText, attributes, escape, refuse_non_xml
from tests.hostile_text import NOT_IN_XML, PINNED, hostile_text, non_xml_char

REFERENCES = ("&amp;", "&lt;", "&gt;", "&quot;", "&#13;", "&#10;", "&#9;")
NS = "urn:example:text"
ROOT = f'<r xmlns="{NS}" xmlns:p="urn:example:prefixed">'

xml_text = hostile_text().filter(lambda v: NOT_IN_XML.search(v) is None)
non_xml_text = st.tuples(
    hostile_text(max_parts=3),
    non_xml_char,
    hostile_text(max_parts=3),
).map("".join)


def _parse(document: bytes) -> etree._Element:
    return etree.fromstring(document, etree.XMLParser(resolve_entities=False))


@PINNED
@example("a\r\nb\rc\nd\te", "\r\n\t")
@example("\"quoted\" 'single'", "]]>")
@example('<ds:Signature Id="xmldsig-1"/></ext:ExtensionContent>', "&amp;&#13;")
@given(xml_text, xml_text)
def test_escaped_text_and_attribute_values_parse_back_exactly(text: str, value: str) -> None:
    out = XmlText(ROOT)
    out.leaf("p:leaf", text, attributes(first=value, second=text))
    root = _parse(out.document("</r>"))
    leaf = root[0]
    assert (leaf.text or "") == text
    assert leaf.get("first") == value
    assert leaf.get("second") == text


@PINNED
@given(xml_text)
def test_escaped_values_hold_no_markup_and_no_raw_line_breaks(value: str) -> None:
    written = escape(value)
    assert not set(written) & set('<>"\r\n\t')
    for at in (m.start() for m in re.finditer("&", written)):
        assert written.startswith(REFERENCES, at), written[at : at + 6]


@PINNED
@given(st.text(st.characters(codec=None, exclude_characters='&<>"\r\n\t'), max_size=30))
def test_text_without_markup_characters_is_written_as_is(value: str) -> None:
    assert escape(value) == value


@PINNED
@example("ok\x01")
@example("\ud800 after a lone surrogate")
@example("\ufffe")
@given(hostile_text())
def test_refuses_exactly_what_xml_cannot_carry_naming_the_first(value: str) -> None:
    bad = NOT_IN_XML.search(value)
    if bad is None:
        refuse_non_xml(value)
        return
    try:
        refuse_non_xml(value)
    except ValueError as exc:
        assert str(exc) == (
            f"character U+{ord(bad.group()):04X} is not allowed in XML 1.0 "
            f"(at offset {bad.start()})"
        )
    else:
        raise AssertionError(f"{value!r} was not refused")


@PINNED
@given(non_xml_text, st.booleans())
def test_a_document_with_such_a_character_is_refused_wherever_it_stands(
    value: str, in_attribute: bool
) -> None:
    out = XmlText(ROOT)
    if in_attribute:
        out.leaf("p:leaf", "", attributes(a=value))
    else:
        out.leaf("p:leaf", value)
    try:
        out.document("</r>")
    except ValueError as exc:
        assert "is not allowed in XML 1.0" in str(exc)
    else:
        raise AssertionError(f"{value!r} reached the document")


# ---------------------------------------------------------------- nesting, as lxml builds


@dataclass(frozen=True)
class Node:
    tag: str
    attrs: tuple[tuple[str, str], ...]
    text: str | None  # a leaf's text; None: an element with children (or empty)
    children: tuple[Node, ...]


TAGS = ("a", "p:b", "p:c", "d")
nodes = st.recursive(
    st.builds(
        Node,
        st.sampled_from(TAGS),
        st.lists(st.tuples(st.sampled_from(["x", "y", "z"]), xml_text), max_size=2).map(
            lambda pairs: tuple(dict(pairs).items())
        ),
        st.one_of(st.none(), xml_text),
        st.just(()),
    ),
    lambda inner: st.builds(
        Node,
        st.sampled_from(TAGS),
        st.lists(st.tuples(st.sampled_from(["x", "y"]), xml_text), max_size=2).map(
            lambda pairs: tuple(dict(pairs).items())
        ),
        st.none(),
        st.lists(inner, max_size=3).map(tuple),
    ),
    max_leaves=8,
)


def _write(out: XmlText, node: Node) -> None:
    attrs = attributes(**dict(node.attrs))
    if node.text is not None:
        out.leaf(node.tag, node.text, attrs)
    elif node.children:
        with out.element(node.tag, attrs):
            for child in node.children:
                _write(out, child)
    elif node.attrs:
        with out.element(node.tag, attrs):
            pass
    else:
        out.empty(node.tag)


def _build(parent: etree._Element, node: Node) -> None:
    prefix, _, local = node.tag.rpartition(":")
    uri = "urn:example:prefixed" if prefix else NS
    element = etree.SubElement(parent, f"{{{uri}}}{local}", dict(node.attrs))
    if node.text:
        element.text = node.text
    for child in node.children:
        _build(element, child)


@PINNED
@given(st.lists(nodes, max_size=4))
def test_elements_nest_as_lxml_builds_them(tree: list[Node]) -> None:
    out = XmlText(ROOT)
    for node in tree:
        _write(out, node)
    document = out.document("</r>")
    expected = etree.Element(f"{{{NS}}}r", nsmap={None: NS, "p": "urn:example:prefixed"})
    for node in tree:
        _build(expected, node)
    assert etree.tostring(_parse(document), method="c14n") == etree.tostring(
        expected, method="c14n"
    )


def test_the_document_is_utf8() -> None:
    out = XmlText(ROOT)
    out.leaf("a", "ñandú 🍺")
    assert out.document("</r>") == f"{ROOT}<a>ñandú 🍺</a></r>".encode()
