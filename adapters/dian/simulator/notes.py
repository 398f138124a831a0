"""What the simulated DIAN checks in a note: a credit note 91 / debit note 92 against an
invoice, an adjustment note 94 / 93 against a POS document. Written from DIAN's rules, not
from our builder.

    rule (91 / 92 / 94 / 93)              checks
    CAD06 / DAD06 / NAAD06* / NADBD06*     the CUDE (the CUFE's chain over the note's own
                                           totals, RequestedMonetaryTotal for a debit note),
                                           keyed with the PIN of the software that sent it,
                                           which must be registered for the note's family
    CBG04a / DBG04a / NABG04a* / NADBG04a* BillingReference names a document DIAN accepted
                                           earlier: an invoice (01) for 91/92, a POS
                                           document (20) for 94/93, with that number, that
                                           CUFE/CUDE and that issue date ("Documento
                                           referenciado no existe."), so a 91 against a POS
                                           ticket is refused
    CBG05* / NABG05*                       a credit note with the credit notes accepted
                                           before it (less the debit notes) credits no more
                                           than the document's lines (LineExtensionAmount)
                                           and lines, taxes and tip (TaxInclusive + Charge)

CAD06 and DAD06 are the codes of DIAN's own validator (`ValidateCufe`); CBG04a and DBG04a
are the codes DIAN answers for a reference it does not hold, as two clients record them.
* Inferred: DIAN names the rules of the DE's adjustment notes with the prefixes `NA`
(credit; NAAD03 is its ProfileID rule) and `NAD` (debit; NADBD03), so NAAD06 / NADBD06 for
their CUDE and NABG04a / NADBG04a for their reference; no DIAN answer with these codes, nor
with the code of the amount rule (here the next one in the reference group, CBG05), was seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from adapters.dian.simulator.checks import NS as BASE_NS
from adapters.dian.simulator.checks import Document, expected_cufe
from adapters.dian.wssecurity import safe_parser

NS = {
    **BASE_NS,
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
}
POS_DEBIT_PROFILE = "DIAN 2.1: Nota de ajuste débito al documento equivalente"
REFERENCE_MISSING = "Documento referenciado no existe."
ZERO = Decimal(0)


@dataclass(frozen=True)
class NoteRules:
    """The codes DIAN answers for one kind of note, and what it may reference."""

    cude: str
    reference: str
    amounts: str | None  # credit notes only
    pos_family: bool  # keyed with the PIN of the software for equivalent documents
    corrects: str  # the type of the referenced document (01 invoice, 20 POS)

    @property
    def is_credit(self) -> bool:
        return self.amounts is not None


RULES = {
    "91": NoteRules("CAD06", "CBG04a", "CBG05", False, "01"),
    "92": NoteRules("DAD06", "DBG04a", None, False, "01"),
    "94": NoteRules("NAAD06", "NABG04a", "NABG05", True, "20"),
    "93": NoteRules("NADBD06", "NADBG04a", None, True, "20"),
}


@dataclass(frozen=True)
class Figures:
    """The amounts a document (or a note) carries, as read from its XML."""

    issue_date: str
    lines: Decimal  # LineExtensionAmount
    total: Decimal  # TaxInclusiveAmount + ChargeTotalAmount: lines, taxes and the tip


@dataclass(frozen=True)
class Reference:
    """What a note's BillingReference names."""

    number: str
    key: str
    issue_date: str
    type_code: str


def _text(tree: etree._Element, path: str) -> str:
    return (tree.findtext(path, "", NS) or "").strip()


def kind_of(document: Document) -> str | None:
    """91, 92, 93 or 94 for a note (None for any other document)."""
    root = etree.QName(document.tree).localname
    if root == "CreditNote":
        return document.type_code if document.type_code in RULES else "91"
    if root == "DebitNote":
        return "93" if _text(document.tree, "cbc:ProfileID") == POS_DEBIT_PROFILE else "92"
    return None


