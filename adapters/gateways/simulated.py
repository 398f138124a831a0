"""A simulated authority for the pipeline: configurable latency and faults, and a count of
submissions per document kept in a SQLite file, so every worker process on the machine sees
the same authority and tests can prove that nothing was submitted twice.

Fault modes:
- `unavailable_rate`: refuse before processing (GatewayUnavailable; nothing recorded);
- `drop_rate`: process and accept, then lose the answer (OutcomeUnknown);
- `pending_checks`: a new document stays "pending" for that many status questions;
- `fail_first`: the first N calls (submissions or status questions, counted across every
  process sharing the books) raise RuntimeError before doing anything: an error no gateway
  maps, as a bug or an unforeseen answer of a real authority would be;
- an order whose id contains `RECHAZO` is rejected with DIAN rule FAD06.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from domain.errors import GatewayUnavailable, OutcomeUnknown
from domain.ports import GatewayResult, Rule, Submission, Verdict

BUSY_TIMEOUT = 30.0  # seconds a statement waits for another process's write lock
SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    reference TEXT PRIMARY KEY,
    submissions INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    checks_left INTEGER NOT NULL,
    cufe TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    name TEXT PRIMARY KEY,
    raised INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class SimulatedConfig:
    state_path: Path
    latency: float = 0.0
    unavailable_rate: float = 0.0
    drop_rate: float = 0.0
    pending_checks: int = 0
    fail_first: int = 0


class SimulatedAuthority:
    """Direct access to the simulated authority's books (tests, demo, benchmarks)."""

    def __init__(self, state_path: Path) -> None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        self._path = state_path
        self._local = threading.local()
        self._open_books()

    def _open_books(self) -> None:
        """Switch the file to WAL and create the table, safely when many processes open a new
        file at once (a worker's pool starting).

        A connection that reads before it writes cannot wait for another writer without risking
        a deadlock, so SQLite answers it "database is locked" at once, busy timeout or not. The
        WAL switch is such a statement: it is tried again, briefly, until the other opener is
        done. The table is created in an immediate transaction, which takes the write lock
        before reading and so waits its turn instead."""
        conn = self._connect()
        deadline = time.monotonic() + BUSY_TIMEOUT
        while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        with self._transaction() as tx:
            for statement in SCHEMA.split(";"):
                tx.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        """One connection per process and thread, kept: opening one per call cost more than
        the bookkeeping itself."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def record(self, reference: str, verdict: Verdict, checks: int, cufe: str) -> int:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO documents VALUES (?, 1, ?, ?, ?) ON CONFLICT(reference) "
                "DO UPDATE SET submissions = submissions + 1",
                (reference, verdict.value, checks, cufe),
            )
            row = conn.execute(
                "SELECT submissions FROM documents WHERE reference = ?", (reference,)
            ).fetchone()
        return int(row[0])

    def lookup(self, reference: str) -> tuple[Verdict, str] | None:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT verdict, checks_left, cufe FROM documents WHERE reference = ?", (reference,)
            ).fetchone()
            if row is not None and row[1] > 0:
                conn.execute(
                    "UPDATE documents SET checks_left = checks_left - 1 WHERE reference = ?",
                    (reference,),
                )
        if row is None:
            return None
        return (Verdict.PENDING if row[1] > 0 else Verdict(row[0])), row[2]

    def take_fault(self, name: str, limit: int) -> bool:
        """True for the first `limit` calls with this name, counted in the books."""
        with self._transaction() as conn:
            row = conn.execute("SELECT raised FROM faults WHERE name = ?", (name,)).fetchone()
            raised = int(row[0]) if row else 0
            if raised >= limit:
                return False
            conn.execute(
                "INSERT INTO faults VALUES (?, 1) "
                "ON CONFLICT(name) DO UPDATE SET raised = raised + 1",
                (name,),
            )
        return True

    def submissions(self) -> dict[str, int]:
        rows = self._connect().execute("SELECT reference, submissions FROM documents").fetchall()
        return {ref: int(n) for ref, n in rows}


class SimulatedGateway:
    name = "simulated"

    def __init__(self, config: SimulatedConfig, rng: random.Random | None = None) -> None:
        self._config = config
        self._authority = SimulatedAuthority(config.state_path)
        self._rng = rng or random.Random()

    def submit(self, submission: Submission) -> GatewayResult:
        self._pause()
        self._unexpected_failure("submit")
        if self._rng.random() < self._config.unavailable_rate:
            raise GatewayUnavailable("simulated authority: service unavailable (HTTP 503)")
        reference = submission.reference_code
        rejected = "RECHAZO" in submission.key.order_id.upper()
        verdict = Verdict.REJECTED if rejected else Verdict.ACCEPTED
        cufe = _fake_cufe(submission)
        count = self._authority.record(reference, verdict, self._config.pending_checks, cufe)
        if self._rng.random() < self._config.drop_rate:
            raise OutcomeUnknown("simulated authority: connection dropped after processing")
        if count > 1:
            # what DIAN answers for a number it already has (rule 90): ours, so accepted
            return self._answer(verdict, cufe, submission, duplicate=True)
        if self._config.pending_checks > 0:
            return GatewayResult(Verdict.PENDING, {"cufe": cufe}, response={"status": "pending"})
        return self._answer(verdict, cufe, submission)

    def status(self, submission: Submission) -> GatewayResult:
        self._pause()
        self._unexpected_failure("status")
        if self._rng.random() < self._config.unavailable_rate:
            raise GatewayUnavailable("simulated authority: service unavailable (HTTP 503)")
        found = self._authority.lookup(submission.reference_code)
        if found is None:
            return GatewayResult(Verdict.NOT_FOUND, response={"status": "not_found"})
        verdict, cufe = found
        if verdict is Verdict.PENDING:
            return GatewayResult(Verdict.PENDING, {"cufe": cufe}, response={"status": "pending"})
        return self._answer(verdict, cufe, submission)

    def _answer(
        self, verdict: Verdict, cufe: str, submission: Submission, duplicate: bool = False
    ) -> GatewayResult:
        refs = {"cufe": cufe}
        if submission.number is not None:
            refs["number"] = str(submission.number)
        if verdict is Verdict.REJECTED:
            rule = Rule("FAD06", "Rechazo", "Valor del CUFE no está calculado correctamente.")
            return GatewayResult(verdict, refs, (rule,), {"StatusCode": "99"})
        response = {"StatusCode": "00", "StatusDescription": "Procesado Correctamente."}
        if duplicate:
            response["duplicate"] = "Regla: 90, documento procesado anteriormente (el nuestro)"
        return GatewayResult(verdict, refs, (), response)

    def _unexpected_failure(self, call: str) -> None:
        limit = self._config.fail_first
        if limit > 0 and self._authority.take_fault("unexpected", limit):
            raise RuntimeError(f"simulated authority: unexpected failure in {call}")

    def _pause(self) -> None:
        if self._config.latency > 0:
            time.sleep(self._config.latency)


def _fake_cufe(submission: Submission) -> str:
    return hashlib.sha384(f"{submission.reference_code}|{submission.number}".encode()).hexdigest()
