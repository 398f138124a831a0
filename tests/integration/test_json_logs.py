"""LOG_FORMAT=json: every line the long-running commands write is one JSON object, from the
first one (start-up included) to the last; the API's access lines carry method, path, status
and duration; `enqueue --json` names the order of each result line. Real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.factories import SEED_ORDER, order
from tests.integration.ops_fixtures import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LOG_FORMAT": "json",
        "DATABASE_URL": database_url,
        "BROKER_URL": REDIS_URL,
        "QUEUE": f"json-logs-{uuid.uuid4().hex[:8]}",
        "GATEWAY": "simulated",
        **extra,
    }


@contextmanager
def running(args: list[str], env: dict[str, str], out: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A command with stdout and stderr both in `out`, stopped with SIGTERM afterwards."""
    with out.open("wb") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            cwd=ROOT,
            env=env,
            stdout=stream,
            stderr=stream,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], out: Path, what: str
) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert process.poll() is None, f"exited before {what}: {out.read_text()}"
        assert time.monotonic() < deadline, f"no {what} in 30 s: {out.read_text()}"
        time.sleep(0.2)


def events(out: Path) -> list[dict[str, Any]]:
    """Every line parsed as one JSON object; any other line fails the test."""
    lines = out.read_text().splitlines()
    assert lines, "nothing was written"
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} is not JSON: {line!r}")
        assert isinstance(event, dict) and {"ts", "level", "logger", "message"} <= set(event)
        parsed.append(event)
    return parsed


def test_beat_writes_json_lines_only(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "beat.log"
    env = _env(database_url, WORKER__RECONCILE_INTERVAL="1")
    with running(["beat"], env, out) as beat:  # until it has sent a task: start-up is over
        wait_for(lambda: "Sending due task" in out.read_text(), beat, out, "a task sent")
    written = events(out)
    assert any(e["message"] == "beat starting: RedBeatScheduler" for e in written)


def test_api_server_writes_json_lines_and_access_lines_with_fields(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    out = tmp_path / "api.log"
    base = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    with running(["serve-api", "--port", str(port)], _env(database_url), out) as server:
        wait_for(serving, server, out, "health answer")
        refused = httpx.get(f"{base}/api/v1/pedidos/POS-1?page=2", timeout=5)
        assert refused.status_code == 401
        wait_for(lambda: "/api/v1/pedidos/POS-1" in out.read_text(), server, out, "access line")
    written = events(out)
    assert written[0]["logger"].startswith("uvicorn")  # start-up, not only requests
    access = [e for e in written if e["logger"] == "worker.api.access"]
    assert {"method", "path", "status", "duration_ms"} <= set(access[0])
    line = next(e for e in access if e["path"] == "/api/v1/pedidos/POS-1")
    assert (line["method"], line["status"]) == ("GET", 401)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert not any("page=2" in json.dumps(e) for e in access)  # no query strings
    assert any(e["path"] == "/health" and e["status"] == 200 for e in access)


def test_metrics_exporter_writes_json_lines(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "metrics.log"
    with running(["metrics", "--port", str(port)], _env(database_url), out) as exporter:
        wait_for(lambda: "serving metrics" in out.read_text(), exporter, out, "start-up")
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert "einvoice_database_up 1.0" in scrape.text
    started = events(out)[0]
    assert started["port"] == port and started["message"].startswith("serving metrics")


def test_enqueue_json_names_the_order_of_every_result_line(
    database_url: str, clean_db: object, tmp_path: Path
) -> None:
    lines = [
        json.dumps(order("POS-1")),
        json.dumps({**SEED_ORDER, "id_pedido_origen": "POS-2", "total_factura": 1}),
        json.dumps(["not", "an", "order"]),
        json.dumps({"items": []}),
    ]
    source = tmp_path / "orders.jsonl"
    source.write_text("\n".join(lines))
    result = subprocess.run(
        [sys.executable, "-m", "worker", "enqueue", str(source), "--json"],
        cwd=ROOT,
        env=_env(database_url, LOG_FORMAT="text"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr  # some were refused
    accepted, invalid, not_object, no_id = (json.loads(line) for line in result.stdout.splitlines())
    assert accepted["ok"] and accepted["position"] == 1
    assert (accepted["id_pedido_origen"], accepted["order_key"]) == ("POS-1", "900123456:POS-1")
    assert not invalid["ok"] and invalid["position"] == 2
    assert (invalid["id_pedido_origen"], invalid["order_key"]) == ("POS-2", "900123456:POS-2")
    assert not_object["position"] == 3 and not_object["input"] == "not a JSON object"
    assert not_object["id_pedido_origen"] is None and not_object["order_key"] is None
    assert no_id["position"] == 4 and no_id["id_pedido_origen"] is None and "input" not in no_id
