"""Accepting an order over HTTP: `take` does the work and says what happened (`Taken` or
`Refused`); `native_answer` and `original_answer` only write it in their shape. The routes
are in `worker.api.intake_routes`.
"""

from __future__ import annotations

import email.message
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from domain.errors import FieldError, InvalidOrder, OrderConflict
from domain.ports import OrderKey
from domain.usecases.enqueue import Enqueued, enqueue
from worker.api import original, schemas
from worker.api.auth import Client, services
from worker.api.body import NotJson, bad_text, decode_json, read_limited, unstorable_text
from worker.api.problems import (
    INVALID_ORDER,
    ORDER_CONFLICT,
    UNREADABLE_BODY,
    ProblemType,
    problem,
)

log = logging.getLogger(__name__)

ORDERS_PATH = "/api/v1/pedidos"
INTAKE_PATH = f"{ORDERS_PATH}/consumo-local/"


@dataclass(frozen=True)
class Taken:
    """The order is durable (new, or the same one again)."""

    result: Enqueued
    cufe: str | None = None


@dataclass(frozen=True)
class Refused:
    status: int
    detail: str
    kind: ProblemType | None = None
    errors: list[FieldError] | None = None
    data: Any = None
    not_json: NotJson | None = None
    headers: dict[str, str] = field(default_factory=dict)


def is_json(content_type: str | None) -> bool:
    """`application/json` or `application/*+json`; no header at all is read as JSON too, as
    the original FastAPI app did."""
    if content_type is None:
        return True
    parsed = email.message.Message()
    parsed["content-type"] = content_type
    subtype = parsed.get_content_subtype()
    return parsed.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


@dataclass(frozen=True)
class Body:
    """A request body read as exact JSON, holding only text the store can keep."""

    data: Any


async def read_body(
    request: Request,
    client: Client,
    what: str,
    key_of: Callable[[Any], OrderKey | None],
    invalid: ProblemType = INVALID_ORDER,
) -> Body | Refused:
    """The body of a request that sends `what` (an order, a note), or why it is refused: not
    sent as JSON (415, nothing read), not JSON or holding text no row can keep (422, recorded
    as refused input under `key_of(data)`, the latter as an `invalid` problem). Oversized
    bodies raise `BodyTooLarge`."""
    svc = services(request)
    if not is_json(request.headers.get("content-type")):
        return Refused(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the {what} as application/json, not {request.headers['content-type']!r}",
            headers={"Accept-Post": "application/json"},
        )
    body = await read_limited(request, request.app.state.max_body_bytes)
    try:
        data = decode_json(body)
    except NotJson as exc:
        error = FieldError("(body)", "json", str(exc))
        await run_in_threadpool(
            svc.store.refuse,
            key_of(None),
            {"unreadable": True, "size": len(body), "issuer": client.issuer, "client": client.name},
            [error],
        )
        return Refused(422, str(exc), UNREADABLE_BODY, [error], not_json=exc)
    text_errors = unstorable_text(data)
    if text_errors:
        await run_in_threadpool(
            svc.store.refuse,
            key_of(data),
            {"unstorable_text": True, "size": len(body), "client": client.name},
            text_errors,
        )
        return Refused(422, broken(what, text_errors), invalid, text_errors, data)
    return Body(data)


async def take(request: Request, client: Client, want_cufe: bool = False) -> Taken | Refused:
    svc = services(request)
    read = await read_body(request, client, "order", lambda data: _key_of(data, client.issuer))
    if isinstance(read, Refused):
        return read
    data = read.data
    try:
        result: Enqueued = await run_in_threadpool(
            lambda: enqueue(
                data,
                issuer=client.issuer,
                gateway=svc.issuers.settings(client.issuer).gateway,
                planner=svc.planner_for(client.issuer),
                store=svc.store,
                publisher=svc.publisher,
            )
        )
    except InvalidOrder as exc:
        return Refused(422, broken("order", exc.errors), INVALID_ORDER, exc.errors, data)
    except OrderConflict as exc:
        return Refused(status.HTTP_409_CONFLICT, str(exc), ORDER_CONFLICT)
    cufe = None
    if want_cufe and not result.created:
        record = await run_in_threadpool(svc.store.get, result.key)
        cufe = record.references.get("cufe") if record else None
    return Taken(result, cufe)


def broken(what: str, errors: list[FieldError]) -> str:
    return f"the {what} breaks {len(errors)} rule{'s' if len(errors) != 1 else ''}"


def _key_of(data: Any, issuer: str) -> OrderKey | None:
    order_id = data.get("id_pedido_origen") if isinstance(data, dict) else None
    if isinstance(order_id, str) and 0 < len(order_id) <= 64 and not bad_text(order_id):
        return OrderKey(issuer, order_id)
    return None


def refusal_answer(refused: Refused, request: Request) -> JSONResponse:
    """A refusal as a problem (the native shape)."""
    return problem(
        refused.status,
        refused.detail,
        request.url.path,
        refused.kind,
        refused.errors,
        refused.headers,
    )


def native_answer(outcome: Taken | Refused, request: Request) -> JSONResponse:
    if isinstance(outcome, Refused):
        return refusal_answer(outcome, request)
    result = outcome.result
    link = f"{ORDERS_PATH}/{result.key.order_id}"
    accepted = schemas.Accepted(
        order_key=str(result.key),
        id_pedido_origen=result.key.order_id,
        state=str(result.state),
        created=result.created,
        document_type=result.kind.value,
        number=result.number,
        warnings=list(result.warnings),
        links=schemas.Links(self=link),
    )
    return JSONResponse(
        accepted.model_dump(), status_code=status.HTTP_202_ACCEPTED, headers={"Location": link}
    )


def original_answer(outcome: Taken | Refused) -> JSONResponse:
    if isinstance(outcome, Taken):
        result = outcome.result
        return original.accepted(result.key, result.state, result.created, outcome.cufe)
    if outcome.not_json is not None:
        return original.unreadable(outcome.not_json.reason, outcome.not_json.position)
    if outcome.status == 422 and outcome.errors is not None:
        return original.invalid(outcome.errors, outcome.data)
    return original.error(outcome.status, outcome.detail, outcome.headers)
