"""The endpoints: accept an order, read it back, report health."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from domain.errors import FieldError, InvalidOrder, OrderConflict
from domain.ports import OrderKey
from domain.store import AuditEntry, DocumentRecord, Refused, TimelinePage
from domain.usecases.enqueue import Enqueued, enqueue
from worker.api import schemas
from worker.api.auth import Client, services
from worker.api.body import NotJson, bad_text, decode_json, read_limited, unstorable_text

log = logging.getLogger(__name__)
router = APIRouter()

ORDERS_PATH = "/api/v1/pedidos"
INTAKE_PATH = f"{ORDERS_PATH}/consumo-local/"

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorBody, "description": "Missing or invalid API key."},
    500: {"model": schemas.ErrorBody, "description": "Unexpected error (nothing leaked)."},
    503: {"model": schemas.ErrorBody, "description": "Database or numbering unavailable."},
}


def _invalid(detail: str, errors: list[FieldError]) -> JSONResponse:
    body = schemas.InvalidRequest(
        detail=detail, errors=[schemas.FieldErrorBody(**e.as_dict()) for e in errors]
    )
    return JSONResponse(body.model_dump(), status_code=422)


def _error(code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code)


def _key_of(data: Any, issuer: str) -> OrderKey | None:
    order_id = data.get("id_pedido_origen") if isinstance(data, dict) else None
    if isinstance(order_id, str) and 0 < len(order_id) <= 64 and not bad_text(order_id):
        return OrderKey(issuer, order_id)
    return None


TIMELINE_PAGE = 100
MAX_TIMELINE_PAGE = 500
REFUSALS_SHOWN = 10


def _order_link(order_id: str) -> str:
    return f"{ORDERS_PATH}/{order_id}"


@router.post(
    INTAKE_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Accepted,
    operation_id="acceptOrder",
    summary="Accept a dine-in order for invoicing",
    description=(
        "Validates the order and stores it durably with its audit row before answering; a "
        "worker issues the document. Sending the same order again answers with the existing "
        "one (`created: false`); the same `id_pedido_origen` with another payload is a 409. "
        "The issuer is the API key's, never the body's."
    ),
    responses={
        202: {
            "description": "Accepted (or already accepted): durable, a worker will issue it.",
            "headers": {
                "Location": {
                    "description": "Where to read the order back.",
                    "schema": {"type": "string"},
                }
            },
        },
        409: {"model": schemas.ErrorBody, "description": "Same order id, different payload."},
        413: {"model": schemas.ErrorBody, "description": "The body exceeds the size limit."},
        422: {
            "model": schemas.InvalidRequest,
            "description": "Not JSON, or the order breaks rules: every field error at once.",
        },
        **_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Order"},
                    "example": schemas.SEED_EXAMPLE,
                }
            },
        }
    },
)
async def accept_order(request: Request, client: Client) -> JSONResponse:
    svc = services(request)
    body = await read_limited(request, request.app.state.max_body_bytes)
    try:
        data = decode_json(body)
    except NotJson as exc:
        error = FieldError("(body)", "json", str(exc))
        await run_in_threadpool(
            svc.store.refuse,
            None,
            {"unreadable": True, "size": len(body), "issuer": client.issuer, "client": client.name},
            [error],
        )
        return _invalid("the request body is not a JSON order", [error])
    text_errors = unstorable_text(data)
    if text_errors:
        await run_in_threadpool(
            svc.store.refuse,
            _key_of(data, client.issuer),
            {"unstorable_text": True, "size": len(body), "client": client.name},
            text_errors,
        )
        return _invalid("invalid order", text_errors)
    try:
        result: Enqueued = await run_in_threadpool(
            lambda: enqueue(
                data,
                issuer=client.issuer,
                gateway=svc.settings.gateway,
                planner=svc.planner,
                store=svc.store,
                publisher=svc.publisher,
            )
        )
    except InvalidOrder as exc:
        return _invalid("invalid order", exc.errors)
    except OrderConflict as exc:
        return _error(status.HTTP_409_CONFLICT, str(exc))
    link = _order_link(result.key.order_id)
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


@router.get(
    f"{ORDERS_PATH}/{{id_pedido}}",
    response_model=schemas.OrderView,
    operation_id="readOrder",
    summary="An order's document, its state and references, and its audit timeline",
    description=(
        "The timeline comes in pages of `limit` entries (oldest first); `timeline_page.next` "
        "is the link to the next page. Input the intake refused under this id is counted "
        "apart (`refusals`) and is never part of the order's own timeline."
    ),
    responses={
        404: {"model": schemas.NotFound, "description": "No such order."},
        422: {"model": schemas.InvalidRequest, "description": "Invalid request."},
        **_ERRORS,
    },
)
def read_order(
    id_pedido: str,
    request: Request,
    client: Client,
    after: int | None = Query(None, ge=0, description="Timeline entries after this id."),
    limit: int = Query(TIMELINE_PAGE, ge=1, le=MAX_TIMELINE_PAGE),
) -> Any:
    store = services(request).store
    key = OrderKey(client.issuer, id_pedido)
    record = store.get(key)
    refusals = _refusals(store.refusals(key, REFUSALS_SHOWN))
    if record is None:
        body = schemas.NotFound(detail=f"no order {id_pedido!r} for this issuer", refusals=refusals)
        return JSONResponse(body.model_dump(mode="json"), status_code=404)
    page = store.timeline_page(key, after, limit)
    return order_view(key, record, page, refusals, limit)


def _refusals(refused: Refused) -> schemas.Refusals:
    return schemas.Refusals(count=refused.count, latest=_entries(refused.latest))


def _entries(entries: list[AuditEntry]) -> list[schemas.TimelineEntry]:
    return [
        schemas.TimelineEntry(id=e.id, status=e.status, at=e.created_at, response=e.response_out)
        for e in entries
    ]


def order_view(
    key: OrderKey,
    record: DocumentRecord,
    page: TimelinePage,
    refusals: schemas.Refusals,
    limit: int,
) -> schemas.OrderView:
    """The read-back of an accepted order's sale document."""
    reason = record.reason
    refs: dict[str, Any] = dict(record.references)
    number = str(record.number) if record.number else refs.get("number")
    next_link = (
        f"{_order_link(key.order_id)}?after={page.next_after}&limit={limit}"
        if page.next_after is not None
        else None
    )
    return schemas.OrderView(
        order_key=str(key),
        id_pedido_origen=key.order_id,
        state=str(record.state),
        document_type=record.kind.value,
        document=record.kind.label,
        caja=record.register,
        number=str(number) if number else None,
        cufe=refs.get("cufe"),
        references=refs,
        attempts=record.attempts,
        rules=[schemas.Rule(**r) for r in _dicts(reason, "rules", ("code", "kind", "text"))],
        errors=[
            schemas.FieldErrorBody(**e)
            for e in _dicts(reason, "errors", ("field", "rule", "message"))
        ],
        reason=reason,
        created_at=record.created_at,
        updated_at=record.updated_at,
        timeline=_entries(page.entries),
        timeline_page=schemas.TimelinePage(next=next_link, limit=limit),
        refusals=refusals,
    )


def _dicts(
    reason: dict[str, Any] | None, name: str, fields: tuple[str, ...]
) -> list[dict[str, str]]:
    items = reason.get(name) if reason else None
    if not isinstance(items, list):
        return []
    return [{f: str(item.get(f, "")) for f in fields} for item in items if isinstance(item, dict)]


@router.get(
    "/health",
    response_model=schemas.Health,
    operation_id="health",
    summary="Whether the database and the broker answer",
    responses={503: {"model": schemas.Health, "description": "The database is unreachable."}},
)
def health(request: Request) -> JSONResponse:
    svc = services(request)
    database = svc.database_ok()
    broker = svc.broker_ok()
    # Without the broker orders are still accepted (the reconciler wakes the workers later);
    # without the database nothing can be.
    if database and broker:
        state, message = "ok", "intake is accepting orders"
    elif database:
        state, message = (
            "degraded",
            "orders are accepted; workers are woken when the broker is back",
        )
    else:
        state, message = "unavailable", "the database is unreachable: orders cannot be accepted"
    body = schemas.Health(
        status=state,
        message=message,
        database="ok" if database else "unavailable",
        broker="ok" if broker else "unavailable",
    )
    return JSONResponse(body.model_dump(), status_code=200 if database else 503)
