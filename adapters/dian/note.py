"""UBL 2.1 `CreditNote` / `DebitNote` for a note that corrects an issued document.

    kind  root        type code  CustomizationID  corrects             keyed with
    91    CreditNote  91         20               an invoice (01)      invoice software's PIN
    92    DebitNote   (none)     30               an invoice (01)      invoice software's PIN
    94    CreditNote  94         20               a POS document (20)  POS software's PIN
    93    DebitNote   (none)     20               a POS document (20)  POS software's PIN

CustomizationID 20 means "references an e-invoice" for 91 and "the referenced equivalent
document is a type 20" for 94/93 (same digits, different DIAN lists). Every note carries
`cac:DiscrepancyResponse` (the concept: 1 return, 2 void, 3 discount, 4 price; a debit
note's 3 is a change of value) and `cac:BillingReference` naming the corrected document's
number, CUFE or CUDE and issue date; an adjustment credit note (94) adds DocumentTypeCode 20,
which APIDIAN and the Anexo DE examples write for the credit note only. A note is numbered
by the issuer, so its DianExtensions carry no InvoiceControl, and an adjustment note carries
none of the three POS extensions. A 91/92 never references a POS document (nor a 94/93 an
invoice): such a submission is refused as invalid.

The CUDE is the CUFE's chain over the note's own figures (`domain.cufe.cude`): for a debit
note its `RequestedMonetaryTotal`. Lines keep the UBL order (TaxTotal before Item and Price;
a credit note line's TaxTotal precedes any AllowanceCharge). The header's parties, tax totals
and DianExtensions are written by the invoice's own writers (`adapters.dian.ubl`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from decimal import ROUND_HALF_EVEN, Decimal

from adapters.dian.ubl import (
    BOGOTA,
    CURRENCY,
    UNIT_CODE,
    InvoiceHeader,
    TaxSubtotal,
    TributeTotal,
    decimal_text,
    invoice_header,
    root_start,
    write_amount,
    write_customer,
    write_dian_extensions,
    write_supplier,
    write_tax_total,
    write_tip,
)
from adapters.dian.xmltext import XmlText, attributes
from domain.catalog import TRIBUTES, Tribute
from domain.cufe import cude, qr_url
from domain.documents import DocumentKind
from domain.errors import FieldError, InvalidOrder
from domain.issuer import IssuerProfile, NumberingRange, SoftwareRegistration
from domain.notes import NoteFigures, NoteLine, NoteType, ReferencedDocument
from domain.ports import Submission

CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
DEBIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:DebitNote-2"
_MAINDOC = "http://docs.oasis-open.org/ubl/os-UBL-2.1/xsd/maindoc/"
HUNDRED = Decimal(100)
ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
POS_DOCUMENT_TYPE = "20"
# The DE concept list has the FE numbers; only the void's words name the document it voids.
POS_VOID = "Anulación del documento equivalente electrónico"
_TRIBUTES = {t.code: t for t in TRIBUTES.values()}


@dataclass(frozen=True)
class NoteProfile:
    """The literals of one kind of note."""

    root: str  # CreditNote | DebitNote
    type_code: str | None  # cbc:CreditNoteTypeCode (debit notes have no type element)
    customization_id: str
    profile_id: str
    corrects: DocumentKind  # the only kind of document it may reference

    @property
    def is_credit(self) -> bool:
        return self.root == "CreditNote"

    @property
    def namespace(self) -> str:
        return CREDIT_NOTE_NS if self.is_credit else DEBIT_NOTE_NS

    @property
    def schema_location(self) -> str:
        return f"{self.namespace}     {_MAINDOC}UBL-{self.root}-2.1.xsd"


NOTE_PROFILES = {
    DocumentKind.CREDIT_NOTE: NoteProfile(
        "CreditNote",
        "91",
        "20",
        "DIAN 2.1: Nota Crédito de Factura Electrónica de Venta",
        DocumentKind.INVOICE,
    ),
    DocumentKind.DEBIT_NOTE: NoteProfile(
        "DebitNote",
        None,
        "30",
        "DIAN 2.1: Nota Débito de Factura Electrónica de Venta",
        DocumentKind.INVOICE,
    ),
    DocumentKind.POS_CREDIT_NOTE: NoteProfile(
        "CreditNote",
        "94",
        "20",
        "DIAN 2.1: Nota de ajuste crédito al documento equivalente",
        DocumentKind.POS,
    ),
    DocumentKind.POS_DEBIT_NOTE: NoteProfile(
        "DebitNote",
        None,
        "20",
        "DIAN 2.1: Nota de ajuste débito al documento equivalente",
        DocumentKind.POS,
    ),
}


@dataclass(frozen=True)
class NoteTotals:
    """The note's header amounts: per tribute and rate, and the monetary total."""

    tax_totals: tuple[TributeTotal, ...]
    line_extension: Decimal
    tax_exclusive: Decimal
    tax_inclusive: Decimal
    charge_total: Decimal  # the tip a void credits
    payable: Decimal

    def tax_amounts(self) -> dict[str, Decimal]:
        return {total.tribute.code: total.amount for total in self.tax_totals}


