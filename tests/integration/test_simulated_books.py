"""The simulated authority's books: a SQLite file every worker process of a machine shares."""

from __future__ import annotations

import multiprocessing
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import pytest

from adapters.gateways.simulated import SimulatedAuthority
from domain.ports import Verdict

OPENERS = 3
FILES = 200


@pytest.fixture
def books_dir(tmp_path: Path) -> Iterator[Path]:
    """Memory-backed when the machine has it: opening is quicker, so more openings collide."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        yield Path(folder)


def test_opening_new_books_waits_for_another_opener_holding_the_write_lock(
    tmp_path: Path,
) -> None:
    """What the loser of two pool processes opening a new file at once meets: the other one
    holds the file's write lock while it sets the file up."""
    path = tmp_path / "books.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release() -> None:
        time.sleep(0.3)
        other.execute("COMMIT")
        released.set()

    threading.Thread(target=release).start()
    books = SimulatedAuthority(path)
    assert released.is_set()  # it waited for the other opener instead of failing
    assert books.record("ref-1", Verdict.ACCEPTED, 0, "cufe") == 1
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _open_many(
    folder: str,
    go: Any,
    ready: Synchronized[int],
    results: multiprocessing.Queue[list[str]],
) -> None:
    failures: list[str] = []
    for n in range(FILES):
        with ready.get_lock():
            ready.value += 1
        while go.value <= n:  # spin, so every opener starts within microseconds of the others
            pass
        try:
            SimulatedAuthority(Path(folder) / f"books-{n}.sqlite").record(
                multiprocessing.current_process().name, Verdict.ACCEPTED, 0, "cufe"
            )
        except Exception as exc:  # reported to the test, which names it
            failures.append(f"books-{n}: {type(exc).__name__}: {exc}")
    results.put(failures)


def test_many_processes_opening_the_same_new_books_at_once_all_succeed(books_dir: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    go = ctx.RawValue("i", 0)
    ready = ctx.Value("i", 0)
    results: multiprocessing.Queue[list[str]] = ctx.Queue()
    procs = [
        ctx.Process(target=_open_many, args=(str(books_dir), go, ready, results))
        for _ in range(OPENERS)
    ]
    for p in procs:
        p.start()
    try:
        for n in range(FILES):
            deadline = time.monotonic() + 60
            while ready.value < OPENERS * (n + 1):
                assert time.monotonic() < deadline, "the openers stopped"
                time.sleep(0.0005)
            go.value = n + 1  # a new file, opened by every process at the same moment
        failures = [f for _ in procs for f in results.get(timeout=120)]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert failures == [], f"{len(failures)} of {OPENERS * FILES} openings failed: {failures[:3]}"
    for n in (0, FILES - 1):
        books = SimulatedAuthority(books_dir / f"books-{n}.sqlite")
        assert len(books.submissions()) == OPENERS
