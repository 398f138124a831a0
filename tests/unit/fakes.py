"""Hand-written fakes of the ports, for use-case tests without I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.delivery import CopyRequest
from domain.documents import DocumentPlan
from domain.errors import FieldError, OrderConflict
from domain.order import Order
from domain.ports import DocumentNumber, GatewayResult, OrderKey, Submission
from domain.store import (
    Acceptance,
    AuditEntry,
    BatchAnswer,
    Claim,
    DocumentRecord,
    RefusalStatus,
    Refused,
    State,
    StepNote,
    TimelinePage,
    ValidOrder,
)


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class _Row:
    record: DocumentRecord
    token: str | None = None
    published_at: datetime | None = None


class FakeStore:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.rows: dict[OrderKey, _Row] = {}
        self.audit: list[tuple[str | None, str, dict[str, Any] | None]] = []
        self.refused: list[tuple[str | None, str, dict[str, Any] | None]] = []
        self.next_number = 1
        self.files: dict[OrderKey, dict[str, bytes]] = {}
        self.copies: dict[OrderKey, CopyRequest] = {}

    def accept(self, key: OrderKey, order: Order, gateway: str, plan: DocumentPlan) -> Acceptance:
        if key in self.rows:
            existing = self.rows[key].record
            if existing.fingerprint != order.fingerprint():
                self.refused.append((str(key), RefusalStatus.CONFLICTO.value, None))
                raise OrderConflict(str(key))
            return Acceptance(existing, created=False)
        number = DocumentNumber("SETP", self.next_number) if plan.numbered else None
        self.next_number += 1
        now = self.clock()
        record = DocumentRecord(
            key=key,
            kind=plan.kind,
            state=State.PENDIENTE,
            gateway=gateway,
            payload=order.to_payload(),
            fingerprint=order.fingerprint(),
            issued_at=now,
            number=number,
            attempts=0,
            maybe_sent=False,
            due_at=now,
            references={},
            reason=None,
            created_at=now,
            updated_at=now,
            register=plan.register,
        )
        self.rows[key] = _Row(record, published_at=now)
        self.audit.append((str(key), "RECIBIDO", None))
        return Acceptance(record, created=True)

    def accept_many(self, orders: Sequence[ValidOrder], gateway: str) -> list[BatchAnswer]:
        answers: list[BatchAnswer] = []
        for valid in orders:
            try:
                answers.append(self.accept(valid.key, valid.order, gateway, valid.plan))
            except OrderConflict as exc:
                answers.append(exc)
        return answers

    def refuse(
        self,
        key: OrderKey | None,
        payload: dict[str, Any],
        errors: list[FieldError],
        status: RefusalStatus = RefusalStatus.RECHAZADO_ENTRADA,
    ) -> int:
        self.refused.append((str(key) if key else None, status.value, {"errors": errors}))
        return len(self.refused)

    def refusals(self, key: OrderKey, limit: int = 100) -> Refused:
        return Refused(0, [])

    def claim(self, key: OrderKey, lease_seconds: float) -> Claim | None:
        row = self.rows.get(key)
        now = self.clock()
        if row is None or row.record.state.is_final:
            return None
        if row.record.due_at is not None and row.record.due_at > now:
            return None
        was = row.record.maybe_sent
        attempt = row.record.attempts + 1
        row.record = replace(
            row.record,
            state=State.PROCESANDO,
            attempts=attempt,
            maybe_sent=True,
            due_at=now + timedelta(seconds=lease_seconds),
        )
        row.token = str(uuid.uuid4())
        self.audit.append((str(key), "PROCESANDO", None))
        return Claim(row.record, row.token, attempt, was)

    def _transition(self, claim: Claim, note: StepNote, **changes: Any) -> bool:
        row = self.rows[claim.record.key]
        owned = row.token == claim.token and row.record.state is State.PROCESANDO
        if owned:
            row.record = replace(row.record, **changes)
            row.token = None
        self.audit.append((str(claim.record.key), note.status, note.response))
        return owned

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
        if state is State.SUCCESS:
            self.files[claim.record.key] = dict(files or {})
            if delivery is not None:
                self.copies[claim.record.key] = delivery
        refs = {**claim.record.references, **references}
        return self._transition(
            claim, note, state=state, due_at=None, references=refs, reason=reason
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
        refs = {**claim.record.references, **references}
        sent = {} if maybe_sent is None else {"maybe_sent": maybe_sent}
        owned = self._transition(
            claim, note, state=state, due_at=due_at, references=refs, reason=reason, **sent
        )
        if owned and published:
            self.rows[claim.record.key].published_at = due_at
        return owned

    def due_for_publish(self, now: datetime, republish_after: float, limit: int) -> list[OrderKey]:
        return [k for k, r in self.rows.items() if r.record.due_at and r.record.due_at <= now][
            :limit
        ]

    def mark_unpublished(self, key: OrderKey) -> None:
        self.rows[key].published_at = None

    def get(self, key: OrderKey) -> DocumentRecord | None:
        row = self.rows.get(key)
        return row.record if row else None

    def timeline(self, key: OrderKey) -> list[AuditEntry]:
        return []

    def timeline_page(self, key: OrderKey, after: int | None, limit: int) -> TimelinePage:
        return TimelinePage([], None)

    def reopen(self, key: OrderKey, note: StepNote) -> DocumentRecord | None:
        return None

    def statuses(self, key: OrderKey) -> list[str]:
        return [status for k, status, _ in self.audit if k == str(key)]


class ScriptedGateway:
    """Answers from a script: each call pops the next result or raises the next error."""

    name = "scripted"

    def __init__(
        self,
        submits: list[GatewayResult | Exception],
        statuses: list[GatewayResult | Exception] | None = None,
    ) -> None:
        self.submits = list(submits)
        self.statuses = list(statuses or [])
        self.calls: list[str] = []

    def _next(self, queue: list[GatewayResult | Exception]) -> GatewayResult:
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def submit(self, submission: Submission) -> GatewayResult:
        self.calls.append("submit")
        return self._next(self.submits)

    def status(self, submission: Submission) -> GatewayResult:
        self.calls.append("status")
        return self._next(self.statuses)


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.published: list[OrderKey] = []
        self.fail = fail

    def publish(self, key: OrderKey) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.published.append(key)

    def publish_many(self, keys: Sequence[OrderKey]) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.published.extend(keys)
