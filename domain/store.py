"""The order store port: durable state machine plus audit trail, one transaction per step.

States:
    PENDIENTE   accepted and durable; waiting for a worker (or for its retry time)
    PROCESANDO  claimed by a worker until `lease_until`; the gateway may be in a call
    EN_ESPERA   the authority may hold the document (pending or outcome unknown):
                the next step asks it before sending anything again
    SUCCESS     final: the authority validated the document
    FAILED      final: invalid, rejected, or given up on, with the reason

Errors: `OrderConflict`, `NumberingError` from `accept`; store failures propagate as they are
(the caller's step is rolled back and the order keeps its last committed state).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from domain.errors import FieldError
from domain.issuer import NumberingRange
from domain.order import Order
from domain.ports import DocumentNumber, OrderKey


class State(enum.StrEnum):
    PENDIENTE = "PENDIENTE"
    PROCESANDO = "PROCESANDO"
    EN_ESPERA = "EN_ESPERA"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (State.SUCCESS, State.FAILED)


@dataclass(frozen=True)
class OrderRecord:
    key: OrderKey
    state: State
    gateway: str
    payload: dict[str, Any]
    fingerprint: str
    issued_at: datetime
    number: DocumentNumber | None
    attempts: int
    maybe_sent: bool
    due_at: datetime | None
    references: dict[str, str]
    reason: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    reopened_at: datetime | None = None


@dataclass(frozen=True)
class Claim:
    """A worker's exclusive right to act on an order until the lease ends.

    `was_maybe_sent` is the flag as it stood before this claim: when true, the authority
    must be asked before anything is sent.
    """

    record: OrderRecord
    token: str
    attempt: int
    was_maybe_sent: bool


@dataclass(frozen=True)
class AuditEntry:
    id: int
    status: str
    payload_in: dict[str, Any]
    response_out: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class Acceptance:
    record: OrderRecord
    created: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepNote:
    """What a step writes on the audit trail next to the state change."""

    status: str
    response: dict[str, Any] = field(default_factory=dict)


class OrderStore(Protocol):
    def accept(
        self, key: OrderKey, order: Order, gateway: str, numbering: NumberingRange | None
    ) -> Acceptance:
        """Store a new order with its RECIBIDO audit row (and its number), or return the
        existing one if the payload is the same. Raises OrderConflict (recorded) when the key
        exists with another payload, NumberingError when no number can be given."""
        ...

    def record_invalid(
        self, key: OrderKey | None, payload: dict[str, Any], errors: list[FieldError]
    ) -> int:
        """Put a refused order on the audit trail as FAILED with its field errors."""
        ...

    def claim(self, key: OrderKey, lease_seconds: float) -> Claim | None:
        """Compare-and-set: take the order if it is due and not final. Writes PROCESANDO."""
        ...

    def finish(
        self,
        claim: Claim,
        state: State,
        references: dict[str, str],
        note: StepNote,
        reason: dict[str, Any] | None,
    ) -> bool:
        """Final state and its audit row in one transaction; False if the claim was lost."""
        ...

    def defer(
        self,
        claim: Claim,
        state: State,
        due_at: datetime,
        references: dict[str, str],
        note: StepNote,
        reason: dict[str, Any] | None,
        published: bool = False,
    ) -> bool:
        """Back to PENDIENTE / EN_ESPERA until `due_at`, with an audit row. `published` says a
        wake-up for `due_at` will be sent by the caller (a retry message), so the reconciler
        need not send one unless `mark_unpublished` says it could not be."""
        ...

    def due_for_publish(self, now: datetime, republish_after: float, limit: int) -> list[OrderKey]:
        """Orders a worker should look at now and that were not published since they became
        due; marks them published. Safe to run concurrently (rows are skipped, not shared)."""
        ...

    def mark_unpublished(self, key: OrderKey) -> None:
        """The wake-up could not be sent: let the next reconciliation send it."""
        ...

    def get(self, key: OrderKey) -> OrderRecord | None: ...

    def timeline(self, key: OrderKey) -> list[AuditEntry]: ...

    def reopen(self, key: OrderKey, note: StepNote) -> OrderRecord | None:
        """FAILED → EN_ESPERA for an operator retry: attempts start again, and the authority
        is asked before anything is sent if an earlier attempt may have reached it."""
        ...
