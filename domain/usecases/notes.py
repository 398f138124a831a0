"""Accept a note: validate the request, store it durably against its order's document with its
audit row (what it credits taken from what remains, in the same transaction), then wake a
worker — at once when the document is already SUCCESS; otherwise the note waits, durably,
and the document's success wakes it.

Refused requests (invalid, beyond what remains, for a failed document) are recorded apart
from every document's timeline, under the note's key when it could be one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from domain.documents import DocumentKind
from domain.errors import FieldError, InvalidOrder, NumberingError
from domain.notes import (
    NoteFigures,
    NoteRequest,
    Remaining,
    counts,
    figures_from_dict,
    note_figures,
    note_kind,
    parse_note,
    remaining_after,
)
from domain.order import ORDER_ID, Order
from domain.ports import OrderKey, Publisher
from domain.store import DocumentRecord, DocumentStore, State
from domain.usecases.enqueue import Enqueued, recordable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NoteOffer:
    """The note kinds a deployment's gateway issues, and the rule that keeps the others out
    (a refusal says it)."""

    kinds: frozenset[DocumentKind]
    rule: str


def enqueue_note(
    data: Any,
    *,
    issuer: str,
    order_id: str,
    gateway: str,
    numbered: bool,
    store: DocumentStore,
    publisher: Publisher,
    offered: NoteOffer | None = None,
) -> Enqueued:
    """Raises InvalidOrder (recorded), OrderConflict (recorded), UnknownOrder.

    `offered`: the note kinds the gateway issues (None: every kind); a note of another kind
    is refused as invalid, naming the offer's rule, before anything is numbered."""
    sale = OrderKey(issuer, order_id)
    try:
        request = parse_note(data)
        key = OrderKey(issuer, order_id, request.id_nota)

        def compute(order: Order, kind: DocumentKind, earlier: list[NoteFigures]) -> NoteFigures:
            figures = note_figures(request, order, remaining_after(order, earlier))
            _check_offered(request, kind, figures, offered)
            return figures

        accepted = store.accept_note(key, request, gateway, numbered, compute)
    except InvalidOrder as exc:
        store.refuse(_key_of(data, sale), recordable(data), exc.errors)
        raise
    except NumberingError as exc:
        log.error("numbering: %s", exc)
        store.refuse(_key_of(data, sale), recordable(data), [exc.error])
        raise InvalidOrder([exc.error]) from exc
    record = accepted.record
    if accepted.created and record.due_at is not None:
        try:
            publisher.publish(key)
        except Exception:  # the broker is a wake-up signal; the database holds the work
            log.warning("publish failed for %s; the reconciler will publish it", key, exc_info=True)
            store.mark_unpublished(key)
    number = str(record.number) if record.number else None
    return Enqueued(key, record.state, accepted.created, number, accepted.warnings, record.kind)


def creditable(documents: list[DocumentRecord]) -> Remaining | None:
    """What remains creditable of an order's sale document, given its notes (`documents` as
    the store lists them: the sale first); None when the order has no sale document."""
    sale = next((d for d in documents if not d.kind.is_note), None)
    if sale is None:
        return None
    order = Order.model_validate(sale.payload)
    counted = []
    for document in documents:
        if document.note is None:
            continue
        figures = figures_from_dict(document.note["figures"])
        ended = document.state
        if counts(figures, ended is State.SUCCESS, ended is State.FAILED):
            counted.append(figures)
    return remaining_after(order, counted)


def _check_offered(
    request: NoteRequest,
    kind: DocumentKind,
    figures: NoteFigures,
    offered: NoteOffer | None,
) -> None:
    wanted = note_kind(kind, figures.type)
    if offered is not None and wanted not in offered.kinds:
        raise InvalidOrder(
            [
                FieldError(
                    "tipo",
                    "note_kind_not_offered",
                    f"this deployment's gateway does not issue {wanted.label.lower()} "
                    f"({wanted.value}) for a {request.tipo} note: {offered.rule}",
                )
            ]
        )


def _key_of(data: Any, sale: OrderKey) -> OrderKey:
    """The key a refusal is recorded under: the note's when its id could be a valid one."""
    if isinstance(data, dict):
        note_id = data.get("id_nota")
        if isinstance(note_id, str) and ORDER_ID.fullmatch(note_id):
            return OrderKey(sale.issuer, sale.order_id, note_id)
    return sale
