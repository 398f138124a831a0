"""Credit and debit notes through the Factus adapter, against the Factus stand-in over real
HTTP with real Redis: the outcome rules of bills, the lookup after a lost answer, the 409 of a
reference_code already used, and the checks Factus makes on a note."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis

from adapters.factus.client import FactusUnprocessable
from adapters.factus.config import FactusConfig, build_factus_gateway
from adapters.factus.gateway import FactusGateway
from adapters.factus.note_mapping import build_note
from adapters.factus.notes import FAMILIES
from adapters.factus.simulator import SimulatorServer, start_simulator
from domain.documents import DocumentKind
from domain.errors import GatewayUnavailable, InvalidOrder, OutcomeUnknown
from domain.notes import (
    NoteFigures,
    ReferencedDocument,
    note_figures,
    note_kind,
    parse_note,
    remaining_after,
)
from domain.order import parse_order
from domain.ports import OrderKey, Submission, Verdict
from tests.factories import line, order

ISSUER = "900123456"
SALE = order(
    "POS-7",
    [line("Cerveza", 3, 10000), line("Empanada", 2, 4500, (), product_id="EMP-01")],
    tip=2000,
)


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    server, _ = start_simulator()
    yield server
    server.stop()


@pytest.fixture
def sim(simulator: SimulatorServer) -> SimulatorServer:
    control(
        simulator,
        reset=True,
        rate_limit=80,
        dian_slow=0,
        dian_rejections={},
        drop_next=0,
        hang_next=0,
        conflict_next=0,
    )
    return simulator


@pytest.fixture
def make_gateway(sim: SimulatorServer, redis_url: str) -> Iterator[Any]:
    prefix = f"test-fnotes-{uuid.uuid4().hex[:8]}"
    made: list[FactusGateway] = []

    def make(**overrides: Any) -> FactusGateway:
        options = sim.simulator.options
        config = FactusConfig(
            base_url=sim.base_url,
            client_id=options.client_id,
            client_secret=options.client_secret,
            username=options.username,
            password=options.password,
            numbering_range_id=8,
            credit_note_range_id=9,
            debit_note_range_id=10,
            connect_timeout=1.0,
            read_timeout=2.0,
        )
        gateway = build_factus_gateway(replace(config, **overrides), redis_url, key_prefix=prefix)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()
    client: redis.Redis[bytes] = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def control(server: SimulatorServer, **changes: Any) -> None:
    httpx.post(server.base_url + "/_control", json=changes, timeout=5).raise_for_status()


def stats(server: SimulatorServer) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(server.base_url + "/_stats", timeout=5).json()
    return answer


def sale(order_id: str = "POS-7") -> Submission:
    return Submission(
        OrderKey(ISSUER, order_id), parse_order({**SALE, "id_pedido_origen": order_id}), NOW
    )


NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


def note(
    request: dict[str, Any],
    bill: str,
    earlier: tuple[NoteFigures, ...] = (),
    order_id: str = "POS-7",
    corrected: DocumentKind = DocumentKind.INVOICE,
) -> Submission:
    """The submission the worker builds for `request` against the invoice numbered `bill`."""
    the_order = parse_order({**SALE, "id_pedido_origen": order_id})
    asked = parse_note(request)
    figures = note_figures(asked, the_order, remaining_after(the_order, list(earlier)))
    return Submission(
        OrderKey(ISSUER, order_id, asked.id_nota),
        the_order,
        NOW,
        kind=note_kind(corrected, figures.type),
        note=figures,
        corrects=ReferencedDocument(corrected, bill, "c" * 96, NOW),
    )


RETURN = {"id_nota": "NC-1", "tipo": "devolucion", "lineas": [{"linea": 1, "cantidad": 1}]}
VOID = {"id_nota": "NC-9", "tipo": "anulacion"}
INCREASE = {"id_nota": "ND-1", "tipo": "aumento", "monto": "5000", "motivo": "precio errado"}


def issued(gateway: FactusGateway, order_id: str = "POS-7") -> str:
    result = gateway.submit(sale(order_id))
    assert result.verdict is Verdict.ACCEPTED
    return result.references["number"]


# -- issued ------------------------------------------------------------------------------------


def test_a_return_becomes_a_validated_credit_note_with_its_cude(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    bill = issued(gateway)
    submission = note(RETURN, bill)
    result = gateway.submit(submission)
    assert result.verdict is Verdict.ACCEPTED
    refs = result.references
    assert refs["number"].startswith("NC")
    assert refs["reference_code"] == submission.reference_code == "900123456-5-POS-7-NC-1"
    assert len(refs["cufe"]) == 96  # the note's CUDE, never the invoice's CUFE
    assert refs["cufe"] != result.response["related_bill"]["cufe"]
    assert result.response["correction_concept"] == {"code": "1"}
    assert result.response["customization"] == {"code": "20"}
    assert result.response["related_bill"]["number"] == bill
    # one unit of 10 000 with INC 8 %: Factus' total is the note's own
    assert submission.note is not None and submission.note.total == Decimal("10800.00")
    assert result.response["totals"]["total"] == "10800.00"
    assert stats(sim)["notes_created"] == {submission.reference_code: 1}


def test_a_void_credits_everything_left_and_nothing_more_is_taken(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    bill = issued(gateway)
    first = note(RETURN, bill)
    assert gateway.submit(first).verdict is Verdict.ACCEPTED
    assert first.note is not None
    void = note(VOID, bill, earlier=(first.note,))
    result = gateway.submit(void)
    assert result.verdict is Verdict.ACCEPTED
    assert result.response["correction_concept"] == {"code": "2"}
    # the void gave back the tip and the rest: the bill's balance at Factus is zero
    invoice = sim.simulator._find_number(bill)
    assert invoice is not None and sim.simulator.notes.balance(invoice) == 0
    # a note beyond what remains is refused by Factus before it reaches DIAN
    with pytest.raises(InvalidOrder) as caught:
        gateway.submit(note({**RETURN, "id_nota": "NC-3"}, bill))
    assert [e.field for e in caught.value.errors] == ["items"]
    assert "supera el saldo" in caught.value.errors[0].message
    assert len(stats(sim)["notes_created"]) == 2


def test_a_price_increase_becomes_a_debit_note(sim: SimulatorServer, make_gateway: Any) -> None:
    gateway = make_gateway()
    bill = issued(gateway)
    submission = note(INCREASE, bill)
    assert submission.kind is DocumentKind.DEBIT_NOTE
    result = gateway.submit(submission)
    assert result.verdict is Verdict.ACCEPTED
    assert result.references["number"].startswith("ND")
    assert result.response["correction_concept"] == {"code": "3"}  # Cambio del valor
    assert result.response["customization"] == {"code": "30"}
    assert gateway.status(submission).references["cufe"] == result.references["cufe"]
    invoice = sim.simulator._find_number(bill)
    assert invoice is not None  # 43 400 sold, then 5 000 more shared among the lines, taxed
    raised = Decimal(result.response["totals"]["total"])
    assert raised == Decimal("5307.69")
    assert sim.simulator.notes.balance(invoice) == Decimal("43400.00") + raised


def test_the_files_of_a_note_download(sim: SimulatorServer, make_gateway: Any) -> None:
    gateway = make_gateway()
    result = gateway.submit(note(RETURN, issued(gateway)))
    number = result.references["number"]
    notes = FAMILIES[DocumentKind.CREDIT_NOTE].resource
    pdf = gateway.client.download_pdf(number, notes)
    xml = gateway.client.download_xml(number, notes)
    assert pdf.file_name == f"{number}.pdf" and pdf.content.startswith(b"%PDF")
    assert xml.content.startswith(b"<?xml") and b"<CreditNote>" in xml.content
    assert result.references["cufe"].encode() in xml.content


# -- refused before anything is sent -------------------------------------------------------------


def test_adjustment_notes_to_a_pos_document_are_refused_naming_the_rule(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    before = stats(sim)["requests"]
    with pytest.raises(InvalidOrder) as caught:
        gateway.submit(note(RETURN, "EPOS1", corrected=DocumentKind.POS))
    error = caught.value.errors[0]
    assert (error.field, error.rule) == ("tipo", "note_kind_not_offered")
    assert "no POS equivalent document" in error.message and "94" in error.message
    assert stats(sim)["requests"] == before


@pytest.mark.parametrize(
    ("bill", "slow", "message"),
    [("SETP1", 0, "no existe"), (None, 1, "no ha sido validada")],
)
def test_a_note_needs_a_validated_bill_at_factus(
    sim: SimulatorServer, make_gateway: Any, bill: str | None, slow: int, message: str
) -> None:
    gateway = make_gateway()
    control(sim, dian_slow=slow)
    number = bill or gateway.submit(sale()).references["number"]
    with pytest.raises(InvalidOrder) as caught:
        gateway.submit(note(RETURN, number))
    assert [e.field for e in caught.value.errors] == ["bill_number"]
    assert message in caught.value.errors[0].message
    assert stats(sim)["notes_created"] == {}


def test_a_note_range_factus_does_not_know_is_a_field_error(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway(credit_note_range_id=99)
    bill = issued(gateway)
    with pytest.raises(InvalidOrder) as caught:
        gateway.submit(note(RETURN, bill))
    assert [e.field for e in caught.value.errors] == ["numbering_range_id"]


# -- outcome rules -------------------------------------------------------------------------------


def test_a_dropped_connection_is_an_unknown_outcome_and_the_lookup_finds_the_note(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    bill = issued(gateway)
    submission = note(RETURN, bill)
    control(sim, drop_next=1)
    with pytest.raises(OutcomeUnknown):
        gateway.submit(submission)
    found = gateway.status(submission)
    assert found.verdict is Verdict.ACCEPTED and len(found.references["cufe"]) == 96
    counts = stats(sim)
    assert counts["notes_created"] == {submission.reference_code: 1}
    assert counts["note_validate_requests"] == {submission.reference_code: 1}  # never resent


def test_a_timeout_after_processing_is_unknown_then_found(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway(read_timeout=0.5)
    bill = issued(gateway)
    submission = note(RETURN, bill)
    control(sim, hang_next=1, hang_seconds=1.5)
    with pytest.raises(OutcomeUnknown):
        gateway.submit(submission)
    assert gateway.status(submission).verdict is Verdict.ACCEPTED
    assert stats(sim)["note_validate_requests"] == {submission.reference_code: 1}


def test_the_same_reference_code_again_is_a_409_and_the_validated_note_is_kept(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    bill = issued(gateway)
    submission = note(RETURN, bill)
    first = gateway.submit(submission)
    again = gateway.submit(submission)
    assert again.verdict is Verdict.ACCEPTED
    assert again.references["cufe"] == first.references["cufe"]
    counts = stats(sim)
    assert counts["conflicts"] == 1
    assert counts["notes_created"] == {submission.reference_code: 1}
    assert counts["notes_deleted"] == {}


def test_a_rejected_note_is_final_with_its_rules_and_deleted(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    bill = issued(gateway)
    control(sim, dian_rejections={"CAD06": "Valor del CUDE no está calculado correctamente"})
    submission = note(RETURN, bill)
    result = gateway.submit(submission)
    assert result.verdict is Verdict.REJECTED
    assert [(r.code, r.kind) for r in result.rules] == [("CAD06", "Rechazo")]
    assert stats(sim)["notes_deleted"] == {submission.reference_code: 1}


def test_a_409_on_a_rejected_note_deletes_it_and_sends_once_more(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway(delete_rejected=False)
    bill = issued(gateway)
    submission = note(RETURN, bill)
    control(sim, dian_rejections={"CAD06": "CUDE"})
    assert gateway.submit(submission).verdict is Verdict.REJECTED
    control(sim, dian_rejections={})  # the cause was fixed at Factus
    assert gateway.submit(submission).verdict is Verdict.ACCEPTED
    counts = stats(sim)
    assert counts["notes_deleted"] == {submission.reference_code: 1}
    assert counts["notes_created"] == {submission.reference_code: 2}


def test_a_pending_note_is_asked_again_with_the_same_body(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    bill = issued(gateway)
    submission = note(RETURN, bill)
    assert gateway.status(submission).verdict is Verdict.NOT_FOUND
    control(sim, dian_slow=1)
    assert gateway.submit(submission).verdict is Verdict.PENDING
    assert gateway.status(submission).verdict is Verdict.ACCEPTED
    counts = stats(sim)
    assert counts["notes_created"] == {submission.reference_code: 1}
    assert counts["note_validate_requests"] == {submission.reference_code: 2}


def test_a_409_for_a_pending_note_sends_the_same_body_once_more(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    bill = issued(gateway)
    submission = note(RETURN, bill)
    control(sim, dian_slow=1)
    assert gateway.submit(submission).verdict is Verdict.PENDING
    control(sim, conflict_next=1)
    assert gateway.submit(submission).verdict is Verdict.ACCEPTED
    assert stats(sim)["notes_created"] == {submission.reference_code: 1}


def test_a_409_from_another_rejected_note_is_unavailable(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    bill = issued(make_gateway())
    control(sim, dian_rejections={"CAD06": "CUDE"})
    kept = make_gateway(delete_rejected=False).submit(note(RETURN, bill))
    assert kept.verdict is Verdict.REJECTED
    control(sim, dian_rejections={})
    with pytest.raises(GatewayUnavailable):
        make_gateway().submit(note({**RETURN, "id_nota": "NC-2"}, bill))


def test_429_is_unavailable_with_retry_after(sim: SimulatorServer, make_gateway: Any) -> None:
    gateway = make_gateway(rate_limit_per_minute=10_000)
    bill = issued(gateway)
    control(sim, rate_limit=1, rate_limit_window=30.0)
    with pytest.raises(GatewayUnavailable) as caught:
        gateway.submit(note(RETURN, bill))
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert stats(sim)["notes_created"] == {}


def test_the_stand_in_rejects_a_note_whose_payments_do_not_add_up(
    sim: SimulatorServer, make_gateway: Any
) -> None:
    gateway = make_gateway()
    bill = issued(gateway)
    submission = note(RETURN, bill)
    body = build_note(submission, numbering_range_id=9)
    body["payment_details"][0]["amount"] = "1.00"
    with pytest.raises(FactusUnprocessable) as caught:
        gateway.client.create_and_validate(body, "credit-notes")
    rules = caught.value.body["data"]["errors"]
    assert list(rules) == ["CAU14"] and "nota crédito" in rules["CAU14"]
