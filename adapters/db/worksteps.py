"""One-statement steps on PostgreSQL, each one round trip: accepting an order, and a
worker's claim and finish.

`accept` stores the order, its number, its document and its RECIBIDO row (`accept_batch` a
batch of them); `claim` locks the document, marks it PROCESANDO and appends its PROCESANDO
row; `transition` (finish and defer) moves it out of PROCESANDO and appends the step's row,
with the files the authority gave, the copy's delivery and the waking of notes that waited
for the document. Each runs as a single statement in autocommit (the batch in its caller's
transaction): it is its own transaction, so the document's state and its trail change
together or not at all, exactly as the multi-statement transactions they replace (which
SQLite still uses). Each shape is built once and run as a prepared statement (`Prepared`).

Inside one statement the sub-statements share a snapshot, so each step reads only what it
writes through `RETURNING`: the audit row is inserted from the updated row, which makes
PostgreSQL update the document first; the trail's insert trigger (migration 0008) then sees
the new state under the document's lock, as it does between two statements.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    CTE,
    JSON,
    BigInteger,
    ColumnElement,
    Select,
    Table,
    Text,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect
from sqlalchemy.types import TypeEngine

from adapters.db import notes
from adapters.db.models import (
    DeliveryRow,
    DocumentFileRow,
    DocumentRow,
    InvoiceLogRow,
    NumberingRangeRow,
    OrderRow,
)
from domain.delivery import CopyRequest, DeliveryState
from domain.documents import DocumentPlan
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
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


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


# The statements are built once per shape and take every value as a parameter: building a
# statement of this size costs more CPU than running it, and a statement SQLAlchemy has seen
# before is not compiled again.


def _keyed(table: Table, note: bool) -> ColumnElement[bool]:
    """The document of the `of_issuer`, `of_order_id` (and `of_note_id`) parameters."""
    c = table.c
    which = c.note_id == bindparam("of_note_id", type_=Text) if note else c.note_id.is_(None)
    issuer = c.issuer == bindparam("of_issuer", type_=Text)
    return issuer & (c.order_id == bindparam("of_order_id", type_=Text)) & which


def _param(name: str) -> ColumnElement[str]:
    return sql_cast(bindparam(name, type_=Text), Text)


def _constant(word: str) -> ColumnElement[str]:
    """A fixed word of the statement, written into its text (not a parameter)."""
    assert word.replace("_", "").replace(" ", "").isalnum()
    return literal_column(f"'{word}'::text", Text)


def key_params(key: OrderKey) -> dict[str, Any]:
    # never a column's name: SQLAlchemy would take it as a value to set
    params: dict[str, Any] = {"of_issuer": key.issuer, "of_order_id": key.order_id}
    params["key"] = str(key)
    if key.note:
        params["of_note_id"] = key.note
    return params


def claim_params(key: OrderKey, now: datetime, lease_until: datetime, token: str) -> dict[str, Any]:
    return {
        **key_params(key),
        "now": now,
        "lease_until": lease_until,
        "lease_until_text": lease_until.isoformat(),
        "token": token,
    }


@dataclass(frozen=True)
class Prepared:
    """A statement as a server-side prepared statement: PostgreSQL plans it once per
    connection, which halves the server's CPU for a statement of this size (planning it cost
    as much as running it). `execute` runs it with named parameters (`arguments`)."""

    name: str
    prepare: str
    execute: TextClause | TextualSelect  # a text construct: SQLAlchemy keeps the statement
    defaults: Mapping[str, Any]
    json: frozenset[str]

    def arguments(self, params: Mapping[str, Any]) -> dict[str, Any]:
        merged = {**self.defaults, **params}
        for name in self.json:
            merged[name] = json.dumps(merged[name])  # read as the declared JSONB
        return merged


def prepared(name: str, statement: Select[Any], typed: bool = False) -> Prepared:
    """`statement` as a `Prepared`. `typed`: its `EXECUTE` declares the columns it returns, so
    SQLAlchemy reads a result's shape once, not from every result's cursor description
    (for a row of 45 columns that costs more CPU than everything else the client does)."""
    compiled = statement.compile(dialect=_DIALECT)
    order: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    body = re.sub(r"%\((\w+)\)s", positional, str(compiled))
    types = [compiled.binds[n].type for n in order]
    declared = ", ".join(t.compile(dialect=_DIALECT) for t in types)
    execute = text(f"EXECUTE {name} ({', '.join(f':{n}' for n in order)})")
    return Prepared(
        name=name,
        prepare=f"PREPARE {name} ({declared}) AS {body}",
        execute=execute.columns(*statement.selected_columns) if typed else execute,
        # the values written into the statement (a required one comes with each call)
        defaults={n: v for n, v in compiled.params.items() if not compiled.binds[n].required},
        json=frozenset(n for n, t in zip(order, types, strict=True) if _is_json(t)),
    )


def _is_json(kind: TypeEngine[Any]) -> bool:
    return isinstance(kind.dialect_impl(_DIALECT), JSON)


@functools.cache
def prepared_claim(note: bool) -> Prepared:
    return prepared(f"einvoice_claim_{'note' if note else 'sale'}", claim(note), typed=True)


@functools.cache
def prepared_transition(
    note: bool, columns: tuple[str, ...], success: bool, files: bool, copy: bool
) -> Prepared:
    shape = hashlib.sha1(repr((note, columns, success, files, copy)).encode()).hexdigest()[:12]
    return prepared(f"einvoice_step_{shape}", transition(note, columns, success, files, copy))


@functools.cache
def claim(note: bool) -> Select[Any]:
    """The claimed document as `store` reads a record, plus `previous_state` and
    `was_maybe_sent`; no row when it is final, not due, or not there (`claim_params`)."""
    now = bindparam("now", type_=DOCUMENTS.c.updated_at.type)
    target = (
        select(DOCUMENTS.c.id, DOCUMENTS.c.state, DOCUMENTS.c.attempts, DOCUMENTS.c.maybe_sent)
        .where(
            _keyed(DOCUMENTS, note),
            DOCUMENTS.c.state.not_in([_constant(state) for state in _FINAL]),
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
            claim_token=bindparam("token", type_=Text),
            due_at=bindparam("lease_until", type_=DOCUMENTS.c.due_at.type),
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
                _constant(State.PROCESANDO.value),
                _param("key"),
                func.jsonb_build_object(
                    _constant("order_key"),
                    _param("key"),
                    _constant("order"),
                    ORDERS.c.payload,
                ),
                func.jsonb_build_object(
                    _constant("attempt"),
                    claimed.c.attempts,
                    _constant("ask_authority_first"),
                    target.c.maybe_sent,
                    _constant("previous_state"),
                    target.c.state,
                    _constant("lease_until"),
                    _param("lease_until_text"),
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


def transition_params(
    key: OrderKey,
    token: str,
    values: Mapping[str, Any],
    status: str,
    response: dict[str, Any],
    late: dict[str, Any],
    files: Mapping[str, bytes],
    copy: CopyRequest | None,
) -> dict[str, Any]:
    params = {
        **key_params(key),
        **{f"set_{name}": value for name, value in values.items()},
        "token": token,
        "status": status,
        "response": response,
        "late": late,
    }
    if files:
        params["file_names"] = list(files)
        params["file_contents"] = list(files.values())
    if copy is not None:
        params["copy_channel"] = copy.channel.value
        params["copy_recipient"] = copy.recipient
    return params


@functools.cache
def transition(
    note: bool, columns: tuple[str, ...], success: bool, files: bool, copy: bool
) -> Select[Any]:
    """One row, `owned`: whether the claim still held (`transition_params`). Either way the
    step's row is written: `status` with `response`, or `TARDIO` with `late` when another
    worker holds or ended the document. `columns` are set from `set_<column>`. A SUCCESS also
    keeps the files, records the copy and wakes the notes that waited."""
    changed = (
        update(DOCUMENTS)
        .where(
            _keyed(DOCUMENTS, note),
            DOCUMENTS.c.claim_token == bindparam("token", type_=Text),
            DOCUMENTS.c.state == State.PROCESANDO.value,
        )
        .values({c: bindparam(f"set_{c}", type_=DOCUMENTS.c[c].type) for c in columns})
        .returning(DOCUMENTS.c.id)
        .cte("changed")
    )
    owned = changed.c.id.is_not(None)
    payload = (
        select(ORDERS.c.payload)
        .join(DOCUMENTS, DOCUMENTS.c.order_ref == ORDERS.c.id)
        .where(_keyed(DOCUMENTS, note))
        .scalar_subquery()
    )
    logged = (
        insert(AUDIT)
        .from_select(
            ["status", "order_key", "payload_in", "response_out"],
            select(
                case((owned, _param("status")), else_=_constant("TARDIO")),
                _param("key"),
                func.jsonb_build_object(
                    _constant("order_key"),
                    _param("key"),
                    _constant("order"),
                    payload,
                ),
                case(
                    (owned, bindparam("response", type_=JSONB)),
                    else_=bindparam("late", type_=JSONB),
                ),
            ).select_from(select(literal(1).label("one")).subquery().outerjoin(changed, true())),
        )
        .returning(AUDIT.c.id)
        .cte("logged")
    )
    statement = select(func.count(changed.c.id).label("owned")).add_cte(logged)
    if success:
        for step in _after_success(changed, files, copy):
            statement = statement.add_cte(step)
    return statement


def _after_success(changed: CTE, files: bool, copy: bool) -> list[CTE]:
    now = bindparam("set_updated_at", type_=DOCUMENTS.c.updated_at.type)
    waiting = cast(Table, DOCUMENTS.alias("waiting"))
    steps = [notes.wake_waiting(waiting, changed.c.id, now).cte("woken")]
    if files:
        given = (
            func.unnest(
                bindparam("file_names", type_=ARRAY(Text)),
                bindparam("file_contents", type_=ARRAY(BYTEA)),
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
    if copy:
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
                    _param("key"),
                    _param("copy_channel"),
                    _constant(DeliveryState.PENDIENTE.value),
                    _param("copy_recipient"),
                    now,
                    now,
                    now,
                ),
            )
            .cte("copy")
        )
    return steps


# -- accepting -------------------------------------------------------------------------------

RANGES = cast(Table, NumberingRangeRow.__table__)
REFUSED_NUMBER = "no numbering range gives a number"


def accept_params(
    key: OrderKey,
    payload: dict[str, Any],
    fingerprint: str,
    plan: DocumentPlan,
    gateway: str,
    now: datetime,
    today: date,
) -> dict[str, Any]:
    return {
        **key_params(key),
        "payload": payload,
        "fingerprint": fingerprint,
        "of_register": plan.register,
        "of_kind": plan.kind.value,
        "gateway": gateway,
        "now": now,
        "today": today,
    }


@functools.cache
def prepared_accept(numbered: bool) -> Prepared:
    name = f"einvoice_accept_{'numbered' if numbered else 'plain'}"
    return prepared(name, accept(numbered), typed=True)


@functools.cache
def accept(numbered: bool) -> Select[Any]:
    """A new order and its sale document in one statement (`accept_params`): the order's row,
    the next number of the range that serves its register (`numbered`), the document,
    PENDIENTE and due, and its RECIBIDO row. Returns the document, with the range it was
    numbered from as `numbering_*`; no row when the order key is taken (nothing is written,
    no number used). Without a number for a numbered order the statement fails as a whole
    (`einvoice_refuse`), so that the store can say why."""
    now = bindparam("now", type_=DOCUMENTS.c.updated_at.type)
    issuer = bindparam("of_issuer", type_=Text)
    register = bindparam("of_register", type_=Text)
    kind = bindparam("of_kind", type_=Text)
    new_order = (
        postgresql.insert(ORDERS)
        .from_select(
            ["issuer", "order_id", "payload", "fingerprint", "register", "created_at"],
            select(
                issuer,
                bindparam("of_order_id", type_=Text),
                bindparam("payload", type_=JSONB),
                bindparam("fingerprint", type_=Text),
                register,
                now,
            ),
        )
        .on_conflict_do_nothing(index_elements=["issuer", "order_id"])
        .returning(ORDERS.c.id, ORDERS.c.payload)
        .cte("new_order")
    )
    source: Any = new_order
    number: ColumnElement[Any] = null()
    numbering_columns: list[ColumnElement[Any]] = []
    numbered_from: dict[str, ColumnElement[Any]] = {}
    if numbered:
        bumped = _next_number(new_order, issuer, kind, register)
        taken = bumped.c.next_number - 1
        number = bumped.c.prefix + func.lpad(
            sql_cast(taken, Text),
            func.greatest(bumped.c.width, func.length(sql_cast(taken, Text))),
            _constant("0"),
        )
        source = new_order.outerjoin(bumped, true())
        numbered_from = {
            "range_id": bumped.c.id,
            "prefix": bumped.c.prefix,
            "consecutive": taken,
        }
        numbering_columns = [c.label(f"numbering_{c.name}") for c in bumped.c]
    document_values = _new_document(
        new_order.c.id,
        issuer,
        bindparam("of_order_id", type_=Text),
        kind,
        register,
        numbered_from,
        number,
        now,
    )
    chosen = select(*document_values.values()).select_from(source)
    if numbered:
        # no range gave a number: the order must not be stored without one
        chosen = chosen.where(
            case(
                (bumped.c.id.is_not(None), true()),
                else_=func.einvoice_refuse(_constant(REFUSED_NUMBER)),
            )
        )
    document = (
        insert(DOCUMENTS)
        .from_select(list(document_values), chosen)
        .returning(*DOCUMENTS.c)
        .cte("document")
    )
    logged = _received(document, new_order, _param("key")).cte("logged")
    statement = select(*document.c, *numbering_columns).select_from(document)
    if numbered:
        statement = statement.outerjoin(bumped, bumped.c.id == document.c.range_id)
    return statement.add_cte(logged)


def _new_document(
    order_ref: ColumnElement[Any],
    issuer: ColumnElement[Any],
    order_id: ColumnElement[Any],
    kind: ColumnElement[Any],
    register: ColumnElement[Any],
    numbered_from: Mapping[str, ColumnElement[Any]],
    number: ColumnElement[Any],
    now: ColumnElement[Any],
) -> dict[str, ColumnElement[Any]]:
    """A new sale document's columns, as `store._document_values` gives them: PENDIENTE, due
    and published now, its number (NULL when the provider numbers it) also in `refs`.
    `numbered_from` are the range's `range_id`, `prefix` and `consecutive` (none: NULL)."""
    return {
        "order_ref": order_ref,
        "issuer": issuer,
        "order_id": order_id,
        "kind": kind,
        "gateway": bindparam("gateway", type_=Text),
        "state": _constant(State.PENDIENTE.value),
        "register": register,
        **numbered_from,
        "number": number,
        "issued_at": now,
        "due_at": now,
        "published_at": now,
        "refs": case(
            (number.is_(None), literal_column("'{}'::jsonb", JSONB)),
            else_=func.jsonb_build_object(_constant("number"), number),
        ),
        "created_at": now,
        "updated_at": now,
    }


