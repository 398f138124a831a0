"""A worker's two steps on PostgreSQL, each one statement and so one round trip.

`claim` locks the document, marks it PROCESANDO and appends its PROCESANDO row; `finish`
(and `defer`) moves it out of PROCESANDO and appends the step's row, with the files the
authority gave, the copy's delivery and the waking of notes that waited for the document.
Each runs as a single statement in autocommit: it is its own transaction, so the document's
state and its trail change together or not at all, exactly as the multi-statement
transactions they replace (which SQLite still uses).

Inside one statement the sub-statements share a snapshot, so each step reads only what it
writes through `RETURNING`: the audit row is inserted from the updated row, which makes
PostgreSQL update the document first; the trail's insert trigger (migration 0008) then sees
the new state under the document's lock, as it does between two statements.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
    Table,
    Text,
    bindparam,
    case,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB

from adapters.db.models import (
    DeliveryRow,
    DocumentFileRow,
    DocumentRow,
    InvoiceLogRow,
    NumberingRangeRow,
    OrderRow,
)
from domain.delivery import CopyRequest, DeliveryState
from domain.ports import OrderKey
from domain.store import State

DOCUMENTS = cast(Table, DocumentRow.__table__)
ORDERS = cast(Table, OrderRow.__table__)
AUDIT = cast(Table, InvoiceLogRow.__table__)
FILES = cast(Table, DocumentFileRow.__table__)
DELIVERIES = cast(Table, DeliveryRow.__table__)
_RANGE = cast(Table, NumberingRangeRow.__table__).alias("numbering")
_CORRECTED = DOCUMENTS.alias("corrected")
_FINAL = (State.SUCCESS.value, State.FAILED.value)


def _record_columns(document: Any) -> tuple[ColumnElement[Any], ...]:
    """What a document record is read from (`store._record`): the document's columns (of the
    table or of a statement's `RETURNING`), its order, the range its number came from, and for
    a note the document it corrects."""
    return (
        *document.c,
        ORDERS.c.payload,
        ORDERS.c.fingerprint,
        *(c.label(f"numbering_{c.name}") for c in _RANGE.c),
        _CORRECTED.c.kind.label("corrected_kind"),
        _CORRECTED.c.number.label("corrected_number"),
        _CORRECTED.c.refs.label("corrected_refs"),
        _CORRECTED.c.cufe.label("corrected_cufe"),
        _CORRECTED.c.issued_at.label("corrected_issued_at"),
    )


def _record_from(document: Any) -> Any:
    return (
        document.join(ORDERS, ORDERS.c.id == document.c.order_ref)
        .outerjoin(_RANGE, _RANGE.c.id == document.c.range_id)
        .outerjoin(_CORRECTED, _CORRECTED.c.id == document.c.corrects_id)
    )


RECORD_COLUMNS = _record_columns(DOCUMENTS)
RECORD_FROM = _record_from(DOCUMENTS)


def is_document(key: OrderKey) -> ColumnElement[bool]:
    """The document with this key: the order's sale document, or one of its notes."""
    note = DOCUMENTS.c.note_id == key.note if key.note else DOCUMENTS.c.note_id.is_(None)
    return (DOCUMENTS.c.issuer == key.issuer) & (DOCUMENTS.c.order_id == key.order_id) & note


def _text(value: str) -> ColumnElement[str]:
    return sql_cast(literal(value), Text)


def _order_payload(key: OrderKey) -> ColumnElement[Any]:
    """The document's order as stored, for the audit row's `payload_in`."""
    return (
        select(ORDERS.c.payload)
        .join(DOCUMENTS, DOCUMENTS.c.order_ref == ORDERS.c.id)
        .where(is_document(key))
        .scalar_subquery()
    )


def claim(key: OrderKey, now: datetime, lease_until: datetime, token: str) -> Select[Any]:
    """The claimed document as `store._RECORD_COLUMNS` reads it, plus `previous_state` and
    `was_maybe_sent`; no row when it is final, not due, or not there."""
    target = (
        select(DOCUMENTS.c.id, DOCUMENTS.c.state, DOCUMENTS.c.attempts, DOCUMENTS.c.maybe_sent)
        .where(
            is_document(key),
            DOCUMENTS.c.state.not_in(_FINAL),
            or_(DOCUMENTS.c.due_at.is_(None), DOCUMENTS.c.due_at <= now),
        )
        .with_for_update()
        .cte("target")
    )
    claimed = (
        update(DOCUMENTS)
        .where(DOCUMENTS.c.id == target.c.id)
        .values(
            state=State.PROCESANDO.value,
            attempts=target.c.attempts + 1,
            maybe_sent=True,
            claim_token=token,
            due_at=lease_until,
            updated_at=now,
        )
        .returning(*DOCUMENTS.c)
        .cte("claimed")
    )
    logged = (
        insert(AUDIT)
        .from_select(
            ["status", "order_key", "payload_in", "response_out"],
            select(
                _text(State.PROCESANDO.value),
                _text(str(key)),
                func.jsonb_build_object(
                    _text("order_key"), _text(str(key)), _text("order"), ORDERS.c.payload
                ),
                func.jsonb_build_object(
                    _text("attempt"),
                    claimed.c.attempts,
                    _text("ask_authority_first"),
                    target.c.maybe_sent,
                    _text("previous_state"),
                    target.c.state,
                    _text("lease_until"),
                    _text(lease_until.isoformat()),
                ),
            ).select_from(
                claimed.join(target, target.c.id == claimed.c.id).join(
                    ORDERS, ORDERS.c.id == claimed.c.order_ref
                )
            ),
        )
        .returning(AUDIT.c.id)
        .cte("logged")
    )
    return (
        select(
            *_record_columns(claimed),
            target.c.state.label("previous_state"),
            target.c.maybe_sent.label("was_maybe_sent"),
        )
        .select_from(_record_from(claimed).join(target, target.c.id == claimed.c.id))
        .add_cte(logged)
    )


