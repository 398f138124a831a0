"""`OrderStore` on SQLAlchemy Core: each step is one short transaction with its audit row.

No transaction is ever held across a gateway call: `claim` commits before the call,
`finish` / `defer` open a new one after it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row

from adapters.db.audit import SqlAuditLog
from adapters.db.models import InvoiceLogRow, NumberSequenceRow, OrderRow
from domain.errors import FieldError, NumberingError, OrderConflict
from domain.issuer import NumberingRange
from domain.order import Order
from domain.ports import DocumentNumber, OrderKey
from domain.store import (
    Acceptance,
    AuditEntry,
    Claim,
    OrderRecord,
    State,
    StepNote,
)

log = logging.getLogger(__name__)
BOGOTA_OFFSET = timedelta(hours=-5)
OPEN_STATES = (State.PENDIENTE, State.EN_ESPERA, State.PROCESANDO)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _record(row: Row[Any]) -> OrderRecord:
    number = (
        DocumentNumber(row.doc_prefix, int(row.doc_number))
        if row.doc_prefix is not None and row.doc_number is not None
        else None
    )
    issued = _aware(row.issued_at)
    created = _aware(row.created_at)
    updated = _aware(row.updated_at)
    assert issued is not None and created is not None and updated is not None
    return OrderRecord(
        key=OrderKey(row.issuer, row.order_id),
        state=State(row.state),
        gateway=row.gateway,
        payload=row.payload,
        fingerprint=row.fingerprint,
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
    )


class _Raced(Exception):
    """The order key already has a row (an earlier or a concurrent accept)."""


class SqlOrderStore:
    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime] = utc_now,
        warn_remaining: int = 1000,
        warn_days: int = 30,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._warn_remaining = warn_remaining
        self._warn_days = warn_days
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- accepting -------------------------------------------------------------------------

    def accept(
        self, key: OrderKey, order: Order, gateway: str, numbering: NumberingRange | None
    ) -> Acceptance:
        fingerprint = order.fingerprint()
        try:
            # New orders are the common case: insert straight away. A duplicate rolls the
            # whole transaction back, its number included, and is answered from the row.
            return self._insert_new(key, order, fingerprint, gateway, numbering)
        except (_Raced, NumberingError) as exc:
            existing = self.get(key)
            if existing is None:
                if isinstance(exc, NumberingError):
                    raise
                raise RuntimeError(f"order {key} conflicted on insert but cannot be read") from exc
            return self._same_or_conflict(existing, fingerprint, order)

    def _same_or_conflict(
        self, existing: OrderRecord, fingerprint: str, order: Order
    ) -> Acceptance:
        if existing.fingerprint == fingerprint:
            return Acceptance(existing, created=False)
        with self._engine.begin() as conn:
            SqlAuditLog(conn).save_log(
                "CONFLICTO",
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
        order: Order,
        fingerprint: str,
        gateway: str,
        numbering: NumberingRange | None,
    ) -> Acceptance:
        now = self._clock()
        warnings: list[str] = []
        with self._engine.begin() as conn:
            number = None
            if numbering is not None:
                number, warnings = self._allocate(conn, numbering, now)
            payload = order.to_payload()
            inserted = conn.execute(
                self._insert(OrderRow)
                .values(
                    issuer=key.issuer,
                    order_id=key.order_id,
                    gateway=gateway,
                    payload=payload,
                    fingerprint=fingerprint,
                    state=State.PENDIENTE.value,
                    issued_at=now,
                    doc_prefix=number.prefix if number else None,
                    doc_number=number.number if number else None,
                    due_at=now,
                    published_at=now,
                    refs={"number": str(number)} if number else {},
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["issuer", "order_id"])
                .returning(*OrderRow.__table__.c)
            ).first()
            if inserted is None:
                raise _Raced()
            SqlAuditLog(conn).save_log(
                "RECIBIDO",
                {"order_key": str(key), "order": payload},
                {
                    "state": State.PENDIENTE.value,
                    "number": str(number) if number else None,
                    "gateway": gateway,
                },
            )
        for warning in warnings:
            log.warning("numbering: %s", warning)
        return Acceptance(_record(inserted), created=True, warnings=tuple(warnings))

    def _allocate(
        self, conn: Connection, numbering: NumberingRange, now: datetime
    ) -> tuple[DocumentNumber, list[str]]:
        today = (now + BOGOTA_OFFSET).date()
        if today > numbering.valid_to:
            raise NumberingError(
                f"numbering resolution {numbering.resolution} ({numbering.prefix}) expired on "
                f"{numbering.valid_to}; request a new range from DIAN"
            )
        if today < numbering.valid_from:
            raise NumberingError(
                f"numbering resolution {numbering.resolution} is valid from {numbering.valid_from}"
            )
        # One statement: the first order of a prefix creates its counter, later ones bump it.
        # The row lock it takes is held until commit, so concurrent accepts never share a number.
        allocated = conn.execute(
            self._insert(NumberSequenceRow)
            .values(
                prefix=numbering.prefix,
                next_number=numbering.first + 1,
                last_number=numbering.last,
            )
            .on_conflict_do_update(
                index_elements=["prefix"],
                set_={"next_number": NumberSequenceRow.next_number + 1},
            )
            .returning(NumberSequenceRow.next_number)
        ).scalar_one()
        value = int(allocated) - 1
        if value > numbering.last:
            raise NumberingError(
                f"numbering range {numbering.prefix} {numbering.first}-{numbering.last} "
                f"(resolution {numbering.resolution}) is exhausted"
            )
        warnings = _numbering_warnings(
            numbering, value, today, self._warn_remaining, self._warn_days
        )
        return DocumentNumber(numbering.prefix, value), warnings

    def record_invalid(
        self, key: OrderKey | None, payload: dict[str, Any], errors: list[FieldError]
    ) -> int:
        with self._engine.begin() as conn:
            return SqlAuditLog(conn).save_log(
                "FAILED",
                {"order_key": str(key) if key else None, "order": payload},
                {"error": "invalid_order", "errors": [e.as_dict() for e in errors]},
            )

    # -- working ---------------------------------------------------------------------------

    def claim(self, key: OrderKey, lease_seconds: float) -> Claim | None:
        now = self._clock()
        token = str(uuid.uuid4())
        with self._engine.begin() as conn:
            row = conn.execute(
                select(OrderRow.__table__)
                .where(OrderRow.issuer == key.issuer, OrderRow.order_id == key.order_id)
                .with_for_update()
            ).first()
            if row is None or State(row.state).is_final:
                return None
            due = _aware(row.due_at)
            if due is not None and due > now:
                return None
            attempt = row.attempts + 1
            lease_until = now + timedelta(seconds=lease_seconds)
            claimed = conn.execute(
                update(OrderRow)
                .where(OrderRow.id == row.id)
                .values(
                    state=State.PROCESANDO.value,
                    attempts=attempt,
                    maybe_sent=True,
                    claim_token=token,
                    due_at=lease_until,
                    updated_at=now,
                )
                .returning(*OrderRow.__table__.c)
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
        return Claim(_record(claimed), token, attempt, was_maybe_sent=bool(row.maybe_sent))

    def finish(
        self,
        claim: Claim,
        state: State,
        references: dict[str, str],
        note: StepNote,
        reason: dict[str, Any] | None,
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
        return self._transition(claim, values, note)

    def _transition(self, claim: Claim, values: dict[str, Any], note: StepNote) -> bool:
        key = claim.record.key
        with self._engine.begin() as conn:
            result = conn.execute(
                update(OrderRow)
                .where(
                    OrderRow.issuer == key.issuer,
                    OrderRow.order_id == key.order_id,
                    OrderRow.claim_token == claim.token,
                    OrderRow.state == State.PROCESANDO.value,
                )
                .values(**values)
            )
            owned = result.rowcount == 1
            response = dict(note.response)
            response["attempt"] = claim.attempt
            if not owned:
                response["claim_lost"] = True
            SqlAuditLog(conn).save_log(
                note.status, {"order_key": str(key), "order": claim.record.payload}, response
            )
        return owned

    # -- reconciling and reading -----------------------------------------------------------

    def due_for_publish(self, now: datetime, republish_after: float, limit: int) -> list[OrderKey]:
        stale = now - timedelta(seconds=republish_after)
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(OrderRow.id, OrderRow.issuer, OrderRow.order_id)
                .where(
                    OrderRow.due_at.is_not(None),
                    OrderRow.due_at <= now,
                    or_(
                        OrderRow.published_at.is_(None),
                        OrderRow.published_at < OrderRow.due_at,
                        OrderRow.published_at < stale,
                    ),
                )
                .order_by(OrderRow.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                conn.execute(
                    update(OrderRow)
                    .where(OrderRow.id.in_([r.id for r in rows]))
                    .values(published_at=now)
                )
        return [OrderKey(r.issuer, r.order_id) for r in rows]

    def mark_unpublished(self, key: OrderKey) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(OrderRow)
                .where(OrderRow.issuer == key.issuer, OrderRow.order_id == key.order_id)
                .values(published_at=None)
            )

    def get(self, key: OrderKey) -> OrderRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(OrderRow.__table__).where(
                    OrderRow.issuer == key.issuer, OrderRow.order_id == key.order_id
                )
            ).first()
        return _record(row) if row is not None else None

    def timeline(self, key: OrderKey) -> list[AuditEntry]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(InvoiceLogRow.__table__)
                .where(InvoiceLogRow.order_key == str(key))
                .order_by(InvoiceLogRow.id)
            ).all()
        return [
            AuditEntry(
                r.id, r.status, r.payload_in, r.response_out, _aware(r.created_at) or r.created_at
            )
            for r in rows
        ]

    def reopen(self, key: OrderKey, note: StepNote) -> OrderRecord | None:
        now = self._clock()
        with self._engine.begin() as conn:
            row = conn.execute(
                update(OrderRow)
                .where(
                    OrderRow.issuer == key.issuer,
                    OrderRow.order_id == key.order_id,
                    OrderRow.state == State.FAILED.value,
                )
                .values(
                    state=State.EN_ESPERA.value,
                    attempts=0,
                    due_at=now,
                    published_at=None,
                    finished_at=None,
                    reopened_at=now,
                    updated_at=now,
                )
                .returning(*OrderRow.__table__.c)
            ).first()
            if row is None:
                return None
            SqlAuditLog(conn).save_log(
                note.status, {"order_key": str(key), "order": row.payload}, note.response
            )
        return _record(row)


def _numbering_warnings(
    numbering: NumberingRange, value: int, today: date, warn_remaining: int, warn_days: int
) -> list[str]:
    warnings = []
    remaining = numbering.last - value
    if remaining < warn_remaining:
        warnings.append(
            f"numbering range {numbering.prefix} has {remaining} numbers left "
            f"(ends at {numbering.last})"
        )
    days_left = (numbering.valid_to - today).days
    if days_left <= warn_days:
        warnings.append(
            f"numbering resolution {numbering.resolution} expires in {days_left} days "
            f"({numbering.valid_to})"
        )
    return warnings
