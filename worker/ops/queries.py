"""Read-only SQL over `documents`, `invoice_log`, `intake_refusals` and `numbering_ranges`
(SQLAlchemy Core).

Each function takes an open connection and runs one statement, shaped to the indexes the
migrations create: documents(state, updated_at), documents(due_at) partial,
invoice_log(created_at), invoice_log(order_key, id), intake_refusals(created_at).
Figures count documents and what happened to them; refused input is counted apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select

from adapters.db.models import DocumentRow, IntakeRefusalRow, InvoiceLogRow
from adapters.db.store import on_timeline
from domain.store import State

ORDERS = DocumentRow.__table__
AUDIT = InvoiceLogRow.__table__
REFUSALS = IntakeRefusalRow.__table__
OPEN_STATES = (State.PENDIENTE.value, State.PROCESANDO.value, State.EN_ESPERA.value)
OUTCOME_STATUSES = ("SUCCESS", "FAILED")


def aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class OrderLine:
    """What the operator views show about one order (never its payload)."""

    key: str
    kind: str
    state: str
    gateway: str
    number: str | None
    attempts: int
    maybe_sent: bool
    due_at: datetime | None
    reason: dict[str, Any] | None
    cufe: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_key": self.key,
            "document_type": self.kind,
            "state": self.state,
            "gateway": self.gateway,
            "number": self.number,
            "attempts": self.attempts,
            "maybe_sent": self.maybe_sent,
            "due_at": _iso(self.due_at),
            "reason": self.reason,
            "cufe": self.cufe,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "finished_at": _iso(self.finished_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


_LINE_COLUMNS = (
    ORDERS.c.issuer,
    ORDERS.c.order_id,
    ORDERS.c.kind,
    ORDERS.c.state,
    ORDERS.c.gateway,
    ORDERS.c.number,
    ORDERS.c.attempts,
    ORDERS.c.maybe_sent,
    ORDERS.c.due_at,
    ORDERS.c.reason,
    ORDERS.c.cufe,
    ORDERS.c.created_at,
    ORDERS.c.updated_at,
    ORDERS.c.finished_at,
)


def _line(row: Any) -> OrderLine:
    created, updated = aware(row.created_at), aware(row.updated_at)
    assert created is not None and updated is not None
    return OrderLine(
        key=f"{row.issuer}:{row.order_id}",
        kind=row.kind,
        state=row.state,
        gateway=row.gateway,
        number=row.number,
        attempts=int(row.attempts),
        maybe_sent=bool(row.maybe_sent),
        due_at=aware(row.due_at),
        reason=row.reason,
        cufe=row.cufe,
        created_at=created,
        updated_at=updated,
        finished_at=aware(row.finished_at),
    )


def list_orders(
    conn: Connection,
    states: Sequence[str],
    since: datetime | None,
    limit: int,
    issuer: str | None = None,
) -> list[OrderLine]:
    """Orders last changed at or after `since`, newest change first (of one issuer when
    `issuer` is given)."""
    query = select(*_LINE_COLUMNS).order_by(ORDERS.c.updated_at.desc()).limit(limit)
    if issuer is not None:
        query = query.where(ORDERS.c.issuer == issuer)
    if states:
        query = query.where(ORDERS.c.state.in_(list(states)))
    if since is not None:
        query = query.where(ORDERS.c.updated_at >= since)
    return [_line(row) for row in conn.execute(query)]


def open_orders_accepted_before(
    conn: Connection, before: datetime, limit: int, issuer: str | None = None
) -> list[OrderLine]:
    """Orders not final yet that were accepted before `before`, oldest first."""
    query = (
        select(*_LINE_COLUMNS)
        .where(ORDERS.c.state.in_(OPEN_STATES), ORDERS.c.created_at < before)
        .order_by(ORDERS.c.created_at)
        .limit(limit)
    )
    if issuer is not None:
        query = query.where(ORDERS.c.issuer == issuer)
    return [_line(row) for row in conn.execute(query)]


def count_by_issuer_and_state(conn: Connection) -> dict[str, dict[str, int]]:
    """Documents by issuer, then by state (every state, zeros included)."""
    query = select(ORDERS.c.issuer, ORDERS.c.state, func.count()).group_by(
        ORDERS.c.issuer, ORDERS.c.state
    )
    found: dict[str, dict[str, int]] = {}
    for issuer, state, count in conn.execute(query):
        found.setdefault(issuer, dict.fromkeys((s.value for s in State), 0))[state] = int(count)
    return dict(sorted(found.items()))


def count_by_state(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(ORDERS.c.state, func.count()).group_by(ORDERS.c.state))
    counts = dict.fromkeys((s.value for s in State), 0)
    counts.update({state: int(n) for state, n in rows})
    return counts


def failures_by_kind(conn: Connection) -> dict[str, int]:
    """FAILED orders by the kind of their reason (rejected, invalid_order, ...)."""
    kind = ORDERS.c.reason["error"].as_string()
    rows = conn.execute(
        select(kind, func.count()).where(ORDERS.c.state == State.FAILED.value).group_by(kind)
    )
    return {str(k or "unknown"): int(n) for k, n in rows}


@dataclass(frozen=True)
class RuleCount:
    code: str
    text: str
    orders: int


def rejections_by_rule(conn: Connection) -> list[RuleCount]:
    """FAILED orders the authority rejected, counted per rule code (an order may carry several).

    The rule lists are read in batches through a server-side cursor and counted here, which
    works the same on PostgreSQL and SQLite.
    """
    rejected = and_(
        ORDERS.c.state == State.FAILED.value, ORDERS.c.reason["error"].as_string() == "rejected"
    )
    counts: Counter[str] = Counter()
    texts: dict[str, str] = {}
    result = conn.execution_options(yield_per=500).execute(select(ORDERS.c.reason).where(rejected))
    for (reason,) in result:
        seen = set()
        for rule in (reason or {}).get("rules") or []:
            code = str(rule.get("code") or "?")
            if code in seen or rule.get("kind") not in (None, "Rechazo"):
                continue
            seen.add(code)
            counts[code] += 1
            texts.setdefault(code, str(rule.get("text") or ""))
    return [RuleCount(code, texts[code], n) for code, n in counts.most_common()]


def oldest_unfinished(conn: Connection) -> tuple[str, str, datetime] | None:
    """(order key, state, accepted at) of the oldest order that is not final."""
    row = conn.execute(
        select(ORDERS.c.issuer, ORDERS.c.order_id, ORDERS.c.state, ORDERS.c.created_at)
        .where(ORDERS.c.state.in_(OPEN_STATES))
        .order_by(ORDERS.c.created_at)
        .limit(1)
    ).first()
    if row is None:
        return None
    created = aware(row.created_at)
    assert created is not None
    return f"{row.issuer}:{row.order_id}", row.state, created


def _minute(conn: Connection, column: ColumnElement[datetime]) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return func.date_trunc("minute", column)
    return func.strftime("%Y-%m-%d %H:%M:00", column)


def outcomes_per_minute(conn: Connection, since: datetime) -> dict[datetime, dict[str, int]]:
    """Documents that ended SUCCESS / FAILED per minute since `since` (the worker's throughput).

    Counted from the documents, so a document counts once, at the time it ended."""
    minute = _minute(conn, ORDERS.c.updated_at).label("minute")
    rows = conn.execute(
        select(minute, ORDERS.c.state, func.count())
        .where(ORDERS.c.state.in_(OUTCOME_STATUSES), ORDERS.c.updated_at >= since)
        .group_by(minute, ORDERS.c.state)
    )
    per_minute: dict[datetime, dict[str, int]] = {}
    for at, state, n in rows:
        when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        bucket = per_minute.setdefault(aware(when) or when, dict.fromkeys(OUTCOME_STATUSES, 0))
        bucket[state] = int(n)
    return per_minute


def refusals_by_status(
    conn: Connection, since: datetime | None = None, until: datetime | None = None
) -> dict[str, int]:
    """Input the intake refused (RECHAZADO_ENTRADA, CONFLICTO), apart from the documents."""
    query = select(REFUSALS.c.status, func.count()).group_by(REFUSALS.c.status)
    if since is not None:
        query = query.where(REFUSALS.c.created_at >= since)
    if until is not None:
        query = query.where(REFUSALS.c.created_at < until)
    counts = {"RECHAZADO_ENTRADA": 0, "CONFLICTO": 0}
    counts.update({status: int(n) for status, n in conn.execute(query)})
    return counts


def _period(
    table: Any, start: datetime, end: datetime, issuer: str | None
) -> list[ColumnElement[bool]]:
    conditions = [table.c.created_at >= start, table.c.created_at < end]
    if issuer is not None:  # keys are written ISSUER:ORDER_ID[/NOTE_ID]
        conditions.append(table.c.order_key.startswith(f"{issuer}:", autoescape=True))
    return conditions


def count_audit_rows(
    conn: Connection,
    start: datetime,
    end: datetime,
    refusals: bool = False,
    issuer: str | None = None,
) -> int:
    table = REFUSALS if refusals else AUDIT
    query = select(func.count()).where(*_period(table, start, end, issuer))
    return int(conn.execute(query).scalar_one())


def audit_rows(
    conn: Connection,
    start: datetime,
    end: datetime,
    batch: int = 1000,
    refusals: bool = False,
    issuer: str | None = None,
) -> Iterator[Any]:
    """The audit trail (or, with `refusals`, the input the intake refused) in [start, end) in
    id order, of one issuer when `issuer` is given, through a server-side cursor: at most
    `batch` rows are held in memory at once."""
    table = REFUSALS if refusals else AUDIT
    query = select(table).where(*_period(table, start, end, issuer)).order_by(table.c.id)
    yield from conn.execution_options(yield_per=batch).execute(query)


def audit_counts_by_status(conn: Connection, start: datetime, end: datetime) -> dict[str, int]:
    """Lifecycle rows of documents written in [start, end), by status."""
    rows = conn.execute(
        select(AUDIT.c.status, func.count())
        .where(AUDIT.c.created_at >= start, AUDIT.c.created_at < end, on_timeline())
        .group_by(AUDIT.c.status)
    )
    return {status: int(n) for status, n in rows}


@dataclass(frozen=True)
class Attempt:
    """One gateway attempt: from its PROCESANDO row to the row that recorded its outcome."""

    outcome: str
    seconds: float


def attempts_finished(conn: Connection, start: datetime, end: datetime) -> list[Attempt]:
    """Attempts whose outcome row was written in [start, end), paired with the PROCESANDO row
    that opened them: the same document and the same attempt number. Rows written by a
    worker that had lost its claim are not an attempt's outcome and are left out."""
    outcome = AUDIT.alias("outcome")
    opened = AUDIT.alias("opened")
    earlier = AUDIT.alias("earlier")
    # The latest PROCESANDO row of that attempt (an operator's retry numbers attempts anew).
    opened_id = (
        select(func.max(earlier.c.id))
        .where(
            earlier.c.order_key == outcome.c.order_key,
            earlier.c.id < outcome.c.id,
            earlier.c.status == "PROCESANDO",
            earlier.c.response_out["attempt"].as_integer()
            == outcome.c.response_out["attempt"].as_integer(),
        )
        .correlate(outcome)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(outcome.c.status, outcome.c.created_at, opened.c.created_at.label("opened_at"))
        .select_from(outcome)
        .join(opened, opened.c.id == opened_id)
        .where(
            outcome.c.created_at >= start,
            outcome.c.created_at < end,
            outcome.c.status.in_(("SUCCESS", "FAILED", "EN_ESPERA", "REINTENTO")),
            outcome.c.order_key.is_not(None),
            outcome.c.response_out["claim_lost"].as_boolean().is_(None),
            outcome.c.response_out["attempt"].as_integer().is_not(None),
        )
    )
    attempts = []
    for status, closed_at, opened_at in rows:
        closed, began = aware(closed_at), aware(opened_at)
        assert closed is not None and began is not None
        attempts.append(Attempt(status, max(0.0, (closed - began).total_seconds())))
    return attempts
