"""The document store port: durable state machine plus audit trail, one transaction per step.

An order is the group its documents belong to; the unit the pipeline claims, submits and
reconciles is a document, keyed like its order (`OrderKey`) for the sale document.

States:
    PENDIENTE   accepted and durable; waiting for a worker (or for its retry time)
    PROCESANDO  claimed by a worker until `lease_until`; the gateway may be in a call
    EN_ESPERA   the authority may hold the document (pending or outcome unknown):
                the next step asks it before sending anything again
    SUCCESS     final: the authority validated the document
    FAILED      final: invalid, rejected, or given up on, with the reason

Errors: `OrderConflict`, `NumberingError` from `accept`; store failures propagate as they are
(the caller's step is rolled back and the document keeps its last committed state).

Refused input (invalid payloads, a different payload under a known key, no number to give) is
recorded apart from the documents' timelines (`refuse`, `refusals`): it never becomes part of
an accepted order's story.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from domain.delivery import CopyRequest
from domain.documents import DocumentKind, DocumentPlan
from domain.errors import FieldError, NumberingError, OrderConflict
from domain.issuer import NumberingRange
from domain.notes import NoteFigures, NoteRequest, ReferencedDocument
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


class RefusalStatus(enum.StrEnum):
    RECHAZADO_ENTRADA = "RECHAZADO_ENTRADA"  # the payload broke a rule: nothing accepted
    CONFLICTO = "CONFLICTO"  # a different payload under a key already accepted


@dataclass(frozen=True)
class DocumentRecord:
    """A document and the order it belongs to (`payload`, `fingerprint` are the order's).

    `numbering` is the range `number` came from (None when the provider numbers it).
    """

    key: OrderKey
    kind: DocumentKind
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
    numbering: NumberingRange | None = None
    register: str | None = None
    note: dict[str, Any] | None = None  # a note's request and figures (`note_record`)
    corrects: ReferencedDocument | None = None  # the document a note corrects


@dataclass(frozen=True)
class Claim:
    """A worker's exclusive right to act on an order until the lease ends.

    `was_maybe_sent` is the flag as it stood before this claim: when true, the authority
    must be asked before anything is sent.
    """

    record: DocumentRecord
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
    record: DocumentRecord
    created: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValidOrder:
    """An order that passed validation and planning, ready to be stored under `key`."""

    key: OrderKey
    order: Order
    plan: DocumentPlan


BatchAnswer = Acceptance | OrderConflict | NumberingError
"""What `accept_many` answers for one order: accepted (now or before), or refused."""


@dataclass(frozen=True)
class Refused:
    """Input refused under one key: how often, and the latest refusals (oldest first)."""

    count: int
    latest: list[AuditEntry]


@dataclass(frozen=True)
class TimelinePage:
    """Part of a document's audit timeline: `entries` in id order after the cursor, and the
    cursor of the next page (None on the last one)."""

    entries: list[AuditEntry]
    next_after: int | None


@dataclass(frozen=True)
class StepNote:
    """What a step writes on the audit trail next to the state change."""

    status: str
    response: dict[str, Any] = field(default_factory=dict)


NoteComputer = Callable[[Order, DocumentKind, list[NoteFigures]], NoteFigures]
"""What a note carries, from its order, the corrected document's kind and the notes that
already count against it; raises InvalidOrder naming the field and the rule."""


class DocumentStore(Protocol):
    def accept(self, key: OrderKey, order: Order, gateway: str, plan: DocumentPlan) -> Acceptance:
        """Store a new order and its sale document with its RECIBIDO audit row (and its number
        from the range that serves the plan's register and kind), or return the existing one
        if the payload is the same. Raises OrderConflict (recorded as refused input) when the
        key exists with another payload, NumberingError when no number can be given."""
        ...

    def accept_many(self, orders: Sequence[ValidOrder], gateway: str) -> list[BatchAnswer]:
        """`accept` for many orders in one transaction: every new one stored, numbered in the
        given order and given its RECIBIDO row, or none (an error rolls the whole batch back,
        its numbers included). One answer per order, in order: an order whose key exists (in
        the store, or earlier in the batch) is answered as `accept` answers it, the existing
        document or an `OrderConflict` (recorded); one the ranges cannot number gets the
        `NumberingError` and is not stored."""
        ...

    def accept_note(
        self,
        key: OrderKey,
        request: NoteRequest,
        gateway: str,
        numbered: bool,
        compute: NoteComputer,
    ) -> Acceptance:
        """Store a note (its number, its RECIBIDO row) against `key.sale`, taking what it
        credits from what remains in the same transaction, the database refusing any credit
        beyond it whatever runs at once. It is due at once when the sale is SUCCESS, else it
        waits for it. Raises UnknownOrder, InvalidOrder (a failed sale, or `compute`'s
        refusal), OrderConflict (the note id holds another request; recorded), NumberingError.
        """
        ...

    def documents_of(self, key: OrderKey) -> list[DocumentRecord]:
        """The order's sale document, then its notes."""
        ...

    def refuse(
        self,
        key: OrderKey | None,
        payload: dict[str, Any],
        errors: list[FieldError],
        status: RefusalStatus = RefusalStatus.RECHAZADO_ENTRADA,
    ) -> int:
        """Record refused input apart from every document's timeline (append-only)."""
        ...

    def refusals(self, key: OrderKey, limit: int = 100) -> Refused:
        """Refused input recorded under this key: the count and the latest `limit`."""
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
        files: Mapping[str, bytes] | None = None,
        delivery: CopyRequest | None = None,
    ) -> bool:
        """Final state and its audit row in one transaction; False if the claim was lost.

        With SUCCESS, `files` are kept with the document and `delivery` becomes its pending
        delivery, in the same transaction."""
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
        maybe_sent: bool | None = None,
    ) -> bool:
        """Back to PENDIENTE / EN_ESPERA until `due_at`, with an audit row. `published` says a
        wake-up for `due_at` will be sent by the caller (a retry message), so the reconciler
        need not send one unless `mark_unpublished` says it could not be. `maybe_sent`, when
        given, replaces the flag the claim set (False: the authority surely lacks the document,
        so the next attempt need not ask before sending)."""
        ...

    def due_for_publish(self, now: datetime, republish_after: float, limit: int) -> list[OrderKey]:
        """Orders a worker should look at now and that were not published since they became
        due; marks them published. Safe to run concurrently (rows are skipped, not shared)."""
        ...

    def mark_unpublished(self, key: OrderKey) -> None:
        """The wake-up could not be sent: let the next reconciliation send it."""
        ...

    def get(self, key: OrderKey) -> DocumentRecord | None: ...

    def timeline(self, key: OrderKey) -> list[AuditEntry]:
        """Every audit row of the document, in order."""
        ...

    def timeline_page(self, key: OrderKey, after: int | None, limit: int) -> TimelinePage:
        """At most `limit` audit rows of the document with id above `after`."""
        ...

    def reopen(self, key: OrderKey, note: StepNote) -> DocumentRecord | None:
        """FAILED → EN_ESPERA for an operator retry: attempts start again, and the authority
        is asked before anything is sent if an earlier attempt may have reached it."""
        ...
