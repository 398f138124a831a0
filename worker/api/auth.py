"""API key authentication: `X-API-Key`, one key per POS client, bound to one issuer.

A key verified in the last API_KEY_CACHE_SECONDS, of an issuer read in the last
ISSUER_REFRESH_SECONDS, is checked on the event loop without I/O; otherwise the lookups run
in the threadpool. Refused requests are logged with method, path and peer only: never the
key, never the body.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.concurrency import run_in_threadpool
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


def _look_up(svc: Services, key: str) -> tuple[ApiClient | None, str | None]:
    """The key's client and why its issuer's orders are refused (None: they are not)."""
    client = svc.keys.authenticate(key)
    return client, svc.issuers.refusal(client.issuer) if client is not None else None


async def current_client(
    request: Request, key: Annotated[str | None, Security(api_key_header)]
) -> ApiClient:
    """The client a valid key belongs to; 401 otherwise, 403 if its issuer is refused."""
    svc = services(request)
    client = svc.keys.remembered(key) if key else None
    issuer = svc.issuers.known(client.issuer) if client is not None else None
    if client is not None and issuer is not None:
        refusal = issuer.refusal
    elif key:
        client, refusal = await run_in_threadpool(_look_up, svc, key)
    else:
        client, refusal = None, None
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
    if refusal is not None:
        log.warning(
            "refused %s %s for key %s: %s", request.method, request.url.path, client.id, refusal
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=refusal)
    return client


Client = Annotated[ApiClient, Depends(current_client)]
