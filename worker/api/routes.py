"""The endpoints: read an order back, report health (accepting is `worker.api.intake`, notes
are `worker.api.note_routes`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from domain.ports import OrderKey
from domain.store import AuditEntry, DocumentRecord, Refused
from domain.store import TimelinePage as Page
from worker.api import schemas
from worker.api.auth import Client, services
from worker.api.intake import ORDERS_PATH
from worker.api.note_views import creditable_view, errors_of, note_view, rules_of
from worker.api.problems import problem, problem_response
from worker.api.trail_schemas import Refusals, TimelineEntry, TimelinePage
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
    summary="An order's document, its notes, what remains creditable, and its audit timeline",
    description=(
        "The order's sale document (state, number, CUFE/CUDE, rule codes), its notes (`notes`: "
        "state, number and CUDE of each) and what remains creditable of the document after "
        "them (`creditable`: per line and in all). The timeline comes in pages of `limit` "
        "entries (oldest first); `timeline_page.next` is the link to the next page. Input the "
        "intake refused under this id is counted apart (`refusals`) and is never part of the "
        "order's own timeline; an id that only ever had refused input is a 404 whose problem "
        "carries `refusals`."
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
    documents = store.documents_of(key)
    view = order_view(key, record, page, refusals, limit, documents)
    view.qr_url = qr_link(services(request).settings, record)
    return view


def refusals_view(refused: Refused) -> Refusals:
    return Refusals(count=refused.count, latest=entries_view(refused.latest))


def entries_view(entries: list[AuditEntry]) -> list[TimelineEntry]:
    return [
        TimelineEntry(id=e.id, status=e.status, at=e.created_at, response=e.response_out)
        for e in entries
    ]


def order_view(
    key: OrderKey,
    record: DocumentRecord,
    page: Page,
    refusals: Refusals,
    limit: int,
    documents: list[DocumentRecord],
) -> schemas.OrderView:
    """The read-back of an accepted order: its sale document, then its notes and what remains
    creditable (`documents`: the sale first, then its notes)."""
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
        rules=rules_of(reason),
        errors=errors_of(reason),
        reason=reason,
        created_at=record.created_at,
        updated_at=record.updated_at,
        timeline=entries_view(page.entries),
        timeline_page=TimelinePage(next=next_link, limit=limit),
        refusals=refusals,
        notes=[note_view(d) for d in documents if d.kind.is_note],
        creditable=creditable_view(documents),
    )


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
