"""Notes end to end: 50 sales, then returns and voids against them from 8 processes at once,
through a real worker and beat on Redis and PostgreSQL — no over-credit, each note submitted
once, every note final."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from domain.errors import InvalidOrder
from tests.e2e.harness import ROOT, Pipeline, wait_until
from tests.factories import line, order
from worker.producer import Producer
from worker.settings import Settings

Factory = Callable[..., Pipeline]
SALES = 50


def _notes_from(worker: int, env: dict[str, str]) -> dict[str, int]:
    """One process: 12 notes against random sales (returns of one unit, voids)."""
    os.environ.update(env)
    rng = random.Random(worker)
    outcomes = {"accepted": 0, "refused": 0}
    with Producer(Settings()) as producer:
        for n in range(12):
            sale = f"NOTE-{rng.randrange(SALES):02d}"
            if rng.random() < 0.25:
                request: dict[str, Any] = {"id_nota": f"V-{worker}-{n}", "tipo": "anulacion"}
            else:
                number = rng.choice([1, 2])
                request = {
                    "id_nota": f"R-{worker}-{n}",
                    "tipo": "devolucion",
                    "lineas": [{"linea": number, "cantidad": 1}],
                }
            try:
                producer.note(sale, request)
            except InvalidOrder:
                outcomes["refused"] += 1
            else:
                outcomes["accepted"] += 1
    return outcomes


def test_returns_and_voids_from_eight_processes_never_over_credit(
    pipeline_factory: Factory,
) -> None:
    p = pipeline_factory(WORKER__CONCURRENCY="4")
    p.start_worker()
    p.start_beat()
    sales = [
        order(f"NOTE-{n:02d}", [line("Cerveza", 3, 10000), line("Empanada", 2, 4500, ())], tip=2000)
        for n in range(SALES)
    ]
    with Producer(p.settings()) as producer:
        for sale in sales:
            producer.enqueue(sale)
    wait_until(lambda: p.states().get("SUCCESS") == SALES, 90, "50 sales SUCCESS", p)

    context = multiprocessing.get_context("spawn")
    with context.Pool(8) as pool:
        results = pool.starmap(_notes_from, [(w, p.env) for w in range(8)])
    accepted = sum(r["accepted"] for r in results)
    assert accepted > 0 and sum(r["refused"] for r in results) > 0

    wait_until(
        lambda: p.states().get("SUCCESS") == SALES + accepted,
        120,
        f"{accepted} notes SUCCESS",
        p,
    )
    with p.engine.connect() as conn:
        credited = conn.execute(
            text(
                "SELECT s.order_id, s.id, (o.payload->>'total_factura')::numeric AS total, "
                "sum((n.note->'figures'->>'total')::numeric) AS credited "
                "FROM documents n JOIN documents s ON s.id = n.corrects_id "
                "JOIN orders o ON o.id = s.order_ref GROUP BY s.order_id, s.id, o.payload"
            )
        ).all()
        negative = conn.execute(
            text("SELECT count(*) FROM creditable_lines WHERE quantity < 0 OR base < 0")
        ).scalar_one()
        quantities = dict(
            conn.execute(
                text(
                    "SELECT n.corrects_id * 10 + (l->>'linea')::int, "
                    "sum((l->>'cantidad')::numeric) FROM documents n, "
                    "jsonb_array_elements(n.note->'figures'->'lineas') AS l "
                    "GROUP BY 1"
                )
            ).all()
        )
    assert negative == 0
    for row in credited:
        assert row.credited <= row.total, f"{row.order_id} over-credited"
    sold = {1: Decimal(3), 2: Decimal(2)}
    for key, quantity in quantities.items():
        assert quantity <= sold[key % 10]
    submissions = p.authority.submissions()
    assert len(submissions) == SALES + accepted and set(submissions.values()) == {1}
    counts = p.audit_counts()
    notes = [k for k, status in counts if "/" in k and status == "SUCCESS"]
    assert len(notes) == accepted


def test_the_note_command_issues_a_note_once_it_is_due(pipeline_factory: Factory) -> None:
    p = pipeline_factory()
    p.start_worker()
    p.start_beat()
    with Producer(p.settings()) as producer:
        producer.enqueue(order("CLI-NOTE", [line("Cerveza", 2, 10000)]))

    def note(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "worker", "note", "CLI-NOTE", *args, "--json"],
            env=p.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = note("--void")  # accepted at once, goes out after the sale
    again = note("--void")
    assert first.returncode == 0, first.stderr
    made, same = json.loads(first.stdout), json.loads(again.stdout)
    assert made["created"] and not same["created"] and made["order_key"] == same["order_key"]
    wait_until(lambda: p.states().get("SUCCESS") == 2, 60, "the sale and its void", p)
    refused = note("--discount", "100", "--reason", "cortesía")
    assert refused.returncode == 65 and "nothing left" in refused.stderr
    status = subprocess.run(
        [sys.executable, "-m", "worker", "status", "CLI-NOTE", "--json"],
        env=p.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    shown = json.loads(status.stdout)
    assert [n["state"] for n in shown["notes"]] == ["SUCCESS"]
    assert shown["creditable"]["total"] == "0.00"
