"""The command line as a user runs it: enqueue, status, render (real processes, real database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import redis
from lxml import etree

from tests.factories import SEED_ORDER, order

ROOT = Path(__file__).resolve().parents[2]
UBL_NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


def run(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=60,
    )


def test_help_lists_every_command() -> None:
    result = run(["--help"], {})
    assert result.returncode == 0
    for command in (
        "enqueue",
        "status",
        "worker",
        "beat",
        "reconcile",
        "demo",
        "render",
        "documents",
    ):
        assert command in result.stdout


def test_enqueue_json_lines_then_status_shows_the_timeline(
    database_url: str, clean_db: object, redis_url: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "BROKER_URL": redis_url,
        "QUEUE": "cli-test",
        "GATEWAY": "simulated",
    }
    lines = "\n".join(
        json.dumps(o) for o in [SEED_ORDER, order("POS-2"), {**SEED_ORDER, "subtotal": 1}]
    )
    result = run(["enqueue", "-", "--json"], env, stdin=lines)
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1  # one order was refused
    assert [o["ok"] for o in outcomes] == [True, True, False]
    assert outcomes[0]["number"] == "SETP990000000"
    assert {e["field"] for e in outcomes[2]["errors"]} >= {"subtotal"}

    status = run(["status", "POS-100", "--json"], env)
    assert status.returncode == 0
    shown = json.loads(status.stdout)
    assert shown["state"] == "PENDIENTE"
    assert shown["document_type"] == "01"
    # the refused twin is counted apart, never on the accepted order's timeline
    assert [e["status"] for e in shown["timeline"]] == ["RECIBIDO"]
    assert shown["refusals"]["count"] == 1
    assert shown["refusals"]["latest"][0]["status"] == "RECHAZADO_ENTRADA"
    text = run(["status", "POS-100"], env).stdout
    assert "RECIBIDO" in text and "SETP990000000" in text
    assert "refused at intake under this id: 1" in text
    assert run(["status", "NOPE"], env).returncode == 2


def test_enqueue_a_file_of_many_orders_in_batches_prints_a_summary(
    database_url: str, clean_db: object, redis_url: str, tmp_path: Path
) -> None:
    queue = f"cli-many-{os.getpid()}"
    env = {
        "DATABASE_URL": database_url,
        "BROKER_URL": redis_url,
        "QUEUE": queue,
        "GATEWAY": "simulated",
    }
    orders = [order(f"TILL-{n}") for n in range(1000)]
    orders[500] = {**orders[500], "subtotal": "1"}
    orders.append(order("TILL-7"))  # sent twice by the till
    path = tmp_path / "offline.json"
    path.write_text(json.dumps(orders))

    result = run(["enqueue", str(path), "--batch", "300"], env)

    assert result.returncode == 1  # one order was refused
    lines = result.stdout.splitlines()
    assert len(lines) == 1001
    assert lines[0] == "ACCEPTED 900123456:TILL-0 state=PENDIENTE number=SETP990000000"
    assert lines[500].startswith("INVALID TILL-500: subtotal:")
    assert lines[501].endswith("number=SETP990000500")  # no number lost to the refused one
    assert lines[1000] == "EXISTING 900123456:TILL-7 state=PENDIENTE number=SETP990000007"
    assert "1001 orders in" in result.stderr
    assert "batches of 300): 999 accepted, 1 already accepted, 1 invalid, 0 conflicting" in (
        result.stderr
    )
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.llen(queue) == 999
    finally:
        client.delete(queue)
        client.close()


def test_render_prints_the_signed_xml_and_writes_the_zip(tmp_path: Path) -> None:
    source = tmp_path / "order.json"
    source.write_text(json.dumps(SEED_ORDER))
    args = [
        "render",
        str(source),
        "--test-certificate",
        "--number",
        "990000042",
        "--issued-at",
        "2026-11-22T10:30:00-05:00",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr
    root = etree.fromstring(result.stdout.strip())
    assert root.findtext("cbc:ID", namespaces=UBL_NS) == "SETP990000042"
    assert root.findtext("cbc:IssueTime", namespaces=UBL_NS) == "10:30:00-05:00"
    assert len(root.findtext("cbc:UUID", namespaces=UBL_NS) or "") == 96
    assert root.find(".//ds:Signature", UBL_NS) is not None

    out = tmp_path / "invoice.zip"
    zipped = subprocess.run(
        [sys.executable, "-m", "worker", *args, "--zip", str(out)],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        env=os.environ.copy(),
    )
    assert zipped.returncode == 0
    with zipfile.ZipFile(out) as archive:
        (entry,) = archive.infolist()
        assert entry.compress_type == zipfile.ZIP_DEFLATED and entry.filename.startswith("fv")


def test_render_refuses_an_invalid_order_with_its_field_errors(tmp_path: Path) -> None:
    source = tmp_path / "order.json"
    source.write_text(json.dumps({**SEED_ORDER, "total_factura": 5}))
    result = run(["render", str(source), "--test-certificate"], {})
    assert result.returncode == 65 and "total_factura" in result.stderr  # a data error
