"""Notes end to end with GATEWAY=dian: a real worker and beat on Redis and PostgreSQL issue
sales (a POS document and an invoice), then credit and debit notes against both, through the
DIAN simulator with its full checks (signature, schema, CUDE with the right PIN, the reference
to a document it accepted, credits within the document). Each note ends SUCCESS with its
CUDE, submitted once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.dian.simulator import start_simulator
from domain.documents import DocumentKind
from tests.e2e.harness import Pipeline, wait_until
from tests.e2e.test_gateways_e2e import TECHNICAL_KEY, dian_pipeline
from tests.factories import line, order
from worker.producer import Producer
from worker.settings import DianSettings

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]
BUYER = {"tipo_documento": "31", "numero_documento": "900373076", "nombre": "Eventos S.A.S."}
NOTES: list[tuple[str, dict[str, Any], DocumentKind]] = [
    (
        "FACT-1",
        {"id_nota": "DEV-1", "tipo": "devolucion", "lineas": [{"linea": 1, "cantidad": 1}]},
        DocumentKind.CREDIT_NOTE,
    ),
    (
        "FACT-1",
        {"id_nota": "AUM-1", "tipo": "aumento", "monto": "1500", "motivo": "Precio corregido"},
        DocumentKind.DEBIT_NOTE,
    ),
    (
        "TICK-1",
        {"id_nota": "DES-1", "tipo": "descuento", "monto": "2000", "motivo": "Cortesía"},
        DocumentKind.POS_CREDIT_NOTE,
    ),
    (
        "TICK-1",
        {"id_nota": "AUM-2", "tipo": "aumento", "monto": "700", "motivo": "Precio corregido"},
        DocumentKind.POS_DEBIT_NOTE,
    ),
    ("TICK-1", {"id_nota": "ANU-1", "tipo": "anulacion"}, DocumentKind.POS_CREDIT_NOTE),
]


def test_sales_then_credit_and_debit_notes_each_accepted_by_dian_with_its_cude(
    pipeline_factory: Factory, tmp_path: Path
) -> None:
    defaults = DianSettings()
    server, url = start_simulator(
        technical_keys={"SETP": TECHNICAL_KEY},
        software_pins={defaults.software_id: defaults.software_pin.get_secret_value()},
        pos_software_pins={defaults.pos_software_id: defaults.pos_software_pin.get_secret_value()},
    )
    try:
        p = dian_pipeline(pipeline_factory, url, tmp_path, DOCUMENTS__MODE="pos")
        p.start_worker()
        p.start_beat()
        lines = [line("Cerveza", 3, 10000), line("Empanada", 2, 4500, ())]
        sales = [
            order("TICK-1", lines, tip=2000),
            {**order("FACT-1", lines, buyer=BUYER), "documento": "factura"},
        ]
        with Producer(p.settings()) as producer:
            kinds = [producer.enqueue(sale).kind for sale in sales]
            assert kinds == [DocumentKind.POS, DocumentKind.INVOICE]
            # notes are accepted at once and wait, durably, for their sale to be SUCCESS
            made = [producer.note(order_id, request) for order_id, request, _ in NOTES]
        assert [m.kind for m in made] == [kind for _, _, kind in NOTES]
        total = len(sales) + len(NOTES)
        wait_until(lambda: p.states().get("SUCCESS") == total, 120, f"{total} SUCCESS", p)

        stats = httpx.get(f"{url}/_stats").json()
        assert sorted(stats["submissions"].values()) == [1] * total  # each sent once
        assert stats["rejected"] == 0
        sale_keys = {}
        for m in made:
            record = p.store.get(m.key)
            assert record is not None and record.kind is m.kind
            cude = record.references["cufe"]
            assert len(cude) == 96 and record.number is not None
            assert record.corrects is not None and len(record.corrects.key) == 96
            sale_keys[record.corrects.number] = record.corrects.key
            success = [e for e in p.store.timeline(m.key) if e.status == "SUCCESS"]
            response = success[0].response_out["response"]  # type: ignore[index]
            assert response["operation"] == "SendBillSync" and response["status_code"] == "00"
            assert response["xml_document_key"] == cude
        assert len(sale_keys) == 2  # every note names the CUFE/CUDE DIAN gave its sale
    finally:
        server.shutdown()
        server.server_close()
