"""WS-Security for DIAN's SOAP 1.2 service: the header layout DIAN accepts, and its check.

`DianWsSecurity` plugs into zeep (`wsse=`): it rewrites the envelope to the layout DIAN's
own clients send (prefixes `soap`/`wcf`, `wsa:Action`, `wsa:To` with a `wsu:Id`, and a
`wsse:Security` with a Timestamp, the X.509 token and an RSA-SHA256 signature over `wsa:To`
with exclusive C14N). The envelope is written as text (a template serialized once per
client, the body copied from zeep's message) and parsed before anything is digested, so the
digest is computed on exactly what a receiver rebuilds from the bytes.

`verify_envelope(envelope_bytes)` is the receiving side (used by the DIAN simulator).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from adapters.dian.xmltext import escape

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WCF = "http://wcf.dian.colombia"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
EC = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
BASE64_ENCODING = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"

SIGNED_INFO_PREFIXES = ("wsa", "soap", "wcf")
REFERENCE_PREFIXES = ("soap", "wcf")
DEFAULT_LIFETIME = timedelta(minutes=5)
DEFAULT_SKEW = timedelta(minutes=5)

# Stand-ins in the serialized envelope template, replaced per message.
_TOKENS = {
    name: f"wsse{name}{uuid.uuid4().hex}"
    for name in ("action", "created", "expires", "timestamp", "token", "signature", "to", "body")
}

_NS = {"soap": SOAP12, "wsa": WSA, "wsse": WSSE, "wsu": WSU, "ds": DS, "ec": EC}


class SecurityError(Exception):
    """The WS-Security header is missing, malformed, expired or does not verify."""


def safe_parser() -> etree.XMLParser:
    """A parser that never resolves entities, loads DTDs or touches the network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def _exc_c14n(element: etree._Element, prefixes: tuple[str, ...]) -> bytes:
    return etree.tostring(
        element,
        method="c14n",
        exclusive=True,
        with_comments=False,
        inclusive_ns_prefixes=list(prefixes),
    )


def _copy_into(parent: etree._Element, source: etree._Element) -> None:
    """Copy `source` under `parent` so it takes the prefixes declared on the new envelope."""
    if not isinstance(source.tag, str):
        return
    attrib = {str(k): str(v) for k, v in source.attrib.items()}
    child = etree.SubElement(parent, source.tag, attrib)
    child.text = source.text
    child.tail = source.tail
    for grandchild in source:
        _copy_into(child, grandchild)


class DianWsSecurity:
    """zeep `wsse` object signing every request with the issuer's certificate.

    `address` is what goes in `wsa:To` (the configured endpoint).
    """

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        address: str,
        *,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> None:
        self._key = private_key
        self._certificate_der = certificate.public_bytes(serialization.Encoding.DER)
        self._address = address
        self._lifetime = lifetime
        self._head, self._tail = self._templates()

    def apply(
        self, envelope: etree._Element, headers: dict[str, str]
    ) -> tuple[etree._Element, dict[str, str]]:
        action = _action_from(envelope, headers)
        signed = self.sign(envelope, action, now=datetime.now(UTC))
        return signed, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        # DIAN's answers are read as data; their authenticity rests on TLS.
        return envelope

    def sign(self, envelope: etree._Element, action: str, *, now: datetime) -> etree._Element:
        """Return a new envelope (parsed from bytes) carrying the signed DIAN header."""
        return self.sign_body(body_content(envelope), action, now=now)

    def sign_body(self, body: str, action: str, *, now: datetime) -> etree._Element:
        """The signed envelope around `body`, the text of the `soap:Body` children, which
        may use the prefixes `soap` and `wcf`."""
        head = self._head
        for token, text in (
            (_TOKENS["action"], escape(action)),
            (_TOKENS["created"], _utc(now)),
            (_TOKENS["expires"], _utc(now + self._lifetime)),
            (_TOKENS["timestamp"], f"TS-{_new_id()}"),
            (_TOKENS["token"], f"X509-{_new_id()}"),
            (_TOKENS["signature"], f"SIG-{_new_id()}"),
            (_TOKENS["to"], f"id-{_new_id()}"),
        ):
            head = head.replace(token, text)
        written = (head + body + self._tail).encode("utf-8")
        parsed = etree.fromstring(written, parser=safe_parser())
        header = parsed[0]
        security, to = header[0], header[2]
        signature = security[2]
        signed_info, value_node = signature[0], signature[1]
        digest_node = signed_info[2][-1]
        digest = base64.b64encode(hashlib.sha256(_exc_c14n(to, REFERENCE_PREFIXES)).digest())
        digest_node.text = digest.decode()
        value = self._key.sign(
            _exc_c14n(signed_info, SIGNED_INFO_PREFIXES), padding.PKCS1v15(), hashes.SHA256()
        )
        value_node.text = base64.b64encode(value).decode()
        return parsed

    def _templates(self) -> tuple[str, str]:
        """The envelope up to its open `soap:Body` and from its close, serialized once with
        tokens for what changes per message."""
        root = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"soap": SOAP12, "wcf": WCF})
        header = etree.SubElement(root, f"{{{SOAP12}}}Header", nsmap={"wsa": WSA})
        security = etree.SubElement(
            header,
            f"{{{WSSE}}}Security",
            {f"{{{SOAP12}}}mustUnderstand": "true"},
            nsmap={"wsse": WSSE, "wsu": WSU},
        )
        timestamp = etree.SubElement(
            security, f"{{{WSU}}}Timestamp", {f"{{{WSU}}}Id": _TOKENS["timestamp"]}
        )
        etree.SubElement(timestamp, f"{{{WSU}}}Created").text = _TOKENS["created"]
        etree.SubElement(timestamp, f"{{{WSU}}}Expires").text = _TOKENS["expires"]
        bst = etree.SubElement(
            security,
            f"{{{WSSE}}}BinarySecurityToken",
            {
                "EncodingType": BASE64_ENCODING,
                "ValueType": X509V3,
                f"{{{WSU}}}Id": _TOKENS["token"],
            },
        )
        bst.text = base64.b64encode(self._certificate_der).decode()
        security.append(_signature_skeleton(_TOKENS["signature"], _TOKENS["to"], _TOKENS["token"]))
        etree.SubElement(header, f"{{{WSA}}}Action").text = _TOKENS["action"]
        to = etree.SubElement(
            header, f"{{{WSA}}}To", {f"{{{WSU}}}Id": _TOKENS["to"]}, nsmap={"wsu": WSU}
        )
        to.text = self._address
        etree.SubElement(root, f"{{{SOAP12}}}Body").text = _TOKENS["body"]
        head, tail = etree.tostring(root, encoding="unicode").split(_TOKENS["body"])
        return head, tail


