"""UBL 2.1 `Invoice` (factura electrónica de venta, type 01) for one POS order.

Three steps, each usable alone:
- `invoice_figures(order)` works out every amount the document carries (lines, taxes per
  tribute and rate, totals, the tip as a charge) and raises `InvalidOrder` when the order
  cannot be mapped;
- `invoice_key(...)` computes the CUFE from those figures and the header, with the very
  strings the XML carries (`domain.cufe.format_amount`);
- `build_invoice(...)` writes the XML tree with lxml, unsigned, with an empty last
  `ext:ExtensionContent` for the signature.

User text (names, descriptions) only ever reaches the XML as element text, which lxml escapes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from decimal import Decimal

from lxml import etree

from domain.catalog import Tribute, payment_means_for, tribute_for
from domain.cufe import cufe, format_amount, qr_url, software_security_code
from domain.dian_codes import nit_check_digit
from domain.errors import FieldError, InvalidOrder, NumberingError
from domain.issuer import Address, IssuerProfile, NumberingRange, SoftwareRegistration
from domain.order import Adquirente, Item, Order
from domain.ports import Submission
from domain.rules import line_base

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

PROFILE_ID = "DIAN 2.1: Factura Electrónica de Venta"
CUSTOMIZATION_ID = "10"  # operación estándar
INVOICE_TYPE_CODE = "01"  # factura electrónica de venta
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
    payable: Decimal
    payment_codes: tuple[str, ...]  # PaymentMeansCode, distinct, in the POS's order

    def tax_amounts(self) -> dict[str, Decimal]:
        return {total.tribute.code: total.amount for total in self.tax_totals}


def invoice_figures(order: Order) -> InvoiceFigures:
    """Amounts per line, per tribute and rate, and the totals; `InvalidOrder` if unmappable.

    LineExtension = Σ line bases; TaxExclusive = Σ bases of the lines that carry a tax;
    TaxInclusive = LineExtension + taxes; the tip is a charge: in ChargeTotal and Payable only.
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
    return InvoiceFigures(
        lines=tuple(lines),
        tax_totals=tuple(totals),
        line_extension=line_extension,
        tax_exclusive=tax_exclusive,
        tax_inclusive=tax_inclusive,
        charge_total=charge,
        payable=tax_inclusive + charge,
        payment_codes=payment_codes,
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
    """The header strings, exactly as written in the XML and hashed into the CUFE."""

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
        number=str(number),
        consecutive=number.number,
        issue_date=local.strftime("%Y-%m-%d"),
        issue_time=local.strftime("%H:%M:%S") + "-05:00",
        environment=software.environment,
    )


def invoice_key(
    header: InvoiceHeader,
    figures: InvoiceFigures,
    order: Order,
    issuer: IssuerProfile,
    numbering: NumberingRange,
) -> str:
    """The CUFE of the document these figures and this header produce."""
    return cufe(
        number=header.number,
        issue_date=header.issue_date,
        issue_time=header.issue_time,
        line_extension=figures.line_extension,
        taxes=figures.tax_amounts(),
        payable=figures.payable,
        supplier_nit=issuer.nit,
        buyer_id=order.adquirente.numero_documento,
        technical_key=numbering.technical_key,
        environment=header.environment,
    )


# ---------------------------------------------------------------------------- the XML


@dataclass(frozen=True)
class UnsignedInvoice:
    root: etree._Element
    header: InvoiceHeader
    figures: InvoiceFigures
    cufe: str
    qr_url: str


def _tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _el(
    parent: etree._Element, namespace: str, name: str, text: str | None = None, **attrib: str
) -> etree._Element:
    element = etree.SubElement(parent, f"{{{namespace}}}{name}", attrib)
    if text is not None:
        element.text = text
    return element


def _cbc(
    parent: etree._Element, name: str, text: str | None = None, **attrib: str
) -> etree._Element:
    return _el(parent, CBC, name, text, **attrib)


def _cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _amount(parent: etree._Element, name: str, value: Decimal) -> None:
    _cbc(parent, name, format_amount(value), currencyID=CURRENCY)


