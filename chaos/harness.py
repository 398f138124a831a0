"""One isolated deployment per scenario: its own database, Redis, queue, authority and processes.

Workers and beat are the real entry points (`python -m worker worker|beat`), configured only
through the environment, exactly as an operator runs them.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from adapters.db.engine import make_engine
from chaos.rabbitmq import RabbitServer
from chaos.services import PgCluster, RedisServer
from domain.errors import InvalidOrder
from domain.ports import OrderKey
from worker.migrations import upgrade
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FINAL = ("SUCCESS", "FAILED")

FAST_TIMINGS = {
    "WORKER__SOFT_TIME_LIMIT": "8",
    "WORKER__HARD_TIME_LIMIT": "10",
    "WORKER__LEASE_SECONDS": "12",
    "WORKER__VISIBILITY_TIMEOUT": "120",
    "WORKER__RECONCILE_INTERVAL": "1",
    "WORKER__REPUBLISH_AFTER": "5",
    "WORKER__RETRY_BACKOFF_BASE": "0.5",
    "WORKER__RETRY_BACKOFF_MAX": "3",
    "WORKER__CELERY_RETRY_MAX_COUNTDOWN": "5",
    "WORKER__PENDING_POLL_INTERVAL": "1",
    "WORKER__MAX_ATTEMPTS": "200",
    # after an unknown outcome, wait this long before asking the authority (production: 120 s);
    # it must exceed how late an authority may still process a call the client gave up on
    # (the DIAN simulator's injected timeouts answer 1 s after our read timeout)
    "WORKER__OUTCOME_UNKNOWN_DELAY": "6",
}


@dataclass
class Row:
    """One line of the suite's table."""

    scenario: str
    orders: int
    lost: int
    twice: int
    not_final: int
    drain_seconds: float | None
    ok: bool
    notes: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "orders": self.orders,
            "lost": self.lost,
            "submitted_twice": self.twice,
            "not_final": self.not_final,
            "drain_seconds": self.drain_seconds,
            "ok": self.ok,
            "states": self.states,
            "notes": self.notes,
        }