def _new_id() -> str:
    return secrets.token_hex(16).upper()


def body_content(envelope: etree._Element) -> str:
    """The children of the envelope's `soap:Body` as text, using the prefixes `soap`/`wcf`
    the new envelope declares."""
    holder = etree.Element(f"{{{SOAP12}}}Body", nsmap={"soap": SOAP12, "wcf": WCF})
    old_body = envelope.find(f"{{{SOAP12}}}Body")
    if old_body is not None:
        for child in old_body:
            _copy_into(holder, child)
    if not len(holder):
        return ""
    text = etree.tostring(holder, encoding="unicode")
    return text[text.index(">") + 1 : text.rindex("</")]


def _signature_skeleton(signature_id: str, to_id: str, token_id: str) -> etree._Element:
    signature = etree.Element(f"{{{DS}}}Signature", {"Id": signature_id}, nsmap={"ds": DS})
    signed_info = etree.SubElement(signature, f"{{{DS}}}SignedInfo")
    c14n = etree.SubElement(signed_info, f"{{{DS}}}CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(
        c14n,
        f"{{{EC}}}InclusiveNamespaces",
        PrefixList=" ".join(SIGNED_INFO_PREFIXES),
        nsmap={"ec": EC},
    )
    etree.SubElement(signed_info, f"{{{DS}}}SignatureMethod", Algorithm=RSA_SHA256)
    reference = etree.SubElement(signed_info, f"{{{DS}}}Reference", URI=f"#{to_id}")
    transforms = etree.SubElement(reference, f"{{{DS}}}Transforms")
    transform = etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=EXC_C14N)
    etree.SubElement(
        transform,
        f"{{{EC}}}InclusiveNamespaces",
        PrefixList=" ".join(REFERENCE_PREFIXES),
        nsmap={"ec": EC},
    )
    etree.SubElement(reference, f"{{{DS}}}DigestMethod", Algorithm=SHA256)
    etree.SubElement(reference, f"{{{DS}}}DigestValue")
    etree.SubElement(signature, f"{{{DS}}}SignatureValue")
    key_info = etree.SubElement(signature, f"{{{DS}}}KeyInfo")
    str_ = etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference", nsmap={"wsse": WSSE})
    etree.SubElement(str_, f"{{{WSSE}}}Reference", URI=f"#{token_id}", ValueType=X509V3)
    return signature


def _action_from(envelope: etree._Element, headers: dict[str, str]) -> str:
    existing = envelope.find(f"{{{SOAP12}}}Header/{{{WSA}}}Action")
    if existing is not None and existing.text:
        return existing.text
    content_type = headers.get("Content-Type", "")
    for part in content_type.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "action":
            return value.strip('"')
    raise SecurityError("no SOAP action to put in wsa:Action")


# --- receiving side -------------------------------------------------------------------


def _one(parent: etree._Element, path: str, what: str) -> etree._Element:
    found = parent.findall(path, _NS)
    if len(found) != 1:
        raise SecurityError(f"expected exactly one {what}, found {len(found)}")
    return found[0]


def _prefixes(method: etree._Element) -> tuple[str, ...]:
    inclusive = method.find("ec:InclusiveNamespaces", _NS)
    if inclusive is None:
        return ()
    return tuple(inclusive.get("PrefixList", "").split())


