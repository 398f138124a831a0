"""`DocumentStore` on SQLAlchemy Core: each step is one short transaction with its audit row.

No transaction is ever held across a gateway call: `claim` commits before the call,
`finish` / `defer` open a new one after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, IntegrityError

from adapters.db import notes, ranges, worksteps
from adapters.db.audit import SqlAuditLog
from adapters.db.deliveries import record_copy
from adapters.db.models import (
    CreditableLineRow,
    DocumentRow,
    IntakeRefusalRow,
    InvoiceLogRow,
    NumberingRangeRow,
    OrderRow,
)
from adapters.db.worksteps import RECORD_COLUMNS, RECORD_FROM, is_document
from domain.delivery import CopyRequest
from domain.documents import DocumentKind, DocumentPlan
from domain.errors import FieldError, InvalidOrder, NumberingError, OrderConflict, UnknownOrder
from domain.issuer import NumberingRange
from domain.notes import NoteRequest, ReferencedDocument, figures_from_dict, note_kind
from domain.order import Order, fingerprint_of
from domain.ports import DocumentNumber, OrderKey
from domain.store import (
    Acceptance,
    AuditEntry,
    BatchAnswer,
    Claim,
    DocumentRecord,
    NoteComputer,
    RefusalStatus,
    Refused,
    State,
    StepNote,
    TimelinePage,
    ValidOrder,
)

log = logging.getLogger(__name__)
BOGOTA_OFFSET = timedelta(hours=-5)
OPEN_STATES = (State.PENDIENTE, State.EN_ESPERA, State.PROCESANDO)
# The audit status of a step written by a worker whose claim had been lost (lease expired).
LATE = "TARDIO"
UNKNOWN_PREPARED_STATEMENT = "26000"  # PostgreSQL's invalid_sql_statement_name


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


DOCUMENTS = cast(Table, DocumentRow.__table__)
ORDERS = cast(Table, OrderRow.__table__)
RANGES = cast(Table, NumberingRangeRow.__table__)
AUDIT = cast(Table, InvoiceLogRow.__table__)
REFUSALS = cast(Table, IntakeRefusalRow.__table__)
CREDITABLE = cast(Table, CreditableLineRow.__table__)


def _read(key: OrderKey) -> Select[Any]:
    return select(*RECORD_COLUMNS).select_from(RECORD_FROM).where(is_document(key))


def _numbering(row: Row[Any]) -> NumberingRange | None:
    return None if row.range_id is None else ranges.to_range(row, "numbering_")


def _corrects(row: Row[Any]) -> ReferencedDocument | None:
    if row.corrects_id is None:
        return None
    issued = _aware(row.corrected_issued_at)
    assert issued is not None
    # A document the authority numbered (Factus) has its number in its references only.
    number = row.corrected_number or (row.corrected_refs or {}).get("number", "")
    return ReferencedDocument(
        DocumentKind(row.corrected_kind),
        number,
        row.corrected_cufe or "",
        issued,
    )


def _record(
    row: Row[Any],
    payload: dict[str, Any],
    fingerprint: str,
    numbering: NumberingRange | None,
    corrects: ReferencedDocument | None = None,
) -> DocumentRecord:
    number = (
        DocumentNumber(row.prefix, int(row.consecutive), numbering.width if numbering else 0)
        if row.prefix is not None and row.consecutive is not None
        else None
    )
    issued = _aware(row.issued_at)
    created = _aware(row.created_at)
    updated = _aware(row.updated_at)
    assert issued is not None and created is not None and updated is not None
    return DocumentRecord(
        key=OrderKey(row.issuer, row.order_id, row.note_id),
        kind=DocumentKind(row.kind),
        state=State(row.state),
        gateway=row.gateway,
        payload=payload,
        fingerprint=fingerprint,
        issued_at=issued,
        number=number,
        attempts=row.attempts,
        maybe_sent=bool(row.maybe_sent),
        due_at=_aware(row.due_at),
        references=dict(row.refs or {}),
        reason=row.reason,
        created_at=created,
        updated_at=updated,
        reopened_at=_aware(row.reopened_at),
        numbering=numbering,
        register=row.register,
        note=row.note,
        corrects=corrects,
    )


def _full(row: Row[Any]) -> DocumentRecord:
    return _record(row, row.payload, row.fingerprint, _numbering(row), _corrects(row))


def _entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        row.id,
        row.status,
        row.payload_in,
        row.response_out,
        _aware(row.created_at) or row.created_at,
    )


def on_timeline() -> ColumnElement[bool]:
    """Audit rows that belong to a document's story: not refused input written to the trail
    before refusals had a table of their own."""
    return ~exists().where(REFUSALS.c.legacy_log_id == AUDIT.c.id)


def _fingerprint(order_id: str, payload: dict[str, Any]) -> str:
    text = json.dumps([order_id, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _order_values(
    key: OrderKey, payload: dict[str, Any], fingerprint: str, plan: DocumentPlan, now: datetime
) -> dict[str, Any]:
    return {
        "issuer": key.issuer,
        "order_id": key.order_id,
        "payload": payload,
        "fingerprint": fingerprint,
        "register": plan.register,
        "created_at": now,
    }


def _document_values(
    order_ref: int,
    key: OrderKey,
    plan: DocumentPlan,
    gateway: str,
    number: DocumentNumber | None,
    numbering: NumberingRange | None,
    now: datetime,
) -> dict[str, Any]:
    """A new sale document: PENDIENTE, due and published now."""
    return {
        "order_ref": order_ref,
        "issuer": key.issuer,
        "order_id": key.order_id,
        "kind": plan.kind.value,
        "gateway": gateway,
        "state": State.PENDIENTE.value,
        "register": plan.register,
        "range_id": numbering.id if numbering else None,
        "prefix": number.prefix if number else None,
        "consecutive": number.number if number else None,
        "number": str(number) if number else None,
        "issued_at": now,
        "due_at": now,
        "published_at": now,
        "refs": {"number": str(number)} if number else {},
        "created_at": now,
        "updated_at": now,
    }


def _batch_values(p: _Pending) -> tuple[Any, ...]:
    """One order of a batch as `worksteps.BATCH_COLUMNS` lists its values."""
    number, numbering = p.number, p.numbering
    return (
        p.key.issuer,
        p.key.order_id,
        json.dumps(p.payload),
        p.fingerprint,
        p.plan.register,
        p.plan.kind.value,
        numbering.id if numbering else None,
        number.prefix if number else None,
        number.number if number else None,
        str(number) if number else None,
    )


def _received(
    key: OrderKey,
    payload: dict[str, Any],
    plan: DocumentPlan,
    gateway: str,
    number: DocumentNumber | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The RECIBIDO row's `payload_in` and `response_out`."""
    return {"order_key": str(key), "order": payload}, {
        "state": State.PENDIENTE.value,
        "kind": plan.kind.value,
        "register": plan.register,
        "number": str(number) if number else None,
        "gateway": gateway,
    }


