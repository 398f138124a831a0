"""Accepting a note over HTTP: `take_note` reads the body as the order intake does and runs
the same `enqueue_note` use case as `einvoice note` and `Producer.note`; every rule a note
must keep is the domain's, and each refusal comes back as the problem it is.

    new note                        201  the note, `Location` (also when it waits for its
                                         document: `waits_for_document`)
    the same note again             200  the existing note, as it stands now
    same id_nota, other request     409  note-conflict
    no such order                   404  unknown-order
    a rule broken                   422  invalid-note (every field error at once)
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from domain.errors import FieldError, InvalidOrder, OrderConflict, UnknownOrder
from domain.order import ORDER_ID
from domain.ports import OrderKey
from domain.store import DocumentRecord
from domain.usecases.enqueue import Enqueued
from domain.usecases.notes import enqueue_note
from worker.api.auth import Client, services
from worker.api.intake import Refused, broken, read_body, refusal_answer
from worker.api.note_schemas import AcceptedNote
from worker.api.note_views import note_fields, note_link
from worker.api.problems import INVALID_NOTE, NOTE_CONFLICT, UNKNOWN_ORDER
from worker.api.services import Services
from worker.bootstrap import offered_notes


@dataclass(frozen=True)
class NoteTaken:
    """The note is durable (new, or the same one again); `record` as it stands now."""

    result: Enqueued
    record: DocumentRecord


def unknown_order(order_id: str) -> Refused:
    error = FieldError(
        "(order)",
        "unknown_order",
        f"no order {order_id!r} for this issuer: a note corrects an accepted order's document",
    )
    return Refused(status.HTTP_404_NOT_FOUND, error.message, UNKNOWN_ORDER, [error])


async def take_note(request: Request, client: Client, order_id: str) -> NoteTaken | Refused:
    if not ORDER_ID.fullmatch(order_id):  # no order was ever accepted under such an id
        return unknown_order(order_id)
    sale = OrderKey(client.issuer, order_id)
    read = await read_body(request, client, "note", lambda _: sale, INVALID_NOTE)
    if isinstance(read, Refused):
        return read
    svc = services(request)
    try:
        result = await run_in_threadpool(_enqueue, svc, sale, read.data)
    except InvalidOrder as exc:
        return Refused(422, broken("note", exc.errors), INVALID_NOTE, exc.errors, read.data)
    except UnknownOrder:
        return unknown_order(order_id)
    except OrderConflict:
        note_id = read.data.get("id_nota")
        error = FieldError(
            "id_nota",
            "note_conflict",
            f"note {note_id!r} was already accepted with another request; a note id "
            "identifies one note forever",
        )
        return Refused(status.HTTP_409_CONFLICT, error.message, NOTE_CONFLICT, [error])
    record = await run_in_threadpool(svc.store.get, result.key)
    assert record is not None  # notes are never deleted
    return NoteTaken(result, record)


def _enqueue(svc: Services, sale: OrderKey, data: object) -> Enqueued:
    svc.planner  # noqa: B018  (the note ranges the settings describe are stored first)
    issuing = svc.issuers.settings(sale.issuer)  # the sale's issuer's gateway decides
    return enqueue_note(
        data,
        issuer=sale.issuer,
        order_id=sale.order_id,
        gateway=issuing.gateway,
        numbered=issuing.needs_numbering,
        store=svc.store,
        publisher=svc.publisher,
        offered=offered_notes(issuing),
    )


def note_answer(outcome: NoteTaken | Refused, request: Request) -> JSONResponse:
    if isinstance(outcome, Refused):
        return refusal_answer(outcome, request)
    result = outcome.result
    body = AcceptedNote(
        **note_fields(outcome.record), created=result.created, warnings=list(result.warnings)
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        headers={"Location": note_link(result.key)},
    )
