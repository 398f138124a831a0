"""Deliveries of the buyer's copy and the files they are made of, on SQLAlchemy Core.

A delivery is created with its document's SUCCESS (`record_copy`, inside that transaction);
each attempt is a claim (ENVIANDO + an ENTREGA row) and an end (its state + a row), two
short transactions around the call to the mail server. Audit rows name the document, the
channel, the round and the attempt: never the address or the message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, insert, or_, select, update
from sqlalchemy.engine import Row

from adapters.db.audit import SqlAuditLog
from adapters.db.models import DeliveryRow, DocumentFileRow, DocumentRow
from domain.delivery import (
    Channel,
    CopyRequest,
    Delivery,
    DeliveryAudit,
    DeliveryClaim,
    DeliveryNote,
    DeliveryState,
)
from domain.ports import OrderKey

DELIVERIES = cast(Table, DeliveryRow.__table__)
FILES = cast(Table, DocumentFileRow.__table__)
DOCUMENTS = cast(Table, DocumentRow.__table__)
OPEN = (DeliveryState.PENDIENTE.value, DeliveryState.ENVIANDO.value)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def record_copy(
    conn: Connection,
    document_id: int,
    key: OrderKey,
    files: Mapping[str, bytes],
    copy: CopyRequest | None,
    now: datetime,
) -> None:
    """Keep an accepted document's files and, when asked, its pending delivery."""
    for name, content in files.items():
        conn.execute(insert(FILES).values(document_id=document_id, name=name, content=content))
    if copy is None:
        return
    conn.execute(
        insert(DELIVERIES).values(
            document_id=document_id,
            order_key=str(key),
            channel=copy.channel.value,
            state=DeliveryState.PENDIENTE.value,
            recipient=copy.recipient,
            due_at=now,
            created_at=now,
            updated_at=now,
        )
    )


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        key=OrderKey.parse(row.order_key),
        channel=Channel(row.channel),
        state=DeliveryState(row.state),
        recipient=row.recipient,
        round=row.round,
        attempts=row.attempts,
        due_at=_aware(row.due_at),
        reason=row.reason,
        created_at=cast(datetime, _aware(row.created_at)),
        delivered_at=_aware(row.delivered_at),
    )


def _audit(conn: Connection, delivery: Delivery, attempt: int, note: DeliveryNote) -> None:
    payload = {
        "order_key": str(delivery.key),
        "delivery": {
            "channel": delivery.channel.value,
            "round": delivery.round,
            "attempt": attempt,
        },
    }
    SqlAuditLog(conn).save_log(note.status.value, payload, dict(note.response))


@dataclass(frozen=True)
class Resent:
    delivery: Delivery | None
    reason: str | None = None  # why not, when `delivery` is None


