"""Delivery of the buyer's copy: its own state, its own queue, after the document is accepted.

A document that ends SUCCESS and names a buyer's e-mail gains one delivery, written in the
same transaction as the SUCCESS row, so it cannot be lost. A delivery goes by one channel:
`smtp` (one message, one ZIP with the PDF and the AttachedDocument) or `factus` (Factus is
asked once to send its own e-mail).

States:
    PENDIENTE   durable, waiting for a worker (or for its retry time)
    ENVIANDO    claimed by a worker until its lease ends
    ENTREGADO   final: the mail server (or Factus) took the message
    RECHAZADO   final: the address was refused; an operator may `resend --to` another

Errors a `Courier` raises, by what the caller does next:
    CourierUnavailable  nothing was taken (server down, 4xx): retry with backoff, forever
    CourierOutcomeUnknown the message may have been taken (connection lost after DATA):
                        retry with the same Message-ID, so the receiver recognises it
    AddressRefused      the server refused the recipient (5xx): final, shown
    CopyUnavailable     the copy cannot be made (a file the document lacks): final, shown
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from domain.errors import DomainError
from domain.ports import OrderKey


class Channel(enum.StrEnum):
    SMTP = "smtp"
    FACTUS = "factus"


class DeliveryState(enum.StrEnum):
    PENDIENTE = "PENDIENTE"
    ENVIANDO = "ENVIANDO"
    ENTREGADO = "ENTREGADO"
    RECHAZADO = "RECHAZADO"

    @property
    def is_final(self) -> bool:
        return self in (DeliveryState.ENTREGADO, DeliveryState.RECHAZADO)


class DeliveryAudit(enum.StrEnum):
    """The statuses a delivery writes on the document's audit trail."""

    ENTREGA = "ENTREGA"  # an attempt starts (the claim)
    ENTREGADO = "ENTREGADO"
    ENTREGA_REINTENTO = "ENTREGA_REINTENTO"
    ENTREGA_RECHAZADA = "ENTREGA_RECHAZADA"


@dataclass(frozen=True)
class CopyRequest:
    """A document's copy to deliver, decided when it is accepted."""

    channel: Channel
    recipient: str


def copy_request(channel: Channel | None, payload: Mapping[str, Any]) -> CopyRequest | None:
    """The copy an accepted document's order asks for: by `channel`, to the buyer's e-mail
    (`adquirente.email`); None without a channel or an address."""
    buyer = payload.get("adquirente")
    email = buyer.get("email") if isinstance(buyer, Mapping) else None
    if channel is None or not isinstance(email, str) or not email:
        return None
    return CopyRequest(channel, email)


@dataclass(frozen=True)
class Delivery:
    """One document's copy on its way to the buyer. `round` counts operator resends: each
    round is a new message with its own Message-ID; attempts within a round reuse it."""

    key: OrderKey
    channel: Channel
    state: DeliveryState
    recipient: str | None
    round: int
    attempts: int
    due_at: datetime | None
    reason: dict[str, Any] | None
    created_at: datetime
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryClaim:
    delivery: Delivery
    token: str
    attempt: int


@dataclass(frozen=True)
class DeliveryNote:
    """What a delivery step writes on the audit trail: never the address or the message."""

    status: DeliveryAudit
    response: dict[str, Any] = field(default_factory=dict)


class CourierError(DomainError):
    """Base of what a courier may raise."""


class CourierUnavailable(CourierError):
    """The server did not take the message: send again later."""


class CourierOutcomeUnknown(CourierError):
    """The message may have been taken: send again with the same Message-ID."""


class AddressRefused(CourierError):
    """The server refused the recipient's address: final for this round."""


class CopyUnavailable(CourierError):
    """The buyer's copy cannot be made from what the store holds: final, loud."""


class Courier(Protocol):
    """Carries one delivery's copy to the buyer (SMTP, or Factus' own e-mail)."""

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        """Send it; return what to keep on the audit trail (no addresses, no bodies)."""
        ...


class DeliveryStore(Protocol):
    """Deliveries, one per document, and their steps on the document's audit trail."""

    def claim_delivery(self, key: OrderKey, lease_seconds: float) -> DeliveryClaim | None:
        """Take the delivery if it is due and not final (ENVIANDO until the lease ends)."""
        ...

    def end_delivery(
        self,
        claim: DeliveryClaim,
        state: DeliveryState,
        note: DeliveryNote,
        due_at: datetime | None,
    ) -> bool:
        """Record the attempt's outcome; False when the claim was lost meanwhile."""
        ...


def message_id(key: OrderKey, round_: int, domain: str) -> str:
    """The same Message-ID for every attempt of one round of one document's copy, so a
    message sent twice after an unknown outcome is recognisable as one."""
    digest = hashlib.sha256(f"{key}|{round_}".encode()).hexdigest()[:32]
    return f"<copy.{digest}.{round_}@{domain}>"
