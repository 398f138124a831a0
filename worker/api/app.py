"""`create_api(settings)`: the FastAPI application of the HTTP intake.

Per-process objects (engine, store, key repository, Celery publisher) are built in the
lifespan, so `uvicorn --workers N` gives each process its own. Errors are mapped here:
field errors 422, conflicts 409, oversized bodies 413, database down 503, anything else 500
with nothing internal in the answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from worker.api import schemas
from worker.api.body import BodyTooLarge
from worker.api.config import ApiSettings
from worker.api.routes import router
from worker.api.services import Services, build_services
from worker.settings import Settings

log = logging.getLogger(__name__)

TITLE = "einvoice intake"
VERSION = "1.0.0"
DESCRIPTION = (
    "Intake of POS orders for Colombian electronic invoicing, compatible with the "
    "`POST /api/v1/pedidos/consumo-local/` payload. Orders are accepted durably and issued "
    "by the worker; read them back by `id_pedido_origen`."
)


def create_api(
    settings: Settings | None = None,
    api_settings: ApiSettings | None = None,
    services: Services | None = None,
) -> FastAPI:
    """The app. Pass `services` to share prebuilt ones (they are then not closed here)."""
    api = api_settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or build_services(
            settings or Settings(), db_pool_size=api.db_pool_size
        )
        try:
            yield
        finally:
            if owned:
                app.state.services.close()

    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.max_body_bytes = api.max_body_bytes
    app.include_router(router)
    _add_error_handlers(app)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


def served_api() -> FastAPI:
    """Factory for `uvicorn --factory`: each server process configures its logging first."""
    from worker.api.access_log import AccessLog
    from worker.logs import configure_logging

    settings = Settings()
    configure_logging(settings)
    app = create_api(settings)
    if ApiSettings().access_log:
        app.add_middleware(AccessLog)
    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the order schema the intake body follows."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        order, defs = schemas.order_request_schema()
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs)
        components["Order"] = order
        app.openapi_schema = doc
    return app.openapi_schema


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        log.warning(
            "refused %s %s: body over %d bytes", request.method, request.url.path, exc.limit
        )
        return JSONResponse(
            {"detail": f"the request body exceeds the limit of {exc.limit} bytes"},
            status_code=413,
            headers={"Connection": "close"},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())) or "(request)",
                "rule": str(e.get("type", "invalid")),
                "message": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ]
        return JSONResponse(
            {"detail": "invalid request", "errors": errors},
            status_code=422,
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # exc itself would print the statement's parameters (an order); the driver's text won't
        log.error(
            "database error on %s %s: %s: %s",
            request.method,
            request.url.path,
            type(exc.orig).__name__,
            str(exc.orig).strip().splitlines()[0][:200] if str(exc.orig).strip() else "",
        )
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": "internal error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