def _received(document: CTE, new_order: CTE, key: ColumnElement[str]) -> Any:
    """The RECIBIDO rows of new documents (`store._received`'s `payload_in`, `response_out`),
    in the order of their ids; `key` is each one's order key."""
    return (
        insert(AUDIT)
        .from_select(
            ["status", "order_key", "payload_in", "response_out"],
            select(
                _constant("RECIBIDO"),
                key,
                func.jsonb_build_object(
                    _constant("order_key"), key, _constant("order"), new_order.c.payload
                ),
                func.jsonb_build_object(
                    _constant("state"),
                    document.c.state,
                    _constant("kind"),
                    document.c.kind,
                    _constant("register"),
                    document.c.register,
                    _constant("number"),
                    document.c.number,
                    _constant("gateway"),
                    document.c.gateway,
                ),
            )
            .select_from(document.join(new_order, new_order.c.id == document.c.order_ref))
            .order_by(document.c.id),
        )
        .returning(AUDIT.c.id)
    )


BATCH_COLUMNS = (
    ("issuer", Text),
    ("order_id", Text),
    ("payload", Text),  # JSON text, read as JSONB
    ("fingerprint", Text),
    ("register", Text),
    ("kind", Text),
    ("range_id", BigInteger),
    ("prefix", Text),
    ("consecutive", BigInteger),
    ("number", Text),
)