def _percent(value: Decimal) -> str:
    """`8` -> `8.00`, `8.375` -> `8.375`: two decimals at least, never an exponent."""
    text = format(value.normalize(), "f")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def _quantity(value: Decimal) -> str:
    return _percent(value)


def build_invoice(
    submission: Submission,
    issuer: IssuerProfile,
    software: SoftwareRegistration,
    numbering: NumberingRange,
) -> UnsignedInvoice:
    """The unsigned Invoice tree; raises `NumberingError` or `InvalidOrder`."""
    header = invoice_header(submission, software, numbering)
    order = submission.order
    figures = invoice_figures(order)
    key = invoice_key(header, figures, order, issuer, numbering)
    url = qr_url(key, header.environment)
    try:
        root = _document(submission, issuer, software, numbering, header, figures, key, url)
    except ValueError as exc:  # lxml refuses control characters and broken surrogates
        raise InvalidOrder(
            [FieldError("(order)", "xml_text", f"text cannot be written as XML: {exc}")]
        ) from exc
    return UnsignedInvoice(root=root, header=header, figures=figures, cufe=key, qr_url=url)


def _document(
    submission: Submission,
    issuer: IssuerProfile,
    software: SoftwareRegistration,
    numbering: NumberingRange,
    header: InvoiceHeader,
    figures: InvoiceFigures,
    key: str,
    url: str,
) -> etree._Element:
    order = submission.order
    root = etree.Element(_tag(INVOICE, "Invoice"), nsmap=NSMAP)  # type: ignore[arg-type]
    root.set(_tag(XSI, "schemaLocation"), SCHEMA_LOCATION)
    extensions = _el(root, EXT, "UBLExtensions")
    dian = _el(
        _el(_el(extensions, EXT, "UBLExtension"), EXT, "ExtensionContent"), STS, "DianExtensions"
    )
    _dian_extensions(dian, software, numbering, header, url)
    _el(_el(extensions, EXT, "UBLExtension"), EXT, "ExtensionContent")  # the signature's place

    _cbc(root, "UBLVersionID", "UBL 2.1")
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ProfileExecutionID", header.environment)
    _cbc(root, "ID", header.number)
    _cbc(root, "UUID", key, schemeID=header.environment, schemeName="CUFE-SHA384")
    _cbc(root, "IssueDate", header.issue_date)
    _cbc(root, "IssueTime", header.issue_time)
    _cbc(root, "InvoiceTypeCode", INVOICE_TYPE_CODE)
    _cbc(root, "Note", f"Pedido {order.id_pedido_origen}")
    _cbc(root, "DocumentCurrencyCode", CURRENCY)
    _cbc(root, "LineCountNumeric", str(len(figures.lines)))
    _cbc(_cac(root, "OrderReference"), "ID", order.id_pedido_origen)

    _supplier(_cac(root, "AccountingSupplierParty"), issuer, numbering)
    _customer(_cac(root, "AccountingCustomerParty"), order.adquirente)
    _payment_means(root, figures)
    if figures.charge_total > 0:
        _tip(root, figures)
    for total in figures.tax_totals:
        _tax_total(root, total.tribute, total.amount, total.subtotals)
    monetary = _cac(root, "LegalMonetaryTotal")
    _amount(monetary, "LineExtensionAmount", figures.line_extension)
    _amount(monetary, "TaxExclusiveAmount", figures.tax_exclusive)
    _amount(monetary, "TaxInclusiveAmount", figures.tax_inclusive)
    _amount(monetary, "ChargeTotalAmount", figures.charge_total)
    _amount(monetary, "PayableAmount", figures.payable)
    for number, line in enumerate(figures.lines, start=1):
        _invoice_line(root, number, line)
    return root


