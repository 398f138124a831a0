"""Revision 0005 on a database that already holds orders: nothing lost going up, and the
downgrade gives back what the old schema holds."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from adapters.db.store import SqlDocumentStore
from alembic import command
from domain.ports import OrderKey
from tests.conftest import create_database, drop_database
from worker.migrations import alembic_config

ISSUER = "900123456"
ORDERS = [
    # order id, state, prefix, number, cufe
    ("OLD-1", "SUCCESS", "SETP", 990000000, "c" * 96),
    ("OLD-2", "FAILED", "SETP", 990000001, None),
    ("OLD-3", "PENDIENTE", "SETP", 990000002, None),
]


@pytest.fixture
def old_database() -> Iterator[str]:
    url = create_database("einvoice_migration")
    command.upgrade(alembic_config(url), "0004")
    yield url
    drop_database(url)


def _seed_old_shape(engine: Engine) -> None:
    with engine.begin() as conn:
        for order_id, state, prefix, number, cufe in ORDERS:
            conn.execute(
                text(
                    "INSERT INTO orders (issuer, order_id, gateway, payload, fingerprint, state, "
                    "issued_at, doc_prefix, doc_number, attempts, maybe_sent, cufe, refs, reason) "
                    "VALUES (:issuer, :order_id, 'dian', CAST(:payload AS jsonb), 'f', :state, "
                    "now(), :prefix, :number, 1, true, :cufe, CAST(:refs AS jsonb), NULL)"
                ),
                {
                    "issuer": ISSUER,
                    "order_id": order_id,
                    "payload": json.dumps({"id_pedido_origen": order_id}),
                    "state": state,
                    "prefix": prefix,
                    "number": number,
                    "cufe": cufe,
                    "refs": json.dumps({"number": f"{prefix}{number}"}),
                },
            )
        rows = [
            ("RECIBIDO", "OLD-1", {"state": "PENDIENTE"}),
            ("PROCESANDO", "OLD-1", {"attempt": 1}),
            ("SUCCESS", "OLD-1", {"attempt": 1}),
            # refused input the old intake wrote onto the accepted order's timeline
            ("FAILED", "OLD-1", {"error": "invalid_order", "errors": []}),
            ("CONFLICTO", "OLD-1", {"error": "conflict"}),
            # a worker-side invalid order is the order's own outcome and stays on its timeline
            ("FAILED", "OLD-2", {"error": "invalid_order", "errors": [], "attempt": 1}),
            # refused input that never became an order
            ("FAILED", "NEVER", {"error": "invalid_order", "errors": []}),
        ]
        for status, order_id, response in rows:
            conn.execute(
                text(
                    "INSERT INTO invoice_log (status, order_key, payload_in, response_out) "
                    "VALUES (:status, :key, '{}', CAST(:response AS jsonb))"
                ),
                {"status": status, "key": f"{ISSUER}:{order_id}", "response": json.dumps(response)},
            )
        conn.execute(
            text(
                "INSERT INTO number_sequences (prefix, next_number, last_number) "
                "VALUES ('SETP', 990000003, 995000000)"
            )
        )


def test_upgrade_keeps_every_order_number_and_row_and_downgrade_gives_them_back(
    old_database: str,
) -> None:
    engine = create_engine(old_database)
    config = alembic_config(old_database)
    try:
        _seed_old_shape(engine)
        command.upgrade(config, "head")
        with engine.connect() as conn:
            documents = conn.execute(
                text("SELECT order_id, kind, state, number, cufe FROM documents ORDER BY id")
            ).all()
            audit = conn.execute(text("SELECT count(*) FROM invoice_log")).scalar_one()
            refused = conn.execute(
                text("SELECT status, order_key FROM intake_refusals ORDER BY id")
            ).all()
        assert [tuple(d) for d in documents] == [
            (o, "01", state, f"{p}{n}", cufe) for o, state, p, n, cufe in ORDERS
        ]
        assert audit == 7, "no audit row is rewritten or removed"
        assert [tuple(r) for r in refused] == [
            ("RECHAZADO_ENTRADA", f"{ISSUER}:OLD-1"),
            ("CONFLICTO", f"{ISSUER}:OLD-1"),
            ("RECHAZADO_ENTRADA", f"{ISSUER}:NEVER"),
        ]
        store = SqlDocumentStore(engine)
        old = OrderKey(ISSUER, "OLD-1")
        assert [e.status for e in store.timeline(old)] == ["RECIBIDO", "PROCESANDO", "SUCCESS"]
        assert store.refusals(old).count == 2
        assert [e.status for e in store.timeline(OrderKey(ISSUER, "OLD-2"))] == ["FAILED"]
        record = store.get(old)
        assert record is not None and str(record.number) == "SETP990000000"

        command.downgrade(config, "0004")
        with engine.connect() as conn:
            orders = conn.execute(
                text("SELECT order_id, state, doc_prefix, doc_number, cufe FROM orders ORDER BY id")
            ).all()
            sequence = conn.execute(
                text("SELECT next_number FROM number_sequences WHERE prefix = 'SETP'")
            ).scalar_one()
            audit = conn.execute(text("SELECT count(*) FROM invoice_log")).scalar_one()
        assert [tuple(o) for o in orders] == ORDERS
        assert sequence == 990000003
        assert audit == 7
        command.upgrade(config, "head")  # and up again
    finally:
        engine.dispose()


def test_downgrade_refuses_while_pos_documents_exist(old_database: str) -> None:
    engine = create_engine(old_database)
    config = alembic_config(old_database)
    try:
        command.upgrade(config, "head")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO orders (issuer, order_id, payload, fingerprint) "
                    "VALUES (:issuer, 'T', '{}', 'f')"
                ),
                {"issuer": ISSUER},
            )
            conn.execute(
                text(
                    "INSERT INTO documents (order_ref, issuer, order_id, kind, gateway, state, "
                    "issued_at) SELECT id, issuer, order_id, '20', 'dian', 'PENDIENTE', now() "
                    "FROM orders"
                )
            )
            conn.execute(  # a document's story starts on its trail, checked at commit
                text(
                    "INSERT INTO invoice_log (status, order_key, payload_in) "
                    "VALUES ('RECIBIDO', :key, '{}')"
                ),
                {"key": f"{ISSUER}:T"},
            )
        with pytest.raises(RuntimeError, match="POS equivalent documents"):
            command.downgrade(config, "0004")
    finally:
        engine.dispose()