def _audit_row(
    status: str, payload_in: dict[str, Any], response_out: dict[str, Any]
) -> dict[str, Any]:
    """An audit row as `SqlAuditLog.save_log` writes it, for a many-row insert."""
    return {
        "status": status,
        "order_key": payload_in["order_key"],
        "payload_in": payload_in,
        "response_out": response_out,
    }


@dataclass(eq=False)
class _Pending:
    """One order of a batch on its way in, and its answer once it has one."""

    order: ValidOrder
    payload: dict[str, Any]
    fingerprint: str = ""
    number: DocumentNumber | None = None
    numbering: NumberingRange | None = None
    warnings: list[str] = field(default_factory=list)
    answer: BatchAnswer | None = None

    def __post_init__(self) -> None:
        self.fingerprint = fingerprint_of(self.payload)

    @property
    def key(self) -> OrderKey:
        return self.order.key

    @property
    def plan(self) -> DocumentPlan:
        return self.order.plan

    def record(self) -> DocumentRecord | None:
        return self.answer.record if isinstance(self.answer, Acceptance) else None


class _Raced(Exception):
    """The order key already has a row (an earlier or a concurrent accept)."""


class SqlDocumentStore:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        # PostgreSQL: accepting an order, a worker's claim and its finish are one statement
        # each (adapters.db.worksteps), run in autocommit: one round trip, its own transaction.
        self._one_statement = engine.dialect.name == "postgresql"

    # -- accepting -------------------------------------------------------------------------

    def accept(self, key: OrderKey, order: Order, gateway: str, plan: DocumentPlan) -> Acceptance:
        payload = order.to_payload()
        fingerprint = fingerprint_of(payload)
        try:
            # New orders are the common case: insert straight away. A duplicate rolls the
            # whole transaction back, its number included, and is answered from the row.
            return self._insert_new(key, payload, fingerprint, gateway, plan)
        except (_Raced, NumberingError) as exc:
            existing = self.get(key)
            if existing is None:
                if isinstance(exc, NumberingError):
                    raise
                raise RuntimeError(f"order {key} conflicted on insert but cannot be read") from exc
            return self._same_or_conflict(existing, fingerprint, order)

    def _same_or_conflict(
        self, existing: DocumentRecord, fingerprint: str, order: Order
    ) -> Acceptance:
        if existing.fingerprint == fingerprint:
            return Acceptance(existing, created=False)
        self._refusal(
            RefusalStatus.CONFLICTO,
            {"order_key": str(existing.key), "order": order.to_payload()},
            {
                "error": "conflict",
                "message": "same order key, different payload; the first one stands",
                "existing_fingerprint": existing.fingerprint,
                "refused_fingerprint": fingerprint,
            },
        )
        raise OrderConflict(str(existing.key))

    def _insert_new(
        self,
        key: OrderKey,
        payload: dict[str, Any],
        fingerprint: str,
        gateway: str,
        plan: DocumentPlan,
    ) -> Acceptance:
        now = self._clock()
        if self._one_statement:
            accepted = self._accept_in_one_statement(key, payload, fingerprint, gateway, plan, now)
            if accepted is not None:
                return accepted
        warnings: list[str] = []
        with self._engine.begin() as conn:
            order_ref = conn.execute(
                self._insert(OrderRow)
                .values(_order_values(key, payload, fingerprint, plan, now))
                .on_conflict_do_nothing(index_elements=["issuer", "order_id"])
                .returning(ORDERS.c.id)
            ).scalar()
            if order_ref is None:
                raise _Raced()
            number, numbering = None, None
            if plan.numbered:
                today = (now + BOGOTA_OFFSET).date()
                number, numbering, warnings = ranges.allocate(
                    conn, key.issuer, plan.kind, plan.register, today
                )
            row = conn.execute(
                self._insert(DocumentRow)
                .values(_document_values(order_ref, key, plan, gateway, number, numbering, now))
                .returning(*DOCUMENTS.c)
            ).one()
            SqlAuditLog(conn).save_log("RECIBIDO", *_received(key, payload, plan, gateway, number))
        for warning in warnings:
            log.warning("numbering: %s", warning)
        record = _record(row, payload, fingerprint, numbering)
        return Acceptance(record, created=True, warnings=tuple(warnings))

    def _accept_in_one_statement(
        self,
        key: OrderKey,
        payload: dict[str, Any],
        fingerprint: str,
        gateway: str,
        plan: DocumentPlan,
        now: datetime,
    ) -> Acceptance | None:
        """PostgreSQL: the order, its number and document and its RECIBIDO row as one prepared
        statement, one round trip. Raises `_Raced` when the key is taken; None when no range
        gave a number (nothing was written: the transaction above says why)."""
        today = (now + BOGOTA_OFFSET).date()
        step = worksteps.prepared_accept(plan.numbered)
        params = worksteps.accept_params(key, payload, fingerprint, plan, gateway, now, today)
        try:
            row = self._one_step(step, params)
        except DBAPIError as exc:
            if worksteps.REFUSED_NUMBER in str(exc.orig):
                return None
            raise
        if row is None:
            raise _Raced()
        numbering = ranges.to_range(row, "numbering_") if row.range_id is not None else None
        warnings: list[str] = []
        if numbering is not None:
            warnings = ranges.range_warnings(numbering, int(row.consecutive), today)
        for warning in warnings:
            log.warning("numbering: %s", warning)
        record = _record(row, payload, fingerprint, numbering)
        return Acceptance(record, created=True, warnings=tuple(warnings))

    def accept_many(self, orders: Sequence[ValidOrder], gateway: str) -> list[BatchAnswer]:
        batch = [_Pending(o, o.order.to_payload()) for o in orders]
        first: dict[OrderKey, _Pending] = {}
        for pending in batch:
            first.setdefault(pending.key, pending)
        try:
            self._insert_batch(list(first.values()), gateway)
        except _Raced:  # another producer took some of these keys meanwhile: one by one
            return [self._accept_one(p.order, gateway) for p in batch]
        answers: list[BatchAnswer] = []
        for pending in batch:
            earliest = first[pending.key]
            if earliest is pending and pending.answer is not None:
                answers.append(pending.answer)
            elif isinstance(earliest.answer, NumberingError):
                answers.append(earliest.answer)
            else:
                answers.append(self._answer_existing(pending, earliest))
        return answers

    def _accept_one(self, order: ValidOrder, gateway: str) -> BatchAnswer:
        try:
            return self.accept(order.key, order.order, gateway, order.plan)
        except (OrderConflict, NumberingError) as exc:
            return exc

    def _answer_existing(self, pending: _Pending, earliest: _Pending) -> BatchAnswer:
        """A key stored before the batch, or earlier in it: the same order, or a conflict."""
        record = earliest.record() if earliest is not pending else None
        existing = record or self.get(pending.key)
        if existing is None:
            raise RuntimeError(f"order {pending.key} exists but cannot be read")
        try:
            return self._same_or_conflict(existing, pending.fingerprint, pending.order.order)
        except OrderConflict as exc:
            return exc

    def _insert_batch(self, batch: list[_Pending], gateway: str) -> None:
        """Store the orders of `batch` that are new, in one transaction; each gets its answer
        (`Acceptance`, or the `NumberingError` that leaves it out). Raises `_Raced` (nothing
        stored) when a key was taken by someone else after it was looked up."""
        now = self._clock()
        today = (now + BOGOTA_OFFSET).date()
        with self._engine.begin() as conn:
            wanted = [(p.key.issuer, p.key.order_id) for p in batch]
            found = conn.execute(
                select(ORDERS.c.issuer, ORDERS.c.order_id).where(
                    tuple_(ORDERS.c.issuer, ORDERS.c.order_id).in_(wanted)
                )
            )
            stored = {(r.issuer, r.order_id) for r in found}
            new = [p for p in batch if (p.key.issuer, p.key.order_id) not in stored]
            new = self._number(conn, new, today)
            if not new:
                return
            rows = self._insert_new_batch(conn, new, gateway, now)
        by_key = {(r.issuer, r.order_id): r for r in rows}
        for p in new:
            row = by_key[(p.key.issuer, p.key.order_id)]
            record = _record(row, p.payload, p.fingerprint, p.numbering)
            p.answer = Acceptance(record, created=True, warnings=tuple(p.warnings))
        for warning in dict.fromkeys(w for p in new for w in p.warnings):
            log.warning("numbering: %s", warning)

    def _insert_new_batch(
        self, conn: Connection, new: list[_Pending], gateway: str, now: datetime
    ) -> Sequence[Row[Any]]:
        """The orders of `new`, their documents and RECIBIDO rows; returns the documents.
        Raises `_Raced` when a key was taken meanwhile (the caller's transaction is undone).
        PostgreSQL: one statement (`worksteps.accept_batch`), the orders' values sent as
        arrays; elsewhere three, one per table."""
        if self._one_statement:
            params = worksteps.accept_batch_params([_batch_values(p) for p in new], gateway, now)
            rows = conn.execute(worksteps.accept_batch(), params).all()
            if len(rows) != len(new):
                raise _Raced()
            return rows
        refs = conn.execute(
            self._insert(OrderRow)
            .on_conflict_do_nothing(index_elements=["issuer", "order_id"])
            .returning(ORDERS.c.id, ORDERS.c.issuer, ORDERS.c.order_id),
            [_order_values(p.key, p.payload, p.fingerprint, p.plan, now) for p in new],
        ).all()
        if len(refs) != len(new):
            raise _Raced()
        ref_of = {(r.issuer, r.order_id): r.id for r in refs}
        rows = conn.execute(
            self._insert(DocumentRow).returning(*DOCUMENTS.c),
            [
                _document_values(
                    ref_of[(p.key.issuer, p.key.order_id)],
                    p.key,
                    p.plan,
                    gateway,
                    p.number,
                    p.numbering,
                    now,
                )
                for p in new
            ],
        ).all()
        conn.execute(
            insert(AUDIT),
            [
                _audit_row("RECIBIDO", *_received(p.key, p.payload, p.plan, gateway, p.number))
                for p in new
            ],
        )
        return rows

    def _number(self, conn: Connection, new: list[_Pending], today: date) -> list[_Pending]:
        """Give the numbered orders of `new` their numbers, till by till and kind by kind (in
        one order, so concurrent batches lock ranges alike); the ones left without one get the
        `NumberingError` as their answer. Returns the orders to store."""
        groups: dict[tuple[str, str, str], list[_Pending]] = {}
        for p in new:
            if p.plan.numbered:
                groups.setdefault((p.key.issuer, p.plan.kind.value, p.plan.register), []).append(p)
        for (issuer, kind, register), members in sorted(groups.items()):
            blocks, warnings, refusal = ranges.allocate_many(
                conn, issuer, DocumentKind(kind), register, today, len(members)
            )
            numbered = [(b.numbering, n) for b in blocks for n in b.numbers()]
            for p, (numbering, number) in zip(members, numbered, strict=False):
                p.numbering, p.number = numbering, number
            if numbered:
                members[len(numbered) - 1].warnings = warnings
            for p in members[len(numbered) :]:
                p.answer = refusal
        return [p for p in new if p.answer is None]

    def accept_note(
        self,
        key: OrderKey,
        request: NoteRequest,
        gateway: str,
        numbered: bool,
        compute: NoteComputer,
    ) -> Acceptance:
        """Store a note against its order's sale document, taking what it credits from what
        remains, in one transaction under the sale's row lock. The same note id again with the
        same request answers the existing note; with another request it is a conflict."""
        assert key.note is not None
        payload = request.to_payload()
        fingerprint = _fingerprint(key.order_id, payload)
        try:
            accepted = self._note_once(key, payload, fingerprint, gateway, numbered, compute)
        except IntegrityError:  # the same note id at once under another order of the issuer
            accepted = self._note_once(key, payload, fingerprint, gateway, numbered, compute)
        if accepted is None:
            self._refusal(
                RefusalStatus.CONFLICTO,
                {"order_key": str(key), "note": payload},
                {
                    "error": "conflict",
                    "message": "same note id, different request; the first one stands",
                },
            )
            raise OrderConflict(str(key))
        for warning in accepted.warnings:
            log.warning("numbering: %s", warning)
        return accepted

    def _note_once(
        self,
        key: OrderKey,
        payload: dict[str, Any],
        fingerprint: str,
        gateway: str,
        numbered: bool,
        compute: NoteComputer,
    ) -> Acceptance | None:
        """The note accepted now, or as it was accepted before; None: the id holds another."""
        with self._engine.begin() as conn:
            sale = conn.execute(_read(key.sale).with_for_update(of=DOCUMENTS)).first()
            if sale is None:
                raise UnknownOrder(str(key.sale))
            existing = conn.execute(
                select(DOCUMENTS.c.order_id, DOCUMENTS.c.note).where(
                    DOCUMENTS.c.issuer == key.issuer, DOCUMENTS.c.note_id == key.note
                )
            ).first()
            if existing is None:
                return self._insert_note(
                    conn, key, sale, payload, fingerprint, gateway, numbered, compute
                )
            if existing.order_id == key.order_id and existing.note["fingerprint"] == fingerprint:
                return Acceptance(_full(conn.execute(_read(key)).one()), created=False)
            return None

    def _insert_note(
        self,
        conn: Connection,
        key: OrderKey,
        sale: Row[Any],
        payload: dict[str, Any],
        fingerprint: str,
        gateway: str,
        numbered: bool,
        compute: NoteComputer,
    ) -> Acceptance:
        if sale.state == State.FAILED.value:
            raise InvalidOrder(
                [
                    FieldError(
                        "(order)",
                        "document_failed",
                        f"order {key.sale} ended FAILED: it has no document to correct",
                    )
                ]
            )
        now = self._clock()
        sale_kind = DocumentKind(sale.kind)
        order = Order.model_validate(sale.payload)
        figures = compute(order, sale_kind, notes.counted_notes(conn, sale.id))
        notes.ensure_ledger(conn, sale.id, order, self._insert)
        if not figures.type.is_debit:
            notes.take(conn, sale.id, figures)
        kind = note_kind(sale_kind, figures.type)
        number, numbering, warnings = None, None, list[str]()
        if numbered:
            today = (now + BOGOTA_OFFSET).date()
            number, numbering, warnings = ranges.allocate(
                conn, key.issuer, kind, sale.register or "", today
            )
        due = sale.state == State.SUCCESS.value  # else it waits for its document
        row = conn.execute(
            self._insert(DocumentRow)
            .values(
                order_ref=sale.order_ref,
                issuer=key.issuer,
                order_id=key.order_id,
                note_id=key.note,
                corrects_id=sale.id,
                kind=kind.value,
                gateway=gateway,
                state=State.PENDIENTE.value,
                register=sale.register,
                range_id=numbering.id if numbering else None,
                prefix=number.prefix if number else None,
                consecutive=number.number if number else None,
                number=str(number) if number else None,
                issued_at=now,
                due_at=now if due else None,
                published_at=now if due else None,
                refs={"number": str(number)} if number else {},
                note={"request": payload, "fingerprint": fingerprint, "figures": figures.as_dict()},
                created_at=now,
                updated_at=now,
            )
            .returning(DOCUMENTS.c.id)
        ).one()
        SqlAuditLog(conn).save_log(
            "RECIBIDO",
            {"order_key": str(key), "note": payload},
            {
                "state": State.PENDIENTE.value,
                "kind": kind.value,
                "corrects": sale.number,
                "number": str(number) if number else None,
                "total": str(figures.total),
                "waits_for_document": not due,
                "gateway": gateway,
            },
        )
        created = conn.execute(_read(key).where(DOCUMENTS.c.id == row.id)).one()
        return Acceptance(_full(created), created=True, warnings=tuple(warnings))

    def documents_of(self, key: OrderKey) -> list[DocumentRecord]:
        """The order's sale document, then its notes in the order they were accepted."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(*RECORD_COLUMNS)
                .select_from(RECORD_FROM)
                .where(DOCUMENTS.c.issuer == key.issuer, DOCUMENTS.c.order_id == key.order_id)
                .order_by(DOCUMENTS.c.note_id.is_not(None), DOCUMENTS.c.id)
            ).all()
        return [_full(r) for r in rows]

    def refuse(
        self,
        key: OrderKey | None,
        payload: dict[str, Any],
        errors: list[FieldError],
        status: RefusalStatus = RefusalStatus.RECHAZADO_ENTRADA,
    ) -> int:
        return self._refusal(
            status,
            {"order_key": str(key) if key else None, "order": payload},
            {"error": "invalid_order", "errors": [e.as_dict() for e in errors]},
        )

    def _refusal(
        self, status: RefusalStatus, payload_in: dict[str, Any], response_out: dict[str, Any]
    ) -> int:
        with self._engine.begin() as conn:
            return SqlAuditLog(conn, IntakeRefusalRow).save_log(
                status.value, payload_in, response_out
            )

    def refusals(self, key: OrderKey, limit: int = 100) -> Refused:
        mine = REFUSALS.c.order_key == str(key)
        with self._engine.connect() as conn:
            count = conn.execute(select(func.count()).where(mine)).scalar_one()
            rows = conn.execute(
                select(REFUSALS).where(mine).order_by(REFUSALS.c.id.desc()).limit(limit)
            ).all()
        return Refused(int(count), [_entry(r) for r in reversed(rows)])

    # -- working ---------------------------------------------------------------------------

    def claim(self, key: OrderKey, lease_seconds: float) -> Claim | None:
        now = self._clock()
        token = str(uuid.uuid4())
        if self._one_statement:
            lease_until = now + timedelta(seconds=lease_seconds)
            statement = worksteps.prepared_claim(key.note is not None)
            found = self._one_step(statement, worksteps.claim_params(key, now, lease_until, token))
            if found is None:
                return None
            record = _full(found)
            return Claim(record, token, record.attempts, was_maybe_sent=bool(found.was_maybe_sent))
        with self._engine.begin() as conn:
            row = conn.execute(_read(key).with_for_update(of=DOCUMENTS)).first()
            if row is None or State(row.state).is_final:
                return None
            due = _aware(row.due_at)
            if due is not None and due > now:
                return None
            attempt = row.attempts + 1
            lease_until = now + timedelta(seconds=lease_seconds)
            claimed = conn.execute(
                update(DOCUMENTS)
                .where(DOCUMENTS.c.id == row.id)
                .values(
                    state=State.PROCESANDO.value,
                    attempts=attempt,
                    maybe_sent=True,
                    claim_token=token,
                    due_at=lease_until,
                    updated_at=now,
                )
                .returning(*DOCUMENTS.c)
            ).one()
            SqlAuditLog(conn).save_log(
                "PROCESANDO",
                {"order_key": str(key), "order": row.payload},
                {
                    "attempt": attempt,
                    "ask_authority_first": bool(row.maybe_sent),
                    "previous_state": row.state,
                    "lease_until": lease_until.isoformat(),
                },
            )
        record = _record(claimed, row.payload, row.fingerprint, _numbering(row), _corrects(row))
        return Claim(record, token, attempt, was_maybe_sent=bool(row.maybe_sent))

    def _one_step(self, step: worksteps.Prepared, params: dict[str, Any]) -> Row[Any] | None:
        """Run one of the one-statement steps (`worksteps`). A connection found dead on first
        use (the database restarted since it was pooled) is replaced and the statement sent
        once more: it had not run, or it ran whole, in which case the second run finds the key
        taken (an accept: answered as the existing order, woken by the reconciler), the claim
        taken (a claim: nothing done) or the claim ended (a finish: a late report)."""
        try:
            return self._autocommit(step, params)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("database connection lost; sending the step again on a new one")
        return self._autocommit(step, params)

    def _autocommit(self, step: worksteps.Prepared, params: dict[str, Any]) -> Row[Any] | None:
        """The prepared statement as its own transaction, one round trip (its PREPARE is one
        more, once per connection). The driver's own autocommit switch, not SQLAlchemy's
        isolation level: restoring that one costs psycopg2 a SET on the next switch."""
        with self._engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            ready: set[str] = conn.connection.info.setdefault("prepared", set())
            driver.autocommit = True
            try:
                if step.name not in ready:
                    conn.exec_driver_sql(step.prepare)
                    ready.add(step.name)
                try:
                    return conn.execute(step.execute, step.arguments(params)).first()
                except DBAPIError as exc:
                    if getattr(exc.orig, "pgcode", None) != UNKNOWN_PREPARED_STATEMENT:
                        raise
                # the session lost it (DISCARD ALL, a pooler between us and the server)
                conn.exec_driver_sql(step.prepare)
                return conn.execute(step.execute, step.arguments(params)).first()
            finally:
                if not conn.invalidated:
                    driver.autocommit = False

    def finish(
        self,
        claim: Claim,
        state: State,
        references: dict[str, str],
        note: StepNote,
        reason: dict[str, Any] | None,
        files: Mapping[str, bytes] | None = None,
        delivery: CopyRequest | None = None,
    ) -> bool:
        now = self._clock()
        refs = {**claim.record.references, **references}
        return self._transition(
            claim,
            {
                "state": state.value,
                "due_at": None,
                "claim_token": None,
                "cufe": refs.get("cufe"),
                "track_id": refs.get("track_id") or refs.get("zip_key"),
                "refs": refs,
                "reason": reason,
                "updated_at": now,
                "finished_at": now,
            },
            note,
            files,
            delivery,
        )

    def defer(
        self,
        claim: Claim,
        state: State,
        due_at: datetime,
        references: dict[str, str],
        note: StepNote,
        reason: dict[str, Any] | None,
        published: bool = False,
        maybe_sent: bool | None = None,
    ) -> bool:
        now = self._clock()
        refs = {**claim.record.references, **references}
        values: dict[str, Any] = {
            "state": state.value,
            "due_at": due_at,
            "claim_token": None,
            "cufe": refs.get("cufe"),
            "track_id": refs.get("track_id") or refs.get("zip_key"),
            "refs": refs,
            "reason": reason,
            "updated_at": now,
        }
        if published:
            values["published_at"] = due_at
        if maybe_sent is not None:
            values["maybe_sent"] = maybe_sent
        return self._transition(claim, values, note)

    def _transition(
        self,
        claim: Claim,
        values: dict[str, Any],
        note: StepNote,
        files: Mapping[str, bytes] | None = None,
        delivery: CopyRequest | None = None,
    ) -> bool:
        key = claim.record.key
        state = State(values["state"])
        response = {**note.response, "attempt": claim.attempt}
        # what a worker that lost its claim writes instead: a late report, never the outcome
        late = {"reported": note.status, "claim_lost": True, **response}
        if self._one_statement and worksteps.handles(key, state):
            step = worksteps.prepared_transition(
                key.note is not None,
                tuple(values),
                state is State.SUCCESS,
                bool(files),
                delivery is not None,
            )
            params = worksteps.transition_params(
                key, claim.token, values, note.status, response, late, files or {}, delivery
            )
            done = self._one_step(step, params)
            return bool(done is not None and done.owned)
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(DOCUMENTS)
                .where(
                    is_document(key),
                    DOCUMENTS.c.claim_token == claim.token,
                    DOCUMENTS.c.state == State.PROCESANDO.value,
                )
                .values(**values)
                .returning(
                    DOCUMENTS.c.id, DOCUMENTS.c.note_id, DOCUMENTS.c.corrects_id, DOCUMENTS.c.note
                )
            ).first()
            owned = changed is not None
            status = note.status
            if not owned:  # another worker holds or ended the document
                status, response = LATE, late
            SqlAuditLog(conn).save_log(
                status, {"order_key": str(key), "order": claim.record.payload}, response
            )
            if changed is not None and state.is_final:
                audit = notes.audit_writer(conn, claim.record.payload)
                notes.after_final(conn, changed, state, values["updated_at"], audit)
                if state is State.SUCCESS:
                    now = values["updated_at"]
                    record_copy(conn, changed.id, key, files or {}, delivery, now)
        return owned

    # -- reconciling and reading -----------------------------------------------------------

    def due_for_publish(self, now: datetime, republish_after: float, limit: int) -> list[OrderKey]:
        stale = now - timedelta(seconds=republish_after)
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(
                    DOCUMENTS.c.id, DOCUMENTS.c.issuer, DOCUMENTS.c.order_id, DOCUMENTS.c.note_id
                )
                .where(
                    DOCUMENTS.c.due_at.is_not(None),
                    DOCUMENTS.c.due_at <= now,
                    or_(
                        DOCUMENTS.c.published_at.is_(None),
                        DOCUMENTS.c.published_at < DOCUMENTS.c.due_at,
                        DOCUMENTS.c.published_at < stale,
                    ),
                )
                .order_by(DOCUMENTS.c.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                conn.execute(
                    update(DOCUMENTS)
                    .where(DOCUMENTS.c.id.in_([r.id for r in rows]))
                    .values(published_at=now)
                )
        return [OrderKey(r.issuer, r.order_id, r.note_id) for r in rows]

    def mark_unpublished(self, key: OrderKey) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(DOCUMENTS).where(is_document(key)).values(published_at=None))

    def get(self, key: OrderKey) -> DocumentRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(_read(key)).first()
        return _full(row) if row is not None else None

    def timeline(self, key: OrderKey) -> list[AuditEntry]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(AUDIT)
                .where(AUDIT.c.order_key == str(key), on_timeline())
                .order_by(AUDIT.c.id)
            ).all()
        return [_entry(r) for r in rows]

    def timeline_page(self, key: OrderKey, after: int | None, limit: int) -> TimelinePage:
        query = select(AUDIT).where(AUDIT.c.order_key == str(key), on_timeline())
        if after is not None:
            query = query.where(AUDIT.c.id > after)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(AUDIT.c.id).limit(limit + 1)).all()
        entries = [_entry(r) for r in rows[:limit]]
        more = len(rows) > limit
        return TimelinePage(entries, entries[-1].id if more and entries else None)

    def reopen(self, key: OrderKey, note: StepNote) -> DocumentRecord | None:
        now = self._clock()
        with self._engine.begin() as conn:
            reopened = conn.execute(
                update(DOCUMENTS)
                .where(is_document(key), DOCUMENTS.c.state == State.FAILED.value)
                .values(
                    state=State.EN_ESPERA.value,
                    attempts=0,
                    due_at=now,
                    published_at=None,
                    finished_at=None,
                    reopened_at=now,
                    updated_at=now,
                )
                .returning(DOCUMENTS.c.id)
            ).first()
            if reopened is None:
                return None
            row = conn.execute(_read(key)).one()
            if row.note is not None:  # a failed credit note gave its credit back: take it again
                figures = figures_from_dict(row.note["figures"])
                if not figures.type.is_debit:
                    notes.take(conn, row.corrects_id, figures)
            SqlAuditLog(conn).save_log(
                note.status, {"order_key": str(key), "order": row.payload}, note.response
            )
        return _full(row)
