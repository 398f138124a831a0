"""Notes in PostgreSQL: what remains creditable of a sale, kept by the database, and what a
note's end does to its sale and a sale's end to its notes.

`creditable_lines` holds, per line of a corrected sale (line 0: its tip), the quantity, base
and tax that remain. A credit note takes from it in the transaction that accepts the note,
under the sale's row lock; its checks refuse a credit beyond what remains, whatever runs at
once. A credit note that ends FAILED gives back what it took; a debit note adds what it
raised once it is SUCCESS (never before, so a later credit never spends an increase the
authority did not accept).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Table, Update, and_, null, select, update
from sqlalchemy.exc import IntegrityError

from adapters.db.audit import SqlAuditLog
from adapters.db.models import CreditableLineRow, DocumentRow
from domain.errors import FieldError, InvalidOrder
from domain.notes import NoteFigures, counts, document_lines, figures_from_dict
from domain.order import Order
from domain.store import State

DOCUMENTS = cast(Table, DocumentRow.__table__)
CREDITABLE = cast(Table, CreditableLineRow.__table__)
TIP_LINE = 0


def counted_notes(conn: Connection, sale_id: int) -> list[NoteFigures]:
    """The notes that count against what remains: credits not FAILED, debits SUCCESS."""
    rows = conn.execute(
        select(DOCUMENTS.c.note, DOCUMENTS.c.state)
        .where(DOCUMENTS.c.corrects_id == sale_id)
        .order_by(DOCUMENTS.c.id)
    ).all()
    counted = []
    for row in rows:
        figures = figures_from_dict(row.note["figures"])
        if counts(figures, row.state == State.SUCCESS.value, row.state == State.FAILED.value):
            counted.append(figures)
    return counted


def ensure_ledger(conn: Connection, sale_id: int, order: Order, insert: Any) -> None:
    """The sale's creditable lines, written from the order the first time a note needs them."""
    full = document_lines(order)
    rows = [
        {
            "document_id": sale_id,
            "line_no": number,
            "quantity": left.quantity,
            "base": left.base,
            "tax": sum((t.amount for t in left.taxes), Decimal(0)),
        }
        for number, left in full.lines.items()
    ]
    rows.append(
        {"document_id": sale_id, "line_no": TIP_LINE, "quantity": 0, "base": full.tip, "tax": 0}
    )
    conn.execute(insert(CreditableLineRow).values(rows).on_conflict_do_nothing())


def take(conn: Connection, sale_id: int, figures: NoteFigures) -> None:
    """Take a credit from what remains (InvalidOrder when the database finds it beyond)."""
    try:
        _move(conn, sale_id, figures, Decimal(-1))
    except IntegrityError as exc:
        raise InvalidOrder(
            [
                FieldError(
                    "(note)",
                    "beyond_remaining",
                    "the document does not have what this note credits left (another note "
                    "credited it first)",
                )
            ]
        ) from exc


def give_back(conn: Connection, sale_id: int, figures: NoteFigures) -> None:
    _move(conn, sale_id, figures, Decimal(1))


def _move(conn: Connection, sale_id: int, figures: NoteFigures, sign: Decimal) -> None:
    moves: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
    for line in figures.lines:
        quantity = Decimal(0) if figures.type.is_debit else line.quantity
        moves[line.number] = (quantity, line.base, line.tax_total)
    if figures.tip:
        moves[TIP_LINE] = (Decimal(0), figures.tip, Decimal(0))
    for number, (quantity, base, tax) in moves.items():
        conn.execute(
            update(CREDITABLE)
            .where(and_(CREDITABLE.c.document_id == sale_id, CREDITABLE.c.line_no == number))
            .values(
                quantity=CREDITABLE.c.quantity + sign * quantity,
                base=CREDITABLE.c.base + sign * base,
                tax=CREDITABLE.c.tax + sign * tax,
            )
        )


def after_final(
    conn: Connection,
    document: Any,
    state: State,
    now: datetime,
    audit: Callable[[str, str, dict[str, Any]], None],
) -> None:
    """What a document's end does around it.

    A sale that succeeds wakes the notes waiting for it; a sale that fails fails them (their
    credit given back). A credit note that fails gives back what it took; a debit note that
    succeeds adds what it raised. `document` is the row as it was claimed.
    """
    if document.note_id is None:
        _after_sale(conn, document.id, state, now, audit)
        return
    figures = figures_from_dict(document.note["figures"])
    if state is State.FAILED and not figures.type.is_debit:
        give_back(conn, document.corrects_id, figures)
    elif state is State.SUCCESS and figures.type.is_debit:
        _move(conn, document.corrects_id, figures, Decimal(1))


def _after_sale(
    conn: Connection,
    sale_id: int,
    state: State,
    now: datetime,
    audit: Callable[[str, str, dict[str, Any]], None],
) -> None:
    if state is State.SUCCESS:
        conn.execute(wake_waiting(DOCUMENTS, sale_id, now))
        return
    waiting = _waiting_for(DOCUMENTS, sale_id)
    if state is not State.FAILED:
        return
    failed = {"error": "document_failed", "message": "the document this note corrects failed"}
    rows = conn.execute(
        update(DOCUMENTS)
        .where(waiting)
        .values(state=State.FAILED.value, reason=failed, updated_at=now, finished_at=now)
        .returning(DOCUMENTS.c.issuer, DOCUMENTS.c.order_id, DOCUMENTS.c.note_id, DOCUMENTS.c.note)
    ).all()
    for row in rows:
        figures = figures_from_dict(row.note["figures"])
        if not figures.type.is_debit:
            give_back(conn, sale_id, figures)
        audit(f"{row.issuer}:{row.order_id}/{row.note_id}", "FAILED", failed)


def _waiting_for(documents: Table, sale_id: Any) -> ColumnElement[bool]:
    """The notes of `documents` that wait for sale `sale_id` (a value or a column) to be
    issued: PENDIENTE and not yet due."""
    return and_(
        documents.c.corrects_id == sale_id,
        documents.c.state == State.PENDIENTE.value,
        documents.c.due_at.is_(None),
    )


def wake_waiting(documents: Table, sale_id: Any, now: Any) -> Update:
    """The notes waiting for sale `sale_id` made due `now` (a value or a parameter)."""
    return (
        update(documents)
        .where(_waiting_for(documents, sale_id))
        .values(due_at=now, published_at=null(), updated_at=now)  # NULL in the text
    )


def audit_writer(
    conn: Connection, payload: dict[str, Any]
) -> Callable[[str, str, dict[str, Any]], None]:
    """`audit(key, status, response)` appending to the trail inside the caller's transaction."""
    log = SqlAuditLog(conn)

    def write(key: str, status: str, response: dict[str, Any]) -> None:
        log.save_log(status, {"order_key": key, "order": payload}, response)

    return write
