"""What the trail's insert trigger costs: documents through accept, claim and finish (three audit
rows each) on a database at revision 0007, before the trail's evidence (rows inserted as they
come), and at head (each row checked against its document's state and hash-chained by the
database), alternating.

    python -m bench.trail_cost [--documents 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time

from adapters.db.engine import make_engine
from adapters.db.store import SqlDocumentStore
from alembic import command
from bench.common import order, scratch_database
from domain.documents import DocumentKind, DocumentPlan
from domain.order import parse_order
from domain.ports import OrderKey
from domain.store import State, StepNote
from worker.migrations import alembic_config

PLAN = DocumentPlan(DocumentKind.INVOICE, "1", numbered=False)
BEFORE = "0007"


def run(revision: str, documents: int) -> float:
    """Milliseconds per document."""
    with scratch_database(migrate=False) as url:
        command.upgrade(alembic_config(url), revision)
        engine = make_engine(url, pool_size=2)
        store = SqlDocumentStore(engine)
        orders = [parse_order(order(f"TRAIL-{n}")) for n in range(documents)]
        started = time.perf_counter()
        for n, parsed in enumerate(orders):
            key = OrderKey("900123456", f"TRAIL-{n}")
            store.accept(key, parsed, "simulated", PLAN)
            claim = store.claim(key, 60)
            assert claim is not None
            store.finish(claim, State.SUCCESS, {}, StepNote("SUCCESS"), None)
        elapsed = time.perf_counter() - started
        engine.dispose()
    return elapsed / documents * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for round_ in range(1, args.rounds + 1):
        for revision in (BEFORE, "head"):
            ms = run(revision, args.documents)
            print(f"round {round_} {revision:>5}: {ms:.2f} ms per document ({args.documents})")


if __name__ == "__main__":
    main()