def _dian_extensions(
    dian: etree._Element,
    software: SoftwareRegistration,
    numbering: NumberingRange,
    header: InvoiceHeader,
    url: str,
) -> None:
    control = _el(dian, STS, "InvoiceControl")
    _el(control, STS, "InvoiceAuthorization", numbering.resolution)
    period = _el(control, STS, "AuthorizationPeriod")
    _cbc(period, "StartDate", numbering.valid_from.isoformat())
    _cbc(period, "EndDate", numbering.valid_to.isoformat())
    authorized = _el(control, STS, "AuthorizedInvoices")
    _el(authorized, STS, "Prefix", numbering.prefix)
    _el(authorized, STS, "From", str(numbering.first))
    _el(authorized, STS, "To", str(numbering.last))
    source = _el(dian, STS, "InvoiceSource")
    _cbc(source, "IdentificationCode", "CO", **COUNTRY_LIST)
    provider = _el(dian, STS, "SoftwareProvider")
    _el(
        provider,
        STS,
        "ProviderID",
        software.provider_nit,
        **DIAN_AGENCY,
        schemeID=software.provider_dv,
        schemeName=NIT_TYPE,
    )
    _el(provider, STS, "SoftwareID", software.software_id, **DIAN_AGENCY)
    ssc = software_security_code(software.software_id, software.pin, header.number)
    _el(dian, STS, "SoftwareSecurityCode", ssc, **DIAN_AGENCY)
    authority = _el(dian, STS, "AuthorizationProvider")
    _el(
        authority,
        STS,
        "AuthorizationProviderID",
        DIAN_NIT,
        **DIAN_AGENCY,
        schemeID=DIAN_DV,
        schemeName=NIT_TYPE,
    )
    _el(dian, STS, "QRCode", url)


def _address(parent: etree._Element, address: Address) -> None:
    _cbc(parent, "ID", address.municipality_code)
    _cbc(parent, "CityName", address.city)
    _cbc(parent, "PostalZone", address.postal_zone)
    _cbc(parent, "CountrySubentity", address.department)
    _cbc(parent, "CountrySubentityCode", address.department_code)
    _cbc(_cac(parent, "AddressLine"), "Line", address.line)
    country = _cac(parent, "Country")
    _cbc(country, "IdentificationCode", address.country_code)
    _cbc(country, "Name", address.country_name, languageID="es")


def _tax_scheme(parent: etree._Element, code: str, name: str) -> None:
    scheme = _cac(parent, "TaxScheme")
    _cbc(scheme, "ID", code)
    _cbc(scheme, "Name", name)


def _supplier(holder: etree._Element, issuer: IssuerProfile, numbering: NumberingRange) -> None:
    _cbc(holder, "AdditionalAccountID", issuer.person_type)
    party = _cac(holder, "Party")
    _cbc(_cac(party, "PartyName"), "Name", issuer.trade_name)
    _address(_cac(_cac(party, "PhysicalLocation"), "Address"), issuer.address)
    company_id = {**DIAN_AGENCY, "schemeID": issuer.dv, "schemeName": NIT_TYPE}
    tax = _cac(party, "PartyTaxScheme")
    _cbc(tax, "RegistrationName", issuer.legal_name)
    _cbc(tax, "CompanyID", issuer.nit, **company_id)
    _cbc(tax, "TaxLevelCode", ";".join(issuer.tax_responsibilities), listName="48")
    _address(_cac(tax, "RegistrationAddress"), issuer.address)
    _tax_scheme(tax, issuer.tax_scheme, TAX_SCHEME_NAMES.get(issuer.tax_scheme, issuer.tax_scheme))
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", issuer.legal_name)
    _cbc(legal, "CompanyID", issuer.nit, **company_id)
    _cbc(_cac(legal, "CorporateRegistrationScheme"), "ID", numbering.prefix)
    if issuer.email or issuer.phone:
        _contact(party, issuer.phone, issuer.email)


def _contact(party: etree._Element, phone: str | None, email: str | None) -> None:
    contact = _cac(party, "Contact")
    if phone:
        _cbc(contact, "Telephone", phone)
    if email:
        _cbc(contact, "ElectronicMail", email)


