"""Ports: what the use cases need from the outside world, as Protocols.

Errors each port may raise live in `domain.errors`:
- `Gateway.submit` / `Gateway.status`: GatewayUnavailable, OutcomeUnknown, GatewayMisconfigured,
  InvalidOrder (the order cannot be mapped to the authority's document).
- `AuditLog.save_log`: whatever the store raises; the caller's unit of work rolls back.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from domain.documents import DocumentKind, Register
from domain.issuer import NumberingRange
from domain.notes import NoteFigures, ReferencedDocument
from domain.order import Order


@dataclass(frozen=True)
class OrderKey:
    """One document forever: the issuer (its NIT), the POS's own order id, and for a note the
    POS's own id for the note. Without `note` it is the order's sale document.

    Written `ISSUER:ORDER_ID` or `ISSUER:ORDER_ID/NOTE_ID` (ids never hold `/`).
    """

    issuer: str
    order_id: str
    note: str | None = None

    def __str__(self) -> str:
        sale = f"{self.issuer}:{self.order_id}"
        return f"{sale}/{self.note}" if self.note else sale

    @property
    def sale(self) -> OrderKey:
        """The key of the order's sale document."""
        return OrderKey(self.issuer, self.order_id)

    @classmethod
    def parse(cls, text: str) -> OrderKey:
        issuer, sep, rest = text.partition(":")
        order_id, slash, note = rest.partition("/")
        if not sep or not issuer or not order_id or (slash and not note):
            raise ValueError(
                "a document key looks like ISSUER:ORDER_ID or ISSUER:ORDER_ID/NOTE_ID, "
                f"got {text!r}"
            )
        return cls(issuer, order_id, note or None)


@dataclass(frozen=True)
class DocumentNumber:
    """A consecutive from an authorized numbering range: `SETP990000001`.

    `width` keeps the range's leading zeros (`POS10001` from a range `0001`-`9999`).
    """

    prefix: str
    number: int
    width: int = 0

    def __str__(self) -> str:
        return f"{self.prefix}{str(self.number).zfill(self.width)}"


@dataclass(frozen=True)
class Submission:
    """Everything a gateway needs to issue (or look up) the document for one order.

    `kind`, `issued_at`, `number` and the range it came from (`numbering`) are fixed when the
    order is accepted, so every attempt builds the same document (same CUFE/CUDE, same
    `reference_code`). `register` is the till that sold it (POS documents describe it).
    `references` carries what earlier attempts learned from the authority (CUFE, track id /
    ZipKey, Factus number).
    """

    key: OrderKey
    order: Order
    issued_at: datetime
    number: DocumentNumber | None = None
    references: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    kind: DocumentKind = DocumentKind.INVOICE
    numbering: NumberingRange | None = None
    register: Register | None = None
    note: NoteFigures | None = None  # for a note: what it credits or debits
    corrects: ReferencedDocument | None = None  # for a note: the document it corrects

    @property
    def reference_code(self) -> str:
        """Stable idempotency key at the authority (Factus `reference_code`).

        A sale: `ISSUER-ORDER_ID`. A note: `ISSUER-LENGTH-ORDER_ID-NOTE_ID`, the order id's
        length first, because both ids may hold `-`: order `A-B` with note `C` and order `A`
        with note `B-C` would otherwise share a code, and the second note would be taken for
        the first one at the authority.
        """
        key = self.key
        if key.note:
            return f"{key.issuer}-{len(key.order_id)}-{key.order_id}-{key.note}"
        return f"{key.issuer}-{key.order_id}"


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"  # the authority validated the document
    REJECTED = "rejected"  # the authority refused it, with rule codes: final
    PENDING = "pending"  # the authority has it but has not decided yet
    NOT_FOUND = "not_found"  # (status only) the authority never received it


@dataclass(frozen=True)
class Rule:
    """A DIAN rule in an answer: `Regla: FAD06, Rechazo: ...` or a `Notificación`."""

    code: str
    kind: str  # "Rechazo" | "Notificación" | other words the authority uses
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "kind": self.kind, "text": self.text}


@dataclass(frozen=True)
class GatewayResult:
    """The authority's answer, reduced to what the use case decides on.

    `references` is what to remember about the document (cufe, number, track_id, qr, ...);
    `response` is a JSON-safe copy of the answer for the audit trail, without secrets.
    `files` are what the buyer's copy is made of, kept with an accepted document as received
    (`document`: the signed XML as the authority holds it; `application_response`: DIAN's).
    """

    verdict: Verdict
    references: dict[str, str] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    response: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "references": dict(self.references),
            "rules": [r.as_dict() for r in self.rules],
            "response": self.response,
        }


class Gateway(Protocol):
    """The tax authority, directly (DIAN) or through a provider (Factus)."""

    name: str

    def submit(self, submission: Submission) -> GatewayResult:
        """Issue the document. Never called again for an order whose outcome is unknown
        until `status` has said NOT_FOUND."""
        ...

    def status(self, submission: Submission) -> GatewayResult:
        """Ask the authority what became of this order's document."""
        ...


class AuditLog(Protocol):
    """The seed's port: one appended row per lifecycle step, never rewritten."""

    def save_log(
        self, status: str, payload_in: dict[str, Any], response_out: dict[str, Any] | None = None
    ) -> int:
        """Append a row; return its id."""
        ...


class Publisher(Protocol):
    """Wakes a worker for an order. Best effort: the database is the record of work."""

    def publish(self, key: OrderKey) -> None: ...


class BatchPublisher(Publisher, Protocol):
    """A publisher that can wake workers for many orders in one go (one broker round trip
    where the broker allows it). Raises if any of them may not have gone out."""

    def publish_many(self, keys: Sequence[OrderKey]) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