def _parse_time(text: str | None) -> datetime:
    if not text:
        raise SecurityError("timestamp without a time")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SecurityError("timestamp is not an xsd:dateTime") from exc
    if moment.tzinfo is None:
        raise SecurityError("timestamp without a time zone")
    return moment


def verify_envelope(
    envelope_bytes: bytes, *, now: datetime | None = None, skew: timedelta = DEFAULT_SKEW
) -> x509.Certificate:
    """Check the WS-Security header as DIAN does; return the signer's certificate.

    Verifies the Timestamp window (with `skew`), that `wsa:To` is signed by one Reference
    with exclusive C14N and SHA-256, and the RSA-SHA256 SignatureValue with the key of the
    BinarySecurityToken the KeyInfo points at. Raises `SecurityError` otherwise.
    """
    try:
        root = etree.fromstring(envelope_bytes, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SecurityError("envelope is not well-formed XML") from exc
    if getattr(root.getroottree().docinfo, "doctype", None):
        raise SecurityError("envelope carries a DTD")
    security = _one(root, "soap:Header/wsse:Security", "wsse:Security header")
    _check_timestamp(_one(security, "wsu:Timestamp", "wsu:Timestamp"), now, skew)
    signature = _one(security, "ds:Signature", "ds:Signature")
    signed_info = _one(signature, "ds:SignedInfo", "ds:SignedInfo")
    c14n = _one(signed_info, "ds:CanonicalizationMethod", "CanonicalizationMethod")
    if c14n.get("Algorithm") != EXC_C14N:
        raise SecurityError("SignedInfo must use exclusive C14N")
    method = _one(signed_info, "ds:SignatureMethod", "SignatureMethod")
    if method.get("Algorithm") != RSA_SHA256:
        raise SecurityError("signature method must be RSA-SHA256")
    to = _one(root, "soap:Header/wsa:To", "wsa:To")
    to_id = to.get(f"{{{WSU}}}Id")
    references = signed_info.findall("ds:Reference", _NS)
    if not to_id or not any(r.get("URI") == f"#{to_id}" for r in references):
        raise SecurityError("wsa:To is not signed")
    for reference in references:
        _check_reference(root, reference)
    certificate = _token_certificate(security, signature)
    value_text = _one(signature, "ds:SignatureValue", "SignatureValue").text or ""
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SecurityError("the token does not carry an RSA key")
    try:
        public_key.verify(
            base64.b64decode(value_text),
            _exc_c14n(signed_info, _prefixes(c14n)),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError) as exc:
        raise SecurityError("signature value does not verify") from exc
    return certificate


def _check_timestamp(timestamp: etree._Element, now: datetime | None, skew: timedelta) -> None:
    created = _parse_time(timestamp.findtext("wsu:Created", namespaces=_NS))
    expires = _parse_time(timestamp.findtext("wsu:Expires", namespaces=_NS))
    current = now or datetime.now(UTC)
    if created > current + skew:
        raise SecurityError("timestamp created in the future")
    if expires < current - skew:
        raise SecurityError("timestamp expired")
    if expires <= created:
        raise SecurityError("timestamp expires before it is created")


def _check_reference(root: etree._Element, reference: etree._Element) -> None:
    uri = reference.get("URI", "")
    if not uri.startswith("#"):
        raise SecurityError("only same-document references are accepted")
    targets = root.xpath("//*[@wsu:Id=$id or @Id=$id]", namespaces=_NS, id=uri[1:])
    if not isinstance(targets, list) or len(targets) != 1:
        raise SecurityError(f"reference {uri} must point at exactly one element")
    target = targets[0]
    if not isinstance(target, etree._Element):
        raise SecurityError("reference target is not an element")
    if _one(reference, "ds:DigestMethod", "DigestMethod").get("Algorithm") != SHA256:
        raise SecurityError("digest method must be SHA-256")
    transforms = reference.findall("ds:Transforms/ds:Transform", _NS)
    if [t.get("Algorithm") for t in transforms] != [EXC_C14N]:
        raise SecurityError("reference must use one exclusive C14N transform")
    computed = hashlib.sha256(_exc_c14n(target, _prefixes(transforms[0]))).digest()
    declared = base64.b64decode(reference.findtext("ds:DigestValue", default="", namespaces=_NS))
    if not hmac.compare_digest(computed, declared):
        raise SecurityError(f"digest of {uri} does not match")


def _token_certificate(security: etree._Element, signature: etree._Element) -> x509.Certificate:
    pointer = _one(
        signature, "ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", "token reference"
    )
    token_id = (pointer.get("URI") or "").lstrip("#")
    tokens = [
        t
        for t in security.findall("wsse:BinarySecurityToken", _NS)
        if t.get(f"{{{WSU}}}Id") == token_id
    ]
    if len(tokens) != 1 or tokens[0].get("ValueType") != X509V3:
        raise SecurityError("KeyInfo does not point at one X.509 BinarySecurityToken")
    try:
        return x509.load_der_x509_certificate(base64.b64decode(tokens[0].text or ""))
    except ValueError as exc:
        raise SecurityError("BinarySecurityToken is not a DER certificate") from exc
