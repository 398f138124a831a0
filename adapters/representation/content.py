"""What a document's graphic representation shows, read from its signed UBL XML only.

DIAN allows the printed copy to show only what the XML holds, so the representation is never
built from the order: invoices (01), POS documents (20) and notes (91-94) all render from the
document DIAN received. `read_document` raises `UnreadableDocument` naming what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from domain.documents import DocumentKind

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
}
# Root element -> its type code element and its line element.
_ROOTS = {
    "Invoice": ("InvoiceTypeCode", "InvoiceLine", "InvoicedQuantity"),
    "CreditNote": ("CreditNoteTypeCode", "CreditNoteLine", "CreditedQuantity"),
    "DebitNote": ("DebitNoteTypeCode", "DebitNoteLine", "DebitedQuantity"),
}
_NOTE_KINDS = {"CreditNote": DocumentKind.CREDIT_NOTE, "DebitNote": DocumentKind.DEBIT_NOTE}
# PaymentMeansCode (DIAN list 13.3.4.2) for the codes the POS sends.
PAYMENT_MEANS_NAMES = {
    "10": "Efectivo",
    "20": "Cheque",
    "42": "Consignación bancaria",
    "47": "Transferencia débito bancaria",
    "48": "Tarjeta crédito",
    "49": "Tarjeta débito",
    "71": "Bonos",
    "72": "Vales",
    "ZZZ": "Otro",
}
PAYMENT_FORMS = {"1": "Contado", "2": "Crédito"}


class UnreadableDocument(ValueError):
    """The bytes are not a DIAN UBL document this representation can show."""


@dataclass(frozen=True)
class Party:
    name: str
    id_type: str  # DIAN identification type (schemeName): 31 NIT, 13 cédula, ...
    id_number: str
    check_digit: str
    trade_name: str = ""
    address: str = ""
    tax_levels: str = ""  # fiscal responsibilities (TaxLevelCode), e.g. O-13;O-15 or R-99-PN


@dataclass(frozen=True)
class Line:
    quantity: Decimal
    description: str
    code: str
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class TaxRate:
    name: str
    percent: Decimal
    taxable: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Authorization:
    """The DIAN numbering authorization (`sts:InvoiceControl`)."""

    resolution: str
    valid_from: str
    valid_to: str
    prefix: str
    first: str
    last: str


@dataclass(frozen=True)
class Reference:
    """The document a note corrects (`cac:BillingReference`)."""

    number: str
    key: str
    key_scheme: str
    issue_date: str


@dataclass(frozen=True)
class Document:
    kind: DocumentKind
    number: str
    key: str
    key_scheme: str  # CUFE-SHA384 or CUDE-SHA384
    issue_date: str
    issue_time: str
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    taxes: tuple[TaxRate, ...]
    tip: Decimal
    line_total: Decimal
    tax_inclusive: Decimal
    rounding: Decimal
    payable: Decimal
    payment_means: tuple[str, ...]
    qr_url: str
    software_provider: str
    software_id: str
    software_maker: str = ""
    software_name: str = ""
    authorization: Authorization | None = None
    reference: Reference | None = None
    reason: str = ""  # a note's DiscrepancyResponse
    register: str = ""  # a POS document's till (PlacaCaja) and cashier
    environment: str = "1"

    @property
    def key_name(self) -> str:
        return "CUFE" if self.key_scheme.upper().startswith("CUFE") else "CUDE"


def read_document(document_xml: bytes) -> Document:
    try:
        root = etree.fromstring(document_xml, etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError as exc:
        raise UnreadableDocument(f"not XML: {exc}") from None
    local = etree.QName(root).localname
    if local == "AttachedDocument":  # the buyer's container: the document is inside
        inner = root.findtext("cac:Attachment/cac:ExternalReference/cbc:Description", None, NS)
        if not inner or not inner.strip():
            raise UnreadableDocument("the AttachedDocument holds no document")
        return read_document(inner.strip().encode("utf-8"))
    if local not in _ROOTS:
        raise UnreadableDocument(f"root element {local!r} is not Invoice, CreditNote or DebitNote")
    return _Reader(root, *_ROOTS[local]).document(_NOTE_KINDS.get(local))


class _Reader:
    def __init__(self, root: etree._Element, type_tag: str, line_tag: str, qty: str) -> None:
        self.root = root
        self.type_tag, self.line_tag, self.qty_tag = type_tag, line_tag, qty

    def text(self, path: str, node: etree._Element | None = None, required: bool = False) -> str:
        found = (self.root if node is None else node).find(path, NS)
        value = (found.text or "").strip() if found is not None else ""
        if required and not value:
            raise UnreadableDocument(f"the document has no {path.split('/')[-1]}")
        return value

    def amount(self, path: str, node: etree._Element | None = None) -> Decimal:
        value = self.text(path, node)
        try:
            return Decimal(value) if value else Decimal(0)
        except InvalidOperation:
            raise UnreadableDocument(f"{path.split('/')[-1]} is not a number: {value!r}") from None

    def document(self, note_kind: DocumentKind | None) -> Document:
        code = self.text(f"cbc:{self.type_tag}")
        try:
            kind = DocumentKind(code) if code else note_kind
        except ValueError:
            raise UnreadableDocument(f"unknown document type code {code!r}") from None
        if kind is None:
            raise UnreadableDocument(f"the document has no {self.type_tag}")
        key = self.root.find("cbc:UUID", NS)
        dian = "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/sts:DianExtensions"
        totals = self.root.find("cac:LegalMonetaryTotal", NS)
        if totals is None:
            totals = self.root.find("cac:RequestedMonetaryTotal", NS)
        if totals is None:
            raise UnreadableDocument("the document has no LegalMonetaryTotal")
        maker = self.pairs("InformacionDelFabricanteDelSoftware")
        till = self.pairs("InformacionCajaVenta")
        return Document(
            kind=kind,
            number=self.text("cbc:ID", required=True),
            key=self.text("cbc:UUID", required=True),
            key_scheme=key.get("schemeName", "") if key is not None else "",
            issue_date=self.text("cbc:IssueDate", required=True),
            issue_time=self.text("cbc:IssueTime"),
            seller=self.party("cac:AccountingSupplierParty/cac:Party"),
            buyer=self.party("cac:AccountingCustomerParty/cac:Party"),
            lines=tuple(self.line(node) for node in self.root.iterfind(f"cac:{self.line_tag}", NS)),
            taxes=self.taxes(),
            tip=self.tip(),
            line_total=self.amount("cbc:LineExtensionAmount", totals),
            tax_inclusive=self.amount("cbc:TaxInclusiveAmount", totals),
            rounding=self.amount("cbc:PayableRoundingAmount", totals),
            payable=self.amount("cbc:PayableAmount", totals),
            payment_means=self.payment_means(),
            qr_url=self.text(f"{dian}/sts:QRCode", required=True),
            software_provider=self.text(f"{dian}/sts:SoftwareProvider/sts:ProviderID"),
            software_id=self.text(f"{dian}/sts:SoftwareProvider/sts:SoftwareID"),
            software_maker=maker.get("RazonSocial") or maker.get("NombreApellido", ""),
            software_name=maker.get("NombreSoftware", ""),
            authorization=self.authorization(f"{dian}/sts:InvoiceControl"),
            reference=self.reference(),
            reason=self.text("cac:DiscrepancyResponse/cbc:Description"),
            register=" · ".join(v for v in (till.get("PlacaCaja"), till.get("Cajero")) if v),
            environment=self.text("cbc:ProfileExecutionID") or "1",
        )

    def party(self, path: str) -> Party:
        party = self.root.find(path, NS)
        if party is None:
            raise UnreadableDocument(f"the document has no {path.split('/')[0][4:]}")
        company = party.find("cac:PartyTaxScheme/cbc:CompanyID", NS)
        if company is None:
            company = party.find("cac:PartyIdentification/cbc:ID", NS)
        address = party.find("cac:PhysicalLocation/cac:Address", NS)
        where = ""
        if address is not None:
            where = ", ".join(
                v
                for v in (
                    self.text("cac:AddressLine/cbc:Line", address),
                    self.text("cbc:CityName", address),
                    self.text("cbc:CountrySubentity", address),
                )
                if v
            )
        return Party(
            name=self.text("cac:PartyTaxScheme/cbc:RegistrationName", party)
            or self.text("cac:PartyName/cbc:Name", party),
            id_type=company.get("schemeName", "") if company is not None else "",
            id_number=(company.text or "").strip() if company is not None else "",
            check_digit=company.get("schemeID", "") if company is not None else "",
            trade_name=self.text("cac:PartyName/cbc:Name", party),
            address=where,
            tax_levels=self.text("cac:PartyTaxScheme/cbc:TaxLevelCode", party),
        )

    def line(self, node: etree._Element) -> Line:
        return Line(
            quantity=self.amount(f"cbc:{self.qty_tag}", node),
            description=self.text("cac:Item/cbc:Description", node),
            code=self.text("cac:Item/cac:StandardItemIdentification/cbc:ID", node),
            unit_price=self.amount("cac:Price/cbc:PriceAmount", node),
            amount=self.amount("cbc:LineExtensionAmount", node),
        )

    def taxes(self) -> tuple[TaxRate, ...]:
        return tuple(
            TaxRate(
                name=self.text("cac:TaxCategory/cac:TaxScheme/cbc:Name", sub),
                percent=self.amount("cac:TaxCategory/cbc:Percent", sub),
                taxable=self.amount("cbc:TaxableAmount", sub),
                amount=self.amount("cbc:TaxAmount", sub),
            )
            for sub in self.root.iterfind("cac:TaxTotal/cac:TaxSubtotal", NS)
        )

    def tip(self) -> Decimal:
        return sum(
            (
                self.amount("cbc:Amount", charge)
                for charge in self.root.iterfind("cac:AllowanceCharge", NS)
                if self.text("cbc:ChargeIndicator", charge) == "true"
            ),
            Decimal(0),
        )

    def payment_means(self) -> tuple[str, ...]:
        means = []
        for node in self.root.iterfind("cac:PaymentMeans", NS):
            form = PAYMENT_FORMS.get(self.text("cbc:ID", node), self.text("cbc:ID", node))
            code = self.text("cbc:PaymentMeansCode", node)
            means.append(f"{form} · {PAYMENT_MEANS_NAMES.get(code, code)}")
        return tuple(means)

    def pairs(self, group: str) -> dict[str, str]:
        """The Name/Value pairs of a POS extension group (empty when the document has none)."""
        node = self.root.find(f".//{{*}}{group}")
        if node is None:
            return {}
        names = [(n.text or "").strip() for n in node.iterfind("{*}Name")]
        values = [(v.text or "").strip() for v in node.iterfind("{*}Value")]
        return dict(zip(names, values, strict=False))

    def authorization(self, path: str) -> Authorization | None:
        control = self.root.find(path, NS)
        if control is None:
            return None
        return Authorization(
            resolution=self.text("sts:InvoiceAuthorization", control),
            valid_from=self.text("sts:AuthorizationPeriod/cbc:StartDate", control),
            valid_to=self.text("sts:AuthorizationPeriod/cbc:EndDate", control),
            prefix=self.text("sts:AuthorizedInvoices/sts:Prefix", control),
            first=self.text("sts:AuthorizedInvoices/sts:From", control),
            last=self.text("sts:AuthorizedInvoices/sts:To", control),
        )

    def reference(self) -> Reference | None:
        ref = self.root.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
        if ref is None:
            return None
        key = ref.find("cbc:UUID", NS)
        return Reference(
            number=self.text("cbc:ID", ref),
            key=self.text("cbc:UUID", ref),
            key_scheme=key.get("schemeName", "") if key is not None else "",
            issue_date=self.text("cbc:IssueDate", ref),
        )