class SqlDeliveryStore:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def claim_delivery(self, key: OrderKey, lease_seconds: float) -> DeliveryClaim | None:
        now = self._clock()
        token = str(uuid.uuid4())
        lease_until = now + timedelta(seconds=lease_seconds)
        with self._engine.begin() as conn:
            # One compare-and-set: due, not final, and not under another worker's lease.
            claimed = conn.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.order_key == str(key),
                    DELIVERIES.c.state.in_(OPEN),
                    or_(DELIVERIES.c.due_at.is_(None), DELIVERIES.c.due_at <= now),
                )
                .values(
                    state=DeliveryState.ENVIANDO.value,
                    attempts=DELIVERIES.c.attempts + 1,
                    claim_token=token,
                    due_at=lease_until,
                    updated_at=now,
                )
                .returning(*DELIVERIES.c)
            ).first()
            if claimed is None:
                return None
            delivery = _delivery(claimed)
            note = DeliveryNote(DeliveryAudit.ENTREGA, {"lease_until": lease_until.isoformat()})
            _audit(conn, delivery, delivery.attempts, note)
        return DeliveryClaim(delivery, token, delivery.attempts)

    def end_delivery(
        self,
        claim: DeliveryClaim,
        state: DeliveryState,
        note: DeliveryNote,
        due_at: datetime | None,
    ) -> bool:
        now = self._clock()
        values: dict[str, Any] = {
            "state": state.value,
            "claim_token": None,
            "due_at": due_at,
            "updated_at": now,
            "reason": None if state is DeliveryState.ENTREGADO else dict(note.response),
        }
        if state is DeliveryState.ENTREGADO:
            values["delivered_at"] = now
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.order_key == str(claim.delivery.key),
                    DELIVERIES.c.claim_token == claim.token,
                )
                .values(**values)
                .returning(DELIVERIES.c.document_id)
            ).first()
            response = dict(note.response)
            if changed is None:
                response["claim_lost"] = True
            _audit(conn, claim.delivery, claim.attempt, DeliveryNote(note.status, response))
        return changed is not None

    def files(self, key: OrderKey) -> dict[str, bytes]:
        """The files kept with the document of `key` (by name)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(FILES.c.name, FILES.c.content)
                .join(DELIVERIES, DELIVERIES.c.document_id == FILES.c.document_id)
                .where(DELIVERIES.c.order_key == str(key))
            ).all()
            if not rows:
                rows = conn.execute(
                    select(FILES.c.name, FILES.c.content)
                    .join(DOCUMENTS, DOCUMENTS.c.id == FILES.c.document_id)
                    .where(*_document_is(key))
                ).all()
        return {r.name: bytes(r.content) for r in rows}

    def get_delivery(self, key: OrderKey) -> Delivery | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(DELIVERIES).where(DELIVERIES.c.order_key == str(key))).first()
        return _delivery(row) if row is not None else None

    def due_for_publish(self, now: datetime, republish_after: float, limit: int) -> list[OrderKey]:
        """Deliveries due and without a wake-up on its way (marked as sent one now)."""
        stale = now - timedelta(seconds=republish_after)
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(DELIVERIES.c.document_id, DELIVERIES.c.order_key)
                .where(
                    DELIVERIES.c.due_at.is_not(None),
                    DELIVERIES.c.due_at <= now,
                    or_(
                        DELIVERIES.c.published_at.is_(None),
                        DELIVERIES.c.published_at < DELIVERIES.c.due_at,
                        DELIVERIES.c.published_at < stale,
                    ),
                )
                .order_by(DELIVERIES.c.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                conn.execute(
                    update(DELIVERIES)
                    .where(DELIVERIES.c.document_id.in_([r.document_id for r in rows]))
                    .values(published_at=now)
                )
        return [OrderKey.parse(r.order_key) for r in rows]

    def mark_published(self, key: OrderKey) -> bool:
        """A wake-up is on its way (the reconciler need not send one); False when the
        document has no pending copy."""
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.order_key == str(key),
                    DELIVERIES.c.state == DeliveryState.PENDIENTE.value,
                )
                .values(published_at=self._clock())
            )
        return bool(changed.rowcount)

    def mark_unpublished(self, key: OrderKey) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.order_key == str(key))
                .values(published_at=None)
            )

    def resend(self, key: OrderKey, recipient: str | None) -> Resent:
        """A new round for the document's copy (to `recipient` when given): PENDIENTE now,
        with a new Message-ID. Refused while an attempt is under way."""
        now = self._clock()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(DELIVERIES).where(DELIVERIES.c.order_key == str(key)).with_for_update()
            ).first()
            if row is None:
                return Resent(None, "no buyer's copy to deliver for this document")
            if row.state == DeliveryState.ENVIANDO.value:
                due = _aware(row.due_at)
                if due is not None and due > now:
                    return Resent(None, "a delivery attempt is under way; try again shortly")
            values: dict[str, Any] = {
                "state": DeliveryState.PENDIENTE.value,
                "round": row.round + 1,
                "attempts": 0,
                "claim_token": None,
                "due_at": now,
                "published_at": None,
                "reason": None,
                "updated_at": now,
                "delivered_at": None,
            }
            if recipient:
                values["recipient"] = recipient
            changed = conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.document_id == row.document_id)
                .values(**values)
                .returning(*DELIVERIES.c)
            ).one()
            delivery = _delivery(changed)
            note = DeliveryNote(
                DeliveryAudit.ENTREGA_REINTENTO,
                {"resend": True, "new_address": bool(recipient), "previous_state": row.state},
            )
            _audit(conn, delivery, 0, note)
        return Resent(delivery)

    def undelivered(self, created_before: datetime, limit: int = 100) -> list[Delivery]:
        """Copies not delivered (pending, being sent, or refused) since before
        `created_before`, oldest first (for `stuck`)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(DELIVERIES)
                .where(
                    DELIVERIES.c.state != DeliveryState.ENTREGADO.value,
                    DELIVERIES.c.created_at < created_before,
                )
                .order_by(DELIVERIES.c.created_at)
                .limit(limit)
            ).all()
        return [_delivery(r) for r in rows]


def _document_is(key: OrderKey) -> list[Any]:
    conditions = [DOCUMENTS.c.issuer == key.issuer, DOCUMENTS.c.order_id == key.order_id]
    if key.note is None:
        conditions.append(DOCUMENTS.c.note_id.is_(None))
    else:
        conditions.append(DOCUMENTS.c.note_id == key.note)
    return conditions
