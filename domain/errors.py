"""Errors, modelled by what the caller must do next.

DomainError
├── InvalidOrder            the order breaks a rule: final, never retried
├── OrderConflict           same order key, different payload: refused, recorded
├── UnknownOrder            a note for an order nobody accepted
├── NumberingError          the numbering range is exhausted or expired: final until fixed
└── GatewayError            raised by gateway adapters (see domain.ports)
    ├── GatewayUnavailable  nothing was accepted by the authority: retry with backoff
    │   └── GatewayBusy     nothing was sent: our share of the authority's request budget
    │                       is spent; due again when it reopens, no backoff, no lookup
    ├── OutcomeUnknown      the request may have been processed: ask before sending again
    └── GatewayMisconfigured the authority refuses us (certificate, plan, credentials):
                            final, loud
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One broken rule: where (`items[0].cantidad`), which rule, and a sentence for people."""

    field: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class DomainError(Exception):
    """Base of every error this system raises on purpose."""


class InvalidOrder(DomainError):
    """The order cannot become a legal document as it is. Never retried."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        summary = "; ".join(f"{e.field}: {e.message} [{e.rule}]" for e in errors[:10])
        more = f" (+{len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"invalid order: {summary}{more}")

    def as_dicts(self) -> list[dict[str, str]]:
        return [e.as_dict() for e in self.errors]


class OrderConflict(DomainError):
    """An order with this key exists with a different payload."""

    def __init__(self, order_key: str) -> None:
        self.order_key = order_key
        super().__init__(
            f"order {order_key} was already accepted with a different payload; "
            "a POS order id identifies one document forever"
        )


class UnknownOrder(DomainError):
    """A note names an order that was never accepted (for this issuer)."""

    def __init__(self, order_key: str) -> None:
        self.order_key = order_key
        super().__init__(f"no order {order_key}: a note corrects an accepted order's document")


class IssuerRefused(DomainError):
    """Orders of this issuer cannot be taken here: unknown, disabled, or not ready to issue."""


class NumberingError(DomainError):
    """The authorized numbering range cannot give a number (exhausted, expired, missing).

    `error` says it as a field error naming the till and the range, for the intake's answer.
    """

    def __init__(self, message: str, error: FieldError | None = None) -> None:
        self.error = error or FieldError("(order)", "numbering", message)
        super().__init__(message)


class GatewayError(DomainError):
    """Base of the errors a gateway adapter may raise."""


class GatewayUnavailable(GatewayError):
    """The authority did not take the request: safe to send again later.

    `retry_after` is the wait the authority asked for (Retry-After), if any.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class GatewayBusy(GatewayUnavailable):
    """Nothing was sent: the request budget the authority allows is spent until `retry_after`
    seconds from now. Not an outage: the order is due again then, without a backoff."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


class OutcomeUnknown(GatewayError):
    """The request may have reached the authority (timeout after sending, dropped connection).

    The next step must ask the authority for the order's status before sending again.
    """


class GatewayMisconfigured(GatewayError):
    """The authority refuses this issuer's setup (certificate, credentials, plan).

    Final for the order and loud for operators; retrying cannot help.
    """
