"""Notes at intake when the gateway is Factus, on a real PostgreSQL: credit and debit notes to
an invoice are accepted (unnumbered: Factus numbers them) and name the invoice by the number
Factus gave it; an adjustment note to a POS document is refused, naming the rule, with nothing
stored or numbered."""

from __future__ import annotations

from sqlalchemy import Engine, text

from adapters.db.store import SqlDocumentStore
from domain.documents import DocumentKind, DocumentPlan
from domain.errors import InvalidOrder
from domain.order import parse_order
from domain.ports import OrderKey
from domain.store import State, StepNote
from domain.usecases.notes import enqueue_note
from tests.factories import line, order
from tests.unit.fakes import RecordingPublisher
from worker.bootstrap import offered_notes
from worker.settings import Settings

ISSUER = "900123456"
FACTUS = Settings(gateway="factus")


def sell(store: SqlDocumentStore, kind: DocumentKind, order_id: str) -> OrderKey:
    key = OrderKey(ISSUER, order_id)
    data = order(order_id, [line("Cerveza", 3, 10000)])
    store.accept(key, parse_order(data), "factus", DocumentPlan(kind, "1", numbered=False))
    claim = store.claim(key, 60)
    assert claim is not None
    refs = {"cufe": "c" * 96, "number": "SETP990000007", "reference_code": f"{ISSUER}-{order_id}"}
    assert store.finish(claim, State.SUCCESS, refs, StepNote("SUCCESS"), None)
    return key


def note(store: SqlDocumentStore, order_id: str, request: dict[str, object]) -> OrderKey:
    return enqueue_note(
        request,
        issuer=ISSUER,
        order_id=order_id,
        gateway="factus",
        numbered=FACTUS.needs_numbering,
        store=store,
        publisher=RecordingPublisher(),
        offered=offered_notes(FACTUS),
    ).key


def test_factus_offers_credit_and_debit_notes_to_invoices_only() -> None:
    offer = offered_notes(FACTUS)
    assert offer is not None
    assert offer.kinds == {DocumentKind.CREDIT_NOTE, DocumentKind.DEBIT_NOTE}
    assert "no POS equivalent document" in offer.rule
    assert offered_notes(Settings(gateway="simulated")) is None


def test_a_note_names_the_invoice_by_the_number_factus_gave_it(store: SqlDocumentStore) -> None:
    sell(store, DocumentKind.INVOICE, "F-1")
    debit = note(store, "F-1", {"id_nota": "ND-1", "tipo": "aumento", "monto": 100, "motivo": "x"})
    credit = note(store, "F-1", {"id_nota": "NC-1", "tipo": "anulacion"})
    for key, kind in ((credit, DocumentKind.CREDIT_NOTE), (debit, DocumentKind.DEBIT_NOTE)):
        record = store.get(key)
        assert record is not None and record.kind is kind and record.number is None
        assert record.corrects is not None and record.corrects.number == "SETP990000007"


def test_an_adjustment_note_to_a_pos_document_is_refused_naming_the_rule(
    store: SqlDocumentStore, clean_db: Engine
) -> None:
    sell(store, DocumentKind.POS, "P-1")
    try:
        note(store, "P-1", {"id_nota": "A-1", "tipo": "anulacion"})
    except InvalidOrder as exc:
        [error] = exc.errors
    else:
        raise AssertionError("a note 94 was accepted for Factus")
    assert (error.field, error.rule) == ("tipo", "note_kind_not_offered")
    assert "(94)" in error.message and "no POS equivalent document" in error.message
    with clean_db.connect() as conn:
        notes = conn.execute(text("SELECT count(*) FROM documents WHERE note_id IS NOT NULL"))
        refusals = conn.execute(text("SELECT order_key FROM intake_refusals")).scalars().all()
        left = conn.execute(text("SELECT sum(base) FROM creditable_lines")).scalar_one()
    assert notes.scalar_one() == 0
    assert refusals == [f"{ISSUER}:P-1/A-1"]
    assert left is None or left > 0  # nothing was taken from what remains
