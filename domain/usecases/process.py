"""Process one order: claim it, ask or submit, record the outcome.

claim (PROCESANDO row, committed)
  └─ was it maybe sent before? ── yes ─▶ gateway.status ─▶ NOT_FOUND ─▶ gateway.submit
                               └─ no ──────────────────────────────────▶ gateway.submit
ACCEPTED ─▶ SUCCESS        REJECTED ─▶ FAILED (rule codes)      InvalidOrder ─▶ FAILED
PENDING / OutcomeUnknown ─▶ EN_ESPERA (ask again later, never resend blindly)
GatewayUnavailable ─▶ PENDIENTE with backoff (FAILED once the order is too old)
GatewayMisconfigured ─▶ FAILED, loud
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.errors import GatewayMisconfigured, GatewayUnavailable, InvalidOrder, OutcomeUnknown
from domain.order import Order
from domain.ports import Gateway, GatewayResult, OrderKey, Submission, Verdict
from domain.store import Claim, OrderStore, State, StepNote

log = logging.getLogger(__name__)


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


class ProcessOrder:
    def __init__(
        self,
        store: OrderStore,
        gateway: Gateway,
        policy: RetryPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._policy = policy
        self._clock = clock

    def __call__(
        self, key: OrderKey, published_retry: Callable[[float], bool] | None = None
    ) -> Processed:
        """`published_retry(delay)` may schedule a quick wake-up (a task retry); it returns
        whether it did, so the reconciler knows not to send another."""
        claim = self._store.claim(key, self._policy.lease_seconds)
        if claim is None:
            return Processed(Step.SKIPPED)
        try:
            return self._work(claim, published_retry)
        except BaseException as exc:
            # Interrupted mid-step (soft time limit, a bug, shutdown): the document may have
            # reached the authority, so the next attempt asks first.
            self._interrupted(claim, exc)
            raise

    def _work(self, claim: Claim, published_retry: Callable[[float], bool] | None) -> Processed:
        submission = _submission(claim)
        if claim.attempt > self._policy.max_claims:
            return self._settle(claim, submission)
        try:
            result = self._ask_or_submit(claim, submission)
        except InvalidOrder as exc:
            return self._final(
                claim,
                State.FAILED,
                {},
                "FAILED",
                {"error": "invalid_order", "errors": exc.as_dicts()},
            )
        except GatewayMisconfigured as exc:
            log.critical("gateway refuses our configuration (order %s): %s", claim.record.key, exc)
            return self._final(
                claim,
                State.FAILED,
                {},
                "FAILED",
                {"error": "gateway_misconfigured", "message": str(exc)},
            )
        except OutcomeUnknown as exc:
            return self._wait(
                claim,
                {},
                {"error": "outcome_unknown", "message": str(exc)},
                self._policy.backoff(claim.attempt),
                published_retry,
            )
        except GatewayUnavailable as exc:
            return self._unavailable(claim, exc, published_retry)
        return self._decide(claim, result, published_retry)

    def _settle(self, claim: Claim, submission: Submission) -> Processed:
        """Too many claims: keep what the authority has, otherwise give up (never send)."""
        gave_up = {
            "error": "too_many_attempts",
            "attempts": claim.attempt,
            "last_reason": claim.record.reason,
        }
        try:
            found = (
                self._gateway.status(submission)
                if claim.was_maybe_sent
                else GatewayResult(Verdict.NOT_FOUND)
            )
        except (GatewayUnavailable, OutcomeUnknown) as exc:
            delay = self._policy.backoff_max
            return self._wait(claim, {}, {**gave_up, "status_check": str(exc)}, delay, None)
        if found.verdict in (Verdict.NOT_FOUND, Verdict.PENDING) and not (
            found.verdict is Verdict.PENDING and self._young(claim)
        ):
            return self._final(claim, State.FAILED, found.references, "FAILED", gave_up)
        if found.verdict is Verdict.PENDING:
            return self._wait(
                claim, found.references, found.as_dict(), self._policy.backoff_max, None
            )
        return self._decide(claim, found, None)

    def _young(self, claim: Claim) -> bool:
        age = (self._clock() - claim.record.created_at).total_seconds()
        return age < self._policy.give_up_after

    def _ask_or_submit(self, claim: Claim, submission: Submission) -> GatewayResult:
        if claim.was_maybe_sent:
            found = self._gateway.status(submission)
            if found.verdict is not Verdict.NOT_FOUND:
                return found
        result = self._gateway.submit(submission)
        if result.verdict is Verdict.NOT_FOUND:
            raise OutcomeUnknown("the gateway answered a submission with 'not found'")
        return result

    def _decide(
        self, claim: Claim, result: GatewayResult, published_retry: Callable[[float], bool] | None
    ) -> Processed:
        summary = result.as_dict()
        if result.verdict is Verdict.ACCEPTED:
            warnings = [r.as_dict() for r in result.rules]
            return self._final(
                claim,
                State.SUCCESS,
                result.references,
                "SUCCESS",
                summary,
                {"warnings": warnings} if warnings else None,
            )
        if result.verdict is Verdict.REJECTED:
            reason = {"error": "rejected", "rules": [r.as_dict() for r in result.rules]}
            return self._final(claim, State.FAILED, result.references, "FAILED", summary, reason)
        delay = self._policy.poll_delay(claim.attempt)
        return self._wait(
            claim,
            result.references,
            summary,
            delay,
            published_retry,
            reason={"waiting": "authority has not decided yet"},
        )

    def _final(
        self,
        claim: Claim,
        state: State,
        references: dict[str, str],
        status: str,
        response: dict[str, Any],
        reason: dict[str, Any] | None = None,
    ) -> Processed:
        if reason is None and state is State.FAILED:
            reason = response
        self._store.finish(claim, state, references, StepNote(status, response), reason)
        return Processed(Step.SUCCEEDED if state is State.SUCCESS else Step.FAILED)

    def _wait(
        self,
        claim: Claim,
        references: dict[str, str],
        response: dict[str, Any],
        delay: float,
        published_retry: Callable[[float], bool] | None,
        reason: dict[str, Any] | None = None,
    ) -> Processed:
        due = self._clock() + timedelta(seconds=delay)
        published = published_retry(delay) if published_retry else False
        self._store.defer(
            claim,
            State.EN_ESPERA,
            due,
            references,
            StepNote("EN_ESPERA", response),
            reason or response,
            published=published,
        )
        return Processed(Step.WAITING, delay)

    def _unavailable(
        self, claim: Claim, exc: GatewayUnavailable, published_retry: Callable[[float], bool] | None
    ) -> Processed:
        age = (self._clock() - claim.record.created_at).total_seconds()
        response = {"error": "gateway_unavailable", "message": str(exc)}
        if claim.attempt >= self._policy.max_attempts or age >= self._policy.give_up_after:
            response["gave_up"] = f"after {claim.attempt} attempts over {int(age)} s"
            return self._final(claim, State.FAILED, {}, "FAILED", response)
        delay = max(exc.retry_after or 0.0, self._policy.backoff(claim.attempt))
        due = self._clock() + timedelta(seconds=delay)
        published = published_retry(delay) if published_retry else False
        self._store.defer(
            claim,
            State.PENDIENTE,
            due,
            {},
            StepNote("REINTENTO", response),
            response,
            published=published,
        )
        return Processed(Step.RETRYING, delay)

    def _interrupted(self, claim: Claim, exc: BaseException) -> None:
        response = {"error": "interrupted", "type": type(exc).__name__, "message": str(exc)[:500]}
        try:
            due = self._clock() + timedelta(seconds=self._policy.backoff(claim.attempt))
            self._store.defer(
                claim, State.EN_ESPERA, due, {}, StepNote("EN_ESPERA", response), response
            )
        except Exception:  # the store may be what failed; the lease expiry covers this order
            log.warning("could not record the interruption of %s", claim.record.key, exc_info=True)


def _submission(claim: Claim) -> Submission:
    record = claim.record
    return Submission(
        key=record.key,
        order=Order.model_validate(record.payload),
        issued_at=record.issued_at,
        number=record.number,
        references=record.references,
        attempt=claim.attempt,
    )
