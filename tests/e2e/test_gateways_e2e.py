"""The pipeline end to end through the DIAN simulator (full checks) and the Factus simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from adapters.db.api_keys import SqlApiKeys
from adapters.db.ranges import SqlNumberingRanges
from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.simulator import start_simulator as start_dian
from adapters.factus.simulator.app import SimulatorOptions
from adapters.factus.simulator.app import start_simulator as start_factus
from domain.documents import DocumentKind
from domain.issuer import NumberingRange
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import line, order
from tests.integration.api_fixtures import free_port
from worker.producer import Producer

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]
CATALOGUE = "https://catalogo-vpfe-hab.dian.gov.co/document/searchqr?documentkey="
TECHNICAL_KEY = "fc8eac422eba16e22ffd8c6f94b3f40a6e38162c"


@pytest.fixture
def dian() -> Iterator[str]:
    server, url = start_dian(technical_keys={"SETP": TECHNICAL_KEY})
    yield url
    server.shutdown()
    server.server_close()


def dian_pipeline(factory: Factory, url: str, tmp_path: Path, **extra: str) -> Pipeline:
    cert = tmp_path / "issuer.p12"
    cert.write_bytes(make_test_pkcs12("900123456", "s3cret"))
    return factory(
        GATEWAY="dian",
        DIAN__ENDPOINT=url,
        DIAN__CERT_PATH=str(cert),
        DIAN__CERT_PASSWORD="s3cret",
        DIAN__CONNECT_TIMEOUT="1",
        DIAN__READ_TIMEOUT="4",
        ISSUER__NIT="900123456",
        **extra,
    )


def test_orders_become_dian_invoices_accepted_with_full_checks(
    pipeline_factory: Factory, dian: str, tmp_path: Path
) -> None:
    p = dian_pipeline(pipeline_factory, dian, tmp_path)
    p.start_worker()
    p.start_beat()
    orders = [
        order("DIAN-1"),
        order("DIAN-2", [line("Queso (kg)", "0.375", 24000, (("IVA", "0.19"),))], tip=1500),
        order(
            "DIAN-3",
            buyer={
                "tipo_documento": "31",
                "numero_documento": "900373076",
                "nombre": 'Ñandú & Cía <Norte> "S.A.S." 🍽',
            },
        ),
    ]
    with Producer(p.settings()) as producer:
        keys = [producer.enqueue(o).key for o in orders]
    wait_until(lambda: p.states().get("SUCCESS") == 3, 60, "3 DIAN invoices accepted", p)
    stats = httpx.get(f"{dian}/_stats").json()
    assert sorted(stats["submissions"].values()) == [1, 1, 1]
    for key in keys:
        record = p.store.get(key)
        assert record is not None and len(record.references["cufe"]) == 96
        success = [e for e in p.store.timeline(key) if e.status == "SUCCESS"]
        assert "ApplicationResponse" in success[0].response_out["response"]["application_response"]  # type: ignore[index]


def test_a_dian_rejection_ends_failed_with_its_rule_codes(
    pipeline_factory: Factory, dian: str, tmp_path: Path
) -> None:
    httpx.post(
        f"{dian}/_control",
        json={
            "extra_rejections": [
                "Regla: FAJ43b, Rechazo: Nombre o razón social no coincide con el RUT"
            ]
        },
    )
    p = dian_pipeline(pipeline_factory, dian, tmp_path)
    p.start_worker()
    with Producer(p.settings()) as producer:
        key = producer.enqueue(order("DIAN-R")).key
    wait_until(lambda: p.states().get("FAILED") == 1, 60, "the rejection", p)
    record = p.store.get(key)
    assert record is not None and record.reason is not None
    assert [r["code"] for r in record.reason["rules"]] == ["FAJ43b"]


@pytest.fixture
def factus() -> Iterator[tuple[str, SimulatorOptions]]:
    options = SimulatorOptions()
    server, url = start_factus()
    yield url, options
    server.stop()


def test_orders_become_factus_bills_with_the_factus_gateway(
    pipeline_factory: Factory, factus: tuple[str, SimulatorOptions], redis_url: str
) -> None:
    url, options = factus
    p = pipeline_factory(
        GATEWAY="factus",
        FACTUS__BASE_URL=url,
        FACTUS__CLIENT_ID=options.client_id,
        FACTUS__CLIENT_SECRET=options.client_secret,
        FACTUS__USERNAME=options.username,
        FACTUS__PASSWORD=options.password,
        FACTUS__NUMBERING_RANGE_ID="8",
        FACTUS__CONNECT_TIMEOUT="1",
        FACTUS__READ_TIMEOUT="4",
        REDIS_URL=redis_url,
    )
    p.start_worker()
    p.start_beat()
    with Producer(p.settings()) as producer:
        keys = [producer.enqueue(order(f"FAC-{n}", tip=1000)).key for n in range(5)]
    wait_until(lambda: p.states().get("SUCCESS") == 5, 60, "5 Factus bills validated", p)
    stats = httpx.get(f"{url}/_stats").json()
    expected = {f"{k.issuer}-{k.order_id}": 1 for k in keys}
    assert stats["bills_created"] == expected  # one bill per order, never two
    for key in keys:
        record = p.store.get(key)
        assert record is not None and record.references["cufe"]
        assert record.references["reference_code"] == f"{key.issuer}-{key.order_id}"
        assert record.number is None  # Factus numbers its own bills
    assert stats["logins"] == 1  # one token shared by every worker process


def test_habilitacion_goes_by_test_set_and_the_reconciler_polls_the_zip(
    pipeline_factory: Factory, dian: str, tmp_path: Path
) -> None:
    httpx.post(f"{dian}/_control", json={"batch_polls": 2})  # "Batch en proceso" twice first
    p = dian_pipeline(
        pipeline_factory,
        dian,
        tmp_path,
        DIAN__TEST_SET_ID="d2e1a8f1-1b7e-4c55-a0b3-52c0b2f0d6a1",
        WORKER__PENDING_POLL_INTERVAL="1",
    )
    p.start_worker()
    p.start_beat()
    with Producer(p.settings()) as producer:
        key = producer.enqueue(order("HAB-1")).key
    wait_until(lambda: p.states().get("SUCCESS") == 1, 60, "the test set accepted", p)
    record = p.store.get(key)
    assert record is not None and record.references["zip_key"]
    statuses = [e.status for e in p.store.timeline(key)]
    assert statuses.count("EN_ESPERA") >= 1  # waited on GetStatusZip, never resent
    stats = httpx.get(f"{dian}/_stats").json()
    assert list(stats["submissions"].values()) == [1]
    assert stats["requests"].get("GetStatusZip", 0) >= 2


def test_pos_documents_and_invoices_from_three_registers_pass_dians_checks(
    pipeline_factory: Factory, tmp_path: Path
) -> None:
    """The simulator checks each POS document as DIAN does (CUDE with the POS PIN, the three
    extensions, InvoiceControl against the register's range, FAB10a)."""
    pos_pin, pos_software = "24680", "3f1b9a52-6c0e-4d7a-9b1e-2a4c6e8f0b13"
    ranges = {
        prefix: {
            "resolution": "18764000000001",
            "from": 1,
            "to": 9999,
            "valid_from": "2026-01-01",
            "valid_to": "2030-01-01",
        }
        for prefix in ("CJ2", "CJ3")
    }
    ranges["EPOS"] = {
        "resolution": "18760000001",
        "from": 1,
        "to": 1000000,
        "valid_from": "2019-01-19",
        "valid_to": "2030-01-19",
    }
    server, url = start_dian(
        technical_keys={"SETP": TECHNICAL_KEY},
        pos_software_pins={pos_software: pos_pin},
        pos_ranges=ranges,
    )
    try:
        p = dian_pipeline(
            pipeline_factory,
            url,
            tmp_path,
            DOCUMENTS__MODE="pos",
            DIAN__POS_SOFTWARE_ID=pos_software,
            DIAN__POS_SOFTWARE_PIN=pos_pin,
            REGISTERS=json.dumps(
                {c: {"plate": f"PLACA-{c}", "location": f"Caja {c}"} for c in "123"}
            ),
        )
        issuer = p.settings().issuer.nit
        stored = SqlNumberingRanges(p.engine)
        for till in ("2", "3"):
            stored.add(
                issuer,
                NumberingRange(
                    "18764000000001",
                    f"CJ{till}",
                    1,
                    9999,
                    date(2026, 1, 1),
                    date(2030, 1, 1),
                    kind=DocumentKind.POS,
                    register=till,
                ),
            )
        p.start_worker()
        p.start_beat()
        buyer = {"tipo_documento": "13", "numero_documento": "1020304050", "nombre": "Ana"}
        orders = [
            {**order(f"MIXD-{n:02d}"), "caja": str(1 + n % 3), "cajero": f"Cajero {n}"}
            | ({"documento": "factura", "adquirente": buyer} if n % 5 == 0 else {})
            for n in range(15)
        ]
        with Producer(p.settings()) as producer:
            results = [producer.enqueue(o) for o in orders]
        wait_until(lambda: p.states().get("SUCCESS") == 15, 90, "15 documents accepted", p)
        stats = httpx.get(f"{url}/_stats").json()
        assert sorted(stats["submissions"].values()) == [1] * 15
        kinds = {str(r.key): r.kind for r in results}
        assert list(kinds.values()).count(DocumentKind.INVOICE) == 3
        for r in results:
            record = p.store.get(r.key)
            assert record is not None and len(record.references["cufe"]) == 96
            assert record.kind is kinds[str(r.key)]
        numbers = sorted(str(p.store.get(r.key).number) for r in results)  # type: ignore[union-attr]
        assert {n[:3] for n in numbers} >= {"CJ2", "CJ3", "EPO", "SET"}
    finally:
        server.shutdown()
        server.server_close()


def _documents(p: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "documents", *args],
        env=p.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_issued_dian_document_is_fetched_as_xml_and_printed_from_it(
    pipeline_factory: Factory, dian: str, tmp_path: Path
) -> None:
    p = dian_pipeline(pipeline_factory, dian, tmp_path, DOCUMENTS__MODE="pos")
    p.start_worker()
    with Producer(p.settings()) as producer:
        key = producer.enqueue(order("COPIA-1", [line("Café tinto", "2", 3000)])).key
    wait_until(lambda: p.states().get("SUCCESS") == 1, 60, "the POS document accepted", p)
    record = p.store.get(key)
    assert record is not None
    out = tmp_path / "files"

    fetched = _documents(p, key.order_id, "--out", str(out))
    assert fetched.returncode == 0, fetched.stderr
    xml = (out / f"{record.references['number']}.xml").read_bytes()
    assert record.references["cufe"].encode() in xml

    for layout in ("ticket", "a4"):
        printed = _documents(p, key.order_id, "--out", str(out), "--pdf", layout)
        assert printed.returncode == 0, printed.stderr
        pdf = out / f"{record.references['number']}-{layout}.pdf"
        assert printed.stdout.strip() == str(pdf)
        text = subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "Café tinto" in text and record.references["cufe"][:40] in text.replace("\n", "")

    # The POS fetches the same copy over HTTP, and reads the QR's URL with the order.
    _, api_key = SqlApiKeys(p.engine).create("caja-copia", key.issuer)
    port = free_port()
    p.start("serve-api", "--port", str(port), name="api")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(f"{base}/health"), 30, "the API up", p)
    with httpx.Client(base_url=base, headers={"X-API-Key": api_key}, timeout=30) as http:
        view = http.get(f"/api/v1/pedidos/{key.order_id}").json()
        assert view["cufe"] == record.references["cufe"]
        assert view["qr_url"] == CATALOGUE + record.references["cufe"]
        for layout in ("ticket", "a4"):
            got = http.get(f"/api/v1/pedidos/{key.order_id}/representacion?formato={layout}")
            assert got.status_code == 200, got.text
            assert got.headers["content-type"] == "application/pdf"
            assert got.content.startswith(b"%PDF") and b"/FontFile2" in got.content
        wrong = http.get(f"/api/v1/pedidos/{key.order_id}/representacion?formato=carta")
        assert wrong.status_code == 422
        missing = http.get("/api/v1/pedidos/NOPE/representacion")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_a_factus_bills_pdf_and_xml_are_written_under_their_own_names(
    pipeline_factory: Factory, factus: tuple[str, SimulatorOptions], redis_url: str, tmp_path: Path
) -> None:
    url, options = factus
    p = pipeline_factory(
        GATEWAY="factus",
        FACTUS__BASE_URL=url,
        FACTUS__CLIENT_ID=options.client_id,
        FACTUS__CLIENT_SECRET=options.client_secret,
        FACTUS__USERNAME=options.username,
        FACTUS__PASSWORD=options.password,
        FACTUS__NUMBERING_RANGE_ID="8",
        FACTUS__CONNECT_TIMEOUT="1",
        FACTUS__READ_TIMEOUT="4",
        REDIS_URL=redis_url,
    )
    p.start_worker()
    with Producer(p.settings()) as producer:
        key = producer.enqueue(order("FAC-DOCS")).key
    wait_until(lambda: p.states().get("SUCCESS") == 1, 60, "the Factus bill validated", p)
    out = tmp_path / "files"
    fetched = _documents(p, key.order_id, "--out", str(out))
    assert fetched.returncode == 0, fetched.stderr
    written = sorted(path.name for path in out.iterdir())
    assert len(written) == 2 and [Path(n).suffix for n in written] == [".pdf", ".xml"]
    assert (out / written[0]).read_bytes().startswith(b"%PDF")
    assert (out / written[1]).read_bytes().startswith(b"<?xml")
