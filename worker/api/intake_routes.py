"""The intake's routes, in two shapes.

    POST /api/v1/pedidos                  native: 202 + `Accepted`; errors as problem+json
    POST /api/v1/pedidos/consumo-local/   the original API's path: its shapes (201, FastAPI
                                          422) in compatibility mode (`API_COMPAT_MODE`, on by
                                          default), the native ones otherwise
    POST /api/v1/pedidos/consumo-local    307 to the path with the slash, as the original
                                          FastAPI app answered (its `redirect_slashes`)

Both paths take the same body and run the same `enqueue` use case (`worker.api.intake.take`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.datastructures import URL

from worker.api import original, schemas
from worker.api.auth import Client
from worker.api.intake import INTAKE_PATH, ORDERS_PATH, native_answer, original_answer, take
from worker.api.problems import problem_response

_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/Order"},
            "example": schemas.SEED_EXAMPLE,
        }
    },
}
_LOCATION = {
    "Location": {"description": "Where to read the order back.", "schema": {"type": "string"}}
}
_NATIVE_DESCRIPTION = (
    "Validates the order and stores it durably with its audit row before answering; a worker "
    "issues the document. Sending the same order again answers with the existing one "
    "(`created: false`); the same `id_pedido_origen` with another payload is a 409. The issuer "
    "is the API key's, never the body's. Errors are RFC 9457 problem details."
)
_NATIVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted (or already accepted): durable, a worker will issue it.",
        "headers": _LOCATION,
    },
    401: problem_response("Missing or invalid API key."),
    409: problem_response("Same order id, different payload."),
    413: problem_response("The body exceeds the size limit."),
    415: problem_response("The body is not sent as application/json."),
    422: problem_response("Not JSON, or the order breaks rules: every error at once."),
    500: problem_response("Unexpected error (nothing leaked)."),
    503: problem_response("Database or numbering unavailable."),
}


def intake_router(compat: bool) -> APIRouter:
    """The intake's routes; `compat` gives the original path the original API's answers."""
    router = APIRouter()

    @router.post(
        ORDERS_PATH,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=schemas.Accepted,
        operation_id="acceptOrder",
        summary="Accept a dine-in order for invoicing",
        description=_NATIVE_DESCRIPTION,
        responses=_NATIVE_RESPONSES,
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def accept_order(request: Request, client: Client) -> JSONResponse:
        return native_answer(await take(request, client), request)

    if compat:

        @router.post(
            INTAKE_PATH,
            status_code=status.HTTP_201_CREATED,
            response_model=original.OriginalAccepted,
            operation_id="facturarPedidoLocal",
            summary="The original API's intake: accept a dine-in order (compatibility mode)",
            description=(
                "The original REST API's path and answers: `201` with `{track_id, cufe, status, "
                "message}`, FastAPI's `422` (`detail[]` of `type`, `loc`, `msg`, `input`) and "
                '`{"detail": ...}` for other errors. The order is accepted durably and issued '
                "asynchronously: `status` is its state now and `cufe` is null until the "
                "authority accepts the document; read it back at `GET /api/v1/pedidos/{id}`. "
                "Same body, same rules as `POST /api/v1/pedidos`."
            ),
            responses={
                201: {"description": "Accepted (or already accepted).", "headers": _LOCATION},
                401: {"model": schemas.ErrorBody, "description": "Missing or invalid API key."},
                409: {"model": schemas.ErrorBody, "description": "Same id, different payload."},
                413: {"model": schemas.ErrorBody, "description": "Body over the size limit."},
                415: {"model": schemas.ErrorBody, "description": "Not sent as JSON."},
                422: {
                    "model": original.OriginalInvalid,
                    "description": "Not JSON, or the order breaks rules: every error at once.",
                },
                500: {"model": schemas.ErrorBody, "description": "Unexpected error."},
                503: {"model": schemas.ErrorBody, "description": "Database or numbering down."},
            },
            openapi_extra={"requestBody": _REQUEST_BODY},
        )
        async def accept_order_original(request: Request, client: Client) -> JSONResponse:
            return original_answer(await take(request, client, want_cufe=True))

    else:

        @router.post(
            INTAKE_PATH,
            status_code=status.HTTP_202_ACCEPTED,
            response_model=schemas.Accepted,
            operation_id="acceptOrderAtOriginalPath",
            summary="Accept a dine-in order for invoicing (the original path, native answers)",
            description=_NATIVE_DESCRIPTION,
            responses=_NATIVE_RESPONSES,
            openapi_extra={"requestBody": _REQUEST_BODY},
        )
        async def accept_order_at_original_path(request: Request, client: Client) -> JSONResponse:
            return native_answer(await take(request, client), request)

    @router.post(INTAKE_PATH.rstrip("/"), include_in_schema=False)
    async def original_path_without_slash(request: Request) -> RedirectResponse:
        # what Starlette's router does for the original app (redirect_slashes): a 307 to the
        # same URL with the slash, before authentication and without reading the body
        scope = dict(request.scope)
        scope["path"] = request.scope["path"] + "/"
        return RedirectResponse(str(URL(scope=scope)), status_code=307)

    return router
