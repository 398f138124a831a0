"""The audit trail as evidence: recompute its hash chains, take checkpoints of its head.

Every `invoice_log` row carries `chain_hash`, SHA-256 over the previous row of its document's
hash and the row's own content, written by the database's insert trigger (migration 0008).
`audit_checkpoint()` folds every row's hash, in id order, into a global chain. `verify`
recomputes both here, with its own copy of the formula rather than the database's function:

- a row whose hash does not match its content and the row before it was altered, or a row of
  its document before it was deleted or inserted out of order (or it was written around the
  trigger);
- a document whose state differs from the last row of its trail that counts lost its final row;
- a checkpoint whose rows no longer fold to its head hash lost, gained or rehashed a row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

# The row's content as the trigger hashes it (migration 0008, `invoice_log_digest`).
_ROW_DIGEST = r"""
encode(sha256(decode(coalesce(prev_hash, ''), 'hex') || convert_to(concat_ws(E'\x1f',
    id::text, status, coalesce(order_key, ''), payload_in::text,
    coalesce(response_out::text, ''),
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24\:MI\:SS.US')), 'UTF8')), 'hex')
"""

_BROKEN_LINKS = text(
    f"""
    WITH linked AS (
        SELECT id, order_key, status, payload_in, response_out, created_at, chain_hash,
               lag(id) OVER doc AS prev_id, lag(chain_hash) OVER doc AS prev_hash
        FROM invoice_log WINDOW doc AS (PARTITION BY order_key ORDER BY id)
    )
    SELECT id, order_key, status, prev_id, chain_hash IS NULL AS unhashed FROM linked
    WHERE created_at >= :since AND chain_hash IS DISTINCT FROM {_ROW_DIGEST}
    ORDER BY id
    """
)

# Documents whose state is not the last row of their trail that counts (rows of a worker that
# had lost its claim do not, nor the buyer's copy's ENTREGA… rows after the SUCCESS).
_STATE_OFF_TRAIL = text(
    """
    SELECT d.key, d.state, last.status FROM (
        SELECT issuer || ':' || order_id || coalesce('/' || note_id, '') AS key, state
        FROM documents WHERE updated_at >= :since
    ) d
    LEFT JOIN LATERAL (
        SELECT l.status FROM invoice_log l
        WHERE l.order_key = d.key
          AND NOT coalesce((l.response_out ->> 'claim_lost')::boolean, false)
          AND l.status NOT LIKE 'ENTREGA%'
        ORDER BY l.id DESC LIMIT 1
    ) last ON true
    WHERE last.status IS NULL
       OR (d.state IN ('SUCCESS', 'FAILED') AND last.status <> d.state)
       OR (d.state NOT IN ('SUCCESS', 'FAILED') AND last.status IN ('SUCCESS', 'FAILED'))
    ORDER BY d.key
    """
)


@dataclass(frozen=True)
class Checkpoint:
    id: int
    upto_id: int
    row_count: int
    head_hash: str
    prev_hash: str | None
    created_at: datetime


@dataclass(frozen=True)
class Finding:
    """One thing the trail's evidence does not support: `kind` is `row`, `document` or
    `checkpoint`; `ref` the row id, document key or checkpoint id."""

    kind: str
    ref: str
    message: str


@dataclass(frozen=True)
class Verification:
    rows: int
    checkpoints: int
    unsealed_rows: int  # rows after the last checkpoint: chained per document only
    findings: list[Finding]


def take_checkpoint(engine: Engine) -> Checkpoint:
    with engine.begin() as conn:
        row = conn.execute(text("SELECT * FROM audit_checkpoint()")).one()
    return Checkpoint(**row._mapping)


def verify(engine: Engine, since: datetime | None = None, head: str | None = None) -> Verification:
    """Recompute the trail's chains from `since` on (everything without it); `head`, a head
    hash kept elsewhere, must be one of the checkpoints'."""
    start = since or datetime(1970, 1, 1)
    with engine.connect() as conn:
        findings = _links(conn, start) + _states(conn, start)
        checkpoints = [
            Checkpoint(**r._mapping)
            for r in conn.execute(text("SELECT * FROM audit_checkpoints ORDER BY id"))
        ]
        first_id = conn.execute(
            text("SELECT min(id) FROM invoice_log WHERE created_at >= :since"), {"since": start}
        ).scalar()
        rows = conn.execute(
            text("SELECT count(*) FROM invoice_log WHERE created_at >= :since"), {"since": start}
        ).scalar_one()
        findings += _global(conn, checkpoints, first_id)
        sealed = checkpoints[-1].upto_id if checkpoints else 0
        unsealed = conn.execute(
            text("SELECT count(*) FROM invoice_log WHERE id > :sealed"), {"sealed": sealed}
        ).scalar_one()
    if head is not None and head not in {c.head_hash for c in checkpoints}:
        findings.append(
            Finding("checkpoint", "head", f"no checkpoint has the head hash {head}: rewritten")
        )
    return Verification(int(rows), len(checkpoints), int(unsealed), findings)


def _links(conn: Connection, since: datetime) -> list[Finding]:
    findings = []
    for r in conn.execute(_BROKEN_LINKS, {"since": since}):
        what = f"row {r.id} ({r.status} of {r.order_key})"
        if r.unhashed:
            message = f"{what} has no hash: it was written around the insert trigger"
        else:
            before = f"row {r.prev_id}" if r.prev_id is not None else "no row"
            message = (
                f"{what} does not match its content chained to {before}: it was altered, or a "
                "row of its document before it was deleted or inserted out of order"
            )
        findings.append(Finding("row", str(r.id), message))
    return findings


def _states(conn: Connection, since: datetime) -> list[Finding]:
    return [
        Finding(
            "document",
            r.key,
            f"document {r.key} is {r.state} but its trail ends with {r.status or 'no row'}",
        )
        for r in conn.execute(_STATE_OFF_TRAIL, {"since": since})
    ]


def _global(conn: Connection, checkpoints: list[Checkpoint], first_id: int | None) -> list[Finding]:
    """Fold the rows' hashes from the last checkpoint before `first_id` on, checkpoint by
    checkpoint; each must land on its head hash."""
    findings: list[Finding] = []
    previous: Checkpoint | None = None
    for checkpoint in checkpoints:
        if first_id is not None and checkpoint.upto_id < first_id:
            previous = checkpoint
            continue
        if checkpoint.prev_hash != (previous.head_hash if previous else None):
            findings.append(
                Finding(
                    "checkpoint",
                    str(checkpoint.id),
                    f"checkpoint {checkpoint.id} does not follow the one before it",
                )
            )
        after = previous.upto_id if previous else 0
        head = bytes.fromhex(previous.head_hash) if previous else b""
        rows = conn.execute(
            text(
                "SELECT chain_hash FROM invoice_log WHERE id > :after AND id <= :upto ORDER BY id"
            ),
            {"after": after, "upto": checkpoint.upto_id},
        )
        count = 0
        for (chain_hash,) in rows:
            head = hashlib.sha256(head + bytes.fromhex(chain_hash or "")).digest()
            count += 1
        if head.hex() != checkpoint.head_hash or count != checkpoint.row_count:
            findings.append(
                Finding(
                    "checkpoint",
                    str(checkpoint.id),
                    f"rows {after + 1}..{checkpoint.upto_id} no longer fold to checkpoint "
                    f"{checkpoint.id} ({checkpoint.row_count} rows then, {count} now): a row "
                    "was deleted, inserted or rehashed",
                )
            )
        previous = checkpoint
    return findings
