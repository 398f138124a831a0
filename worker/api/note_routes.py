"""The routes of notes: a void, return, discount or price change against an order's document.

POST /api/v1/pedidos/{id_pedido}/notas             accept a note (`worker.api.note_intake`)
GET  /api/v1/pedidos/{id_pedido}/notas             the order's notes, what remains creditable
GET  /api/v1/pedidos/{id_pedido}/notas/{id_nota}   one note and its audit timeline
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from domain.order import ORDER_ID
from domain.ports import OrderKey
from worker.api.auth import Client, services
from worker.api.intake import ORDERS_PATH, refusal_answer
from worker.api.note_intake import note_answer, take_note, unknown_order
from worker.api.note_schemas import NOTE_EXAMPLE, AcceptedNote, NoteView, OrderNotes
from worker.api.note_views import creditable_view, note_fields, note_link, note_view
from worker.api.problems import problem, problem_response
from worker.api.routes import (
    MAX_TIMELINE_PAGE,
    REFUSALS_SHOWN,
    TIMELINE_PAGE,
    entries_view,
    refusals_view,
)
from worker.api.trail_schemas import TimelinePage

NOTES_PATH = f"{ORDERS_PATH}/{{id_pedido}}/notas"
_LOCATION = {
    "Location": {"description": "Where to read the note back.", "schema": {"type": "string"}}
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem_response("Missing or invalid API key."),
    500: problem_response("Unexpected error (nothing leaked)."),
    503: problem_response("Database or numbering unavailable."),
}

router = APIRouter()


@router.post(
    NOTES_PATH,
    status_code=status.HTTP_201_CREATED,
    response_model=AcceptedNote,
    operation_id="acceptNote",
    summary="Void, return, discount or change the price of an order's document (a note)",
    description=(
        "Validates the note against what remains of the order's document and stores it "
        "durably, with its audit row and what it credits taken from what remains, before "
        "answering; a worker issues it (credit/debit note 91/92 to an invoice, adjustment "
        "note 94/93 to a POS document). `id_nota` is the client's own id: sending the same "
        "note again answers the existing one (200, `created: false`); the same `id_nota` "
        "with another request is a 409. A note for an order whose document is not issued yet "
        "is accepted too (201, `waits_for_document: true`): it goes out once the document is "
        "SUCCESS, and fails if the document fails. Every refusal is a problem whose `errors` "
        "name the field and the rule."
    ),
    responses={
        200: {
            "model": AcceptedNote,
            "description": "Already accepted: the existing note.",
            "headers": _LOCATION,
        },
        201: {"description": "Accepted: durable, a worker will issue it.", "headers": _LOCATION},
        404: problem_response("No such order for this issuer (`unknown-order`)."),
        409: problem_response("Same note id, different request (`note-conflict`)."),
        413: problem_response("The body exceeds the size limit."),
        415: problem_response("The body is not sent as application/json."),
        422: problem_response(
            "Not JSON, or the note breaks rules (`invalid-note`): lines the document does not "
            "have, more than remains, nothing left to void, a failed document, a kind the "
            "gateway does not issue."
        ),
        **_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/NoteRequest"},
                    "example": NOTE_EXAMPLE,
                }
            },
        }
    },
)
async def accept_note(id_pedido: str, request: Request, client: Client) -> JSONResponse:
    return note_answer(await take_note(request, client, id_pedido), request)


@router.get(
    NOTES_PATH,
    response_model=OrderNotes,
    operation_id="readNotes",
    summary="An order's notes and what remains creditable of its document",
    responses={
        404: problem_response("No such order (`unknown-order`)."),
        422: problem_response("Invalid request."),
        **_ERRORS,
    },
)
def read_notes(id_pedido: str, request: Request, client: Client) -> Any:
    documents = (
        services(request).store.documents_of(OrderKey(client.issuer, id_pedido))
        if ORDER_ID.fullmatch(id_pedido)
        else []
    )
    if not any(not d.kind.is_note for d in documents):
        return refusal_answer(unknown_order(id_pedido), request)
    return OrderNotes(
        id_pedido_origen=id_pedido,
        notes=[note_view(d) for d in documents if d.kind.is_note],
        creditable=creditable_view(documents),
    )


@router.get(
    f"{NOTES_PATH}/{{id_nota}}",
    response_model=NoteView,
    operation_id="readNote",
    summary="A note: what it corrects and carries, its state, number, CUDE and audit timeline",
    description=(
        "The timeline comes in pages of `limit` entries (oldest first), as an order's does. "
        "Input refused under this note id is counted apart (`refusals`); a note id that only "
        "ever had refused input is a 404 whose problem carries `refusals`."
    ),
    responses={
        404: problem_response("No such note (the problem carries `refusals`)."),
        422: problem_response("Invalid request."),
        **_ERRORS,
    },
)
def read_note(
    id_pedido: str,
    id_nota: str,
    request: Request,
    client: Client,
    after: int | None = Query(None, ge=0, description="Timeline entries after this id."),
    limit: int = Query(TIMELINE_PAGE, ge=1, le=MAX_TIMELINE_PAGE),
) -> Any:
    key = OrderKey(client.issuer, id_pedido, id_nota)
    missing = f"no note {id_nota!r} of order {id_pedido!r} for this issuer"
    if not (ORDER_ID.fullmatch(id_pedido) and ORDER_ID.fullmatch(id_nota)):
        return problem(status.HTTP_404_NOT_FOUND, missing, request.url.path)
    store = services(request).store
    record = store.get(key)
    refusals = refusals_view(store.refusals(key, REFUSALS_SHOWN))
    if record is None:
        return problem(
            status.HTTP_404_NOT_FOUND,
            missing,
            request.url.path,
            extensions={"refusals": refusals.model_dump(mode="json")},
        )
    page = store.timeline_page(key, after, limit)
    next_link = (
        f"{note_link(key)}?after={page.next_after}&limit={limit}"
        if page.next_after is not None
        else None
    )
    return NoteView(
        **note_fields(record),
        timeline=entries_view(page.entries),
        timeline_page=TimelinePage(next=next_link, limit=limit),
        refusals=refusals,
    )