def _tribute(code: str, name: str) -> Tribute:
    return _TRIBUTES.get(code) or Tribute(code, name)


def note_totals(figures: NoteFigures) -> NoteTotals:
    """LineExtension = Σ bases; TaxExclusive = Σ bases of taxed lines; TaxInclusive adds the
    taxes; the tip (a void's) is a charge, in Payable only."""
    per_rate: dict[tuple[str, Decimal], list[Decimal]] = {}
    tributes: dict[str, Tribute] = {}
    for line in figures.lines:
        for tax in line.taxes:
            tributes[tax.tribute] = _tribute(tax.tribute, tax.name)
            sums = per_rate.setdefault((tax.tribute, tax.rate * HUNDRED), [ZERO, ZERO])
            sums[0] += line.base
            sums[1] += tax.amount
    totals = []
    for code in sorted(tributes):
        subtotals = tuple(
            TaxSubtotal(percent, sums[0], sums[1])
            for (c, percent), sums in sorted(per_rate.items())
            if c == code
        )
        amount = sum((s.amount for s in subtotals), ZERO)
        totals.append(TributeTotal(tributes[code], amount, subtotals))
    line_extension = figures.base
    tax_inclusive = line_extension + sum((t.amount for t in totals), ZERO)
    return NoteTotals(
        tax_totals=tuple(totals),
        line_extension=line_extension,
        tax_exclusive=sum((line.base for line in figures.lines if line.taxes), ZERO),
        tax_inclusive=tax_inclusive,
        charge_total=figures.tip,
        payable=tax_inclusive + figures.tip,
    )


@dataclass(frozen=True)
class UnsignedNote:
    """The unsigned note: `xml` as written, with an empty last `ext:ExtensionContent`."""

    xml: bytes
    header: InvoiceHeader
    totals: NoteTotals
    cude: str
    qr_url: str


def note_parts(
    submission: Submission,
    issuer: IssuerProfile,
    software: SoftwareRegistration,
    numbering: NumberingRange,
) -> tuple[NoteProfile, NoteFigures, ReferencedDocument, InvoiceHeader, NoteTotals, str]:
    """Profile, figures, corrected document, header, totals and CUDE of the note
    `submission` describes. `InvalidOrder` for a note that references the wrong kind of
    document (a 91 against a POS ticket) or one DIAN has not given a key; `NumberingError`
    as for any document."""
    profile = NOTE_PROFILES.get(submission.kind)
    if profile is None or submission.note is None:
        raise ValueError(f"document {submission.kind} of {submission.key} is not a note")
    corrects = _corrected(submission, profile)
    header = invoice_header(submission, software, numbering)
    totals = note_totals(submission.note)
    key = cude(
        number=header.number,
        issue_date=header.issue_date,
        issue_time=header.issue_time,
        line_extension=totals.line_extension,
        taxes=totals.tax_amounts(),
        payable=totals.payable,
        supplier_nit=issuer.nit,
        buyer_id=submission.order.adquirente.numero_documento,
        pin=software.pin,
        environment=header.environment,
    )
    return profile, submission.note, corrects, header, totals, key


