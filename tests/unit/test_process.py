"""The process use case against hand-written fakes: every gateway outcome maps to one state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.documents import DocumentKind, DocumentPlan
from domain.errors import (
    FieldError,
    GatewayBusy,
    GatewayMisconfigured,
    GatewayUnavailable,
    InvalidOrder,
    OutcomeUnknown,
)
from domain.order import parse_order
from domain.ports import GatewayResult, OrderKey, Rule, Verdict
from domain.store import State
from domain.usecases.process import ProcessOrder, RetryPolicy, Step
from tests.factories import SEED_ORDER
from tests.unit.fakes import FakeClock, FakeStore, ScriptedGateway

KEY = OrderKey("900123456", "POS-100")
ACCEPTED = GatewayResult(Verdict.ACCEPTED, {"cufe": "abc"})
NOT_FOUND = GatewayResult(Verdict.NOT_FOUND)


INVOICE = DocumentPlan(DocumentKind.INVOICE, "1", numbered=False)


def setup(submits: list, statuses: list | None = None, policy: RetryPolicy | None = None):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    store = FakeStore(clock)
    store.accept(KEY, parse_order(SEED_ORDER), "scripted", INVOICE)
    gateway = ScriptedGateway(submits, statuses)
    process = ProcessOrder(store, gateway, policy or RetryPolicy(), clock)
    return clock, store, gateway, process


def test_accepted_document_ends_success_with_processing_and_success_rows() -> None:
    _, store, gateway, process = setup([ACCEPTED])
    assert process(KEY).step is Step.SUCCEEDED
    record = store.get(KEY)
    assert record is not None and record.state is State.SUCCESS
    assert record.references["cufe"] == "abc"
    assert store.statuses(KEY) == ["RECIBIDO", "PROCESANDO", "SUCCESS"]
    assert gateway.calls == ["submit"]


def test_rejection_is_final_with_every_rule() -> None:
    rules = (Rule("FAD06", "Rechazo", "CUFE"), Rule("FAK24", "Rechazo", "DV"))
    _, store, _, process = setup([GatewayResult(Verdict.REJECTED, {}, rules)])
    assert process(KEY).step is Step.FAILED
    record = store.get(KEY)
    assert record is not None and record.state is State.FAILED
    assert record.reason is not None
    assert [r["code"] for r in record.reason["rules"]] == ["FAD06", "FAK24"]


def test_invalid_order_from_the_gateway_is_final_and_not_retried() -> None:
    _, store, gateway, process = setup([InvalidOrder([FieldError("items[0]", "x", "bad")])])
    assert process(KEY).step is Step.FAILED
    assert store.get(KEY).state is State.FAILED  # type: ignore[union-attr]
    assert gateway.calls == ["submit"]


def test_misconfiguration_is_final() -> None:
    _, store, _, process = setup([GatewayMisconfigured("InvalidSecurity")])
    assert process(KEY).step is Step.FAILED
    assert store.get(KEY).reason["error"] == "gateway_misconfigured"  # type: ignore[union-attr,index]


def test_unavailable_is_retried_later_honouring_retry_after() -> None:
    clock, store, gateway, process = setup(
        [GatewayUnavailable("503", retry_after=42.0), ACCEPTED], [NOT_FOUND]
    )
    first = process(KEY)
    assert first.step is Step.RETRYING and first.retry_in is not None and first.retry_in >= 42.0
    assert store.get(KEY).state is State.PENDIENTE  # type: ignore[union-attr]
    assert process(KEY).step is Step.SKIPPED  # not due yet
    clock.advance(first.retry_in)
    assert process(KEY).step is Step.SUCCEEDED
    # the first attempt may have reached the authority: it is asked before the second submit
    assert gateway.calls == ["submit", "status", "submit"]


def test_unavailable_gives_up_only_when_the_authority_lacks_the_document() -> None:
    policy = RetryPolicy(max_attempts=2)
    clock, store, gateway, process = setup(
        [GatewayUnavailable("down"), GatewayUnavailable("down")], [NOT_FOUND], policy
    )
    assert process(KEY).step is Step.RETRYING
    clock.advance(3600)
    assert process(KEY).step is Step.FAILED  # asked: not there; sent: refused; out of attempts
    assert "gave_up" in store.get(KEY).reason  # type: ignore[operator,union-attr]
    assert gateway.calls == ["submit", "status", "submit"]


def test_an_authority_that_cannot_say_whether_it_holds_the_document_is_asked_again() -> None:
    policy = RetryPolicy(max_attempts=1, give_up_after=0)
    clock, store, gateway, process = setup(
        [OutcomeUnknown("read timeout")], [GatewayUnavailable("503")] * 3, policy
    )
    process(KEY)
    for _ in range(3):
        clock.advance(3600)
        assert process(KEY).step is Step.WAITING  # never FAILED while it may hold it
    assert store.get(KEY).state is State.EN_ESPERA  # type: ignore[union-attr]
    assert gateway.calls == ["submit", "status", "status", "status"]


def test_outcome_unknown_waits_and_then_asks_before_sending_again() -> None:
    clock, store, gateway, process = setup([OutcomeUnknown("timeout after send")], [ACCEPTED])
    waiting = process(KEY)
    assert waiting.step is Step.WAITING
    # the authority may still be working on it: no question before the configured delay
    assert waiting.retry_in is not None and waiting.retry_in >= RetryPolicy().outcome_unknown_delay
    clock.advance(RetryPolicy().outcome_unknown_delay - 5)
    assert process(KEY).step is Step.SKIPPED
    assert store.get(KEY).state is State.EN_ESPERA  # type: ignore[union-attr]
    clock.advance(10)
    assert process(KEY).step is Step.SUCCEEDED
    assert gateway.calls == ["submit", "status"]  # never submitted twice


def test_pending_at_the_authority_is_polled_not_resent() -> None:
    pending = GatewayResult(Verdict.PENDING, {"zip_key": "z-1"})
    clock, store, gateway, process = setup([pending], [pending, ACCEPTED])
    for _ in range(3):
        result = process(KEY)
        clock.advance(result.retry_in or 0)
    assert store.get(KEY).state is State.SUCCESS  # type: ignore[union-attr]
    assert store.get(KEY).references["zip_key"] == "z-1"  # type: ignore[union-attr]
    assert gateway.calls == ["submit", "status", "status"]


def test_an_interruption_leaves_the_order_waiting_and_asking_first() -> None:
    clock, store, gateway, process = setup([RuntimeError("soft time limit")], [ACCEPTED])
    with pytest.raises(RuntimeError):
        process(KEY)
    record = store.get(KEY)
    assert record is not None and record.state is State.EN_ESPERA and record.maybe_sent
    clock.advance(3600)
    assert process(KEY).step is Step.SUCCEEDED
    assert gateway.calls == ["submit", "status"]


def test_an_expired_lease_is_taken_over_and_the_authority_asked_first() -> None:
    clock, store, gateway, process = setup([], [NOT_FOUND])
    gateway.submits = [ACCEPTED]
    claim = store.claim(KEY, lease_seconds=60)  # a worker that died mid-call
    assert claim is not None
    assert process(KEY).step is Step.SKIPPED  # lease still held
    clock.advance(61)
    assert process(KEY).step is Step.SUCCEEDED
    assert gateway.calls == ["status", "submit"]


def test_final_orders_are_never_processed_again() -> None:
    _, _, gateway, process = setup([ACCEPTED])
    process(KEY)
    assert process(KEY).step is Step.SKIPPED
    assert gateway.calls == ["submit"]


def test_a_quick_retry_is_offered_for_short_waits() -> None:
    offered: list[float] = []

    def quick(delay: float) -> bool:
        offered.append(delay)
        return True

    _, _, _, process = setup([GatewayUnavailable("503")])
    process(KEY, quick)
    assert len(offered) == 1 and offered[0] >= 1.0


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff_base=2, backoff_max=60)
    assert policy.backoff(1, rng=lambda: 1.0) == 2
    assert policy.backoff(4, rng=lambda: 1.0) == 16
    assert policy.backoff(20, rng=lambda: 1.0) == 60
    assert policy.backoff(4, rng=lambda: 0.5) == 8


def test_an_order_claimed_too_often_is_settled_with_the_authority_not_resent() -> None:
    policy = RetryPolicy(max_claims=2)
    clock, store, gateway, process = setup([], [NOT_FOUND], policy)
    for _ in range(2):  # two workers die mid-call
        assert store.claim(KEY, lease_seconds=10) is not None
        clock.advance(11)
    assert process(KEY).step is Step.FAILED
    record = store.get(KEY)
    assert record is not None and record.reason is not None
    assert record.reason["error"] == "too_many_attempts"
    assert gateway.calls == ["status"]  # asked, never sent


def test_an_order_claimed_too_often_that_the_authority_accepted_succeeds() -> None:
    policy = RetryPolicy(max_claims=1)
    clock, store, gateway, process = setup([], [ACCEPTED], policy)
    store.claim(KEY, lease_seconds=10)
    clock.advance(11)
    assert process(KEY).step is Step.SUCCEEDED
    assert gateway.calls == ["status"]


def test_the_quick_retry_is_sent_after_the_wait_is_committed() -> None:
    seen: list[str] = []
    _, store, _, process = setup([GatewayUnavailable("503")])

    def quick(delay: float) -> bool:
        record = store.get(KEY)
        seen.append(record.state.value if record else "?")
        return False  # the broker is down

    process(KEY, quick)
    assert seen == ["PENDIENTE"]  # the retry message cannot overtake the deferral
    assert store.rows[KEY].published_at is None  # so the reconciler sends the wake-up


def test_no_submission_starts_without_enough_lease_left() -> None:
    policy = RetryPolicy(lease_seconds=60, submit_budget=50)
    clock, store, gateway, process = setup([ACCEPTED], [NOT_FOUND, NOT_FOUND], policy)
    slow_status = gateway.status

    def status(submission):  # type: ignore[no-untyped-def]
        clock.advance(20)  # a slow status answer eats the lease
        return slow_status(submission)

    gateway.status = status  # type: ignore[method-assign]
    store.claim(KEY, lease_seconds=1)
    clock.advance(2)  # an earlier claim expired: this attempt must ask first
    assert process(KEY).step is Step.WAITING
    assert gateway.calls == ["status"]  # asked, but too late in the lease to send
    clock.advance(2)
    assert process(KEY).step is Step.WAITING
    assert gateway.calls == ["status", "status"]  # never a submission it could not finish


def test_configuration_errors_are_final_and_loud() -> None:
    from domain.errors import NumberingError

    _, store, _, process = setup([NumberingError("range expired")])
    assert process(KEY).step is Step.FAILED
    assert store.get(KEY).reason["error"] == "numbering"  # type: ignore[index,union-attr]


def _left_to_the_reconciler(store: FakeStore) -> bool:
    """Due later and not published for then: the reconciler sends the wake-up when due."""
    record, published = store.rows[KEY].record, store.rows[KEY].published_at
    assert record.due_at is not None
    return published is None or published < record.due_at


def _offers() -> tuple[list[float], object]:
    offered: list[float] = []

    def quick(delay: float) -> bool:
        offered.append(delay)
        return True

    return offered, quick


def test_an_unexpected_error_before_any_submission_is_retried_within_seconds() -> None:
    policy = RetryPolicy(backoff_base=1, outcome_unknown_delay=120)
    clock, store, gateway, process = setup([ACCEPTED], [RuntimeError("bug in status")], policy)
    store.claim(KEY, lease_seconds=1)  # an earlier attempt may have sent: this one asks first
    clock.advance(2)
    offered, quick = _offers()
    with pytest.raises(RuntimeError):
        process(KEY, quick)  # type: ignore[arg-type]
    record = store.get(KEY)
    assert record is not None and record.state is State.EN_ESPERA and record.reason is not None
    assert record.reason["error"] == "interrupted" and record.reason["type"] == "RuntimeError"
    assert record.due_at is not None and record.due_at <= clock() + timedelta(seconds=1)
    assert len(offered) == 1 and offered[0] <= 1  # the wake-up for that moment
    assert store.rows[KEY].published_at == record.due_at  # the reconciler need not send one
    gateway.statuses = [NOT_FOUND]
    clock.advance(offered[0])
    assert process(KEY).step is Step.SUCCEEDED
    assert gateway.calls == ["status", "status", "submit"]
    assert store.statuses(KEY)[-3:] == ["EN_ESPERA", "PROCESANDO", "SUCCESS"]


def test_an_unexpected_error_during_a_submission_waits_as_for_an_unknown_outcome() -> None:
    policy = RetryPolicy(outcome_unknown_delay=120, quick_retry_limit=60)
    clock, store, gateway, process = setup([RuntimeError("bug after sending")], [ACCEPTED], policy)
    offered, quick = _offers()
    with pytest.raises(RuntimeError):
        process(KEY, quick)  # type: ignore[arg-type]
    record = store.get(KEY)
    assert record is not None and record.state is State.EN_ESPERA and record.reason is not None
    assert record.reason["sending"] is True
    assert record.due_at == clock() + timedelta(seconds=120)  # no question before that
    assert offered == []  # too long for a retry message: the reconciler wakes it
    assert _left_to_the_reconciler(store)
    clock.advance(120)
    assert process(KEY).step is Step.SUCCEEDED
    assert gateway.calls == ["submit", "status"]  # asked, not sent again


def test_quick_retries_after_unexpected_errors_are_bounded() -> None:
    policy = RetryPolicy(backoff_base=1, interrupted_quick_retries=2, outcome_unknown_delay=30)
    errors: list = [RuntimeError(f"bug {n}") for n in range(4)]
    clock, store, _, process = setup([], errors, policy)
    store.claim(KEY, lease_seconds=1)
    clock.advance(2)
    offered, quick = _offers()
    for n in range(3):
        with pytest.raises(RuntimeError):
            process(KEY, quick)  # type: ignore[arg-type]
        record = store.get(KEY)
        assert record is not None and record.reason is not None
        assert record.reason["in_a_row"] == n + 1
        clock.advance(3600)
    assert len(offered) == 2  # the third in a row waits for the reconciler
    assert _left_to_the_reconciler(store)


def test_the_count_of_unexpected_errors_starts_again_after_another_outcome() -> None:
    policy = RetryPolicy(backoff_base=1, interrupted_quick_retries=1)
    statuses: list = [RuntimeError("bug"), GatewayUnavailable("503"), RuntimeError("bug")]
    clock, store, _, process = setup([], statuses, policy)
    store.claim(KEY, lease_seconds=1)
    clock.advance(2)
    offered, quick = _offers()
    with pytest.raises(RuntimeError):
        process(KEY, quick)  # type: ignore[arg-type]
    clock.advance(3600)
    process(KEY, quick)  # unavailable: an ordinary wait
    clock.advance(3600)
    with pytest.raises(RuntimeError):
        process(KEY, quick)  # type: ignore[arg-type]
    record = store.get(KEY)
    assert record is not None and record.reason is not None
    assert record.reason["in_a_row"] == 1
    assert len(offered) == 3


def test_a_spent_request_budget_is_due_again_when_it_reopens_without_a_lookup() -> None:
    clock, store, gateway, process = setup([GatewayBusy("budget", retry_after=7.5), ACCEPTED])
    first = process(KEY)
    assert first.retry_in == 7.5
    record = store.get(KEY)
    assert record is not None and record.state is State.PENDIENTE and not record.maybe_sent
    clock.advance(7.5)
    assert process(KEY).step is Step.SUCCEEDED
    assert gateway.calls == ["submit", "submit"]  # nothing had left: no status question


def test_a_spent_budget_never_fails_the_order() -> None:
    policy = RetryPolicy(max_attempts=2, give_up_after=1.0)
    clock, store, _, process = setup([GatewayBusy("budget", retry_after=5.0)] * 5, [], policy)
    for _ in range(5):
        assert process(KEY).step is Step.RETRYING
        clock.advance(5.0)
    assert store.get(KEY).state is State.PENDIENTE  # type: ignore[union-attr]


def test_a_spent_budget_after_an_unknown_outcome_still_asks_first() -> None:
    clock, store, gateway, process = setup(
        [OutcomeUnknown("reset"), ACCEPTED], [GatewayBusy("budget", retry_after=2.0), NOT_FOUND]
    )
    process(KEY)
    clock.advance(3600)
    assert process(KEY).step is Step.WAITING
    assert store.get(KEY).maybe_sent  # type: ignore[union-attr]
    clock.advance(2.0)
    assert process(KEY).step is Step.SUCCEEDED
    assert gateway.calls == ["submit", "status", "status", "submit"]
