"""What the simulated DIAN checks in a submitted file, written independently of our builder.

Each check returns DIAN's own wording (`Regla: ZE02, Rechazo: ...`) so the answers look like
the real service's. None of this calls the project's signer or CUFE code: a bug there must
show up here as a rejection.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import zipfile
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path

from cryptography import x509
from lxml import etree

from adapters.dian.wssecurity import safe_parser

log = logging.getLogger(__name__)

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}

ZIP_EMPTY = "Error descomprimiendo el archivo ZIP: No fue encontrado ningun documento XML valido."
ZIP_NOT_ZIP = "El archivo no es un archivo ZIP válido."
ZIP_MANY = "El método síncrono solo puede recibir un documento."
NO_FILE = "Archivo no encontrado."
SCHEMA_RULE = "Regla: ZB01, Rechazo: Fallo en el esquema XML del archivo"
SIGNATURE_RULE = "Regla: ZE02, Rechazo: Valor de la firma inválido."
CUFE_RULE = "Regla: FAD06, Rechazo: El valor del CUFE no está calculado correctamente."
MAX_XML_BYTES = 5 * 1024 * 1024


class Refused(Exception):
    """The file never reached validation: StatusCode 89 with this text."""


@dataclass(frozen=True)
class Document:
    """The facts of a submitted invoice the simulator keys on."""

    xml: bytes
    xml_name: str
    number: str
    cufe: str
    supplier_nit: str
    tree: etree._Element
    type_code: str = ""

    @property
    def duplicity_type(self) -> str:
        """DIAN keys duplicates on the document type, with 01, 02 and 04 as one."""
        return "01" if self.type_code in ("01", "02", "04") else self.type_code


def unzip_single(content: bytes | None, *, allow_many: bool = False) -> list[tuple[str, bytes]]:
    """The XML files in `content`; refuse what DIAN refuses before validating."""
    if not content:
        raise Refused(NO_FILE)
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as exc:
        raise Refused(ZIP_NOT_ZIP) from exc
    with archive:
        entries = [i for i in archive.infolist() if i.filename.lower().endswith(".xml")]
        if not entries:
            raise Refused(ZIP_EMPTY)
        if len(entries) > 1 and not allow_many:
            raise Refused(ZIP_MANY)
        files = []
        for info in entries:
            if info.file_size > MAX_XML_BYTES:
                raise Refused(ZIP_EMPTY)
            files.append((info.filename, archive.read(info)))
        return files


def parse_document(name: str, xml: bytes) -> Document:
    try:
        tree = etree.fromstring(xml, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise Refused(ZIP_EMPTY) from exc
    if getattr(tree.getroottree().docinfo, "doctype", None):
        raise Refused(ZIP_EMPTY)
    supplier = tree.findtext(
        "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID", "", NS
    )
    return Document(
        xml=xml,
        xml_name=name.rsplit("/", 1)[-1].removesuffix(".xml"),
        number=(tree.findtext("cbc:ID", "", NS) or "").strip(),
        cufe=(tree.findtext("cbc:UUID", "", NS) or "").strip().lower(),
        supplier_nit=(supplier or "").strip(),
        tree=tree,
        type_code=_type_code(tree),
    )


def _type_code(tree: etree._Element) -> str:
    """InvoiceTypeCode, CreditNoteTypeCode, or 92 for a DebitNote (which has no type element;
    an adjustment debit note 93 is told apart by its ProfileID, see `simulator.notes`)."""
    code = tree.findtext("cbc:InvoiceTypeCode", None, NS) or tree.findtext(
        "cbc:CreditNoteTypeCode", None, NS
    )
    if code is None and etree.QName(tree).localname == "DebitNote":
        return "92"
    return (code or "").strip()


class SchemaCheck:
    """UBL 2.1 schemas (Invoice, CreditNote, DebitNote), each loaded once on first use (the
    XSDs are large) and chosen by the document's root element.

    The directory is fixed when the simulator starts; changing `ubl_xsd_dir` later has no effect.
    """

    ROOTS = ("Invoice", "CreditNote", "DebitNote")

    def __init__(self, xsd_dir: Path | None) -> None:
        self._dir = xsd_dir
        self._schemas: dict[str, etree.XMLSchema] = {}
        self._lock = threading.Lock()
        self._warned = False

    def _load(self, root: str) -> etree.XMLSchema | None:
        with self._lock:
            if root not in self._schemas and self._dir is not None:
                main = self._dir / "maindoc" / f"UBL-{root}-2.1.xsd"
                if main.is_file():
                    self._schemas[root] = etree.XMLSchema(etree.parse(str(main)))
            return self._schemas.get(root)

    def errors(self, document: Document) -> list[str]:
        root = etree.QName(document.tree).localname
        if root not in self.ROOTS:
            return [SCHEMA_RULE]
        schema = self._load(root)
        if schema is None:
            if not self._warned:
                log.warning("UBL 2.1 schema not found in %s: schema check skipped", self._dir)
                self._warned = True
            return []
        with self._lock:  # one validation at a time: lxml schemas are not shared safely
            valid = schema.validate(document.tree)
        if valid:
            return []
        return [SCHEMA_RULE]


def signature_errors(document: Document) -> list[str]:
    """Verify the enveloped XAdES signature with signxml and the embedded certificate."""
    from signxml.algorithms import CanonicalizationMethod
    from signxml.verifier import SignatureConfiguration, XMLVerifier

    cert_text = document.tree.findtext(
        ".//ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", None, NS
    )
    if not cert_text:
        return [SIGNATURE_RULE]
    try:
        pem = (
            "-----BEGIN CERTIFICATE-----\n"
            + "".join(cert_text.split())
            + "\n-----END CERTIFICATE-----\n"
        )
        x509.load_pem_x509_certificate(pem.encode())
        config = SignatureConfiguration(
            expect_references=3,
            default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
        )
        XMLVerifier().verify(
            document.xml,
            x509_cert=pem,
            expect_config=config,
            parser=safe_parser(),
        )
    except Exception as exc:  # every failure of a signature check means ZE02
        log.info("signature of %s refused: %s", document.number, exc)
        return [SIGNATURE_RULE]
    return []


def amount_text(text: str | None) -> str:
    try:
        value = Decimal((text or "0").strip())
    except InvalidOperation:
        value = Decimal(0)
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def tax_text(tree: etree._Element, scheme: str) -> str:
    for total in tree.findall("cac:TaxTotal", NS):
        ids = total.xpath(
            "cac:TaxSubtotal/cac:TaxCategory/cac:TaxScheme/cbc:ID/text()", namespaces=NS
        )
        if isinstance(ids, list) and any(str(i).strip() == scheme for i in ids):
            return amount_text(total.findtext("cbc:TaxAmount", None, NS))
    return "0.00"


def expected_cufe(
    document: Document, technical_key: str, totals: str = "cac:LegalMonetaryTotal/"
) -> str:
    """Anexo técnico 11.2, recomputed from the XML as DIAN does; a CUDE with the PIN as
    `technical_key` (and a debit note's `cac:RequestedMonetaryTotal/` as `totals`)."""
    tree = document.tree
    customer = tree.findtext(
        "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID", "", NS
    )
    parts = [
        document.number,
        (tree.findtext("cbc:IssueDate", "", NS) or "").strip(),
        (tree.findtext("cbc:IssueTime", "", NS) or "").strip(),
        amount_text(tree.findtext(totals + "cbc:LineExtensionAmount", None, NS)),
        "01",
        tax_text(tree, "01"),
        "04",
        tax_text(tree, "04"),
        "03",
        tax_text(tree, "03"),
        amount_text(tree.findtext(totals + "cbc:PayableAmount", None, NS)),
        document.supplier_nit,
        (customer or "").strip(),
        technical_key,
        (tree.findtext("cbc:ProfileExecutionID", "", NS) or "").strip(),
    ]
    return hashlib.sha384("".join(parts).encode("utf-8")).hexdigest()


def cufe_errors(document: Document, technical_keys: dict[str, str]) -> list[str]:
    """FAD06 unless the UUID equals the CUFE computed with the range's technical key."""
    prefixes = sorted(
        (p for p in technical_keys if document.number.startswith(p)), key=len, reverse=True
    )
    if not prefixes:
        log.warning("no technical key configured for %s: CUFE check skipped", document.number)
        return []
    if expected_cufe(document, technical_keys[prefixes[0]]) != document.cufe:
        return [CUFE_RULE]
    return []
