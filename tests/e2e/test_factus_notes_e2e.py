"""Notes through Factus end to end: sales become Factus bills, then returns, voids and a price
increase against them become Factus credit and debit notes through a real worker and beat —
with connections dropped after Factus processed some notes — and every note ends final,
created at Factus once and sent once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.factus.simulator.app import SimulatorOptions, SimulatorServer, start_simulator
from domain.errors import InvalidOrder
from domain.ports import OrderKey
from tests.e2e.harness import ROOT, Pipeline, wait_until
from tests.factories import line, order
from worker.producer import Producer

Factory = Callable[..., Pipeline]
SALES = 8


@pytest.fixture
def factus() -> Iterator[SimulatorServer]:
    server, _ = start_simulator()
    yield server
    server.stop()


def factus_pipeline(factory: Factory, server: SimulatorServer, redis_url: str) -> Pipeline:
    options: SimulatorOptions = server.simulator.options
    return factory(
        GATEWAY="factus",
        FACTUS__BASE_URL=server.base_url,
        FACTUS__CLIENT_ID=options.client_id,
        FACTUS__CLIENT_SECRET=options.client_secret,
        FACTUS__USERNAME=options.username,
        FACTUS__PASSWORD=options.password,
        FACTUS__NUMBERING_RANGE_ID="8",
        FACTUS__CREDIT_NOTE_RANGE_ID="9",
        FACTUS__DEBIT_NOTE_RANGE_ID="10",
        FACTUS__CONNECT_TIMEOUT="1",
        FACTUS__READ_TIMEOUT="4",
        REDIS_URL=redis_url,
        WORKER__CONCURRENCY="4",
    )


def stats(server: SimulatorServer) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{server.base_url}/_stats", timeout=5).json()
    return answer


def test_sales_then_credit_and_debit_notes_through_factus_each_sent_once(
    pipeline_factory: Factory, factus: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    p = factus_pipeline(pipeline_factory, factus, redis_url)
    p.start_worker()
    p.start_beat()
    with Producer(p.settings()) as producer:
        for n in range(SALES):
            producer.enqueue(
                order(f"FN-{n}", [line("Cerveza", 3, 10000), line("Papas", 2, 4500, ())], tip=1000)
            )
        # a note accepted before its sale is issued waits for it, then goes out
        early = producer.note("FN-0", {"id_nota": "V-0", "tipo": "anulacion"}).key
    wait_until(lambda: p.states().get("SUCCESS") == SALES + 1, 60, "the sales and the void", p)

    # Factus processes the next two notes, then the connection drops before its answer
    httpx.post(f"{factus.base_url}/_control", json={"drop_next": 2}, timeout=5)
    keys = [early]
    with Producer(p.settings()) as producer:
        for n in range(1, SALES):
            sale = f"FN-{n}"
            keys.append(
                producer.note(
                    sale,
                    {
                        "id_nota": f"R-{n}",
                        "tipo": "devolucion",
                        "lineas": [{"linea": 1, "cantidad": 1}],
                    },
                ).key
            )
            if n % 2:
                keys.append(producer.note(sale, {"id_nota": f"V-{n}", "tipo": "anulacion"}).key)
            else:
                increase = {
                    "id_nota": f"I-{n}",
                    "tipo": "aumento",
                    "monto": 500,
                    "motivo": "precio",
                }
                keys.append(producer.note(sale, increase).key)
        with pytest.raises(InvalidOrder) as caught:  # nothing left after the void
            producer.note(
                "FN-1",
                {"id_nota": "R-9", "tipo": "devolucion", "lineas": [{"linea": 2, "cantidad": 1}]},
            )
        assert caught.value.errors[0].rule == "beyond_remaining"

    total = SALES + len(keys)
    wait_until(lambda: p.states().get("SUCCESS") == total, 120, f"{len(keys)} notes SUCCESS", p)
    records = [p.store.get(key) for key in keys]
    codes = {r.references["reference_code"]: 1 for r in records if r is not None}
    assert len(codes) == len(keys)
    counts = stats(factus)
    assert counts["notes_created"] == codes
    assert counts["note_validate_requests"] == codes  # each note sent once, never again
    assert len(counts["bills_created"]) == SALES and set(counts["bills_created"].values()) == {1}
    for key, record in zip(keys, records, strict=True):
        assert record is not None and record.corrects is not None
        assert record.references["number"].startswith(("NC", "ND"))
        assert len(record.references["cufe"]) == 96  # the note's CUDE
        assert record.corrects.number.startswith("SETP")
        assert [e.status for e in p.store.timeline(key)].count("SUCCESS") == 1
    # the two notes whose answer was lost were asked about later, not sent again
    waited = [k for k in keys if "EN_ESPERA" in [e.status for e in p.store.timeline(k)]]
    assert len(waited) == 2
    voided = p.store.get(OrderKey(keys[0].issuer, "FN-0"))
    assert voided is not None
    invoice = factus.simulator._find_number(voided.references["number"])
    assert invoice is not None and factus.simulator.notes.balance(invoice) == 0

    # the note's files, as Factus keeps them
    fetched = subprocess.run(
        [sys.executable, "-m", "worker", "documents", "FN-1", "--note", "V-1", "--out", tmp_path],
        env=p.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fetched.returncode == 0, fetched.stderr
    void = p.store.get(OrderKey(keys[0].issuer, "FN-1", "V-1"))
    assert void is not None
    number = void.references["number"]
    assert (tmp_path / f"{number}.pdf").read_bytes().startswith(b"%PDF")
    assert b"<CreditNote>" in (tmp_path / f"{number}.xml").read_bytes()