def accept_batch_params(
    rows: Sequence[tuple[Any, ...]], gateway: str, now: datetime
) -> dict[str, Any]:
    """`accept_batch`'s parameters: one array per `BATCH_COLUMNS` column, from one tuple of
    those values per order."""
    columns = list(zip(*rows, strict=True)) or [()] * len(BATCH_COLUMNS)
    params = {
        f"batch_{name}": list(values)
        for (name, _), values in zip(BATCH_COLUMNS, columns, strict=True)
    }
    return {**params, "gateway": gateway, "now": now}


@functools.cache
def accept_batch() -> Select[Any]:
    """Many new orders and their sale documents in one statement (`accept_batch_params`), in
    the caller's transaction, with the numbers it took (`ranges.allocate_many`): the orders'
    rows, the documents, PENDIENTE and due, and their RECIBIDO rows, in the order given.
    Returns the documents. An order whose key is taken is left out, and so is its document:
    fewer rows than orders tell the caller to roll back."""
    now = bindparam("now", type_=DOCUMENTS.c.updated_at.type)
    unnest = func.unnest(
        *(bindparam(f"batch_{name}", type_=ARRAY(kind)) for name, kind in BATCH_COLUMNS)
    )
    rows = unnest.table_valued(*(n for n, _ in BATCH_COLUMNS), with_ordinality="position")
    given = select(rows.render_derived(name="given_rows")).cte("given")
    new_order = (
        postgresql.insert(ORDERS)
        .from_select(
            ["issuer", "order_id", "payload", "fingerprint", "register", "created_at"],
            select(
                given.c.issuer,
                given.c.order_id,
                sql_cast(given.c.payload, JSONB),
                given.c.fingerprint,
                given.c.register,
                now,
            ).order_by(given.c.position),
        )
        .on_conflict_do_nothing(index_elements=["issuer", "order_id"])
        .returning(ORDERS.c.id, ORDERS.c.issuer, ORDERS.c.order_id, ORDERS.c.payload)
        .cte("new_order")
    )
    numbered_from = {
        "range_id": given.c.range_id,
        "prefix": given.c.prefix,
        "consecutive": given.c.consecutive,
    }
    document_values = _new_document(
        new_order.c.id,
        given.c.issuer,
        given.c.order_id,
        given.c.kind,
        given.c.register,
        numbered_from,
        given.c.number,
        now,
    )
    matched = (given.c.issuer == new_order.c.issuer) & (given.c.order_id == new_order.c.order_id)
    document = (
        insert(DOCUMENTS)
        .from_select(
            list(document_values),
            select(*document_values.values())
            .select_from(new_order.join(given, matched))
            .order_by(given.c.position),
        )
        .returning(*DOCUMENTS.c)
        .cte("document")
    )
    key = func.concat_ws(literal_column("':'::text", Text), document.c.issuer, document.c.order_id)
    logged = _received(document, new_order, key).cte("logged")
    return select(*document.c).select_from(document).add_cte(logged)