class Deployment:
    def __init__(
        self,
        name: str,
        cluster: PgCluster,
        workdir: Path,
        *,
        redis_server: RedisServer | None = None,
        rabbit: RabbitServer | None = None,
        **overrides: str,
    ) -> None:
        self.name = name
        self.cluster = cluster
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.redis = redis_server or RedisServer(workdir)
        if self.redis.proc is None:
            self.redis.start()
        self.rabbit = rabbit  # the broker when given; Redis then serves only what needs it
        if rabbit is not None and rabbit.proc is None:
            rabbit.start()
        self.database_url = cluster.create_database()
        upgrade(self.database_url)
        self.queue = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "BROKER_URL": rabbit.url if rabbit is not None else self.redis.url,
            "QUEUE": self.queue,
            "GATEWAY": "simulated",
            "SIMULATED__STATE_PATH": str(workdir / "authority.sqlite"),
            "WORKER__POOL": "prefork",
            "WORKER__CONCURRENCY": "4",
            "LOG_LEVEL": "INFO",
            **FAST_TIMINGS,
            **overrides,
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        # a process supervisor, as docker's `restart: unless-stopped`: whatever exits on its
        # own is started again (and counted); what the scenario kills is left to the scenario
        self.supervised: dict[int, tuple[tuple[str, ...], str]] = {}
        self.restarts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        self.engine = make_engine(self.database_url, pool_size=2)
        self.accepted: list[OrderKey] = []
        self.observation_errors: dict[str, int] = {}  # the suite's own reads that failed

    # -- configuration ---------------------------------------------------------------------

    def settings(self) -> Settings:
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            return Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    # -- processes -------------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            for proc in list(self.processes):
                spec = self.supervised.get(proc.pid)
                if spec is None or proc.poll() is None or self._stopping.is_set():
                    continue
                del self.supervised[proc.pid]
                args, name = spec
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.start(*args, name=name, supervise=True)

    def start(self, *args: str, name: str, supervise: bool = False) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(proc)
        if supervise:
            self.supervised[proc.pid] = (args, name)
        return proc

    def start_worker(self, name: str = "w1") -> subprocess.Popen[bytes]:
        return self.start("worker", "--name", f"{name}@{self.queue}", name=name, supervise=True)

    def start_beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        return self.start("beat", name=name, supervise=True)

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        self.supervised.pop(proc.pid, None)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            proc.wait(timeout=30)

    def pool_children(self, proc: subprocess.Popen[bytes]) -> list[int]:
        path = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except (OSError, ValueError):
            return []

    def stop_all(self) -> None:
        self._stopping.set()
        self._supervisor.join(timeout=5)
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.engine.dispose()
        self.redis.stop()
        if self.rabbit is not None:
            self.rabbit.stop()

    # -- orders ----------------------------------------------------------------------------

    def enqueue(self, orders: Iterable[dict[str, Any]]) -> list[OrderKey]:
        from worker.producer import Producer

        keys = []
        with Producer(self.settings()) as producer:
            for data in orders:
                try:
                    result = producer.enqueue(data)
                except InvalidOrder:
                    continue
                keys.append(result.key)
        self.accepted.extend(keys)
        return keys

    def enqueue_notes(self, notes: Iterable[tuple[str, dict[str, Any]]]) -> list[OrderKey]:
        """Notes (order id, request) against accepted orders; refused ones are skipped."""
        from worker.producer import Producer

        keys = []
        with Producer(self.settings()) as producer:
            for order_id, request in notes:
                try:
                    result = producer.note(order_id, request)
                except InvalidOrder:
                    continue
                keys.append(result.key)
        self.accepted.extend(keys)
        return keys

    # -- observation -----------------------------------------------------------------------

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def states(self) -> dict[str, int]:
        try:
            rows = self.query("SELECT state, count(*) FROM documents GROUP BY state")
        except Exception as exc:  # the database may be down on purpose
            self.engine.dispose()
            self.observation_errors[type(exc).__name__] = (
                self.observation_errors.get(type(exc).__name__, 0) + 1
            )
            return {}
        return {state: int(n) for state, n in rows}

    def open_orders(self) -> int:
        states = self.states()
        if not states:
            return -1
        return sum(n for s, n in states.items() if s not in FINAL)

    def wait_drained(self, started: float, timeout: float) -> float | None:
        """Seconds from `started` until every accepted order is final, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.states()
            final = sum(states.get(s, 0) for s in FINAL)
            if states and final >= len(self.accepted) and self.open_orders() == 0:
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)
        return None

    def redis_llen(self) -> int:
        import redis

        client = redis.Redis.from_url(self.redis.url)
        try:
            return int(client.llen(self.queue))
        finally:
            client.close()

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*.log")))

    def count_in_logs(self, needle: str) -> int:
        return self.log_text().count(needle)

    def measure(
        self,
        scenario: str,
        drain: float | None,
        submissions: dict[str, int],
        notes: list[str] | None = None,
        expect_failed: int = 0,
    ) -> Row:
        accepted = {str(k) for k in self.accepted}
        rows = self.query(
            "SELECT issuer || ':' || order_id || COALESCE('/' || note_id, ''), state, due_at "
            "FROM documents"
        )
        by_key = {k: (s, d) for k, s, d in rows}
        missing = [k for k in accepted if k not in by_key]
        stranded = [
            k
            for k in accepted
            if k in by_key and by_key[k][0] not in FINAL and by_key[k][1] is None
        ]
        not_final = [k for k in accepted if k in by_key and by_key[k][0] not in FINAL]
        twice = {ref: n for ref, n in submissions.items() if n > 1}
        states = self.states()
        notes = list(notes or [])
        failed = states.get("FAILED", 0)
        if failed != expect_failed:
            reasons = self.query(
                "SELECT reason::text FROM documents WHERE state = 'FAILED' LIMIT 3"
            )
            notes.append(f"FAILED={failed} (expected {expect_failed}): {[r[0] for r in reasons]}")
        if twice:
            notes.append(f"twice: {dict(list(twice.items())[:5])}")
        if missing:
            notes.append(f"missing rows: {missing[:5]}")
        audit = dict(self.query("SELECT status, count(*) FROM invoice_log GROUP BY status"))
        notes.append(
            "audit rows " + " ".join(f"{k}={audit[k]}" for k in sorted(audit) if k != "RECIBIDO")
        )
        if self.restarts:
            notes.append(f"exited on their own, restarted by the supervisor: {self.restarts}")
        if self.observation_errors:
            notes.append(f"the suite could not read the states: {self.observation_errors}")
        lost = len(missing) + len(stranded)
        ok = (
            lost == 0
            and not twice
            and not not_final
            and drain is not None
            and failed == expect_failed
        )
        return Row(
            scenario, len(accepted), lost, len(twice), len(not_final), drain, ok, notes, states
        )


def random_pause(rng: random.Random, low: float, high: float) -> None:
    time.sleep(rng.uniform(low, high))


def until(predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
