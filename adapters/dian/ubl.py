"""UBL 2.1 `Invoice` for one POS order: a factura electrónica de venta (01) or a documento
equivalente electrónico POS (20), which DIAN receives as the same UBL document with its own
header literals, a CUDE keyed with the POS software's PIN and three extensions of its own.

Three steps, each usable alone:
- `invoice_figures(order)` works out every amount the document carries (lines, taxes per
  tribute and rate, totals, the tip as a charge, the rounding to what the POS charged) and
  raises `InvalidOrder` when the order cannot be mapped;
- `document_key(...)` computes the CUFE (01) or CUDE (20) from those figures and the header,
  with the very strings the XML carries (`domain.cufe.format_amount`);
- `build_invoice(...)` writes the XML as text (`adapters.dian.xmltext`), unsigned, with an
  empty last `ext:ExtensionContent` for the signature.

User text (names, descriptions) only reaches the XML through `xmltext.escape`, and a document
holding a character XML 1.0 cannot carry is refused as an invalid order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from decimal import Decimal

from lxml import etree

from adapters.dian.pos_extensions import PointOfSale, write_pos_extensions
from adapters.dian.tip import tip_factor
from adapters.dian.xmltext import XmlText, attributes
from domain.catalog import Tribute, payment_means_for, tribute_for
from domain.cufe import cude, cufe, format_amount, qr_url, software_security_code
from domain.dian_codes import is_nit_number, nit_check_digit
from domain.documents import DocumentKind
from domain.errors import FieldError, InvalidOrder, NumberingError
from domain.issuer import Address, IssuerProfile, NumberingRange, SoftwareRegistration
from domain.order import Adquirente, Item, Order
from domain.ports import Submission
from domain.rules import ROUNDING_TOLERANCE, line_base

INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
STS = "dian:gov:co:facturaelectronica:Structures-2-1"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
XADES141 = "http://uri.etsi.org/01903/v1.4.1#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

NSMAP: dict[str | None, str] = {
    None: INVOICE,
    "cac": CAC,
    "cbc": CBC,
    "ext": EXT,
    "sts": STS,
    "ds": DS,
    "xades": XADES,
    "xades141": XADES141,
    "xsi": XSI,
}
SCHEMA_LOCATION = (
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2     "
    "http://docs.oasis-open.org/ubl/os-UBL-2.1/xsd/maindoc/UBL-Invoice-2.1.xsd"
)


@dataclass(frozen=True)
class Profile:
    """The header literals of one document kind."""

    type_code: str  # cbc:InvoiceTypeCode
    customization_id: str  # cbc:CustomizationID: the operation type
    profile_id: str  # cbc:ProfileID, compared as-is by DIAN (FE and DEAD03)
    key_scheme: str  # cbc:UUID/@schemeName


# CustomizationID 10: operación estándar (invoices); the one operation mode of the POS document.
PROFILES = {
    DocumentKind.INVOICE: Profile(
        "01", "10", "DIAN 2.1: Factura Electrónica de Venta", "CUFE-SHA384"
    ),
    DocumentKind.POS: Profile("20", "10", "DIAN 2.1: Documento Equivalente POS", "CUDE-SHA384"),
}
CURRENCY = "COP"
UNIT_CODE = "94"  # UN/ECE rec 20: unit
DIAN_NIT, DIAN_DV = "800197268", "4"
DIAN_AGENCY = {
    "schemeAgencyID": "195",
    "schemeAgencyName": "CO, DIAN (Dirección de Impuestos y Aduanas Nacionales)",
}
COUNTRY_LIST = {
    "listAgencyID": "6",
    "listAgencyName": "United Nations Economic Commission for Europe",
    "listSchemeURI": "urn:oasis:names:specification:ubl:codelist:gc:CountryIdentificationCode-2.1",
}
NIT_TYPE = "31"
CONSUMIDOR_FINAL_NAME = "consumidor final"
NO_RESPONSIBILITY = "R-99-PN"
NOT_APPLICABLE_SCHEME = ("ZZ", "No aplica")
TAX_SCHEME_NAMES = {"01": "IVA", "ZZ": "No aplica", "04": "INC", "ZA": "IVA e INC"}
PAYMENT_CASH = "1"  # PaymentMeans/ID: 1 contado
# The tip is a document-level charge with a free-text reason. DIAN's reason-code list
# (Anexo 13.3.7) is a list of *discount* codes (03 there is "pronto pago"), so a charge
# carries no AllowanceChargeReasonCode.
TIP_REASON = "Propina voluntaria"
BOGOTA = timezone(timedelta(hours=-5))
HUNDRED = Decimal(100)
ZERO = Decimal(0)


# ---------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class LineTax:
    tribute: Tribute
    percent: Decimal
    taxable: Decimal
    amount: Decimal


@dataclass(frozen=True)
class LineFigures:
    item: Item
    base: Decimal
    taxes: tuple[LineTax, ...]


@dataclass(frozen=True)
class TaxSubtotal:
    percent: Decimal
    taxable: Decimal
    amount: Decimal


@dataclass(frozen=True)
class TributeTotal:
    tribute: Tribute
    amount: Decimal
    subtotals: tuple[TaxSubtotal, ...]


@dataclass(frozen=True)
class InvoiceFigures:
    """Every amount of the document, before formatting."""

    lines: tuple[LineFigures, ...]
    tax_totals: tuple[TributeTotal, ...]
    line_extension: Decimal
    tax_exclusive: Decimal
    tax_inclusive: Decimal
    charge_total: Decimal  # the tip
    payable: Decimal  # total_factura: what the POS charged
    payment_codes: tuple[str, ...]  # PaymentMeansCode, distinct, in the POS's order
    rounding: Decimal = ZERO  # PayableRoundingAmount: payable - (tax_inclusive + charge_total)

    def tax_amounts(self) -> dict[str, Decimal]:
        return {total.tribute.code: total.amount for total in self.tax_totals}


def invoice_figures(order: Order) -> InvoiceFigures:
    """Amounts per line, per tribute and rate, and the totals; `InvalidOrder` if unmappable.

    LineExtension = Σ line bases; TaxExclusive = Σ bases of the lines that carry a tax;
    TaxInclusive = LineExtension + taxes; the tip is a charge: in ChargeTotal and Payable only.
    Payable is `total_factura`, what the customer paid; the cents the lines' rounding leaves
    between it and TaxInclusive + ChargeTotal are the PayableRoundingAmount, refused beyond
    DIAN's tolerance (as intake refuses them, rule `payable_rounding`).
    """
    errors: list[FieldError] = []
    lines: list[LineFigures] = []
    per_rate: dict[tuple[str, Decimal], list[Decimal]] = {}
    tributes: dict[str, Tribute] = {}
    for index, item in enumerate(order.items):
        base = line_base(item)
        taxes: list[LineTax] = []
        for t_index, tax in enumerate(item.impuestos):
            tribute = tribute_for(tax.nombre)
            path = f"items[{index}].impuestos[{t_index}].nombre"
            if tribute is None:
                errors.append(FieldError(path, "unknown_tax", f"unknown tax name {tax.nombre!r}"))
                continue
            if any(t.tribute.code == tribute.code for t in taxes):
                errors.append(FieldError(path, "duplicate_tax", "the same tribute twice on a line"))
                continue
            percent = tax.tasa * HUNDRED
            taxes.append(LineTax(tribute, percent, base, tax.monto))
            tributes[tribute.code] = tribute
            sums = per_rate.setdefault((tribute.code, percent), [ZERO, ZERO])
            sums[0] += base
            sums[1] += tax.monto
        lines.append(LineFigures(item, base, tuple(taxes)))
    payment_codes = _payment_codes(order, errors)
    if errors:
        raise InvalidOrder(errors)

    totals: list[TributeTotal] = []
    for code in sorted(tributes):
        subtotals = tuple(
            TaxSubtotal(percent, sums[0], sums[1])
            for (c, percent), sums in sorted(per_rate.items())
            if c == code
        )
        totals.append(
            TributeTotal(tributes[code], sum((s.amount for s in subtotals), ZERO), subtotals)
        )
    line_extension = sum((line.base for line in lines), ZERO)
    tax_exclusive = sum((line.base for line in lines if line.taxes), ZERO)
    tax_inclusive = line_extension + sum((t.amount for t in totals), ZERO)
    charge = order.propina_voluntaria
    rounding = order.total_factura - (tax_inclusive + charge)
    if abs(rounding) > ROUNDING_TOLERANCE:
        raise InvalidOrder(
            [
                FieldError(
                    "total_factura",
                    "payable_rounding",
                    f"total_factura {order.total_factura} differs by {rounding} from the lines, "
                    f"taxes and tip; at most {ROUNDING_TOLERANCE} may be rounded",
                )
            ]
        )
    return InvoiceFigures(
        lines=tuple(lines),
        tax_totals=tuple(totals),
        line_extension=line_extension,
        tax_exclusive=tax_exclusive,
        tax_inclusive=tax_inclusive,
        charge_total=charge,
        payable=order.total_factura,
        payment_codes=payment_codes,
        rounding=rounding,
    )


def _payment_codes(order: Order, errors: list[FieldError]) -> tuple[str, ...]:
    codes: list[str] = []
    for index, payment in enumerate(order.metodos_pago):
        code = payment_means_for(payment.tipo)
        if code is None:
            errors.append(
                FieldError(
                    f"metodos_pago[{index}].tipo",
                    "unknown_payment_method",
                    f"unknown payment method {payment.tipo!r}",
                )
            )
        elif code not in codes:
            codes.append(code)
    return tuple(codes)


# ----------------------------------------------------------------------------- header


@dataclass(frozen=True)
class InvoiceHeader:
    """The header strings, exactly as written in the XML and hashed into the CUFE/CUDE."""

    number: str
    consecutive: int
    issue_date: str
    issue_time: str
    environment: str


def invoice_header(
    submission: Submission, software: SoftwareRegistration, numbering: NumberingRange
) -> InvoiceHeader:
    """Number and Colombian issue date/time; `NumberingError` if the range does not allow them.

    A naive `issued_at` is taken as UTC.
    """
    number = submission.number
    if number is None:
        raise NumberingError(f"order {submission.key} has no document number yet")
    if number.prefix != numbering.prefix or not numbering.contains(number.number):
        raise NumberingError(
            f"{number} is outside the authorized range {numbering.prefix}"
            f"{numbering.first}-{numbering.last} (resolution {numbering.resolution})"
        )
    issued = submission.issued_at
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=UTC)
    local = issued.astimezone(BOGOTA)
    if not numbering.valid_from <= local.date() <= numbering.valid_to:
        raise NumberingError(
            f"issue date {local.date()} is outside the validity of resolution "
            f"{numbering.resolution} ({numbering.valid_from} to {numbering.valid_to})"
        )
    return InvoiceHeader(
        number=numbering.prefix + numbering.digits(number.number),
        consecutive=number.number,
        issue_date=local.strftime("%Y-%m-%d"),
        issue_time=local.strftime("%H:%M:%S") + "-05:00",
        environment=software.environment,
    )


def document_key(
    kind: DocumentKind,
    header: InvoiceHeader,
    figures: InvoiceFigures,
    order: Order,
    issuer: IssuerProfile,
    software: SoftwareRegistration,
    numbering: NumberingRange,
) -> str:
    """The CUFE (keyed with the range's technical key) or, for kinds DIAN keys with the
    software PIN, the CUDE of the document these figures and this header produce."""
    buyer = order.adquirente.numero_documento
    if kind.uses_cude:
        return cude(
            number=header.number,
            issue_date=header.issue_date,
            issue_time=header.issue_time,
            line_extension=figures.line_extension,
            taxes=figures.tax_amounts(),
            payable=figures.payable,
            supplier_nit=issuer.nit,
            buyer_id=buyer,
            pin=software.pin,
            environment=header.environment,
        )
    return cufe(
        number=header.number,
        issue_date=header.issue_date,
        issue_time=header.issue_time,
        line_extension=figures.line_extension,
        taxes=figures.tax_amounts(),
        payable=figures.payable,
        supplier_nit=issuer.nit,
        buyer_id=buyer,
        technical_key=numbering.technical_key,
        environment=header.environment,
    )


# ---------------------------------------------------------------------------- the XML


@dataclass(frozen=True)
class UnsignedInvoice:
    """The unsigned document: `xml` as written, with an empty last `ext:ExtensionContent`."""

    xml: bytes
    header: InvoiceHeader
    figures: InvoiceFigures
    cufe: str
    qr_url: str

    @property
    def root(self) -> etree._Element:
        """`xml` parsed (a new tree on every call)."""
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        return etree.fromstring(self.xml, parser)


def root_start(root: str, namespace: str, schema_location: str) -> str:
    """The start tag of a UBL document `root` in its default `namespace`, binding every
    prefix the documents use."""
    bindings = {**NSMAP, None: namespace}
    return (
        f"<{root}"
        + "".join(
            f' xmlns="{uri}"' if prefix is None else f' xmlns:{prefix}="{uri}"'
            for prefix, uri in bindings.items()
        )
        + attributes(**{"xsi:schemaLocation": schema_location})
        + ">"
    )


ROOT_START = root_start("Invoice", INVOICE, SCHEMA_LOCATION)
ROOT_END = "</Invoice>"
_COP = attributes(currencyID=CURRENCY)
_UNIT = attributes(unitCode=UNIT_CODE)
_AGENCY = attributes(**DIAN_AGENCY)
_TAX_LEVEL = attributes(listName="48")


def write_amount(out: XmlText, tag: str, value: Decimal) -> None:
    out.leaf(tag, format_amount(value), _COP)


def decimal_text(value: Decimal) -> str:
    """`8` -> `8.00`, `8.375` -> `8.375`: two decimals at least, never an exponent."""
    text = format(value.normalize(), "f")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def _quantity(value: Decimal) -> str:
    return decimal_text(value)


def build_invoice(
    submission: Submission,
    issuer: IssuerProfile,
    software: SoftwareRegistration,
    numbering: NumberingRange,
    point_of_sale: PointOfSale | None = None,
) -> UnsignedInvoice:
    """The unsigned document of `submission.kind`; raises `NumberingError` or `InvalidOrder`.

    `software` is the registration of the kind's family and `numbering` the range the number
    came from. A POS document (20) also needs `point_of_sale` (software maker and register)
    for its three extensions; `ValueError` without it.
    """
    kind = submission.kind
    if kind is DocumentKind.POS and point_of_sale is None:
        raise ValueError("a POS document needs the software maker and the register")
    header = invoice_header(submission, software, numbering)
    order = submission.order
    figures = invoice_figures(order)
    key = document_key(kind, header, figures, order, issuer, software, numbering)
    url = qr_url(key, header.environment)
    try:
        xml = _document(
            submission, issuer, software, numbering, point_of_sale, header, figures, key, url
        )
    except ValueError as exc:  # control characters, lone surrogates
        raise InvalidOrder(
            [FieldError("(order)", "xml_text", f"text cannot be written as XML: {exc}")]
        ) from exc
    return UnsignedInvoice(xml=xml, header=header, figures=figures, cufe=key, qr_url=url)


def _document(
    submission: Submission,
    issuer: IssuerProfile,
    software: SoftwareRegistration,
    numbering: NumberingRange,
    point_of_sale: PointOfSale | None,
    header: InvoiceHeader,
    figures: InvoiceFigures,
    key: str,
    url: str,
) -> bytes:
    order = submission.order
    profile = PROFILES[submission.kind]
    out = XmlText(ROOT_START)
    with out.element("ext:UBLExtensions"):
        # DianExtensions first, as the Anexo's XPaths and DIAN's own POS example place it;
        # then the POS extensions; the signature's place is always last.
        with out.element("ext:UBLExtension"), out.element("ext:ExtensionContent"):
            write_dian_extensions(out, software, numbering, header, url)
        if point_of_sale is not None and submission.kind is DocumentKind.POS:
            buyer_name = _buyer_name(order.adquirente)
            write_pos_extensions(out, point_of_sale, order, buyer_name, figures.line_extension)
        with out.element("ext:UBLExtension"):
            out.empty("ext:ExtensionContent")  # the signature's place

    out.leaf("cbc:UBLVersionID", "UBL 2.1")
    out.leaf("cbc:CustomizationID", profile.customization_id)
    out.leaf("cbc:ProfileID", profile.profile_id)
    out.leaf("cbc:ProfileExecutionID", header.environment)
    out.leaf("cbc:ID", header.number)
    scheme = attributes(schemeID=header.environment, schemeName=profile.key_scheme)
    out.leaf("cbc:UUID", key, scheme)
    out.leaf("cbc:IssueDate", header.issue_date)
    out.leaf("cbc:IssueTime", header.issue_time)
    out.leaf("cbc:InvoiceTypeCode", profile.type_code)
    out.leaf("cbc:Note", f"Pedido {order.id_pedido_origen}")
    out.leaf("cbc:DocumentCurrencyCode", CURRENCY)
    out.leaf("cbc:LineCountNumeric", str(len(figures.lines)))
    with out.element("cac:OrderReference"):
        out.leaf("cbc:ID", order.id_pedido_origen)

    with out.element("cac:AccountingSupplierParty"):
        write_supplier(out, issuer, numbering)
    with out.element("cac:AccountingCustomerParty"):
        write_customer(out, order.adquirente)
    _payment_means(out, figures)
    if figures.charge_total > 0:
        write_tip(out, figures.charge_total, figures.line_extension)
    for total in figures.tax_totals:
        write_tax_total(out, total.tribute, total.amount, total.subtotals)
    with out.element("cac:LegalMonetaryTotal"):
        write_amount(out, "cbc:LineExtensionAmount", figures.line_extension)
        write_amount(out, "cbc:TaxExclusiveAmount", figures.tax_exclusive)
        write_amount(out, "cbc:TaxInclusiveAmount", figures.tax_inclusive)
        write_amount(out, "cbc:ChargeTotalAmount", figures.charge_total)
        if figures.rounding:
            write_amount(out, "cbc:PayableRoundingAmount", figures.rounding)
        write_amount(out, "cbc:PayableAmount", figures.payable)
    for number, line in enumerate(figures.lines, start=1):
        _invoice_line(out, number, line)
    return out.document(ROOT_END)


def write_dian_extensions(
    out: XmlText,
    software: SoftwareRegistration,
    numbering: NumberingRange | None,
    header: InvoiceHeader,
    url: str,
) -> None:
    """`sts:DianExtensions`; `sts:InvoiceControl` only for a document numbered from a range
    DIAN authorized (`numbering`; notes, numbered by the issuer, pass None)."""
    with out.element("sts:DianExtensions"):
        if numbering is not None:
            _invoice_control(out, numbering)
        with out.element("sts:InvoiceSource"):
            out.leaf("cbc:IdentificationCode", "CO", attributes(**COUNTRY_LIST))
        with out.element("sts:SoftwareProvider"):
            provider = attributes(schemeID=software.provider_dv, schemeName=NIT_TYPE)
            out.leaf("sts:ProviderID", software.provider_nit, _AGENCY + provider)
            out.leaf("sts:SoftwareID", software.software_id, _AGENCY)
        ssc = software_security_code(software.software_id, software.pin, header.number)
        out.leaf("sts:SoftwareSecurityCode", ssc, _AGENCY)
        with out.element("sts:AuthorizationProvider"):
            dian = attributes(schemeID=DIAN_DV, schemeName=NIT_TYPE)
            out.leaf("sts:AuthorizationProviderID", DIAN_NIT, _AGENCY + dian)
        out.leaf("sts:QRCode", url)


def _invoice_control(out: XmlText, numbering: NumberingRange) -> None:
    with out.element("sts:InvoiceControl"):
        out.leaf("sts:InvoiceAuthorization", numbering.resolution)
        with out.element("sts:AuthorizationPeriod"):
            out.leaf("cbc:StartDate", numbering.valid_from.isoformat())
            out.leaf("cbc:EndDate", numbering.valid_to.isoformat())
        with out.element("sts:AuthorizedInvoices"):
            if numbering.prefix:
                out.leaf("sts:Prefix", numbering.prefix)
            out.leaf("sts:From", numbering.digits(numbering.first))
            out.leaf("sts:To", numbering.digits(numbering.last))


def _address(out: XmlText, tag: str, address: Address) -> None:
    with out.element(tag):
        out.leaf("cbc:ID", address.municipality_code)
        out.leaf("cbc:CityName", address.city)
        out.leaf("cbc:PostalZone", address.postal_zone)
        out.leaf("cbc:CountrySubentity", address.department)
        out.leaf("cbc:CountrySubentityCode", address.department_code)
        with out.element("cac:AddressLine"):
            out.leaf("cbc:Line", address.line)
        with out.element("cac:Country"):
            out.leaf("cbc:IdentificationCode", address.country_code)
            out.leaf("cbc:Name", address.country_name, attributes(languageID="es"))


def _tax_scheme(out: XmlText, code: str, name: str) -> None:
    with out.element("cac:TaxScheme"):
        out.leaf("cbc:ID", code)
        out.leaf("cbc:Name", name)


def write_supplier(out: XmlText, issuer: IssuerProfile, numbering: NumberingRange) -> None:
    out.leaf("cbc:AdditionalAccountID", issuer.person_type)
    company_id = _AGENCY + attributes(schemeID=issuer.dv, schemeName=NIT_TYPE)
    with out.element("cac:Party"):
        with out.element("cac:PartyName"):
            out.leaf("cbc:Name", issuer.trade_name)
        with out.element("cac:PhysicalLocation"):
            _address(out, "cac:Address", issuer.address)
        with out.element("cac:PartyTaxScheme"):
            out.leaf("cbc:RegistrationName", issuer.legal_name)
            out.leaf("cbc:CompanyID", issuer.nit, company_id)
            out.leaf("cbc:TaxLevelCode", ";".join(issuer.tax_responsibilities), _TAX_LEVEL)
            _address(out, "cac:RegistrationAddress", issuer.address)
            scheme_name = TAX_SCHEME_NAMES.get(issuer.tax_scheme, issuer.tax_scheme)
            _tax_scheme(out, issuer.tax_scheme, scheme_name)
        with out.element("cac:PartyLegalEntity"):
            out.leaf("cbc:RegistrationName", issuer.legal_name)
            out.leaf("cbc:CompanyID", issuer.nit, company_id)
            if numbering.prefix:  # the branch code DIAN compares with the prefix (FAB10a)
                with out.element("cac:CorporateRegistrationScheme"):
                    out.leaf("cbc:ID", numbering.prefix)
        if issuer.email or issuer.phone:
            _contact(out, issuer.phone, issuer.email)


def _contact(out: XmlText, phone: str | None, email: str | None) -> None:
    with out.element("cac:Contact"):
        if phone:
            out.leaf("cbc:Telephone", phone)
        if email:
            out.leaf("cbc:ElectronicMail", email)


def _buyer_name(buyer: Adquirente) -> str:
    return CONSUMIDOR_FINAL_NAME if buyer.is_consumidor_final else buyer.nombre


def write_customer(out: XmlText, buyer: Adquirente) -> None:
    """Consumidor final (222222222222, CC, persona natural) or an identified buyer."""
    name = _buyer_name(buyer)
    if buyer.is_consumidor_final:
        kind, attrs = "2", {"schemeName": "13"}
    else:
        is_nit = buyer.tipo_documento == NIT_TYPE
        kind = "1" if is_nit else "2"
        attrs = {"schemeName": buyer.tipo_documento}
        if is_nit and is_nit_number(buyer.numero_documento):
            attrs["schemeID"] = buyer.dv or nit_check_digit(buyer.numero_documento)
    scheme = attributes(**attrs)
    out.leaf("cbc:AdditionalAccountID", kind)
    with out.element("cac:Party"):
        with out.element("cac:PartyIdentification"):
            out.leaf("cbc:ID", buyer.numero_documento, scheme)
        with out.element("cac:PartyName"):
            out.leaf("cbc:Name", name)
        with out.element("cac:PartyTaxScheme"):
            out.leaf("cbc:RegistrationName", name)
            out.leaf("cbc:CompanyID", buyer.numero_documento, _AGENCY + scheme)
            out.leaf("cbc:TaxLevelCode", NO_RESPONSIBILITY, _TAX_LEVEL)
            _tax_scheme(out, *NOT_APPLICABLE_SCHEME)
        with out.element("cac:PartyLegalEntity"):
            out.leaf("cbc:RegistrationName", name)
            out.leaf("cbc:CompanyID", buyer.numero_documento, _AGENCY + scheme)
        if not buyer.is_consumidor_final and (buyer.telefono or buyer.email):
            _contact(out, buyer.telefono, buyer.email)


def _payment_means(out: XmlText, figures: InvoiceFigures) -> None:
    for code in figures.payment_codes:
        with out.element("cac:PaymentMeans"):
            out.leaf("cbc:ID", PAYMENT_CASH)
            out.leaf("cbc:PaymentMeansCode", code)


def write_tip(out: XmlText, tip: Decimal, line_extension: Decimal) -> None:
    """The tip as a document-level charge on the lines' base (on itself when there is none)."""
    base = line_extension if line_extension > 0 else tip
    with out.element("cac:AllowanceCharge"):
        out.leaf("cbc:ID", "1")
        out.leaf("cbc:ChargeIndicator", "true")
        out.leaf("cbc:AllowanceChargeReason", TIP_REASON)
        out.leaf("cbc:MultiplierFactorNumeric", decimal_text(tip_factor(tip, base)))
        write_amount(out, "cbc:Amount", tip)
        write_amount(out, "cbc:BaseAmount", base)


def write_tax_total(
    out: XmlText, tribute: Tribute, amount: Decimal, subtotals: Iterable[TaxSubtotal]
) -> None:
    with out.element("cac:TaxTotal"):
        write_amount(out, "cbc:TaxAmount", amount)
        for sub in subtotals:
            with out.element("cac:TaxSubtotal"):
                write_amount(out, "cbc:TaxableAmount", sub.taxable)
                write_amount(out, "cbc:TaxAmount", sub.amount)
                with out.element("cac:TaxCategory"):
                    out.leaf("cbc:Percent", decimal_text(sub.percent))
                    _tax_scheme(out, tribute.code, tribute.name)


def _invoice_line(out: XmlText, number: int, line: LineFigures) -> None:
    item = line.item
    with out.element("cac:InvoiceLine"):
        out.leaf("cbc:ID", str(number))
        out.leaf("cbc:InvoicedQuantity", _quantity(item.cantidad), _UNIT)
        write_amount(out, "cbc:LineExtensionAmount", line.base)
        for tax in line.taxes:
            subtotal = TaxSubtotal(tax.percent, tax.taxable, tax.amount)
            write_tax_total(out, tax.tribute, tax.amount, (subtotal,))
        with out.element("cac:Item"):
            out.leaf("cbc:Description", item.descripcion)
            code = item.id_producto or str(number)
            with out.element("cac:StandardItemIdentification"):
                out.leaf("cbc:ID", code, attributes(schemeID="999"))
        with out.element("cac:Price"):
            write_amount(out, "cbc:PriceAmount", item.precio_unitario)
            out.leaf("cbc:BaseQuantity", "1.00", _UNIT)
