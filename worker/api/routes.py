"""The endpoints: read an order back, report health (accepting is `worker.api.intake`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from domain.ports import OrderKey
from domain.store import AuditEntry, OrderRecord
from worker.api import schemas
from worker.api.auth import Client, services
from worker.api.intake import ORDERS_PATH
from worker.api.problems import problem, problem_response

log = logging.getLogger(__name__)
router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem_response("Missing or invalid API key."),
    500: problem_response("Unexpected error (nothing leaked)."),
    503: problem_response("Database unavailable."),
}


def _error(request: Request, code: int, detail: str) -> JSONResponse:
    return problem(code, detail, request.url.path)


@router.get(
    f"{ORDERS_PATH}/{{id_pedido}}",
    response_model=schemas.OrderView,
    operation_id="readOrder",
    summary="An order's state, document references and audit timeline",
    responses={
        404: problem_response("No such order."),
        422: problem_response("Invalid request."),
        **_ERRORS,
    },
)
def read_order(id_pedido: str, request: Request, client: Client) -> Any:
    store = services(request).store
    key = OrderKey(client.issuer, id_pedido)
    record = store.get(key)
    timeline = store.timeline(key)
    if record is None and not timeline:
        return _error(request, status.HTTP_404_NOT_FOUND, f"no order {id_pedido!r} for this issuer")
    return order_view(key, record, timeline)


def order_view(
    key: OrderKey, record: OrderRecord | None, timeline: list[AuditEntry]
) -> schemas.OrderView:
    """The read-back. An order refused at intake has no record, only FAILED audit rows."""
    reason = record.reason if record else _last_refusal(timeline)
    refs: dict[str, Any] = dict(record.references) if record else {}
    number = str(record.number) if record and record.number else refs.get("number")
    return schemas.OrderView(
        order_key=str(key),
        id_pedido_origen=key.order_id,
        state=str(record.state) if record else "FAILED",
        number=str(number) if number else None,
        cufe=refs.get("cufe"),
        references=refs,
        attempts=record.attempts if record else 0,
        rules=[schemas.Rule(**r) for r in _dicts(reason, "rules", ("code", "kind", "text"))],
        errors=[
            schemas.FieldErrorBody(**e)
            for e in _dicts(reason, "errors", ("field", "rule", "message"))
        ],
        reason=reason,
        created_at=record.created_at if record else None,
        updated_at=record.updated_at if record else None,
        timeline=[
            schemas.TimelineEntry(
                id=e.id, status=e.status, at=e.created_at, response=e.response_out
            )
            for e in timeline
        ],
    )


def _last_refusal(timeline: list[AuditEntry]) -> dict[str, Any] | None:
    for entry in reversed(timeline):
        if entry.status == "FAILED" and entry.response_out:
            return entry.response_out
    return None


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
