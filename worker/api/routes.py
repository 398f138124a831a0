"""The endpoints: read an order back, report health (accepting is `worker.api.intake`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from domain.ports import OrderKey
from domain.store import AuditEntry, DocumentRecord, Refused, TimelinePage
from worker.api import schemas
from worker.api.auth import Client, services
from worker.api.intake import ORDERS_PATH
from worker.api.problems import problem, problem_response
from worker.document_files import qr_link

log = logging.getLogger(__name__)
router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem_response("Missing or invalid API key."),
    500: problem_response("Unexpected error (nothing leaked)."),
    503: problem_response("Database unavailable."),
}


TIMELINE_PAGE = 100
MAX_TIMELINE_PAGE = 500
REFUSALS_SHOWN = 10


@router.get(
    f"{ORDERS_PATH}/{{id_pedido}}",
    response_model=schemas.OrderView,
    operation_id="readOrder",
    summary="An order's document, its state and references, and its audit timeline",
    description=(
        "The timeline comes in pages of `limit` entries (oldest first); `timeline_page.next` "
        "is the link to the next page. Input the intake refused under this id is counted "
        "apart (`refusals`) and is never part of the order's own timeline; an id that only "
        "ever had refused input is a 404 whose problem carries `refusals`."
    ),
    responses={
        404: problem_response("No such order (the problem carries `refusals`)."),
        422: problem_response("Invalid request."),
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
    refusals = refusals_view(store.refusals(key, REFUSALS_SHOWN))
    if record is None:
        return problem(
            status.HTTP_404_NOT_FOUND,
            f"no order {id_pedido!r} for this issuer",
            request.url.path,
            extensions={"refusals": refusals.model_dump(mode="json")},
        )
    page = store.timeline_page(key, after, limit)
    view = order_view(key, record, page, refusals, limit)
    view.qr_url = qr_link(services(request).settings, record)
    return view


def refusals_view(refused: Refused) -> schemas.Refusals:
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
        f"{ORDERS_PATH}/{key.order_id}?after={page.next_after}&limit={limit}"
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
