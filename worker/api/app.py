"""`create_api(settings)`: the FastAPI application of the HTTP intake.

Per-process objects (engine, store, key repository, Celery publisher) are built in the
lifespan, so `uvicorn --workers N` gives each process its own. Errors raised outside the
endpoints are mapped here (401, 404, 405, oversized bodies 413, database down 503, anything
else 500 with nothing internal in the answer): as RFC 9457 problem details, or as the original
API's `{"detail": ...}` on its path in compatibility mode.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from domain.errors import FieldError
from domain.notes import NoteRequest
from worker.api import original, schemas
from worker.api.body import BodyTooLarge
from worker.api.config import ApiSettings
from worker.api.copy_routes import copy_router
from worker.api.intake import INTAKE_PATH
from worker.api.intake_routes import intake_router
from worker.api.note_routes import router as note_router
from worker.api.problems import Problem, ProblemFieldError, problem, problems_router
from worker.api.routes import router
from worker.api.services import Services, build_services
from worker.settings import Settings

log = logging.getLogger(__name__)

TITLE = "einvoice intake"
VERSION = "1.0.0"
DESCRIPTION = (
    "Intake of POS orders for Colombian electronic invoicing. `POST /api/v1/pedidos` accepts "
    "an order durably (202) and a worker issues it; read it back by `id_pedido_origen`. Errors "
    "are RFC 9457 problem details (`application/problem+json`). The original API's path, "
    "`POST /api/v1/pedidos/consumo-local/`, takes the same body and, in compatibility mode "
    "(the default), answers as the original did: 201 with `{track_id, cufe, status, message}` "
    "and FastAPI's 422 `detail[]`. `POST /api/v1/pedidos/{id}/notas` voids, returns, discounts "
    "or changes the price of an order's document with a note, idempotent by the client's "
    "`id_nota`; the order's read-back shows its notes and what remains creditable."
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
            settings or Settings(),
            db_pool_size=api.db_pool_size,
            key_cache_seconds=api.key_cache_seconds,
        )
        try:
            yield
        finally:
            if owned:
                app.state.services.close()

    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.max_body_bytes = api.max_body_bytes
    app.state.original_paths = {INTAKE_PATH} if api.compat_mode else set()
    app.include_router(intake_router(api.compat_mode))
    app.include_router(router)
    app.include_router(note_router)
    app.include_router(copy_router)
    app.include_router(problems_router)
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
    """FastAPI's document plus the schemas the intake's bodies follow (order, note)."""
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
        for model in (NoteRequest, Problem, ProblemFieldError):
            problem_schema, problem_defs = schemas.component_schema(model)
            components.update(problem_defs)
            components[model.__name__] = problem_schema
        app.openapi_schema = doc
    return app.openapi_schema


def original_shape(request: Request) -> bool:
    """Whether this request is answered in the original API's shapes."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    paths: set[str] = request.app.state.original_paths
    return path in paths


def _answer(
    request: Request, code: int, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    if original_shape(request):
        return original.error(code, detail, headers)
    return problem(code, detail, request.url.path, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return _answer(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        log.warning(
            "refused %s %s: body over %d bytes", request.method, request.url.path, exc.limit
        )
        return _answer(
            request,
            413,
            f"the request body exceeds the limit of {exc.limit} bytes",
            {"Connection": "close"},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if original_shape(request):
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        errors = [
            FieldError(
                ".".join(str(p) for p in e.get("loc", ())) or "(request)",
                str(e.get("type", "invalid")),
                str(e.get("msg", "invalid")),
            )
            for e in exc.errors()
        ]
        return problem(422, "invalid request", request.url.path, errors=errors)

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
        return _answer(
            request,
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the database is unavailable; try again shortly",
            {"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _answer(request, status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error")
