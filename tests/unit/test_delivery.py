"""The buyer's copy in the domain: which documents gain one, the Message-ID of a round, the
delivery use case's outcomes, and the buyer's e-mail checked at intake."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.delivery import (
    AddressRefused,
    Channel,
    CopyRequest,
    CopyUnavailable,
    CourierOutcomeUnknown,
    CourierUnavailable,
    Delivery,
    DeliveryClaim,
    DeliveryNote,
    DeliveryState,
    copy_request,
    message_id,
)
from domain.documents import DocumentKind, DocumentPlan
from domain.errors import InvalidOrder
from domain.order import parse_order
from domain.ports import GatewayResult, OrderKey, Verdict
from domain.usecases.deliver import DeliverCopy, Delivered, DeliveryPolicy
from domain.usecases.process import ProcessOrder, RetryPolicy, Step
from tests.factories import SEED_ORDER
from tests.unit.fakes import FakeClock, FakeStore, ScriptedGateway

KEY = OrderKey("900123456", "POS-100")
BUYER = "compras@example.net"
FILES = {"document": b"<Invoice/>", "application_response": b"<ApplicationResponse/>"}


def _with_email(email: str | None) -> dict[str, Any]:
    data = copy.deepcopy(SEED_ORDER)
    data["adquirente"] = {"nombre": "Ana", "numero_documento": "1018419008", "tipo_documento": "13"}
    if email is not None:
        data["adquirente"]["email"] = email
    return data


def _processed(email: str | None, channel: Channel | None) -> FakeStore:
    clock = FakeClock()
    store = FakeStore(clock)
    plan = DocumentPlan(DocumentKind.INVOICE, "1", numbered=False)
    store.accept(KEY, parse_order(_with_email(email)), "scripted", plan)
    accepted = GatewayResult(Verdict.ACCEPTED, {"cufe": "abc"}, files=FILES)
    process = ProcessOrder(store, ScriptedGateway([accepted]), RetryPolicy(), clock, copies=channel)
    assert process(KEY).step is Step.SUCCEEDED
    return store


def test_an_accepted_document_with_a_buyer_email_gains_its_copy_and_keeps_its_files() -> None:
    store = _processed(BUYER, Channel.SMTP)
    assert store.copies[KEY] == CopyRequest(Channel.SMTP, BUYER)
    assert store.files[KEY] == FILES


@pytest.mark.parametrize(("email", "channel"), [(None, Channel.SMTP), (BUYER, None)])
def test_no_copy_without_an_address_or_a_channel(
    email: str | None, channel: Channel | None
) -> None:
    store = _processed(email, channel)
    assert KEY not in store.copies
    assert store.files[KEY] == FILES


def test_the_files_are_not_on_the_audit_trail() -> None:
    store = _processed(BUYER, Channel.SMTP)
    assert all(b"ApplicationResponse" not in repr(row).encode() for row in store.audit)


def test_copy_request_reads_the_buyer_email() -> None:
    assert copy_request(Channel.FACTUS, {"adquirente": {"email": BUYER}}) == CopyRequest(
        Channel.FACTUS, BUYER
    )
    assert copy_request(Channel.SMTP, {"adquirente": {"email": ""}}) is None
    assert copy_request(Channel.SMTP, {}) is None


def test_message_id_is_the_same_per_round_and_new_per_resend() -> None:
    assert message_id(KEY, 1, "example.co") == message_id(KEY, 1, "example.co")
    assert message_id(KEY, 1, "example.co") != message_id(KEY, 2, "example.co")
    assert message_id(KEY, 1, "example.co") != message_id(
        OrderKey("900123456", "POS-101"), 1, "example.co"
    )
    assert message_id(KEY, 1, "example.co").endswith("@example.co>")


@pytest.mark.parametrize(
    "email",
    [
        "sin-arroba.example.net",
        "dos@@example.net",
        "a b@example.net",
        "ana@example",
        "ana@.co",
        "ana@example..co",
        ".ana@example.co",
        "ana@example.c0m",
        "ana@-example.co",
    ],
)
def test_a_malformed_buyer_email_is_refused_at_intake_as_a_field_error(email: str) -> None:
    with pytest.raises(InvalidOrder) as caught:
        parse_order(_with_email(email))
    [error] = caught.value.errors
    assert error.field == "adquirente.email"
    assert "not an e-mail address" in error.message


@pytest.mark.parametrize("email", [BUYER, "ana.maria+facturas@sub.example.com.co", "X_Y@a-b.io"])
def test_well_formed_buyer_emails_are_accepted(email: str) -> None:
    assert parse_order(_with_email(email)).adquirente is not None


class _Store:
    def __init__(self) -> None:
        self.ended: list[tuple[DeliveryState, DeliveryNote, datetime | None]] = []
        self.delivery = Delivery(
            KEY, Channel.SMTP, DeliveryState.PENDIENTE, BUYER, 1, 0, None, None, datetime.now(UTC)
        )

    def claim_delivery(self, key: OrderKey, lease_seconds: float) -> DeliveryClaim | None:
        if self.delivery.state.is_final:
            return None
        return DeliveryClaim(self.delivery, "t", self.delivery.attempts + 1)

    def end_delivery(
        self,
        claim: DeliveryClaim,
        state: DeliveryState,
        note: DeliveryNote,
        due_at: datetime | None,
    ) -> bool:
        self.ended.append((state, note, due_at))
        self.delivery = Delivery(
            KEY, Channel.SMTP, state, BUYER, 1, claim.attempt, due_at, None, datetime.now(UTC)
        )
        return True


class _Courier:
    def __init__(self, *raised: Exception) -> None:
        self.raised = list(raised)
        self.calls = 0

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        self.calls += 1
        if self.raised:
            raise self.raised.pop(0)
        return {"message_id": "<m@example.co>"}


@pytest.mark.parametrize(
    ("raised", "step", "state"),
    [
        (CourierUnavailable("421"), Delivered.RETRYING, DeliveryState.PENDIENTE),
        (CourierOutcomeUnknown("lost"), Delivered.RETRYING, DeliveryState.PENDIENTE),
        (AddressRefused("550"), Delivered.REFUSED, DeliveryState.RECHAZADO),
        (CopyUnavailable("no AR"), Delivered.REFUSED, DeliveryState.RECHAZADO),
    ],
)
def test_each_courier_error_maps_to_one_outcome(
    raised: Exception, step: Delivered, state: DeliveryState
) -> None:
    store = _Store()
    deliver = DeliverCopy(store, _Courier(raised), DeliveryPolicy(), lambda: datetime.now(UTC))
    outcome = deliver(KEY)
    assert outcome.step is step
    assert store.ended[-1][0] is state
    assert (store.ended[-1][2] is not None) is (state is DeliveryState.PENDIENTE)


def test_an_unexpected_error_leaves_the_copy_pending_and_is_raised() -> None:
    store = _Store()
    deliver = DeliverCopy(
        store, _Courier(RuntimeError("bug")), DeliveryPolicy(), lambda: datetime.now(UTC)
    )
    with pytest.raises(RuntimeError):
        deliver(KEY)
    assert store.ended[-1][0] is DeliveryState.PENDIENTE


def test_backoff_grows_and_is_capped() -> None:
    policy = DeliveryPolicy(backoff_base=5, backoff_max=1800)
    assert policy.backoff(1, rng=lambda: 1.0) == 5
    assert policy.backoff(4, rng=lambda: 1.0) == 40
    assert policy.backoff(30, rng=lambda: 1.0) == 1800
    assert policy.backoff(30, rng=lambda: 0.0) == 900
