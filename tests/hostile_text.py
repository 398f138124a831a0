"""Text that tries to break XML written by hand, as hypothesis strategies.

`hostile_text()` mixes arbitrary Unicode with the fragments an escaping or a splice done on
text gets wrong: line breaks and tabs (which a parser folds or turns into spaces unless
they are character references), both quotes, `]]>`, markup characters, entity look-alikes,
and tags the signer looks for (`<ext:ExtensionContent/>`, `<ds:Signature`, `Id="xmldsig-`).
`carryable` limits the characters to those an order may hold (and so XML 1.0 can carry);
without it, any code point may appear, lone surrogates and NUL included.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Deterministic in CI and on every machine: the examples come from a hash of the test, not
# from a random seed, and no example database is read or written.
PINNED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LOOK_ALIKES = (
    "\r",
    "\n",
    "\r\n",
    "\t",
    " ",
    '"',
    "'",
    "]]>",
    "<",
    ">",
    "&",
    "&amp;",
    "&#13;",
    "&#x9;",
    "&lt;/cbc:Name&gt;",
    "<![CDATA[",
    "<!--",
    "-->",
    "<?xml version='1.0'?>",
    "<ext:ExtensionContent/>",
    "<ext:ExtensionContent></ext:ExtensionContent>",
    "</ext:ExtensionContent>",
    "<ds:Signature",
    '<ds:Signature Id="xmldsig-1">',
    'Id="xmldsig-',
    'xmlns:ds="http://www.w3.org/2000/09/xmldsig#"',
    "</Invoice>",
    "\u2028",
    "\u0085",
    "\u00a0",
    "\ufeff",
    "\ufffd",
    "ñ",
    "🍺",
)

# What `domain.order` refuses in any text field; everything else XML 1.0 can carry.
NOT_IN_ORDERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# What XML 1.0 cannot carry (its `Char` production).
NOT_IN_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_REFUSED_IN_ORDERS = "".join(map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]))
_any_char = st.characters(codec=None)
_carryable_char = st.characters(
    codec=None, exclude_categories=("Cs",), exclude_characters=_REFUSED_IN_ORDERS + "\ufffe\uffff"
)
# One character XML 1.0 cannot carry: C0 controls but TAB/LF/CR, lone surrogates, U+FFFE/F.
non_xml_char = st.one_of(
    st.sampled_from([chr(c) for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20))]),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, codec=None),
    st.sampled_from(["\ufffe", "\uffff"]),
)


def hostile_text(*, carryable: bool = False, max_parts: int = 8) -> st.SearchStrategy[str]:
    """Strings of look-alike fragments and arbitrary characters, in any mix."""
    chars = _carryable_char if carryable else _any_char
    part = st.one_of(st.sampled_from(LOOK_ALIKES), st.text(chars, min_size=1, max_size=6))
    return st.lists(part, max_size=max_parts).map("".join)