def handles(key: OrderKey, state: State) -> bool:
    """Whether `transition` covers this step: every step but the end of a note and a sale's
    FAILED, whose consequences (credit given back, waiting notes failed with their rows) take
    the store's own transaction."""
    return not state.is_final or (state is State.SUCCESS and key.note is None)


def transition(
    key: OrderKey,
    token: str,
    values: Mapping[str, Any],
    status: str,
    response: dict[str, Any],
    late: dict[str, Any],
    files: Mapping[str, bytes],
    copy: CopyRequest | None,
) -> Select[Any]:
    """One row, `owned`: whether the claim still held. Either way the step's row is written:
    `status` with `response`, or `TARDIO` with `late` when another worker holds or ended the
    document. A SUCCESS also keeps `files`, records `copy` and wakes the notes that waited."""
    changed = (
        update(DOCUMENTS)
        .where(
            is_document(key),
            DOCUMENTS.c.claim_token == token,
            DOCUMENTS.c.state == State.PROCESANDO.value,
        )
        .values(**values)
        .returning(DOCUMENTS.c.id)
        .cte("changed")
    )
    owned = changed.c.id.is_not(None)
    logged = (
        insert(AUDIT)
        .from_select(
            ["status", "order_key", "payload_in", "response_out"],
            select(
                case((owned, _text(status)), else_=_text("TARDIO")),
                _text(str(key)),
                func.jsonb_build_object(
                    _text("order_key"), _text(str(key)), _text("order"), _order_payload(key)
                ),
                case(
                    (owned, bindparam("response", response, type_=JSONB)),
                    else_=bindparam("late", late, type_=JSONB),
                ),
            ).select_from(select(literal(1).label("one")).subquery().outerjoin(changed, true())),
        )
        .returning(AUDIT.c.id)
        .cte("logged")
    )
    statement = select(func.count(changed.c.id).label("owned")).add_cte(logged)
    if values.get("state") == State.SUCCESS.value:
        for step in _after_success(changed, key, files, copy, values["updated_at"]):
            statement = statement.add_cte(step)
    return statement


def _after_success(
    changed: CTE,
    key: OrderKey,
    files: Mapping[str, bytes],
    copy: CopyRequest | None,
    now: datetime,
) -> list[CTE]:
    waiting = cast(Table, DOCUMENTS.alias("waiting"))
    steps = [
        update(waiting)
        .where(
            waiting.c.corrects_id == changed.c.id,
            waiting.c.state == State.PENDIENTE.value,
            waiting.c.due_at.is_(None),
        )
        .values(due_at=now, published_at=null(), updated_at=now)
        .cte("woken")
    ]
    if files:
        given = (
            func.unnest(
                bindparam("file_names", list(files), type_=ARRAY(Text)),
                bindparam("file_contents", list(files.values()), type_=ARRAY(BYTEA)),
            )
            .table_valued("name", "content", name="given")
            .render_derived()
        )
        steps.append(
            insert(FILES)
            .from_select(
                ["document_id", "name", "content"],
                select(changed.c.id, given.c.name, given.c.content).select_from(
                    changed.join(given, true())
                ),
            )
            .cte("kept")
        )
    if copy is not None:
        steps.append(
            insert(DELIVERIES)
            .from_select(
                [
                    "document_id",
                    "order_key",
                    "channel",
                    "state",
                    "recipient",
                    "due_at",
                    "created_at",
                    "updated_at",
                ],
                select(
                    changed.c.id,
                    _text(str(key)),
                    _text(copy.channel.value),
                    _text(DeliveryState.PENDIENTE.value),
                    literal(copy.recipient, Text),
                    literal(now, DOCUMENTS.c.updated_at.type),
                    literal(now, DOCUMENTS.c.updated_at.type),
                    literal(now, DOCUMENTS.c.updated_at.type),
                ),
            )
            .cte("copy")
        )
    return steps
