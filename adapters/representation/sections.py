"""The parts of the printed copy, in reading order, as layout items: who sells and what the
document is (`header`), to whom, what and how much (`body`), and the legal keys (`legal_footer`)."""

from __future__ import annotations

from decimal import Decimal

from adapters.representation.content import Document, Party
from adapters.representation.layout import Align, Item, Row, Rule, Space, Text

ID_TYPES = {
    "11": "RC",
    "12": "TI",
    "13": "CC",
    "21": "TE",
    "22": "CE",
    "31": "NIT",
    "41": "Pasaporte",
    "42": "Doc. extranjero",
    "47": "PEP",
    "48": "PPT",
    "50": "NIT otro país",
    "91": "NUIP",
}
RESPONSIBILITIES = {
    "O-13": "Gran contribuyente",
    "O-15": "Autorretenedor",
    "O-23": "Agente de retención IVA",
    "O-47": "Régimen simple de tributación",
    "R-99-PN": "No responsable",
}


def money(value: Decimal) -> str:
    """Colombian style: 1.234.567,89."""
    return f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def quantity(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text.replace(".", ",")


def identification(party: Party) -> str:
    kind = ID_TYPES.get(party.id_type, party.id_type)
    number = party.id_number
    if party.id_type == "31" and party.check_digit:
        number = f"{number}-{party.check_digit}"
    return f"{kind} {number}".strip()


def header(
    document: Document, regular: str, bold: str, size: float, align: Align = "center"
) -> list[Item]:
    seller = document.seller
    items: list[Item] = [Text(seller.trade_name or seller.name, bold, size + 2, align)]
    if seller.trade_name and seller.trade_name != seller.name:
        items.append(Text(seller.name, regular, size, align))
    items.append(Text(identification(seller), regular, size, align))
    if seller.address:
        items.append(Text(seller.address, regular, size, align))
    if seller.tax_levels:
        levels = "; ".join(
            RESPONSIBILITIES.get(code, code) for code in seller.tax_levels.split(";") if code
        )
        items.append(Text(f"Responsabilidades fiscales: {levels}", regular, size - 0.5, align))
    items += [
        Space(size * 0.6),
        Text(document.kind.label, bold, size + 0.5, align),
        Text(f"No. {document.number}", bold, size + 1.5, align),
    ]
    auth = document.authorization
    if auth is not None:
        prefix = f"prefijo {auth.prefix}, " if auth.prefix else ""
        items.append(
            Text(
                f"Autorización de numeración DIAN No. {auth.resolution}: {prefix}"
                f"rango {auth.first} al {auth.last}, vigencia {auth.valid_from} "
                f"a {auth.valid_to}",
                regular,
                size - 0.5,
                align,
            )
        )
    return items


def body(document: Document, regular: str, bold: str, size: float, wide: bool) -> list[Item]:
    items: list[Item] = [] if wide else [Rule()]  # A4 pages draw their own under the header
    when = f"{document.issue_date} {document.issue_time}".strip()
    items.append(Text(f"Fecha y hora de generación: {when}", regular, size))
    if document.register:
        items.append(Text(f"Caja: {document.register}", regular, size))
    ref = document.reference
    if ref is not None:
        scheme = "CUFE" if ref.key_scheme.upper().startswith("CUFE") else "CUDE"
        items.append(Text(f"Documento referenciado: {ref.number} del {ref.issue_date}", bold, size))
        items.append(Text(f"{scheme} referenciado: {ref.key}", regular, size - 1))
    if document.reason:
        items.append(Text(f"Motivo: {document.reason}", regular, size))
    buyer = document.buyer
    items += [
        Text(f"Adquirente: {buyer.name}", regular, size),
        Text(identification(buyer), regular, size),
        Rule(),
    ]
    items += _lines(document, regular, bold, size, wide)
    items.append(Rule())
    items += _totals(document, regular, bold, size)
    if document.payment_means:
        items.append(Space(size * 0.4))
        means = ", ".join(document.payment_means)
        items.append(Text(f"Forma y medio de pago: {means}", regular, size))
    return items


def _lines(document: Document, regular: str, bold: str, size: float, wide: bool) -> list[Item]:
    if wide:
        shares = (0.08, 0.14, 0.48, 0.15, 0.15)
        heads = ("Cant.", "Código", "Descripción", "Precio unit.", "Valor")
        aligns: tuple[Align, ...] = ("right", "left", "left", "right", "right")
        items: list[Item] = [Row(tuple(zip(heads, shares, aligns, strict=True)), bold, size)]
        for line in document.lines:
            values = (
                quantity(line.quantity),
                line.code,
                line.description,
                money(line.unit_price),
                money(line.amount),
            )
            items.append(Row(tuple(zip(values, shares, aligns, strict=True)), regular, size))
        return items
    items = [Row((("Descripción", 0.65, "left"), ("Valor", 0.35, "right")), bold, size)]
    for line in document.lines:
        items.append(Text(line.description, regular, size))
        detail = f"  {quantity(line.quantity)} x {money(line.unit_price)}"
        items.append(
            Row(((detail, 0.6, "left"), (money(line.amount), 0.4, "right")), regular, size)
        )
    return items


def _totals(document: Document, regular: str, bold: str, size: float) -> list[Item]:
    def row(label: str, value: Decimal, font: str = regular, grow: float = 0) -> Row:
        return Row(((label, 0.62, "left"), (money(value), 0.38, "right")), font, size + grow)

    items: list[Item] = [row("Subtotal", document.line_total)]
    for tax in document.taxes:
        rate = quantity(tax.percent)
        items.append(row(f"{tax.name} {rate}% sobre {money(tax.taxable)}", tax.amount))
    if document.tip:
        items.append(row("Propina voluntaria", document.tip))
    if document.rounding:
        items.append(row("Redondeo", document.rounding))
    items.append(row("TOTAL", document.payable, bold, 1.5))
    return items


def legal_footer(document: Document, regular: str, size: float) -> list[Item]:
    software = document.software_name or f"ID {document.software_id}"
    maker = document.software_maker or "software propio del emisor"
    items: list[Item] = [
        Text(f"{document.key_name}: {document.key}", regular, size),
        Text(f"Consulte el documento en {document.qr_url}", regular, size),
        Text(
            f"Software: {software}. Fabricante: {maker}, NIT {document.software_provider}.",
            regular,
            size,
        ),
    ]
    if document.environment == "2":
        items.append(Text("Documento de habilitación: sin validez fiscal.", regular, size))
    return items
