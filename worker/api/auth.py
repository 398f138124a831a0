"""API key authentication: `X-API-Key`, one key per POS client, bound to one issuer.

Refused requests are logged with method, path and peer only: never the key, never the body.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from adapters.db.api_keys import ApiClient
from worker.api.services import Services

log = logging.getLogger(__name__)

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="The POS client's API key (`einvoice api-key create`).",
)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def current_client(
    request: Request, key: Annotated[str | None, Security(api_key_header)]
) -> ApiClient:
    """The client a valid key belongs to; 401 otherwise (runs in the threadpool: DB lookup)."""
    client = services(request).keys.authenticate(key) if key else None
    if client is None:
        peer = request.client.host if request.client else "-"
        log.warning(
            "refused %s %s from %s: %s API key",
            request.method,
            request.url.path,
            peer,
            "invalid" if key else "missing",
        )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a valid X-API-Key header is required",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    refusal = services(request).issuers.refusal(client.issuer)
    if refusal is not None:
        log.warning(
            "refused %s %s for key %s: %s", request.method, request.url.path, client.id, refusal
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=refusal)
    return client


Client = Annotated[ApiClient, Depends(current_client)]
