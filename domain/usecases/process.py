"""Process one order: claim it, ask or submit, record the outcome.

    claim (PROCESANDO row, committed)
      └─ may an earlier attempt have reached the authority?
           yes ─▶ gateway.status ─▶ NOT_FOUND ─▶ gateway.submit
           no ──────────────────────────────────▶ gateway.submit
    ACCEPTED ─▶ SUCCESS (+ the authority's files and, for a buyer with an e-mail, the
                copy's delivery, in the same transaction: see domain.delivery)
    REJECTED ─▶ FAILED (rule codes)       InvalidOrder ─▶ FAILED
    PENDING / OutcomeUnknown ─▶ EN_ESPERA: ask again later, never resend blindly
    GatewayUnavailable ─▶ PENDIENTE with backoff when the authority surely lacks the document
                          (FAILED once too old), EN_ESPERA when it may have it (never FAILED)
    GatewayBusy (the request budget is spent, nothing sent) ─▶ due again when it reopens,
                          never FAILED for it; like a too-short lease, it leaves "maybe sent"
                          as it was before the claim, so no lookup is spent on it
    GatewayMisconfigured, NumberingError ─▶ FAILED, loud
    any other error ─▶ EN_ESPERA, re-raised: soon (a quick retry) when no submission was under
                       way, a few times in a row; otherwise after the outcome-unknown wait

Only a status answer of NOT_FOUND in this very attempt, or no earlier claim at all, lets the
order be sent; and only then may an unavailable authority make it FAILED.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from domain.delivery import Channel, CopyRequest, copy_request
from domain.documents import Register
from domain.errors import (
    GatewayBusy,
    GatewayMisconfigured,
    GatewayUnavailable,
    InvalidOrder,
    NumberingError,
    OutcomeUnknown,
)
from domain.notes import figures_from_dict
from domain.order import Order
from domain.ports import Gateway, GatewayResult, OrderKey, Submission, Verdict
from domain.store import Claim, DocumentStore, State, StepNote

log = logging.getLogger(__name__)
QuickRetry = Callable[[float], bool]


@dataclass(frozen=True)
class RetryPolicy:
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    max_attempts: int = 25
    give_up_after: float = 48 * 3600
    pending_poll_interval: float = 10.0
    lease_seconds: float = 150.0
    # Claims beyond this many mean something keeps killing the work (a poison order, a
    # worker that dies mid-call): settle it with the authority and stop looping.
    max_claims: int = 100
    # After a call whose outcome is unknown the authority may still be working on it: a
    # status question sooner than this could see "not found" and send the document again.
    outcome_unknown_delay: float = 120.0
    # The longest a submission may take; it is not started with less lease left than this.
    submit_budget: float = 70.0
    # Waits up to this long are a task retry message; longer ones are left to the reconciler.
    quick_retry_limit: float = 60.0
    # Unexpected errors in a row that are retried within seconds, when no submission was
    # under way; past them the order waits like an unknown outcome and the reconciler wakes it.
    interrupted_quick_retries: int = 3

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, attempt - 1))
        return max(1.0, ceiling * rng())

    def poll_delay(self, attempt: int) -> float:
        exponent = max(0, min(attempt, 12) - 1)
        return min(self.backoff_max, self.pending_poll_interval * 2.0**exponent)


class Step(enum.StrEnum):
    SKIPPED = "skipped"  # not due, already final, or owned by another worker
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    WAITING = "waiting"  # EN_ESPERA: the authority will be asked again
    RETRYING = "retrying"  # PENDIENTE: the authority was unavailable


@dataclass(frozen=True)
class Processed:
    step: Step
    retry_in: float | None = None  # seconds until the order is due again
    reason: dict[str, Any] | None = None  # why it FAILED, as stored on the order


@dataclass
class _Attempt:
    claim: Claim
    claimed_at: datetime
    quick_retry: QuickRetry | None
    # True once it is certain the authority lacks the document: nothing was ever sent, or
    # the authority said NOT_FOUND during this attempt.
    absent: bool
    # True from the moment this attempt starts a submission: if it is interrupted now, the
    # document may be on its way to the authority.
    sending: bool = False


class _LeaseTooShort(Exception):
    """Too little of the lease is left to start a submission safely."""


class ProcessOrder:
    def __init__(
        self,
        store: DocumentStore,
        gateway: Gateway,
        policy: RetryPolicy,
        clock: Callable[[], datetime],
        registers: Mapping[str, Register] | None = None,
        copies: Channel | Callable[[OrderKey], Channel | None] | None = None,
    ) -> None:
        """`registers`: the tills by code, with their default cashier (POS documents describe
        the till that sold them). `copies`: the channel an accepted document's copy goes by
        to a buyer with an e-mail (None: no copies are delivered), or what gives it for a
        document's key (each issuer's gateway decides its channel)."""
        self._store = store
        self._gateway = gateway
        self._policy = policy
        self._clock = clock
        self._registers = registers or {}
        self._copies = copies if callable(copies) else (lambda _key: copies)

    def __call__(self, key: OrderKey, quick_retry: QuickRetry | None = None) -> Processed:
        """`quick_retry(delay)` may send a wake-up for a short wait (a task retry) and says
        whether it did; it is called only after the wait is committed."""
        claim = self._store.claim(key, self._policy.lease_seconds)
        if claim is None:
            return Processed(Step.SKIPPED)
        attempt = _Attempt(claim, self._clock(), quick_retry, absent=not claim.was_maybe_sent)
        try:
            return self._work(attempt)
        except BaseException as exc:
            # Interrupted mid-step (soft time limit, a bug, shutdown): the document may be at
            # the authority, so the next attempt waits, then asks first.
            self._interrupted(attempt, exc)
            raise

    def _work(self, attempt: _Attempt) -> Processed:
        claim = attempt.claim
        try:
            submission = _submission(claim, self._registers)
        except ValidationError as exc:
            invalid: dict[str, Any] = {"error": "stored_order_invalid", "message": str(exc)[:1000]}
            return self._final(attempt, State.FAILED, {}, invalid)
        if claim.attempt > self._policy.max_claims:
            return self._settle(attempt, submission)
        try:
            result = self._ask_or_submit(attempt, submission)
        except InvalidOrder as exc:
            refused: dict[str, Any] = {"error": "invalid_order", "errors": exc.as_dicts()}
            return self._final(attempt, State.FAILED, {}, refused)
        except (GatewayMisconfigured, NumberingError) as exc:
            log.critical("order %s cannot be issued as configured: %s", claim.record.key, exc)
            kind = "numbering" if isinstance(exc, NumberingError) else "gateway_misconfigured"
            return self._final(attempt, State.FAILED, {}, {"error": kind, "message": str(exc)})
        except OutcomeUnknown as exc:
            delay = max(self._policy.backoff(claim.attempt), self._policy.outcome_unknown_delay)
            response = {"error": "outcome_unknown", "message": str(exc)}
            return self._defer(attempt, State.EN_ESPERA, delay, {}, "EN_ESPERA", response)
        except _LeaseTooShort:
            response = {"error": "lease_too_short", "message": "not submitted; retried at once"}
            return self._defer(
                attempt, State.EN_ESPERA, 1.0, {}, "EN_ESPERA", response, unsent=True
            )
        except GatewayBusy as exc:
            return self._busy(attempt, exc)
        except GatewayUnavailable as exc:
            return self._unavailable(attempt, exc)
        return self._decide(attempt, result)

    def _ask_or_submit(self, attempt: _Attempt, submission: Submission) -> GatewayResult:
        if not attempt.absent:
            found = self._gateway.status(submission)
            if found.verdict is not Verdict.NOT_FOUND:
                return found
            attempt.absent = True
        elapsed = (self._clock() - attempt.claimed_at).total_seconds()
        if elapsed + self._policy.submit_budget > self._policy.lease_seconds:
            raise _LeaseTooShort()
        attempt.sending = True
        result = self._gateway.submit(submission)
        if result.verdict is Verdict.NOT_FOUND:
            raise OutcomeUnknown("the gateway answered a submission with 'not found'")
        return result

    def _decide(self, attempt: _Attempt, result: GatewayResult) -> Processed:
        summary = result.as_dict()
        if result.verdict is Verdict.ACCEPTED:
            warnings = [r.as_dict() for r in result.rules]
            kept: dict[str, Any] | None = {"warnings": warnings} if warnings else None
            record = attempt.claim.record
            copy = copy_request(self._copies(record.key), record.payload)
            return self._final(
                attempt, State.SUCCESS, result.references, kept, summary, result.files, copy
            )
        if result.verdict is Verdict.REJECTED:
            rules: dict[str, Any] = {
                "error": "rejected",
                "rules": [r.as_dict() for r in result.rules],
            }
            return self._final(attempt, State.FAILED, result.references, rules, summary)
        delay = self._policy.poll_delay(attempt.claim.attempt)
        return self._defer(
            attempt,
            State.EN_ESPERA,
            delay,
            result.references,
            "EN_ESPERA",
            summary,
            reason={"waiting": "the authority has not decided yet"},
        )

    def _busy(self, attempt: _Attempt, exc: GatewayBusy) -> Processed:
        """The request budget is spent: due again when it reopens, never FAILED for it."""
        response: dict[str, Any] = {"error": "gateway_busy", "message": str(exc)}
        # A longer wait comes back once within it (a retry message, not the reconciler's
        # next pass) and is told the rest: the slot held for it is not missed.
        delay = max(0.05, min(exc.retry_after or 0.0, self._policy.quick_retry_limit))
        state = State.PENDIENTE if attempt.absent else State.EN_ESPERA
        return self._defer(attempt, state, delay, {}, "REINTENTO", response, unsent=True)

    def _unavailable(self, attempt: _Attempt, exc: GatewayUnavailable) -> Processed:
        claim = attempt.claim
        response: dict[str, Any] = {"error": "gateway_unavailable", "message": str(exc)}
        delay = max(exc.retry_after or 0.0, self._policy.backoff(claim.attempt))
        if not attempt.absent:
            # The authority could not say whether it holds the document: keep asking.
            return self._defer(attempt, State.EN_ESPERA, delay, {}, "REINTENTO", response)
        since = claim.record.reopened_at or claim.record.created_at
        age = (self._clock() - since).total_seconds()
        if claim.attempt >= self._policy.max_attempts or age >= self._policy.give_up_after:
            response["gave_up"] = f"after {claim.attempt} attempts over {int(age)} s"
            return self._final(attempt, State.FAILED, {}, response)
        return self._defer(attempt, State.PENDIENTE, delay, {}, "REINTENTO", response)

    def _settle(self, attempt: _Attempt, submission: Submission) -> Processed:
        """Too many claims: keep what the authority has; otherwise give up. Never send."""
        claim = attempt.claim
        gave_up: dict[str, Any] = {
            "error": "too_many_attempts",
            "attempts": claim.attempt,
            "last_reason": claim.record.reason,
        }
        try:
            found = (
                GatewayResult(Verdict.NOT_FOUND)
                if attempt.absent
                else self._gateway.status(submission)
            )
        except (GatewayUnavailable, OutcomeUnknown) as exc:
            gave_up["status_check"] = str(exc)
            delay = self._policy.backoff_max
            return self._defer(attempt, State.EN_ESPERA, delay, {}, "EN_ESPERA", gave_up)
        except Exception as exc:  # the authority cannot even be asked: say so, loudly
            log.critical("order %s cannot be settled: %s", claim.record.key, exc)
            gave_up["status_check"] = f"{type(exc).__name__}: {exc}"[:1000]
            return self._final(attempt, State.FAILED, {}, gave_up)
        if found.verdict is Verdict.NOT_FOUND:
            return self._final(attempt, State.FAILED, {}, gave_up)
        if found.verdict is Verdict.PENDING:
            delay = self._policy.backoff_max
            return self._defer(
                attempt, State.EN_ESPERA, delay, found.references, "EN_ESPERA", found.as_dict()
            )
        return self._decide(attempt, found)

    def _final(
        self,
        attempt: _Attempt,
        state: State,
        references: dict[str, str],
        reason: dict[str, Any] | None,
        response: dict[str, Any] | None = None,
        files: Mapping[str, bytes] | None = None,
        copy: CopyRequest | None = None,
    ) -> Processed:
        status = "SUCCESS" if state is State.SUCCESS else "FAILED"
        note = StepNote(status, response if response is not None else dict(reason or {}))
        self._store.finish(attempt.claim, state, references, note, reason, files, copy)
        if state is State.SUCCESS:
            return Processed(Step.SUCCEEDED)
        return Processed(Step.FAILED, reason=reason)

    def _defer(
        self,
        attempt: _Attempt,
        state: State,
        delay: float,
        references: dict[str, str],
        status: str,
        response: dict[str, Any],
        reason: dict[str, Any] | None = None,
        quick_allowed: bool = True,
        unsent: bool = False,
    ) -> Processed:
        due = self._clock() + timedelta(seconds=delay)
        quick = (
            quick_allowed
            and attempt.quick_retry is not None
            and delay <= self._policy.quick_retry_limit
        )
        note = StepNote(status, response)
        owned = self._store.defer(
            attempt.claim,
            state,
            due,
            references,
            note,
            reason or response,
            published=quick,
            # Nothing left for the authority in this attempt: the flag is what it was before
            # the claim, so an order never sent is sent next time without a lookup first.
            maybe_sent=attempt.claim.was_maybe_sent if unsent else None,
        )
        if owned and quick and attempt.quick_retry is not None and not attempt.quick_retry(delay):
            self._store.mark_unpublished(attempt.claim.record.key)
        step = Step.RETRYING if state is State.PENDIENTE else Step.WAITING
        return Processed(step, delay)

    def _interrupted(self, attempt: _Attempt, exc: BaseException) -> None:
        """An error nothing above maps (a bug, a soft time limit, shutdown): wait, then ask.

        Without a submission under way the authority's knowledge did not change, so the order
        is due again within seconds (a quick retry), a few times in a row. Otherwise it waits
        as long as after an unknown outcome, so a status question cannot come too early."""
        previous = attempt.claim.record.reason or {}
        in_a_row = 1
        if previous.get("error") == "interrupted":
            in_a_row += int(previous.get("in_a_row", 1))
        response: dict[str, Any] = {
            "error": "interrupted",
            "type": type(exc).__name__,
            "message": str(exc)[:500],
            "in_a_row": in_a_row,
            "sending": attempt.sending,
        }
        quick = isinstance(exc, Exception) and in_a_row <= self._policy.interrupted_quick_retries
        if quick and not attempt.sending:
            delay = self._policy.backoff(in_a_row)
        else:
            delay = max(
                self._policy.backoff(attempt.claim.attempt), self._policy.outcome_unknown_delay
            )
        try:
            self._defer(
                attempt, State.EN_ESPERA, delay, {}, "EN_ESPERA", response, quick_allowed=quick
            )
        except Exception:  # the store may be what failed; the lease expiry covers this order
            log.warning(
                "could not record the interruption of %s", attempt.claim.record.key, exc_info=True
            )


def _submission(claim: Claim, registers: Mapping[str, Register]) -> Submission:
    record = claim.record
    order = Order.model_validate(record.payload)
    register = registers.get(record.register or order.caja or "")
    if register is not None and order.cajero:
        register = replace(register, cashier=order.cajero)
    return Submission(
        key=record.key,
        order=order,
        issued_at=record.issued_at,
        number=record.number,
        references=record.references,
        attempt=claim.attempt,
        kind=record.kind,
        numbering=record.numbering,
        register=register,
        note=figures_from_dict(record.note["figures"], order) if record.note else None,
        corrects=record.corrects,
    )
