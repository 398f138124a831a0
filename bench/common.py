"""What every benchmark shares: a scratch database, a Redis index, worker processes, orders.

Each benchmark owns a PostgreSQL database `einvoice_bench_<random>` (created, migrated with
Alembic, dropped afterwards), Redis DB 13 (only its own queue keys are touched, and the index
is flushed at the end) and queue names of its own. Every process started here is killed, by
process group, when its context exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "BENCH_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
FINAL_STATES = ("SUCCESS", "FAILED")


# -- orders -------------------------------------------------------------------------------


def order(order_id: str, lines: int = 2) -> dict[str, Any]:
    """A valid dine-in order: `lines` beers with 8 % INC, a tip, paid in cash."""
    items = [
        {
            "id_producto": f"BEB-{n:02d}",
            "descripcion": f"Cerveza Artesanal {n}",
            "cantidad": "2",
            "precio_unitario": "10000",
            "impuestos": [{"nombre": "INC", "tasa": "0.08", "monto": "1600"}],
            "total_item": "21600",
        }
        for n in range(lines)
    ]
    subtotal = Decimal(20000) * lines
    taxes = Decimal(1600) * lines
    total = subtotal + taxes + 3000
    return {
        "id_pedido_origen": order_id,
        "items": items,
        "subtotal": str(subtotal),
        "propina_voluntaria": "3000",
        "impuestos_totales": str(taxes),
        "total_factura": str(total),
        "metodos_pago": [{"tipo": "Efectivo", "monto": str(total)}],
    }


# -- scratch database and Redis -----------------------------------------------------------


@contextlib.contextmanager
def scratch_database(migrate: bool = True) -> Iterator[str]:
    """A fresh database on the local PostgreSQL, migrated to head; dropped on exit."""
    name = f"einvoice_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        if migrate:
            from worker.migrations import upgrade

            upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def flush_redis() -> None:
    """Empty our own Redis index (13), nothing else."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def queue_name(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


# -- processes ----------------------------------------------------------------------------


@dataclass
class Processes:
    """Processes started by a benchmark, each in its own session; all killed on `stop`."""

    workdir: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log(self, name: str, tail: int = 3000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""


def wait_for_log(procs: Processes, name: str, needle: str, timeout: float = 60.0) -> float:
    """Block until `needle` appears in a process log; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    path = procs.workdir / f"{name}.log"
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"{name} did not log {needle!r} in {timeout} s:\n{procs.log(name)}")


def worker_argv(
    pool: str, concurrency: int, queue: str, app: str | None = None, name: str = "bench"
) -> list[str]:
    """The product's own worker command, or a bare `celery -A app worker` for baselines."""
    if app is None:
        return [
            sys.executable,
            "-m",
            "worker",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--name",
            f"{name}@{queue}",
        ]
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "-Q",
        queue,
        "-P",
        pool,
        "-c",
        str(concurrency),
        "--without-mingle",
        "--without-gossip",
        "-l",
        "INFO",
        "-n",
        f"baseline@{queue}",
    ]


def rss_tree_mb(pid: int) -> dict[str, float]:
    """RSS (MB) of a process and every descendant, read from /proc/<pid>/status."""
    result: dict[str, float] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        name = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("Name:")), "?")
        rss = next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:")), 0)
        result[f"{current} {name}"] = round(rss / 1024, 1)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
    return result


# -- waiting and measuring ----------------------------------------------------------------


def wait_count(
    engine: Engine, sql: str, target: int, timeout: float, poll: float = 0.1
) -> tuple[int, float]:
    """Poll `sql` (one count) until it reaches `target`; returns (count, monotonic time)."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            count = int(conn.execute(text(sql)).scalar_one())
        if count >= target:
            return count, time.monotonic()
        time.sleep(poll)
    return count, time.monotonic()


def span_rate(engine: Engine, sql: str) -> dict[str, float]:
    """Rate from the database's own timestamps: `sql` returns (count, first, last)."""
    with engine.connect() as conn:
        count, first, last = conn.execute(text(sql)).one()
    span = (last - first).total_seconds() if first and last else 0.0
    return {
        "count": int(count),
        "span_s": round(span, 3),
        "per_second": round((count - 1) / span, 1) if span > 0 and count > 1 else 0.0,
    }


def best_of(runs: list[dict[str, Any]], key: str, higher: bool = True) -> dict[str, Any]:
    """The best run by `key`, plus the spread of `key` over all runs."""
    values = [float(r[key]) for r in runs]
    best = max(runs, key=lambda r: float(r[key])) if higher else min(runs, key=lambda r: r[key])
    spread = (max(values) - min(values)) / max(values) * 100 if max(values) else 0.0
    return {**best, "runs": values, "spread_pct": round(spread, 1)}


def py_spy_top(pids: list[int], seconds: float, out: Path) -> Callable[[], dict[str, Any]]:
    """Sample `pids` with py-spy for `seconds` in the background; call the result to collect
    the top functions by own time (an empty dict when py-spy is unavailable)."""
    import shutil

    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        return lambda: {}
    procs = []
    for pid in pids:
        raw = out.with_name(f"{out.stem}-{pid}.txt")
        procs.append(
            (
                raw,
                subprocess.Popen(
                    [
                        exe,
                        "record",
                        "-p",
                        str(pid),
                        "-d",
                        str(int(seconds)),
                        "-r",
                        "200",
                        "-f",
                        "raw",
                        "-o",
                        str(raw),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            )
        )

    def collect() -> dict[str, Any]:
        from bench.profiles import fold_raw

        stacks: list[Path] = []
        for raw, proc in procs:
            try:
                proc.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if raw.exists():
                stacks.append(raw)
        return fold_raw(stacks)

    return collect
