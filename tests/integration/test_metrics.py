"""The Prometheus exporter, as a real process reading a seeded PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from adapters.db.engine import make_engine
from adapters.db.store import SqlDocumentStore
from domain.store import State, StepNote
from tests.integration import ops_fixtures as fx
from tests.integration.ops_fixtures import free_port, key, seed
from worker.ops.metrics import DatabaseCollector
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
database_url = fx.database_url
engine = fx.engine
ops_env = fx.ops_env
queue_name = fx.queue_name

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@pytest.fixture
def exporter(ops_env: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "metrics", "--port", str(port), "--settle", "0s"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "exporter did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0  # SIGTERM is a clean shutdown


def test_metrics_endpoint_reports_the_database(exporter: str, engine: Engine) -> None:
    seeded = seed(engine)

    response = httpx.get(exporter, timeout=10)

    assert response.status_code == 200
    found = samples(response.text)
    assert found[("einvoice_database_up", ())] == 1
    for state, n in {
        "PENDIENTE": 1,
        "PROCESANDO": 1,
        "EN_ESPERA": 1,
        "SUCCESS": 1,
        "FAILED": 3,
    }.items():
        assert found[("einvoice_orders", (("state", state),))] == n
    assert found[("einvoice_rejected_orders", (("rule", "FAD06"),))] == 1
    by_issuer = (("issuer", fx.ISSUER), ("state", "FAILED"))
    assert found[("einvoice_issuer_orders", by_issuer)] == 3
    assert ("einvoice_rejected_orders", (("rule", "FAJ43b"),)) not in found  # a notice
    assert found[("einvoice_failed_orders", (("kind", "gateway_unavailable"),))] == 1
    age = found[("einvoice_oldest_unfinished_order_age_seconds", ())]
    assert 3 * 3600 - 60 < age < 3 * 3600 + 60
    assert found[("einvoice_audit_rows_total", (("status", "PROCESANDO"),))] == seeded.claims
    assert found[("einvoice_audit_rows_total", (("status", "RECIBIDO"),))] == 7
    assert found[("einvoice_audit_rows_total", (("status", "FAILED"),))] == 3
    # the refused payload is counted apart from what happened to orders
    assert found[("einvoice_intake_refusals_total", (("status", "RECHAZADO_ENTRADA"),))] == 1
    assert found[("einvoice_intake_refusals_total", (("status", "CONFLICTO"),))] == 0
    invoices = (("issuer", fx.ISSUER), ("kind", "01"), ("prefix", "SETP"), ("register", ""))
    assert found[("einvoice_numbering_range_remaining", invoices)] == 995000000 - 990000007 + 1
    assert 0 < found[("einvoice_numbering_range_used_ratio", invoices)] < 0.0001
    assert found[("einvoice_numbering_range_days_left", invoices)] > 30
    success = (("outcome", "SUCCESS"),)
    assert found[("einvoice_gateway_attempt_seconds_count", success)] == 1
    assert found[("einvoice_gateway_attempt_seconds_bucket", (("le", "+Inf"), *success))] == 1
    assert found[("einvoice_gateway_attempt_seconds_count", (("outcome", "FAILED"),))] == 3
    assert found[("einvoice_gateway_attempt_seconds_count", (("outcome", "EN_ESPERA"),))] == 1
    assert (
        found[("einvoice_queue_messages", (("kind", "ready"), ("queue", os.environ["QUEUE"])))] == 0
    )

    # a second scrape counts only what was written since the first one
    store = SqlDocumentStore(engine)
    store.accept(key("POS-LATER"), fx._order("POS-LATER"), "simulated", fx.SALE)
    claim = store.claim(key("POS-LATER"), 60)
    assert claim is not None
    time.sleep(0.6)  # the attempt takes at least this long between its two audit rows
    store.finish(claim, State.SUCCESS, {"cufe": "d" * 96}, StepNote("SUCCESS", {}), None)

    again = samples(httpx.get(exporter, timeout=10).text)
    assert again[("einvoice_audit_rows_total", (("status", "PROCESANDO"),))] == seeded.claims + 1
    assert again[("einvoice_audit_rows_total", (("status", "RECIBIDO"),))] == 8
    assert again[("einvoice_gateway_attempt_seconds_count", success)] == 2
    assert again[("einvoice_gateway_attempt_seconds_bucket", (("le", "0.5"), *success))] == 1
    assert again[("einvoice_gateway_attempt_seconds_sum", success)] >= 0.6
    assert again[("einvoice_orders", (("state", "SUCCESS"),))] == 2


def test_metrics_say_when_the_database_is_down(ops_env: str) -> None:
    dead = make_engine("postgresql+psycopg2://postgres@127.0.0.1:1/nothing", pool_size=1)
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(dead, Settings()))

    found = samples(generate_latest(registry).decode())

    assert found[("einvoice_database_up", ())] == 0
    assert not any(name == "einvoice_orders" for name, _ in found)
    dead.dispose()
