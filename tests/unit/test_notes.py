"""Notes in the domain: what a note credits, and that credits never exceed the document."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.documents import DocumentKind
from domain.errors import InvalidOrder
from domain.notes import (
    NoteFigures,
    NoteType,
    document_lines,
    figures_from_dict,
    note_figures,
    note_kind,
    parse_note,
    remaining_after,
)
from domain.order import Order, parse_order
from tests.factories import line, order

SALE = parse_order(
    order(
        "N-1",
        [
            line("Cerveza", 3, 10000, (("INC", "0.08"),)),
            line("Hamburguesa", 1, 33333, (("IVA", "0.19"),)),
            line("Agua", 2, 2500, ()),
        ],
        tip=4000,
    )
)


def apply(sale: Order, notes: list[NoteFigures], data: dict[str, object]) -> NoteFigures:
    return note_figures(parse_note(data), sale, remaining_after(sale, notes))


def test_a_return_in_parts_credits_the_line_to_the_cent_and_no_more() -> None:
    first = apply(
        SALE,
        [],
        {"id_nota": "R1", "tipo": "devolucion", "lineas": [{"linea": 2, "cantidad": "0.3"}]},
    )
    rest = apply(
        SALE,
        [first],
        {"id_nota": "R2", "tipo": "devolucion", "lineas": [{"linea": 2, "cantidad": "0.7"}]},
    )
    item = SALE.items[1]
    assert first.base == Decimal("9999.90") and first.taxes == Decimal("1899.98")
    assert first.base + rest.base == Decimal("33333.00")
    assert first.taxes + rest.taxes == item.impuestos[0].monto  # what the POS charged
    with pytest.raises(InvalidOrder) as beyond:
        apply(
            SALE,
            [first, rest],
            {"id_nota": "R3", "tipo": "devolucion", "lineas": [{"linea": 2, "cantidad": "0.1"}]},
        )
    assert [(e.field, e.rule) for e in beyond.value.errors] == [
        ("lineas[0].cantidad", "beyond_remaining")
    ]


def test_a_void_credits_everything_left_once() -> None:
    part = apply(
        SALE, [], {"id_nota": "R1", "tipo": "devolucion", "lineas": [{"linea": 1, "cantidad": 1}]}
    )
    void = apply(SALE, [part], {"id_nota": "V1", "tipo": "anulacion"})
    total = SALE.total_factura
    assert part.total + void.total == total
    assert void.tip == Decimal(4000)
    assert {line.number: line.quantity for line in void.lines} == {
        1: Decimal(2),
        2: Decimal(1),
        3: Decimal(2),
    }
    with pytest.raises(InvalidOrder) as again:
        apply(SALE, [part, void], {"id_nota": "V2", "tipo": "anulacion"})
    assert again.value.errors[0].rule == "nothing_left"


def test_a_discount_is_shared_among_lines_and_taxed_at_their_rates() -> None:
    discount = apply(
        SALE, [], {"id_nota": "D1", "tipo": "descuento", "monto": "10000", "motivo": "cortesía"}
    )
    assert discount.base == Decimal(10000)
    assert discount.concept() == ("3", "Rebaja o descuento parcial o total")
    for credited in discount.lines:
        for tax in credited.taxes:
            assert tax.amount == (credited.base * tax.rate).quantize(Decimal("0.01"))
    too_much = {"id_nota": "D2", "tipo": "descuento", "monto": "999999", "motivo": "x"}
    with pytest.raises(InvalidOrder) as refused:
        apply(SALE, [discount], too_much)
    assert refused.value.errors[0].field == "monto"


def test_a_price_increase_is_a_debit_and_raises_what_may_be_credited() -> None:
    up = apply(SALE, [], {"id_nota": "U1", "tipo": "aumento", "monto": "1000", "motivo": "ajuste"})
    assert up.type.is_debit and up.concept() == ("3", "Cambio del valor")
    before = remaining_after(SALE, []).total
    assert remaining_after(SALE, [up]).total == before + up.total
    assert note_kind(DocumentKind.INVOICE, up.type) is DocumentKind.DEBIT_NOTE
    assert note_kind(DocumentKind.POS, NoteType.VOID) is DocumentKind.POS_CREDIT_NOTE


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({"id_nota": "X", "tipo": "devolucion"}, "lineas", "required"),
        ({"id_nota": "X", "tipo": "anulacion", "monto": "1"}, "monto", "not_allowed"),
        ({"id_nota": "X", "tipo": "descuento", "motivo": "m"}, "monto", "positive"),
        ({"id_nota": "X", "tipo": "descuento", "monto": "5"}, "motivo", "required"),
        ({"id_nota": "X", "tipo": "regalo"}, "tipo", "literal_error"),
        ({"id_nota": "a b", "tipo": "anulacion"}, "id_nota", "string_pattern_mismatch"),
        (
            {"id_nota": "X", "tipo": "devolucion", "lineas": [{"linea": 1, "cantidad": 1}] * 2},
            "lineas",
            "duplicate_line",
        ),
    ],
)
def test_a_malformed_note_is_refused_naming_the_field(
    data: dict[str, object], field: str, rule: str
) -> None:
    with pytest.raises(InvalidOrder) as refused:
        parse_note(data)
    assert (field, rule) in [(e.field, e.rule) for e in refused.value.errors]


def test_an_unknown_line_is_refused() -> None:
    with pytest.raises(InvalidOrder) as refused:
        apply(
            SALE,
            [],
            {"id_nota": "R", "tipo": "devolucion", "lineas": [{"linea": 9, "cantidad": 1}]},
        )
    assert refused.value.errors[0].rule == "unknown_line"


def test_stored_figures_read_back_the_same_ledger() -> None:
    part = apply(
        SALE, [], {"id_nota": "R", "tipo": "devolucion", "lineas": [{"linea": 1, "cantidad": 2}]}
    )
    back = figures_from_dict(part.as_dict())
    assert remaining_after(SALE, [back]) == remaining_after(SALE, [part])


steps = st.lists(
    st.one_of(
        st.tuples(st.just("devolucion"), st.integers(1, 3), st.sampled_from(["0.5", "1", "2"])),
        st.tuples(st.just("descuento"), st.integers(1, 3), st.sampled_from(["100", "2500.55"])),
        st.tuples(st.just("anulacion"), st.just(0), st.just("")),
    ),
    max_size=8,
)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(steps)
def test_no_sequence_of_notes_credits_more_than_the_document(
    plan: list[tuple[str, int, str]],
) -> None:
    notes: list[NoteFigures] = []
    for n, (kind, number, value) in enumerate(plan):
        data: dict[str, object] = {"id_nota": f"N{n}", "tipo": kind}
        if kind == "devolucion":
            data["lineas"] = [{"linea": number, "cantidad": value}]
        elif kind == "descuento":
            data |= {"monto": value, "motivo": "m"}
        try:
            notes.append(apply(SALE, notes, data))
        except InvalidOrder:
            continue
    credited = sum((note.total for note in notes), Decimal(0))
    left = remaining_after(SALE, notes)
    assert credited + left.total == SALE.total_factura
    assert left.tip >= 0
    for line_left in left.lines.values():
        assert line_left.quantity >= 0 and line_left.base >= 0
        assert all(t.amount >= 0 for t in line_left.taxes)
    assert document_lines(SALE).total == SALE.total_factura
