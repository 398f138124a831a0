"""DIAN document keys (CUFE, CUDE), the SoftwareSecurityCode and the QR content.

Anexo Técnico 1.9, §11: each key is the SHA-384 (lower-case hex) of a plain concatenation of
fields exactly as they are written in the XML. Amounts are dot-decimal with exactly two
decimals, truncated (never rounded), without thousands separators: `format_amount` writes
them, and the XML builder uses the same function so the hash and the document agree.

    CUFE = SHA-384(NumFac + FecFac + HorFac + ValFac + "01" + ValImp1 + "04" + ValImp2
                   + "03" + ValImp3 + ValTot + NitOFE + NumAdq + ClTec + TipoAmbiente)

The CUDE (notes, contingency type 03, POS) is the same chain with the Software-PIN in
place of the technical key (ClTec).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal

CENT = Decimal("0.01")
# The three tributes the key carries, in the order the Anexo lists them.
KEY_TRIBUTES = ("01", "04", "03")
ZERO = Decimal(0)

QR_BASE_URLS = {
    "1": "https://catalogo-vpfe.dian.gov.co/document/searchqr?documentkey=",
    "2": "https://catalogo-vpfe-hab.dian.gov.co/document/searchqr?documentkey=",
}


def format_amount(value: Decimal) -> str:
    """`1234.5` -> `"1234.50"`, `1.239` -> `"1.23"` (truncated), no thousands separator."""
    if not value.is_finite():
        raise ValueError(f"an amount must be a finite number, got {value}")
    return format(value.quantize(CENT, rounding=ROUND_DOWN), "f")


def _check_environment(environment: str) -> None:
    if environment not in QR_BASE_URLS:
        raise ValueError(f"environment (ProfileExecutionID) is '1' or '2', got {environment!r}")


def key_input(
    *,
    number: str,
    issue_date: str,
    issue_time: str,
    line_extension: Decimal,
    taxes: Mapping[str, Decimal],
    payable: Decimal,
    supplier_nit: str,
    buyer_id: str,
    secret: str,
    environment: str,
) -> str:
    """The text that is hashed into a CUFE or CUDE (`secret` = ClTec or Software-PIN).

    `issue_date` is `YYYY-MM-DD` and `issue_time` `HH:MM:SS-05:00`, as written in
    `cbc:IssueDate` / `cbc:IssueTime`. `taxes` maps tribute code ('01' IVA, '04' INC,
    '03' ICA) to the `TaxTotal/TaxAmount` of that tribute; a missing code counts as 0.00.
    Other tributes in `taxes` are ignored: the key does not carry them. NITs go without DV.
    """
    _check_environment(environment)
    parts = [number, issue_date, issue_time, format_amount(line_extension)]
    for code in KEY_TRIBUTES:
        parts.append(code)
        parts.append(format_amount(taxes.get(code, ZERO)))
    parts += [format_amount(payable), supplier_nit, buyer_id, secret, environment]
    return "".join(parts)


def _sha384(text: str) -> str:
    return hashlib.sha384(text.encode("utf-8")).hexdigest()


def cufe(
    *,
    number: str,
    issue_date: str,
    issue_time: str,
    line_extension: Decimal,
    taxes: Mapping[str, Decimal],
    payable: Decimal,
    supplier_nit: str,
    buyer_id: str,
    technical_key: str,
    environment: str,
) -> str:
    """CUFE of an invoice (types 01, 02, 04): keyed with the numbering range's technical key."""
    return _sha384(
        key_input(
            number=number,
            issue_date=issue_date,
            issue_time=issue_time,
            line_extension=line_extension,
            taxes=taxes,
            payable=payable,
            supplier_nit=supplier_nit,
            buyer_id=buyer_id,
            secret=technical_key,
            environment=environment,
        )
    )


def cude(
    *,
    number: str,
    issue_date: str,
    issue_time: str,
    line_extension: Decimal,
    taxes: Mapping[str, Decimal],
    payable: Decimal,
    supplier_nit: str,
    buyer_id: str,
    pin: str,
    environment: str,
) -> str:
    """CUDE of a credit/debit note, a type-03 invoice or a POS document: keyed with the PIN.

    For a debit note, `line_extension` and `payable` come from `RequestedMonetaryTotal`.
    """
    return _sha384(
        key_input(
            number=number,
            issue_date=issue_date,
            issue_time=issue_time,
            line_extension=line_extension,
            taxes=taxes,
            payable=payable,
            supplier_nit=supplier_nit,
            buyer_id=buyer_id,
            secret=pin,
            environment=environment,
        )
    )


def software_security_code(software_id: str, pin: str, number: str) -> str:
    """`sts:SoftwareSecurityCode` = SHA-384(SoftwareID + PIN + cbc:ID)."""
    return _sha384(software_id + pin + number)


def qr_url(document_key: str, environment: str) -> str:
    """The `sts:QRCode` URL: DIAN's catalogue page for the CUFE/CUDE in that environment."""
    _check_environment(environment)
    return QR_BASE_URLS[environment] + document_key


def qr_text(
    *,
    number: str,
    issue_date: str,
    issue_time: str,
    supplier_nit: str,
    buyer_id: str,
    line_extension: Decimal,
    iva: Decimal,
    other_taxes: Decimal,
    payable: Decimal,
    document_key: str,
    environment: str,
) -> str:
    """Content of the printed QR code (Anexo §11.7), one `Label: value` per line, URL last.

    `iva` is the IVA (01) tax amount; `other_taxes` the sum of every other tribute.
    """
    lines = [
        f"NumFac: {number}",
        f"FecFac: {issue_date}",
        f"HorFac: {issue_time}",
        f"NitFac: {supplier_nit}",
        f"DocAdq: {buyer_id}",
        f"ValFac: {format_amount(line_extension)}",
        f"ValIva: {format_amount(iva)}",
        f"ValOtroIm: {format_amount(other_taxes)}",
        f"ValTolFac: {format_amount(payable)}",
        f"CUFE: {document_key}",
        qr_url(document_key, environment),
    ]
    return "\n".join(lines)
