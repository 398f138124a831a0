"""The note document's figures and CUDE, for any sale and any sequence of notes: the CUDE in
the XML is the chain of the XML's own amounts keyed with the right PIN, the header adds up
its lines, and the notes against a sale credit, in the end, exactly what the sale charged."""

from __future__ import annotations

import hashlib
from decimal import ROUND_DOWN, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.dian.note import build_note, note_totals
from adapters.dian.ubl import invoice_figures
from domain.errors import InvalidOrder
from domain.notes import NoteFigures
from domain.order import parse_order
from domain.ports import Submission
from tests.factories import line, order
from tests.note_data import INVOICE, NOTE_SETUP, POS_TICKET, note_submission

NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}
CENT = Decimal("0.01")
QUANTITY_TAGS = {"CreditNoteLine": "CreditedQuantity", "DebitNoteLine": "DebitedQuantity"}

lines = st.lists(
    st.builds(
        line,
        description=st.sampled_from(["Cerveza", "Almuerzo", "Jugo", "Queso (kg)"]),
        quantity=st.sampled_from(["1", "2", "3", "0.375", "1.5"]),
        price=st.sampled_from(["925.93", "4500", "20000", "33333", "1"]),
        taxes=st.sampled_from([(), (("INC", "0.08"),), (("IVA", "0.19"),), (("IVA", "0.05"),)]),
    ),
    min_size=1,
    max_size=4,
)
BUYER = {"tipo_documento": "13", "numero_documento": "1020304050", "nombre": "Ana Ruiz"}
sales = st.builds(
    lambda items, tip, buyer: order("VENTA-1", items, tip=tip, buyer=BUYER if buyer else None),
    lines,
    st.sampled_from([0, 1234, 3000]),
    st.booleans(),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("devolucion"), st.integers(1, 4), st.sampled_from(["0.5", "1", "2"])),
        st.tuples(st.just("descuento"), st.just(0), st.sampled_from(["100", "2500.55"])),
        st.tuples(st.just("aumento"), st.just(0), st.sampled_from(["10", "999.99"])),
    ),
    max_size=4,
)


def _request(n: int, step: tuple[str, int, str]) -> dict[str, Any]:
    kind, number, value = step
    if kind == "devolucion":
        return {"id_nota": f"N{n}", "tipo": kind, "lineas": [{"linea": number, "cantidad": value}]}
    return {"id_nota": f"N{n}", "tipo": kind, "monto": value, "motivo": "corrección"}


def _amount(root: etree._Element, path: str) -> Decimal:
    return Decimal(root.findtext(path, "0", NS) or "0")


def _cut(value: str) -> str:
    return str(Decimal(value).quantize(CENT, rounding=ROUND_DOWN))


def _independent_cude(root: etree._Element, pin: str) -> str:
    totals = (
        "cac:LegalMonetaryTotal"
        if root.find("cac:LegalMonetaryTotal", NS) is not None
        else ("cac:RequestedMonetaryTotal")
    )
    taxes = {"01": "0.00", "04": "0.00", "03": "0.00"}
    for total in root.findall("cac:TaxTotal", NS):
        scheme = total.findtext("cac:TaxSubtotal/cac:TaxCategory/cac:TaxScheme/cbc:ID", "", NS)
        if scheme in taxes:
            taxes[scheme] = _cut(total.findtext("cbc:TaxAmount", "0", NS) or "0")
    party = "cac:Party/cac:PartyTaxScheme/cbc:CompanyID"
    chain = "".join(
        [
            root.findtext("cbc:ID", "", NS) or "",
            root.findtext("cbc:IssueDate", "", NS) or "",
            root.findtext("cbc:IssueTime", "", NS) or "",
            _cut(root.findtext(f"{totals}/cbc:LineExtensionAmount", "0", NS) or "0"),
            "01" + taxes["01"] + "04" + taxes["04"] + "03" + taxes["03"],
            _cut(root.findtext(f"{totals}/cbc:PayableAmount", "0", NS) or "0"),
            root.findtext(f"cac:AccountingSupplierParty/{party}", "", NS) or "",
            root.findtext(f"cac:AccountingCustomerParty/{party}", "", NS) or "",
            pin,
            root.findtext("cbc:ProfileExecutionID", "", NS) or "",
        ]
    )
    return hashlib.sha384(chain.encode()).hexdigest()


