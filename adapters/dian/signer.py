"""XAdES-EPES enveloped signature of UBL documents, as DIAN's signature policy v2 asks.

The `ds:Signature` goes into the last `ext:UBLExtension/ext:ExtensionContent`, which the
builder leaves empty. SignedInfo uses inclusive C14N 1.0 and RSA-SHA256 and holds three
SHA-256 references: the whole document (enveloped-signature transform), `ds:KeyInfo` and
`xades:SignedProperties`.

Digests are taken in document context (an element's inclusive C14N carries the namespace
declarations of its ancestors) on a tree parsed from the serialized bytes, never on the tree
as it was built in memory, and the bytes returned are the one serialization of the signed
tree: nothing may reformat them afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"

C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

POLICY_ID = "https://facturaelectronica.dian.gov.co/politicadefirma/v2/politicadefirmav2.pdf"
POLICY_DESCRIPTION = "Política de firma para facturas electrónicas de la República de Colombia."
# base64(SHA-256) of the policy PDF (1,272,898 bytes).
POLICY_HASH = "dMoMvtcG5aIzgYo0tIsSQeVJBDnUnfSOfBpxXrmor0Y="

BOGOTA = timezone(timedelta(hours=-5))
_X500_UNIQUE_IDENTIFIER = x509.ObjectIdentifier("2.5.4.45")
_NIT_IN_TEXT = re.compile(r"(?:NIT|nit)[^0-9]{0,3}([0-9]{6,15})")


class SigningError(Exception):
    """The document or the certificate cannot be signed as given (a bug or a setup error)."""


@dataclass(frozen=True)
class CertificateInfo:
    """What operators need to know about the signing certificate (health checks)."""

    subject: str
    issuer: str
    serial_number: int
    nit: str | None
    not_valid_before: datetime
    not_valid_after: datetime


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    element = etree.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _c14n(element: etree._Element) -> bytes:
    """Inclusive C14N 1.0 without comments, in document context."""
    return etree.tostring(element, method="c14n", exclusive=False, with_comments=False)


def _parser() -> etree.XMLParser:
    # One parser per call: lxml parsers must not be shared between threads.
    # CDATA kept as written (the AttachedDocument carries documents in CDATA sections);
    # C14N reads it as the text it is, so digests do not depend on it.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, remove_blank_text=False, strip_cdata=False
    )


XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _serialize(root: etree._Element) -> bytes:
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def _nit_from_subject(name: x509.Name) -> str | None:
    for oid in (NameOID.SERIAL_NUMBER, _X500_UNIQUE_IDENTIFIER):
        for attribute in name.get_attributes_for_oid(oid):
            value = str(attribute.value)
            digits = value.split("-")[0].strip()
            if digits.isdigit():
                return digits
    for attribute in name.get_attributes_for_oid(NameOID.COMMON_NAME):
        match = _NIT_IN_TEXT.search(str(attribute.value))
        if match:
            return match.group(1)
    return None


_SLOT_PATH = f"{_q(EXT, 'UBLExtensions')}/{_q(EXT, 'UBLExtension')}/{_q(EXT, 'ExtensionContent')}"


# An empty ExtensionContent in text (`<ext:ExtensionContent/>` or with an empty body) and
# the root element's start tag: where `XadesSigner` writes the signature without a tree.
_EMPTY_SLOT = re.compile(
    rb"<((?:[A-Za-z_][\w.-]*:)?)ExtensionContent\s*(?:/>|>\s*</\1ExtensionContent\s*>)"
)
_ROOT_START = re.compile(rb"<[A-Za-z_][^<>]*>")
_DECLARED_ENCODING = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_SIGNATURE_NAMESPACES = (
    f'xmlns:ds="{DS}"'.encode(),
    f'xmlns:xades="{XADES}"'.encode(),
)


def _last_empty_slot(document: bytes) -> re.Match[bytes] | None:
    """The last `_EMPTY_SLOT` in `document`, found from the end (scanning the whole text
    for it costs more than the rest of the splice)."""
    end = len(document)
    while (at := document.rfind(b"ExtensionContent", 0, end)) >= 0:
        start = document.rfind(b"<", 0, at)
        found = _EMPTY_SLOT.match(document, start) if start >= 0 else None
        if found is not None and found.end(1) == at:
            return found
        end = at
    return None


def _alone(root: etree._Element) -> bool:
    """Whether `root` is all its document holds: no DOCTYPE, comment or processing
    instruction beside it.

    The C14N of a root that has company writes `xmlns=""` on the descendants in the
    default namespace below its children (libxml2 2.14), so the document digest would not
    be the one a verifier computes on the bytes returned, which hold the root alone.
    """
    return (
        root.getprevious() is None
        and root.getnext() is None
        and root.getroottree().docinfo.internalDTD is None
    )


def _slots(root: etree._Element) -> list[etree._Element]:
    return root.findall(_SLOT_PATH)


def signature_slot(root: etree._Element) -> etree._Element:
    """The last `ext:UBLExtension/ext:ExtensionContent`, which must still be empty."""
    slots = _slots(root)
    if not slots:
        raise SigningError("the document has no ext:UBLExtension to hold the signature")
    slot = slots[-1]
    if len(slot) or (slot.text and slot.text.strip()):
        raise SigningError("the last ext:ExtensionContent is not empty: already signed?")
    return slot


class XadesSigner:
    """Signs UBL documents with one certificate. Build it once per process (`from_pkcs12`)."""

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        *,
        role: str = "supplier",
    ) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise SigningError("DIAN signatures use RSA keys")
        self._key = private_key
        self._certificate = certificate
        self._role = role
        der = certificate.public_bytes(serialization.Encoding.DER)
        self._cert_b64 = base64.b64encode(der).decode("ascii")
        self._cert_digest = _b64_sha256(der)
        self._issuer_name = certificate.issuer.rfc4514_string()
        self._serial = str(certificate.serial_number)
        # Tokens no certificate text can contain, replaced per document.
        self._id_token = f"sigid{uuid.uuid4().hex}"
        self._time_token = f"sigtime{uuid.uuid4().hex}"
        self._skeleton, self._bare_skeleton = self._skeleton_templates()

    @classmethod
    def from_pkcs12(
        cls, data: bytes, password: str | None, *, role: str = "supplier"
    ) -> XadesSigner:
        """Load key and certificate from a PKCS#12 file's bytes (`.p12` / `.pfx`)."""
        secret = password.encode("utf-8") if password else None
        try:
            key, certificate, _chain = pkcs12.load_key_and_certificates(data, secret)
        except ValueError as exc:
            raise SigningError(f"cannot open the PKCS#12 (wrong password or file): {exc}") from exc
        if key is None or certificate is None:
            raise SigningError("the PKCS#12 must hold a private key and its certificate")
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SigningError("DIAN signatures use RSA keys")
        return cls(key, certificate, role=role)

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The signing key, also used for the WS-Security token of the SOAP envelope."""
        return self._key

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def certificate_info(self) -> CertificateInfo:
        cert = self._certificate
        return CertificateInfo(
            subject=cert.subject.rfc4514_string(),
            issuer=self._issuer_name,
            serial_number=cert.serial_number,
            nit=_nit_from_subject(cert.subject),
            not_valid_before=cert.not_valid_before_utc,
            not_valid_after=cert.not_valid_after_utc,
        )

    def certificate_pem(self) -> bytes:
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    def sign(self, document: etree._Element | bytes, signing_time: datetime) -> bytes:
        """Return the signed document's bytes; send them exactly as returned.

        `signing_time` must be timezone-aware; it is written with the Colombian offset. An
        element passed in is left as it was.
        """
        if signing_time.tzinfo is None or signing_time.utcoffset() is None:
            raise SigningError("signing_time must be timezone-aware")
        signature_id = f"xmldsig-{uuid.uuid4()}"
        when = signing_time.astimezone(BOGOTA).isoformat(timespec="seconds")
        root = None
        if isinstance(document, bytes):
            root = self._spliced(document, signature_id, when)
            if root is None:
                document = etree.fromstring(document, _parser())
        if root is None:
            assert isinstance(document, etree._Element)
            root = self._inserted(document, signature_id, when)
        return self._sign_parsed(root)

    def _skeleton_for(self, signature_id: str, when: str, *, bare: bool) -> bytes:
        template = self._bare_skeleton if bare else self._skeleton
        filled = template.replace(self._id_token, signature_id).replace(self._time_token, when)
        return filled.encode("utf-8")

    def _spliced(self, document: bytes, signature_id: str, when: str) -> etree._Element | None:
        """The skeleton written into the document's bytes at its last empty
        `ExtensionContent`, parsed; None when that place cannot be found from the text alone
        (the caller then goes by the tree)."""
        declared = _DECLARED_ENCODING.match(document)
        if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"):
            return None  # the skeleton is UTF-8 text
        slot = _last_empty_slot(document)
        if slot is None:
            return None
        prefix = slot.group(1)
        head = _ROOT_START.search(document)
        bare = head is not None and all(d in head.group() for d in _SIGNATURE_NAMESPACES)
        skeleton = self._skeleton_for(signature_id, when, bare=bare)
        text = b"".join(
            (
                document[: slot.start()],
                b"<%sExtensionContent>" % prefix,
                skeleton,
                b"</%sExtensionContent>" % prefix,
                document[slot.end() :],
            )
        )
        try:
            root = etree.fromstring(text, _parser())
        except etree.XMLSyntaxError:
            return None
        if not _alone(root):
            return None
        slots = _slots(root)
        if not slots or len(slots[-1]) != 1:
            return None
        placed = slots[-1][0]
        if placed.tag != _q(DS, "Signature") or placed.get("Id") != signature_id:
            return None
        if placed[3][0][0].tag != _q(XADES, "SignedProperties"):
            return None
        return root

    def _inserted(self, document: etree._Element, signature_id: str, when: str) -> etree._Element:
        """The skeleton written where a unique marker stands in the slot, parsed."""
        slot = signature_slot(document)
        in_scope = slot.nsmap
        bare = in_scope.get("ds") == DS and in_scope.get("xades") == XADES
        marker = signature_id.encode("ascii")
        slot.text = signature_id
        try:
            unsigned = _serialize(document)
        finally:
            slot.text = None
        if unsigned.count(marker) != 1:
            raise SigningError("the signature marker is not unique in the document")
        skeleton = self._skeleton_for(signature_id, when, bare=bare)
        return etree.fromstring(unsigned.replace(marker, skeleton), _parser())

    def _sign_parsed(self, root: etree._Element) -> bytes:
        """Fill the digests and the value of the skeleton in the last slot of `root`, a tree
        parsed from the bytes a receiver gets; return its one serialization."""
        slot = _slots(root)[-1]
        signature = slot[0]
        # The enveloped-signature transform: the document's digest is taken without it.
        slot.remove(signature)
        document_digest = _b64_sha256(_c14n(root))
        slot.append(signature)
        signed_info, key_info, properties = signature[0], signature[2], signature[3][0][0]
        references = signed_info.findall(_q(DS, "Reference"))
        references[0][-1].text = document_digest
        references[1][-1].text = _b64_sha256(_c14n(key_info))
        references[2][-1].text = _b64_sha256(_c14n(properties))
        value = self._key.sign(_c14n(signed_info), padding.PKCS1v15(), hashes.SHA256())
        signature[1].text = base64.b64encode(value).decode("ascii")
        return _serialize(root)

    def _skeleton_templates(self) -> tuple[str, str]:
        """The `ds:Signature` serialized with tokens for its id and signing time: declaring
        its `ds`/`xades` namespaces, and bare (for a slot where the document declares them)."""
        standalone = etree.Element("holder")
        self._append_skeleton(standalone, self._id_token, self._time_token)
        declared = etree.tostring(standalone[0], encoding="unicode")
        context = etree.Element("holder", nsmap={"ds": DS, "xades": XADES})
        self._append_skeleton(context, self._id_token, self._time_token, declare=False)
        inner = etree.tostring(context, encoding="unicode")
        bare = inner[inner.index(">") + 1 : inner.rindex("</holder>")]
        if "xmlns" in bare or declared.count(self._time_token) != 1:  # pragma: no cover
            raise SigningError("cannot prepare the signature template")
        return declared, bare

    def _append_skeleton(
        self, slot: etree._Element, sig_id: str, when: str, *, declare: bool = True
    ) -> None:
        """`ds:Signature` with empty digests and value; `declare` puts `ds`/`xades` on it."""
        signature = etree.SubElement(
            slot, _q(DS, "Signature"), {"Id": sig_id}, nsmap={"ds": DS} if declare else None
        )
        signed_info = _sub(signature, _q(DS, "SignedInfo"))
        _sub(signed_info, _q(DS, "CanonicalizationMethod"), Algorithm=C14N)
        _sub(signed_info, _q(DS, "SignatureMethod"), Algorithm=RSA_SHA256)

        whole = _sub(signed_info, _q(DS, "Reference"), Id=f"{sig_id}-ref0", URI="")
        transforms = _sub(whole, _q(DS, "Transforms"))
        _sub(transforms, _q(DS, "Transform"), Algorithm=ENVELOPED)
        _sub(whole, _q(DS, "DigestMethod"), Algorithm=SHA256)
        _sub(whole, _q(DS, "DigestValue"))

        to_key_info = _sub(signed_info, _q(DS, "Reference"), URI=f"#{sig_id}-keyinfo")
        _sub(to_key_info, _q(DS, "DigestMethod"), Algorithm=SHA256)
        _sub(to_key_info, _q(DS, "DigestValue"))

        to_properties = _sub(
            signed_info,
            _q(DS, "Reference"),
            Type=SIGNED_PROPERTIES_TYPE,
            URI=f"#{sig_id}-signedprops",
        )
        _sub(to_properties, _q(DS, "DigestMethod"), Algorithm=SHA256)
        _sub(to_properties, _q(DS, "DigestValue"))

        _sub(signature, _q(DS, "SignatureValue"), Id=f"{sig_id}-sigvalue")
        key_info = _sub(signature, _q(DS, "KeyInfo"), Id=f"{sig_id}-keyinfo")
        _sub(_sub(key_info, _q(DS, "X509Data")), _q(DS, "X509Certificate"), self._cert_b64)

        holder = _sub(signature, _q(DS, "Object"))
        qualifying = etree.SubElement(
            holder,
            _q(XADES, "QualifyingProperties"),
            {"Target": f"#{sig_id}"},
            nsmap={"xades": XADES} if declare else None,
        )
        properties = _sub(qualifying, _q(XADES, "SignedProperties"), Id=f"{sig_id}-signedprops")
        signed = _sub(properties, _q(XADES, "SignedSignatureProperties"))
        _sub(signed, _q(XADES, "SigningTime"), when)

        cert = _sub(_sub(signed, _q(XADES, "SigningCertificate")), _q(XADES, "Cert"))
        cert_digest = _sub(cert, _q(XADES, "CertDigest"))
        _sub(cert_digest, _q(DS, "DigestMethod"), Algorithm=SHA256)
        _sub(cert_digest, _q(DS, "DigestValue"), self._cert_digest)
        issuer_serial = _sub(cert, _q(XADES, "IssuerSerial"))
        _sub(issuer_serial, _q(DS, "X509IssuerName"), self._issuer_name)
        _sub(issuer_serial, _q(DS, "X509SerialNumber"), self._serial)

        policy = _sub(
            _sub(signed, _q(XADES, "SignaturePolicyIdentifier")), _q(XADES, "SignaturePolicyId")
        )
        policy_id = _sub(policy, _q(XADES, "SigPolicyId"))
        _sub(policy_id, _q(XADES, "Identifier"), POLICY_ID)
        _sub(policy_id, _q(XADES, "Description"), POLICY_DESCRIPTION)
        policy_hash = _sub(policy, _q(XADES, "SigPolicyHash"))
        _sub(policy_hash, _q(DS, "DigestMethod"), Algorithm=SHA256)
        _sub(policy_hash, _q(DS, "DigestValue"), POLICY_HASH)

        roles = _sub(_sub(signed, _q(XADES, "SignerRole")), _q(XADES, "ClaimedRoles"))
        _sub(roles, _q(XADES, "ClaimedRole"), self._role)
