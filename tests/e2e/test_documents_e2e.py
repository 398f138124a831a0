"""Mixed documents from three registers, end to end: a real worker and beat on Redis and
PostgreSQL issue invoices and POS documents, each numbered from its register's range."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from sqlalchemy import text

from adapters.db.ranges import SqlNumberingRanges
from domain.documents import DocumentKind
from domain.issuer import NumberingRange
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from worker.producer import Producer

Factory = Callable[..., Pipeline]
REGISTERS = {
    "1": {"plate": "CAJA-1", "location": "Salón"},
    "2": {"plate": "CAJA-2", "location": "Barra"},
    "3": {"plate": "CAJA-3", "location": "Terraza"},
}


def test_a_hundred_mixed_orders_from_three_registers_each_numbered_from_its_range(
    pipeline_factory: Factory,
) -> None:
    p = pipeline_factory(
        DOCUMENTS__MODE="payload",
        REGISTERS=json.dumps(REGISTERS),
        WORKER__CONCURRENCY="4",
    )
    issuer = p.settings().issuer.nit
    ranges = SqlNumberingRanges(p.engine)
    for till in ("2", "3"):  # till 1 numbers its POS documents from the shared range
        ranges.add(
            issuer,
            NumberingRange(
                "18764000000001",
                f"P{till}",
                1,
                9999,
                date(2026, 1, 1),
                date(2030, 1, 1),
                kind=DocumentKind.POS,
                register=till,
                width=4,
            ),
        )
    p.start_worker()
    p.start_beat()
    orders = [
        {
            **order(f"MIX-{n:03d}"),
            "caja": str(1 + n % 3),
            "documento": "factura" if n % 4 == 0 else "pos",
        }
        for n in range(100)
    ]
    with Producer(p.settings()) as producer, ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(producer.enqueue, orders))
    assert all(r.created for r in results)

    wait_until(lambda: p.states().get("SUCCESS") == 100, 120, "100 SUCCESS", p)
    with p.engine.connect() as conn:
        documents = conn.execute(
            text("SELECT order_id, kind, register, prefix, consecutive, number FROM documents")
        ).all()
    by_range: dict[tuple[str, str], list[int]] = {}
    for d in documents:
        data = next(o for o in orders if o["id_pedido_origen"] == d.order_id)
        assert d.kind == ("01" if data["documento"] == "factura" else "20"), d.order_id
        assert d.register == data["caja"]
        by_range.setdefault((d.kind, d.prefix), []).append(d.consecutive)
    assert set(by_range) == {("01", "SETP"), ("20", "EPOS"), ("20", "P2"), ("20", "P3")}
    for (kind, prefix), numbers in by_range.items():
        first = 990000000 if prefix == "SETP" else 1
        assert sorted(numbers) == list(range(first, first + len(numbers))), (kind, prefix)
    assert {d.number for d in documents if d.prefix == "P2"} >= {"P20001", "P20002"}

    submissions = p.authority.submissions()
    assert len(submissions) == 100 and set(submissions.values()) == {1}
    counts = p.audit_counts()
    for r in results:
        assert counts[(str(r.key), "PROCESANDO")] == 1 and counts[(str(r.key), "SUCCESS")] == 1
