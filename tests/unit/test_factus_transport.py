"""What an exception raised while a Factus request is in flight means for the order."""

from __future__ import annotations

import httpx
import pytest
from billiard.exceptions import SoftTimeLimitExceeded

from adapters.factus.client import translate_transport_error
from domain.errors import GatewayMisconfigured, GatewayUnavailable, OutcomeUnknown


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_an_interrupted_write_may_have_reached_factus(method: str) -> None:
    """A worker's soft time limit inside a POST: the bill may exist, so it is an unknown
    outcome (looked up before it goes again), never a final failure."""
    assert isinstance(translate_transport_error(method, SoftTimeLimitExceeded()), OutcomeUnknown)
    timeout = httpx.ReadTimeout("slow")
    assert isinstance(translate_transport_error(method, timeout), OutcomeUnknown)


def test_an_interrupted_read_is_safe_to_repeat() -> None:
    got = translate_transport_error("GET", SoftTimeLimitExceeded())
    assert isinstance(got, GatewayUnavailable)


def test_a_client_that_cannot_send_as_configured_is_a_setup_error() -> None:
    got = translate_transport_error("POST", httpx.UnsupportedProtocol("ftp://"))
    assert isinstance(got, GatewayMisconfigured)
