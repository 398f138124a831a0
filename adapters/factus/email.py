"""The buyer's copy of a Factus bill: Factus is asked to send its own e-mail, once per round.

200                          ENTREGADO (Factus took the request)
422 (the address refused)    AddressRefused (final, shown)
404 (no such bill)           CopyUnavailable (final, loud)
unavailable, 429, 5xx        CourierUnavailable (retry)
timeout after sending        CourierOutcomeUnknown (retry: Factus may send twice)
refused setup (402, 4xx)     CourierUnavailable (shown; retried until fixed)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.factus.client import FactusClient, FactusNotFound, FactusResponseError
from domain.delivery import (
    AddressRefused,
    CopyUnavailable,
    CourierOutcomeUnknown,
    CourierUnavailable,
    Delivery,
)
from domain.errors import GatewayError, OutcomeUnknown
from domain.ports import OrderKey


class FactusCourier:
    """`Courier` by Factus' send-email endpoint. `references(key)` gives the document's
    references (the Factus `number` among them)."""

    def __init__(
        self, client: FactusClient, references: Callable[[OrderKey], Mapping[str, str]]
    ) -> None:
        self._client = client
        self._references = references

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        number = self._references(delivery.key).get("number")
        if not number:
            raise CopyUnavailable("the document has no Factus number")
        if not delivery.recipient:
            raise AddressRefused("the delivery has no address")
        try:
            self._client.send_email(number, delivery.recipient)
        except FactusNotFound as exc:
            raise CopyUnavailable(f"Factus has no bill {number}") from exc
        except FactusResponseError as exc:
            if exc.status_code == 422:
                raise AddressRefused(
                    f"Factus refused the address (HTTP {exc.status_code})"
                ) from exc
            raise CourierUnavailable(f"Factus answered HTTP {exc.status_code}") from exc
        except OutcomeUnknown as exc:
            raise CourierOutcomeUnknown(f"Factus may have taken the request: {exc}") from exc
        except GatewayError as exc:
            raise CourierUnavailable(str(exc)) from exc
        return {"factus_number": number, "channel": "factus"}