def _corrected(submission: Submission, profile: NoteProfile) -> ReferencedDocument:
    corrects = submission.corrects
    if corrects is None:
        raise InvalidOrder(
            [FieldError("(note)", "note_reference", "a note names the document it corrects")]
        )
    if corrects.kind is not profile.corrects:
        kind = submission.kind
        raise InvalidOrder(
            [
                FieldError(
                    "(note)",
                    "note_reference",
                    f"a {kind.label.lower()} ({kind.value}) corrects a document of type "
                    f"{profile.corrects.value}, not {corrects.kind.value} ({corrects.number}): "
                    "a POS document (20) is corrected by adjustment notes 94/93, an invoice "
                    "(01) by notes 91/92",
                )
            ]
        )
    if not corrects.number or len(corrects.key) != 96:
        raise InvalidOrder(
            [
                FieldError(
                    "(note)",
                    "note_reference",
                    f"the corrected document {corrects.number or '(unnumbered)'} has no "
                    "CUFE/CUDE from DIAN",
                )
            ]
        )
    return corrects


def build_note(
    submission: Submission,
    issuer: IssuerProfile,
    software: SoftwareRegistration,
    numbering: NumberingRange,
) -> UnsignedNote:
    """The unsigned note of `submission.kind` (91, 92, 93 or 94); `software` is the
    registration of the family of the corrected document, `numbering` the issuer's own
    range of notes of that kind. Raises `InvalidOrder` or `NumberingError`."""
    profile, figures, corrects, header, totals, key = note_parts(
        submission, issuer, software, numbering
    )
    url = qr_url(key, header.environment)
    out = XmlText(root_start(profile.root, profile.namespace, profile.schema_location))
    with out.element("ext:UBLExtensions"):
        with out.element("ext:UBLExtension"), out.element("ext:ExtensionContent"):
            write_dian_extensions(out, software, None, header, url)
        with out.element("ext:UBLExtension"):
            out.empty("ext:ExtensionContent")  # the signature's place
    out.leaf("cbc:UBLVersionID", "UBL 2.1")
    out.leaf("cbc:CustomizationID", profile.customization_id)
    out.leaf("cbc:ProfileID", profile.profile_id)
    out.leaf("cbc:ProfileExecutionID", header.environment)
    out.leaf("cbc:ID", header.number)
    out.leaf("cbc:UUID", key, attributes(schemeID=header.environment, schemeName="CUDE-SHA384"))
    out.leaf("cbc:IssueDate", header.issue_date)
    out.leaf("cbc:IssueTime", header.issue_time)
    if profile.type_code is not None:
        out.leaf("cbc:CreditNoteTypeCode", profile.type_code)
    if figures.reason:
        out.leaf("cbc:Note", figures.reason)
    out.leaf("cbc:DocumentCurrencyCode", CURRENCY)
    out.leaf("cbc:LineCountNumeric", str(len(figures.lines)))
    _discrepancy(out, submission.kind, figures, corrects)
    with out.element("cac:OrderReference"):
        out.leaf("cbc:ID", submission.order.id_pedido_origen)
    _billing_reference(out, submission.kind, corrects)
    with out.element("cac:AccountingSupplierParty"):
        write_supplier(out, issuer, numbering)
    with out.element("cac:AccountingCustomerParty"):
        write_customer(out, submission.order.adquirente)
    if totals.charge_total > 0:
        write_tip(out, totals.charge_total, totals.line_extension)
    for total in totals.tax_totals:
        write_tax_total(out, total.tribute, total.amount, total.subtotals)
    monetary = "cac:LegalMonetaryTotal" if profile.is_credit else "cac:RequestedMonetaryTotal"
    with out.element(monetary):
        write_amount(out, "cbc:LineExtensionAmount", totals.line_extension)
        write_amount(out, "cbc:TaxExclusiveAmount", totals.tax_exclusive)
        write_amount(out, "cbc:TaxInclusiveAmount", totals.tax_inclusive)
        write_amount(out, "cbc:ChargeTotalAmount", totals.charge_total)
        write_amount(out, "cbc:PayableAmount", totals.payable)
    for number, line in enumerate(figures.lines, start=1):
        _line(out, profile, number, line)
    try:
        xml = out.document(f"</{profile.root}>")
    except ValueError as exc:  # control characters, lone surrogates
        raise InvalidOrder(
            [FieldError("(order)", "xml_text", f"text cannot be written as XML: {exc}")]
        ) from exc
    return UnsignedNote(xml=xml, header=header, totals=totals, cude=key, qr_url=url)