def _totals(tree: etree._Element) -> etree._Element | None:
    found = tree.find("cac:LegalMonetaryTotal", NS)
    return found if found is not None else tree.find("cac:RequestedMonetaryTotal", NS)


def _decimal(text: str | None) -> Decimal:
    try:
        return Decimal((text or "0").strip())
    except InvalidOperation:
        return ZERO


def figures(tree: etree._Element) -> Figures:
    totals = _totals(tree)
    if totals is None:
        return Figures(_text(tree, "cbc:IssueDate"), ZERO, ZERO)
    return Figures(
        _text(tree, "cbc:IssueDate"),
        _decimal(totals.findtext("cbc:LineExtensionAmount", None, NS)),
        _decimal(totals.findtext("cbc:TaxInclusiveAmount", None, NS))
        + _decimal(totals.findtext("cbc:ChargeTotalAmount", None, NS)),
    )


def figures_of(xml: bytes) -> Figures:
    """The figures of a stored document's XML."""
    return figures(etree.fromstring(xml, parser=safe_parser()))


def reference(document: Document) -> Reference | None:
    found = document.tree.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
    if found is None:
        return None
    return Reference(
        _text(found, "cbc:ID"),
        _text(found, "cbc:UUID").lower(),
        _text(found, "cbc:IssueDate"),
        _text(found, "cbc:DocumentTypeCode"),
    )


def expected_cude(document: Document, pin: str) -> str:
    """The CUFE's chain over the note's totals (Anexo 11.2), keyed with the PIN."""
    debit = document.tree.find("cac:LegalMonetaryTotal", NS) is None
    totals = "cac:RequestedMonetaryTotal/" if debit else "cac:LegalMonetaryTotal/"
    return expected_cufe(document, pin, totals)


def cude_errors(
    document: Document,
    kind: str,
    invoice_pins: dict[str, str],
    pos_pins: dict[str, str],
) -> list[str]:
    """The CUDE keyed with the PIN of the sending software, registered for the note's family
    (the invoice software for 91/92, the equivalent-document software for 94/93)."""
    rules = RULES[kind]
    pins = pos_pins if rules.pos_family else invoice_pins
    software = _text(document.tree, "ext:UBLExtensions//sts:DianExtensions//sts:SoftwareID")
    if not pins:  # no software of that family registered here: the check cannot be made
        return []
    pin = pins.get(software)
    if pin is not None and expected_cude(document, pin) == document.cufe:
        return []
    return [f"Regla: {rules.cude}, Rechazo: El valor del CUDE no está calculado correctamente."]


def reference_errors(
    document: Document,
    kind: str,
    held: str | None,
    referenced: Figures | None,
) -> list[str]:
    """The BillingReference against the document DIAN holds under that number for the type a
    note of this kind corrects (`held`: its key, `referenced`: its figures; None: none)."""
    rules = RULES[kind]
    named = reference(document)
    if (
        named is None
        or held is None
        or referenced is None
        or named.key != held.lower()
        or named.issue_date != referenced.issue_date
    ):
        return [f"Regla: {rules.reference}, Rechazo: {REFERENCE_MISSING}"]
    return []


def amount_errors(
    document: Document,
    kind: str,
    referenced: Figures,
    earlier: list[tuple[str, Figures]],
) -> list[str]:
    """A credit note may credit, with the notes accepted before it against the same
    document, at most the document's lines and its lines, taxes and tip (debit notes raise
    both)."""
    rules = RULES[kind]
    if rules.amounts is None:
        return []
    note = figures(document.tree)
    lines, total = referenced.lines, referenced.total
    credited_lines, credited_total = note.lines, note.total
    for earlier_kind, amounts in earlier:
        if RULES[earlier_kind].is_credit:
            credited_lines += amounts.lines
            credited_total += amounts.total
        else:
            lines += amounts.lines
            total += amounts.total
    if credited_lines > lines or credited_total > total:
        return [
            f"Regla: {rules.amounts}, Rechazo: El valor de las notas crédito ({credited_total}) "
            f"supera el valor del documento referenciado ({total})."
        ]
    return []