def _customer(holder: etree._Element, buyer: Adquirente) -> None:
    """Consumidor final (222222222222, CC, persona natural) or an identified buyer."""
    if buyer.is_consumidor_final:
        kind, name, attrs = "2", CONSUMIDOR_FINAL_NAME, {"schemeName": "13"}
    else:
        is_nit = buyer.tipo_documento == NIT_TYPE
        kind, name = ("1" if is_nit else "2"), buyer.nombre
        attrs = {"schemeName": buyer.tipo_documento}
        if is_nit and buyer.numero_documento.isdigit():
            attrs["schemeID"] = buyer.dv or nit_check_digit(buyer.numero_documento)
    _cbc(holder, "AdditionalAccountID", kind)
    party = _cac(holder, "Party")
    _cbc(_cac(party, "PartyIdentification"), "ID", buyer.numero_documento, **attrs)
    _cbc(_cac(party, "PartyName"), "Name", name)
    tax = _cac(party, "PartyTaxScheme")
    _cbc(tax, "RegistrationName", name)
    _cbc(tax, "CompanyID", buyer.numero_documento, **DIAN_AGENCY, **attrs)
    _cbc(tax, "TaxLevelCode", NO_RESPONSIBILITY, listName="48")
    _tax_scheme(tax, *NOT_APPLICABLE_SCHEME)
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", name)
    _cbc(legal, "CompanyID", buyer.numero_documento, **DIAN_AGENCY, **attrs)
    if not buyer.is_consumidor_final and (buyer.telefono or buyer.email):
        _contact(party, buyer.telefono, buyer.email)


def _payment_means(root: etree._Element, figures: InvoiceFigures) -> None:
    for code in figures.payment_codes:
        means = _cac(root, "PaymentMeans")
        _cbc(means, "ID", PAYMENT_CASH)
        _cbc(means, "PaymentMeansCode", code)


def _tip(root: etree._Element, figures: InvoiceFigures) -> None:
    charge = _cac(root, "AllowanceCharge")
    _cbc(charge, "ID", "1")
    _cbc(charge, "ChargeIndicator", "true")
    _cbc(charge, "AllowanceChargeReason", TIP_REASON)
    base = figures.line_extension if figures.line_extension > 0 else figures.charge_total
    factor = (figures.charge_total * HUNDRED / base).quantize(Decimal("0.01"))
    _cbc(charge, "MultiplierFactorNumeric", _percent(factor))
    _amount(charge, "Amount", figures.charge_total)
    _amount(charge, "BaseAmount", base)


def _tax_total(
    parent: etree._Element, tribute: Tribute, amount: Decimal, subtotals: Iterable[TaxSubtotal]
) -> None:
    total = _cac(parent, "TaxTotal")
    _amount(total, "TaxAmount", amount)
    for sub in subtotals:
        subtotal = _cac(total, "TaxSubtotal")
        _amount(subtotal, "TaxableAmount", sub.taxable)
        _amount(subtotal, "TaxAmount", sub.amount)
        category = _cac(subtotal, "TaxCategory")
        _cbc(category, "Percent", _percent(sub.percent))
        _tax_scheme(category, tribute.code, tribute.name)


def _invoice_line(root: etree._Element, number: int, line: LineFigures) -> None:
    item = line.item
    element = _cac(root, "InvoiceLine")
    _cbc(element, "ID", str(number))
    _cbc(element, "InvoicedQuantity", _quantity(item.cantidad), unitCode=UNIT_CODE)
    _amount(element, "LineExtensionAmount", line.base)
    for tax in line.taxes:
        _tax_total(
            element, tax.tribute, tax.amount, (TaxSubtotal(tax.percent, tax.taxable, tax.amount),)
        )
    described = _cac(element, "Item")
    _cbc(described, "Description", item.descripcion)
    code = item.id_producto or str(number)
    _cbc(_cac(described, "StandardItemIdentification"), "ID", code, schemeID="999")
    price = _cac(element, "Price")
    _amount(price, "PriceAmount", item.precio_unitario)
    _cbc(price, "BaseQuantity", "1.00", unitCode=UNIT_CODE)