def _discrepancy(
    out: XmlText, kind: DocumentKind, figures: NoteFigures, corrects: ReferencedDocument
) -> None:
    code, description = figures.concept()
    if kind is DocumentKind.POS_CREDIT_NOTE and figures.type is NoteType.VOID:
        description = POS_VOID
    with out.element("cac:DiscrepancyResponse"):
        out.leaf("cbc:ReferenceID", corrects.number)
        out.leaf("cbc:ResponseCode", code)
        out.leaf("cbc:Description", description)


def _billing_reference(out: XmlText, kind: DocumentKind, corrects: ReferencedDocument) -> None:
    scheme = "CUDE-SHA384" if corrects.kind.uses_cude else "CUFE-SHA384"
    issued = corrects.issued_at
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=UTC)
    with out.element("cac:BillingReference"), out.element("cac:InvoiceDocumentReference"):
        out.leaf("cbc:ID", corrects.number)
        out.leaf("cbc:UUID", corrects.key, attributes(schemeName=scheme))
        out.leaf("cbc:IssueDate", issued.astimezone(BOGOTA).strftime("%Y-%m-%d"))
        if kind is DocumentKind.POS_CREDIT_NOTE:
            out.leaf("cbc:DocumentTypeCode", POS_DOCUMENT_TYPE)


def _line(out: XmlText, profile: NoteProfile, number: int, line: NoteLine) -> None:
    """One note line. A return names the units it gives back at the item's price; an amount
    correction (discount, price change) is one unit priced at the amount. When the units
    returned last take what is left of the line (a cent more or less than units × price),
    the price is stated for all of them (BaseQuantity), so price × quantity is the base."""
    tag, quantity_tag = (
        ("cac:CreditNoteLine", "cbc:CreditedQuantity")
        if profile.is_credit
        else ("cac:DebitNoteLine", "cbc:DebitedQuantity")
    )
    unit = attributes(unitCode=UNIT_CODE)
    quantity = line.quantity if line.quantity > 0 else ONE
    exact = line.quantity > 0 and _cents(line.quantity * line.unit_price) == line.base
    price, per = (line.unit_price, ONE) if exact else (line.base, quantity)
    with out.element(tag):
        out.leaf("cbc:ID", str(number))
        out.leaf(quantity_tag, decimal_text(quantity), unit)
        write_amount(out, "cbc:LineExtensionAmount", line.base)
        for tax in line.taxes:
            subtotal = TaxSubtotal(tax.rate * HUNDRED, line.base, tax.amount)
            write_tax_total(out, _tribute(tax.tribute, tax.name), tax.amount, (subtotal,))
        with out.element("cac:Item"):
            out.leaf("cbc:Description", line.description or f"Línea {line.number}")
            with out.element("cac:StandardItemIdentification"):
                code = line.product_id or str(line.number)
                out.leaf("cbc:ID", code, attributes(schemeID="999"))
        with out.element("cac:Price"):
            write_amount(out, "cbc:PriceAmount", price)
            out.leaf("cbc:BaseQuantity", decimal_text(per), unit)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)
