"""Deliver one document's copy to its buyer.

    claim (ENTREGA row, committed; ENVIANDO until the lease ends)
      └─ courier.deliver ─▶ taken ─────────────────▶ ENTREGADO
                         ─▶ AddressRefused ────────▶ RECHAZADO (final, shown; `resend --to`)
                         ─▶ CopyUnavailable ───────▶ RECHAZADO (final, loud)
                         ─▶ CourierUnavailable,
                            CourierOutcomeUnknown ─▶ PENDIENTE with backoff, never given up
    any other error ─▶ PENDIENTE with backoff, re-raised

A delivery never touches the document: issuing and delivering are apart, and a mail server
down for hours leaves documents SUCCESS with their copies pending. Every attempt of a round
carries the same Message-ID, so a second message after an unknown outcome is recognisable.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.delivery import (
    AddressRefused,
    CopyUnavailable,
    Courier,
    CourierOutcomeUnknown,
    CourierUnavailable,
    DeliveryAudit,
    DeliveryClaim,
    DeliveryNote,
    DeliveryState,
    DeliveryStore,
)
from domain.ports import OrderKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    lease_seconds: float = 120.0
    backoff_base: float = 5.0
    backoff_max: float = 1800.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Exponential backoff with half jitter, capped: a mail server down for hours is
        asked about every half hour, never given up on."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, attempt - 1))
        return max(1.0, ceiling * (0.5 + rng() / 2))


class Delivered(enum.StrEnum):
    SKIPPED = "skipped"  # not due, already final, or owned by another worker
    DELIVERED = "delivered"
    REFUSED = "refused"
    RETRYING = "retrying"


@dataclass(frozen=True)
class DeliveryOutcome:
    step: Delivered
    retry_in: float | None = None


class DeliverCopy:
    def __init__(
        self,
        store: DeliveryStore,
        courier: Courier,
        policy: DeliveryPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._courier = courier
        self._policy = policy
        self._clock = clock

    def __call__(self, key: OrderKey) -> DeliveryOutcome:
        claim = self._store.claim_delivery(key, self._policy.lease_seconds)
        if claim is None:
            return DeliveryOutcome(Delivered.SKIPPED)
        try:
            sent = self._courier.deliver(claim.delivery)
        except (AddressRefused, CopyUnavailable) as exc:
            error = "address_refused" if isinstance(exc, AddressRefused) else "copy_unavailable"
            note = DeliveryNote(
                DeliveryAudit.ENTREGA_RECHAZADA, {"error": error, "detail": str(exc)}
            )
            self._store.end_delivery(claim, DeliveryState.RECHAZADO, note, None)
            return DeliveryOutcome(Delivered.REFUSED)
        except (CourierUnavailable, CourierOutcomeUnknown) as exc:
            error = "unavailable" if isinstance(exc, CourierUnavailable) else "outcome_unknown"
            return self._retry(claim, {"error": error, "detail": str(exc)})
        except Exception as exc:
            self._retry(claim, {"error": "interrupted", "type": type(exc).__name__})
            raise
        note = DeliveryNote(DeliveryAudit.ENTREGADO, sent)
        self._store.end_delivery(claim, DeliveryState.ENTREGADO, note, None)
        return DeliveryOutcome(Delivered.DELIVERED)

    def _retry(self, claim: DeliveryClaim, response: dict[str, Any]) -> DeliveryOutcome:
        delay = self._policy.backoff(claim.attempt)
        response["retry_in"] = round(delay, 1)
        note = DeliveryNote(DeliveryAudit.ENTREGA_REINTENTO, response)
        due = self._clock() + timedelta(seconds=delay)
        self._store.end_delivery(claim, DeliveryState.PENDIENTE, note, due)
        return DeliveryOutcome(Delivered.RETRYING, delay)
