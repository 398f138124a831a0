"""Real processes for end-to-end tests: workers and beat on the real Redis and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from adapters.db.engine import make_engine
from adapters.db.store import SqlDocumentStore
from adapters.gateways.simulated import SimulatedAuthority
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


class Pipeline:
    """One isolated deployment: its own database, queue, simulated authority and processes."""

    def __init__(self, database_url: str, redis_url: str, workdir: Path, **overrides: str) -> None:
        self.workdir = workdir
        self.queue = f"e2e-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BROKER_URL": redis_url,
            "QUEUE": self.queue,
            "GATEWAY": "simulated",
            "SIMULATED__STATE_PATH": str(workdir / "authority.sqlite"),
            "WORKER__SOFT_TIME_LIMIT": "8",
            "WORKER__HARD_TIME_LIMIT": "10",
            "WORKER__LEASE_SECONDS": "12",
            "WORKER__VISIBILITY_TIMEOUT": "120",
            "WORKER__RECONCILE_INTERVAL": "1",
            "WORKER__REPUBLISH_AFTER": "5",
            "WORKER__RETRY_BACKOFF_BASE": "0.5",
            "WORKER__RETRY_BACKOFF_MAX": "2",
            "WORKER__CELERY_RETRY_MAX_COUNTDOWN": "5",
            "WORKER__OUTCOME_UNKNOWN_DELAY": "3",
            "WORKER__POOL": "prefork",
            "WORKER__CONCURRENCY": "2",
            "LOG_LEVEL": "INFO",
            **overrides,
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.engine = make_engine(database_url)
        self.store = SqlDocumentStore(self.engine)
        self.authority = SimulatedAuthority(workdir / "authority.sqlite")

    def settings(self) -> Settings:
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            return Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
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
        return proc

    def start_worker(self, name: str = "w1") -> subprocess.Popen[bytes]:
        return self.start("worker", "--name", f"{name}@{self.queue}", name=name)

    def start_beat(self) -> subprocess.Popen[bytes]:
        return self.start("beat", name="beat")

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.engine.dispose()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in self.workdir.glob("*.log")
        )

    def states(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT state, count(*) FROM documents GROUP BY state")).all()
        return {state: int(n) for state, n in rows}

    def audit_counts(self) -> dict[tuple[str, str], int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT order_key, status, count(*) FROM invoice_log GROUP BY order_key, status"
                )
            ).all()
        return {(k, s): int(n) for k, s, n in rows}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, pipeline: Pipeline) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(
        f"timed out waiting for {what}; states={pipeline.states()}\n{pipeline.logs()}"
    )