def _check_document(submission: Submission) -> None:
    software = NOTE_SETUP.software_for(submission.kind)
    assert submission.numbering is not None
    note = build_note(submission, NOTE_SETUP.issuer, software, submission.numbering)
    root = etree.fromstring(note.xml)
    assert root.findtext("cbc:UUID", "", NS) == note.cude == _independent_cude(root, software.pin)
    monetary = root.find("cac:LegalMonetaryTotal", NS)
    if monetary is None:
        monetary = root.find("cac:RequestedMonetaryTotal", NS)
    assert monetary is not None
    line_tag = "CreditNoteLine" if etree.QName(root).localname == "CreditNote" else "DebitNoteLine"
    note_lines = root.findall(f"cac:{line_tag}", NS)
    assert len(note_lines) == int(root.findtext("cbc:LineCountNumeric", "0", NS) or 0)
    line_sum = sum((_amount(x, "cbc:LineExtensionAmount") for x in note_lines), Decimal(0))
    header_taxes = sum(
        (_amount(t, "cbc:TaxAmount") for t in root.findall("cac:TaxTotal", NS)), Decimal(0)
    )
    line_taxes = sum(
        (_amount(t, "cbc:TaxAmount") for x in note_lines for t in x.findall("cac:TaxTotal", NS)),
        Decimal(0),
    )
    assert _amount(monetary, "cbc:LineExtensionAmount") == line_sum
    assert header_taxes == line_taxes
    assert _amount(monetary, "cbc:TaxInclusiveAmount") == line_sum + header_taxes
    payable = _amount(monetary, "cbc:PayableAmount")
    assert payable == line_sum + header_taxes + _amount(monetary, "cbc:ChargeTotalAmount")
    assert submission.note is not None and payable == submission.note.total
    for x in note_lines:  # price × quantity / base quantity is the line, to the cent
        quantity = Decimal(x.findtext(f"cbc:{QUANTITY_TAGS[line_tag]}", "", NS) or "0")
        price = _amount(x, "cac:Price/cbc:PriceAmount")
        per = Decimal(x.findtext("cac:Price/cbc:BaseQuantity", "1", NS) or "1")
        assert (price * quantity / per).quantize(CENT) == _amount(x, "cbc:LineExtensionAmount")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sales, steps, st.booleans())
def test_every_note_adds_up_and_carries_its_own_cude_and_the_last_void_settles_the_sale(
    sale: dict[str, Any], plan: list[tuple[str, int, str]], pos: bool
) -> None:
    corrects = POS_TICKET if pos else INVOICE
    earlier: list[NoteFigures] = []
    for n, step in enumerate(plan, start=1):
        try:
            submission = note_submission(sale, _request(n, step), corrects, n, earlier)
        except InvalidOrder:
            continue  # beyond what remains or an unknown line: refused at intake
        _check_document(submission)
        assert submission.note is not None
        earlier.append(submission.note)
    void = None
    try:
        void = note_submission(sale, {"id_nota": "V", "tipo": "anulacion"}, corrects, 99, earlier)
    except InvalidOrder as refused:  # the notes before it credited everything already
        assert [e.rule for e in refused.errors] == ["nothing_left"]
    if void is not None:
        _check_document(void)
        assert void.note is not None
        earlier.append(void.note)
        assert note_totals(void.note).payable == void.note.total
    credited = sum((n.total for n in earlier if not n.type.is_debit), Decimal(0))
    raised = sum((n.total for n in earlier if n.type.is_debit), Decimal(0))
    charged = invoice_figures(parse_order(sale))
    # the sale's lines, taxes and tip, and every increase, credited back to the cent
    assert credited == charged.tax_inclusive + charged.charge_total + raised
