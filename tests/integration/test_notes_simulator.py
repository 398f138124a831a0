"""Notes through the DIAN gateway against the DIAN simulator, over real HTTP.

- each kind (91, 92 against an invoice; 94, 93 against a POS document) goes by SendBillSync
  and is accepted (00), and GetStatus finds it by its CUDE;
- the simulator checks notes as DIAN does: the CUDE keyed with the PIN of the right software
  family (CAD06, DAD06, NAAD06), a BillingReference to a document it accepted earlier with that
  number and key (CBG04a, also for a 91 against a POS ticket; NADBG04a for a 93), and credits
  never above the document (CBG05).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from adapters.dian.client import DianSoapClient
from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory, DianSetup
from adapters.dian.gateway import DianGateway
from adapters.dian.signer import XadesSigner
from adapters.dian.simulator import SimulatorServer, start_simulator
from domain.documents import DocumentKind, SoftwareFamily
from domain.errors import OutcomeUnknown
from domain.notes import ReferencedDocument
from domain.order import parse_order
from domain.ports import DocumentNumber, GatewayResult, OrderKey, Submission, Verdict
from tests.integration.test_dian_soap import control, make_client, stats
from tests.note_data import DINNER, NOTE_SETUP, REQUESTS, note_submission
from tests.pos_data import (
    INVOICE_RANGE,
    INVOICE_SOFTWARE,
    LUNCH,
    NIT,
    POS_SOFTWARE,
    TECHNICAL_KEY,
    pos_submission,
)

PASSWORD = "clave de pruebas"
OPTIONS: dict[str, Any] = {
    "checks": True,
    "technical_keys": {"SETP": TECHNICAL_KEY},
    "software_pins": {INVOICE_SOFTWARE.software_id: INVOICE_SOFTWARE.pin},
    "pos_software_pins": {POS_SOFTWARE.software_id: POS_SOFTWARE.pin},
    "sync_answer": None,
    "extra_rejections": [],
}


@pytest.fixture(scope="module")
def credentials() -> tuple[bytes, rsa.RSAPrivateKey, x509.Certificate]:
    p12 = make_test_pkcs12(NIT, PASSWORD)
    key, cert, _ = pkcs12.load_key_and_certificates(p12, PASSWORD.encode())
    assert isinstance(key, rsa.RSAPrivateKey) and cert is not None
    return p12, key, cert


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[SimulatorServer, str]]:
    server, url = start_simulator(**OPTIONS)
    yield server, url
    server.shutdown()
    server.server_close()


@pytest.fixture()
def dian(simulator: tuple[SimulatorServer, str]) -> str:
    control(simulator[1], reset=True, **OPTIONS)
    return simulator[1]


@pytest.fixture()
def client(dian: str, credentials: tuple[bytes, Any, Any]) -> Iterator[DianSoapClient]:
    made = make_client(dian, credentials[1], credentials[2])
    yield made
    made.close()


@pytest.fixture()
def gateway(client: DianSoapClient, credentials: tuple[bytes, Any, Any]) -> DianGateway:
    return _gateway(client, credentials, NOTE_SETUP)


def _gateway(
    client: DianSoapClient, credentials: tuple[bytes, Any, Any], setup: DianSetup
) -> DianGateway:
    signer = XadesSigner.from_pkcs12(credentials[0], PASSWORD)
    return DianGateway(client, DianDocumentFactory(setup, signer))


NOW = datetime.now(UTC) - timedelta(minutes=1)


def _invoice(data: dict[str, Any], number: int) -> Submission:
    order = parse_order(data)
    return Submission(
        key=OrderKey(NIT, order.id_pedido_origen),
        order=order,
        issued_at=NOW,
        number=DocumentNumber("SETP", INVOICE_RANGE.first + number),
        kind=DocumentKind.INVOICE,
        numbering=INVOICE_RANGE,
    )


def _issue(gateway: DianGateway, sale: Submission) -> ReferencedDocument:
    result = gateway.submit(sale)
    assert result.verdict is Verdict.ACCEPTED, result.rules
    return ReferencedDocument(
        sale.kind, result.references["number"], result.references["cufe"], NOW
    )


def _note(
    data: dict[str, Any], request: str, corrects: ReferencedDocument, number: int, **kw: Any
) -> Submission:
    note = note_submission(data, REQUESTS[request], corrects, number, **kw)
    return replace(note, issued_at=NOW)


def _codes(result: GatewayResult) -> set[str]:
    return {r.code for r in result.rules if r.kind == "Rechazo"}


def test_every_kind_of_note_is_accepted_and_found_by_its_cude(
    gateway: DianGateway, dian: str
) -> None:
    invoice = _issue(gateway, _invoice(DINNER, 1))
    ticket = _issue(gateway, replace(pos_submission(LUNCH, 7), issued_at=NOW))
    notes = [
        _note(DINNER, "return", invoice, 1),
        _note(DINNER, "increase", invoice, 1),
        _note(LUNCH, "discount", ticket, 1),
        _note(LUNCH, "increase", ticket, 1),
    ]
    kinds = [n.kind for n in notes]
    assert kinds == [
        DocumentKind.CREDIT_NOTE,
        DocumentKind.DEBIT_NOTE,
        DocumentKind.POS_CREDIT_NOTE,
        DocumentKind.POS_DEBIT_NOTE,
    ]
    for note in notes:
        result = gateway.submit(note)
        assert result.verdict is Verdict.ACCEPTED, (note.kind, result.rules)
        cude = result.references["cufe"]
        assert len(cude) == 96 and result.references["number"] == str(note.number)
        found = gateway.status(replace(note, references={}))  # asked by the CUDE alone
        assert found.verdict is Verdict.ACCEPTED and found.references["cufe"] == cude
        assert "autorizada" in found.response["status_message"]
    assert sorted(stats(dian)["submissions"].values()) == [1] * 6


def test_a_cude_keyed_with_another_pin_is_refused_with_dians_code(
    gateway: DianGateway, client: DianSoapClient, credentials: tuple[bytes, Any, Any]
) -> None:
    invoice = _issue(gateway, _invoice(DINNER, 2))
    ticket = _issue(gateway, replace(pos_submission(LUNCH, 8), issued_at=NOW))
    wrong = {
        family: replace(software, pin="99999") for family, software in NOTE_SETUP.software.items()
    }
    liar = _gateway(client, credentials, replace(NOTE_SETUP, software=wrong))
    assert _codes(liar.submit(_note(DINNER, "return", invoice, 5))) == {"CAD06"}
    assert _codes(liar.submit(_note(DINNER, "increase", invoice, 5))) == {"DAD06"}
    assert _codes(liar.submit(_note(LUNCH, "void", ticket, 5))) == {"NAAD06"}
    # the invoice software's PIN does not key a POS adjustment note either
    swapped = {
        SoftwareFamily.INVOICE: NOTE_SETUP.software[SoftwareFamily.INVOICE],
        SoftwareFamily.POS: replace(
            NOTE_SETUP.software[SoftwareFamily.POS], pin=INVOICE_SOFTWARE.pin
        ),
    }
    mixed = _gateway(client, credentials, replace(NOTE_SETUP, software=swapped))
    assert _codes(mixed.submit(_note(LUNCH, "increase", ticket, 6))) == {"NADBD06"}


def test_a_reference_dian_never_accepted_is_refused(gateway: DianGateway) -> None:
    invoice = _issue(gateway, _invoice(DINNER, 3))
    never = replace(invoice, number="SETP990000099")
    assert _codes(gateway.submit(_note(DINNER, "return", never, 1))) == {"CBG04a"}
    other_key = replace(invoice, key="ab" * 48)
    assert _codes(gateway.submit(_note(DINNER, "increase", other_key, 1))) == {"DBG04a"}
    other_day = replace(invoice, issued_at=NOW - timedelta(days=3))
    assert _codes(gateway.submit(_note(DINNER, "void", other_day, 2))) == {"CBG04a"}
    unknown_ticket = ReferencedDocument(DocumentKind.POS, "EPOS77", "cd" * 48, NOW)
    assert _codes(gateway.submit(_note(LUNCH, "increase", unknown_ticket, 1))) == {"NADBG04a"}


def test_a_credit_note_91_against_a_pos_ticket_is_refused(gateway: DianGateway) -> None:
    ticket = _issue(gateway, replace(pos_submission(LUNCH, 9), issued_at=NOW))
    # The builder refuses to write this; a note that names the ticket as if it were an
    # invoice reaches DIAN, which holds no invoice with that number.
    disguised = replace(ticket, kind=DocumentKind.INVOICE)
    result = gateway.submit(_note(LUNCH, "void", disguised, 1))
    assert result.verdict is Verdict.REJECTED and _codes(result) == {"CBG04a"}


def test_credits_beyond_the_document_are_refused(gateway: DianGateway) -> None:
    invoice = _issue(gateway, _invoice(DINNER, 4))
    first = gateway.submit(_note(DINNER, "void", invoice, 1))
    assert first.verdict is Verdict.ACCEPTED, first.rules
    # a second void, as if the first had not happened: everything again
    again = gateway.submit(_note(DINNER, "void", invoice, 2))
    assert _codes(again) == {"CBG05"}
    # a price increase accepted in between makes room for that much credit
    raised = gateway.submit(_note(DINNER, "increase", invoice, 1))
    assert raised.verdict is Verdict.ACCEPTED
    discount = gateway.submit(_note(DINNER, "discount", invoice, 3))  # 1000 > 500.50 raised
    assert _codes(discount) == {"CBG05"}


def test_after_a_dropped_answer_the_note_is_asked_for_by_its_cude_not_sent_again(
    gateway: DianGateway, dian: str
) -> None:
    ticket = _issue(gateway, replace(pos_submission(LUNCH, 10), issued_at=NOW))
    note = _note(LUNCH, "void", ticket, 3)
    control(dian, drops=1)  # DIAN processes the note, then the connection drops
    with pytest.raises(OutcomeUnknown):
        gateway.submit(note)
    found = gateway.status(note)  # what the worker asks before any resend
    assert found.verdict is Verdict.ACCEPTED and len(found.references["cufe"]) == 96
    assert stats(dian)["submissions"]["NCP3"] == 1
    # and sending it again anyway is DIAN's rule 90 on our own CUDE: accepted, still once
    again = gateway.submit(note)
    assert again.verdict is Verdict.ACCEPTED
    assert again.references["cufe"] == found.references["cufe"]
