"""One log line per HTTP request, with its method, path, status and duration.

uvicorn's own access line has no duration and keeps its values in the message text; this
one carries them as fields (`method`, `path`, `status`, `duration_ms`, `client`), so with
LOG_FORMAT=json a request can be searched and measured by field. The query string is left
out. A request that ends in an error no handler answered is logged with status 500.
API_ACCESS_LOG=false (`serve-api --no-access-log`) turns it off.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: starlette comes with fastapi, and is not imported at run time
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("worker.api.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            _log(scope, status, (time.perf_counter() - started) * 1000)


def _log(scope: Scope, status: int, duration_ms: float) -> None:
    client = scope.get("client")
    fields: dict[str, Any] = {
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "duration_ms": round(duration_ms, 2),
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
    log.info(
        "%s %s %s %.1f ms",
        fields["method"],
        fields["path"],
        status,
        duration_ms,
        extra={"fields": fields},
    )
