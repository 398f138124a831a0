"""Notes through the Factus adapter against the local Factus stand-in: time per note and
Factus requests per note, without faults and with the answer of every note lost after Factus
processed it (the worker's next attempt looks the note up; nothing is sent twice).

    python -m bench.factus_notes [--notes 200]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.factus.config import FactusConfig, build_factus_gateway
from adapters.factus.simulator import start_simulator
from domain.documents import DocumentKind
from domain.errors import OutcomeUnknown
from domain.notes import ReferencedDocument, note_figures, note_kind, parse_note, remaining_after
from domain.order import parse_order
from domain.ports import OrderKey, Submission, Verdict
from tests.factories import line, order

NOW = datetime.now(UTC)
RETURN = {"tipo": "devolucion", "lineas": [{"linea": 1, "cantidad": 1}]}


def _note(order_id: str, bill: str) -> Submission:
    sale = parse_order(order(order_id, [line("Cerveza", 3, 10000)]))
    asked = parse_note({**RETURN, "id_nota": f"NC-{order_id}"})
    figures = note_figures(asked, sale, remaining_after(sale, []))
    return Submission(
        OrderKey("900123456", order_id, asked.id_nota),
        sale,
        NOW,
        kind=note_kind(DocumentKind.INVOICE, figures.type),
        note=figures,
        corrects=ReferencedDocument(DocumentKind.INVOICE, bill, "c" * 96, NOW),
    )


def run(notes: int, lose_answers: bool) -> dict[str, Any]:
    server, url = start_simulator(rate_limit=100_000)
    options = server.simulator.options
    config = FactusConfig(
        url,
        options.client_id,
        options.client_secret,
        options.username,
        options.password,
        numbering_range_id=8,
        rate_limit_per_minute=100_000,
    )
    gateway = build_factus_gateway(config, None)
    try:
        sales = [f"B-{n}" for n in range(notes)]
        bills = {}
        for order_id in sales:
            sale = Submission(
                OrderKey("900123456", order_id),
                parse_order(order(order_id, [line("Cerveza", 3, 10000)])),
                NOW,
            )
            bills[order_id] = gateway.submit(sale).references["number"]
        before = httpx.get(f"{url}/_stats").json()["requests"]
        started = time.perf_counter()
        for order_id in sales:
            submission = _note(order_id, bills[order_id])
            if lose_answers:
                httpx.post(f"{url}/_control", json={"drop_next": 1})
                try:
                    gateway.submit(submission)
                except OutcomeUnknown:
                    result = gateway.status(submission)
                else:
                    raise AssertionError("the stand-in did not drop the answer")
            else:
                result = gateway.submit(submission)
            assert result.verdict is Verdict.ACCEPTED
        elapsed = time.perf_counter() - started
        stats = httpx.get(f"{url}/_stats").json()
        assert set(stats["notes_created"].values()) == {1}
        return {
            "notes": notes,
            "ms_per_note": round(1000 * elapsed / notes, 2),
            "requests_per_note": round((stats["requests"] - before) / notes, 2),
            "sent_per_note": sum(stats["note_validate_requests"].values()) / notes,
        }
    finally:
        gateway.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=200)
    args = parser.parse_args()
    for lose in (False, True):
        figures = run(args.notes, lose)
        label = "answer lost, then looked up" if lose else "no faults"
        print(f"{label:30} " + "  ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