def _next_number(
    new_order: CTE,
    issuer: ColumnElement[str],
    kind: ColumnElement[str],
    register: ColumnElement[str],
) -> CTE:
    """The range that serves `register` today takes one step, for a new order only: the
    register's own ranges when it has any, else the shared ones, the oldest usable first
    (`ranges.allocate`'s order). The counter is checked again under the row's lock."""
    today = bindparam("today", type_=RANGES.c.valid_from.type)
    mine = (RANGES.c.issuer == issuer) & (RANGES.c.kind == kind) & RANGES.c.retired_at.is_(None)
    own = RANGES.alias("own")
    has_own = (
        select(own.c.id)
        .where(
            own.c.issuer == issuer,
            own.c.kind == kind,
            own.c.retired_at.is_(None),
            own.c.register == register,
        )
        .exists()
    )
    chosen = (
        select(RANGES.c.id)
        .where(
            mine,
            or_(RANGES.c.register == register, RANGES.c.register.is_(None) & ~has_own),
            RANGES.c.valid_from <= today,
            RANGES.c.valid_to >= today,
            RANGES.c.next_number <= RANGES.c.last,
        )
        .order_by(RANGES.c.register.is_(None), RANGES.c.id)
        .limit(1)
        .cte("chosen")
    )
    return (
        update(RANGES)
        .where(
            RANGES.c.id == chosen.c.id,
            RANGES.c.retired_at.is_(None),
            RANGES.c.next_number <= RANGES.c.last,
            new_order.c.id.is_not(None),
        )
        .values(next_number=RANGES.c.next_number + 1)
        .returning(*RANGES.c)
        .cte("bumped")
    )
