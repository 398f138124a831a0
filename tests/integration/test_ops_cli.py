"""Operator commands through the real CLI entry point, against a private PostgreSQL database
seeded through the real order store (and the test Redis for wake-ups and queue depth)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import Engine, select

from adapters.db.models import InvoiceLogRow
from adapters.db.ranges import SqlNumberingRanges
from adapters.db.store import SqlDocumentStore
from domain.documents import DocumentKind, DocumentPlan
from domain.ports import OrderKey
from domain.store import State, StepNote
from tests.integration import ops_fixtures as fx
from tests.integration.ops_fixtures import REDIS_URL, free_port, key, seed
from worker.cli import main
from worker.ops.flower import FlowerRefused, flower_argv
from worker.ops.tables import BOGOTA

database_url = fx.database_url
engine = fx.engine
ops_env = fx.ops_env
queue_name = fx.queue_name

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["list", "stuck", "retry", "stats", "export", "metrics", "health", "flower", "audit"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert out.startswith(f"usage: einvoice {command}")


def test_list_failed_orders_with_rule_codes(
    ops_env: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seed(engine)

    code, out, _ = run(capsys, "list", "--state", "FAILED", "--since", "1d")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ORDER", "STATE", "NUMBER", "TRIES", "CHANGED", "REASON"]
    rejected = next(line for line in lines if seeded.rejected + " " in line)
    assert "FAD06 Rechazo: Valor del CUFE no está calculado correctamente" in rejected
    invalid = next(line for line in lines if seeded.invalid + " " in line)
    assert "items[0].cantidad: must be above 0 [positive]" in invalid
    assert seeded.succeeded not in out
    assert "3 orders changed since" in out

    code, out, _ = run(capsys, "list", "--state", "FAILED", "--state", "SUCCESS", "--json")
    rows = json.loads(out)
    assert code == 0
    assert sorted(r["order_key"].split(":")[1] for r in rows) == sorted(
        [seeded.rejected, seeded.unavailable, seeded.invalid, seeded.succeeded]
    )
    rejected_row = next(r for r in rows if r["order_key"].endswith(seeded.rejected))
    assert rejected_row["reason"]["rules"][0]["code"] == "FAD06"
    assert "payload" not in rejected_row


def test_list_since_excludes_older_changes(
    ops_env: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seed(engine)

    code, out, _ = run(capsys, "list", "--since", "90m", "--json")

    keys = {r["order_key"].split(":")[1] for r in json.loads(out)}
    assert code == 0
    assert seeded.never_taken in keys  # accepted 1 h ago
    assert seeded.waiting not in keys  # last changed 2 h ago
    assert seeded.lease_expired not in keys  # claimed 3 h ago

    code, _, err = run(capsys, "list", "--since", "yesterday")
    assert code == 2 and err.startswith("einvoice: --since")


def test_stuck_explains_each_open_order(
    ops_env: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seed(engine)

    code, out, _ = run(capsys, "stuck", "--older-than", "30m", "--json")

    assert code == 1
    why = {r["order_key"].split(":")[1]: r["why"] for r in json.loads(out)}
    assert set(why) == {seeded.lease_expired, seeded.waiting, seeded.never_taken}
    assert "lease ended" in why[seeded.lease_expired]
    assert "asks the authority before anything is sent" in why[seeded.lease_expired]
    assert "authority may hold the document" in why[seeded.waiting]
    assert "outcome_unknown" in why[seeded.waiting]
    assert "not picked up by a worker" in why[seeded.never_taken]

    code, out, _ = run(capsys, "stuck", "--older-than", "90m")
    assert code == 1
    assert seeded.never_taken not in out
    assert out.splitlines()[0].split() == ["ORDER", "STATE", "AGE", "TRIES", "WHY"]
    assert "2 orders open for more than 1h 30m" in out

    code, out, _ = run(capsys, "stuck", "--older-than", "1d")
    assert (code, out.strip()) == (0, "no order has been open for more than 1d")


def test_retry_reopens_an_order_the_gateway_could_not_take(
    ops_env: str, engine: Engine, queue_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seed(engine)
    store = SqlDocumentStore(engine)

    code, out, _ = run(capsys, "retry", seeded.unavailable)

    assert code == 0
    assert f"REOPENED {key(seeded.unavailable)}: FAILED -> EN_ESPERA" in out
    assert "wake-up sent" in out
    record = store.get(key(seeded.unavailable))
    assert record is not None
    assert record.state.value == "EN_ESPERA"
    assert record.maybe_sent
    last = store.timeline(key(seeded.unavailable))[-1]
    assert last.status == "REINTENTO"
    assert last.response_out is not None and last.response_out["operator_retry"] is True
    assert last.response_out["previous_reason"]["error"] == "gateway_unavailable"
    assert redis.Redis.from_url(REDIS_URL).llen(queue_name) == 1
    claim = store.claim(key(seeded.unavailable), 60)
    assert claim is not None and claim.was_maybe_sent  # the worker asks before sending

    code, _, err = run(capsys, "retry", seeded.unavailable)
    assert code == 1
    assert "is PROCESANDO, not FAILED" in err


@pytest.mark.parametrize(
    ("order", "because"),
    [
        ("POS-REJ", "rejected it with rule codes"),
        ("POS-INV", "failed as invalid"),
        ("POS-OK", "is SUCCESS, not FAILED"),
        ("POS-WAIT", "is EN_ESPERA, not FAILED"),
        ("POS-NEW", "is PENDIENTE, not FAILED"),
    ],
)
def test_retry_refuses_what_is_not_safe(
    order: str,
    because: str,
    ops_env: str,
    engine: Engine,
    queue_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(engine)
    store = SqlDocumentStore(engine)
    before = store.get(key(order))
    rows_before = len(store.timeline(key(order)))

    code, out, _ = run(capsys, "retry", f"900123456:{order}", "--json")

    result = json.loads(out)
    assert code == 1
    assert result["retried"] is False
    assert because in result["refused"]
    assert store.get(key(order)) == before
    assert len(store.timeline(key(order))) == rows_before
    assert redis.Redis.from_url(REDIS_URL).llen(queue_name) == 0


def test_retry_refuses_an_order_settled_after_too_many_attempts(
    ops_env: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    SqlNumberingRanges(engine).sync_configured(fx.ISSUER, fx.NUMBERING)
    store = SqlDocumentStore(engine)
    store.accept(key("POS-GAVEUP"), fx._order("POS-GAVEUP"), "simulated", fx.SALE)
    claim = store.claim(key("POS-GAVEUP"), 60)
    assert claim is not None
    reason = {"error": "too_many_attempts", "attempts": 101, "last_reason": fx.UNAVAILABLE}
    store.finish(claim, State.FAILED, {}, StepNote("FAILED", reason), reason)

    code, _, err = run(capsys, "retry", "POS-GAVEUP")

    assert code == 1
    assert "settled after too many attempts" in err
    assert "too_many_attempts: settled after 101 attempts (last: gateway_unavailable" in err
    record = store.get(key("POS-GAVEUP"))
    assert record is not None and record.state is State.FAILED


def test_retry_refuses_past_the_claim_limit(
    ops_env: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seeded = seed(engine)  # the unavailable order has had one attempt
    monkeypatch.setenv("WORKER__MAX_CLAIMS", "1")

    code, _, err = run(capsys, "retry", seeded.unavailable)

    assert code == 1
    assert "the limit (WORKER__MAX_CLAIMS=1) is reached" in err


def test_retry_of_an_unknown_order(ops_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "retry", "POS-NOPE")
    assert code == 2
    assert "no order 900123456:POS-NOPE" in err


def test_stats(ops_env: str, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    seeded = seed(engine)
    redis.Redis.from_url(REDIS_URL).rpush(os.environ["QUEUE"], "m1", "m2")

    code, out, _ = run(capsys, "stats", "--json")

    stats = json.loads(out)
    assert code == 0
    assert stats["orders_by_state"] == {
        "PENDIENTE": 1,
        "PROCESANDO": 1,
        "EN_ESPERA": 1,
        "SUCCESS": 1,
        "FAILED": 3,
    }
    assert stats["failed_by_kind"] == {"rejected": 1, "gateway_unavailable": 1, "invalid_order": 1}
    # the notice FAJ43b is not a rejection rule
    assert stats["rejections_by_rule"] == [
        {"code": "FAD06", "text": "Valor del CUFE no está calculado correctamente", "orders": 1}
    ]
    assert stats["oldest_unfinished"]["order_key"] == str(key(seeded.lease_expired))
    assert 3 * 3600 - 60 < stats["oldest_unfinished"]["age_seconds"] < 3 * 3600 + 60
    assert stats["queue"]["ready"] == 2
    throughput = stats["throughput"]
    assert (throughput["success"], throughput["failed"]) == (1, 3)  # documents, not requests
    refusals = stats["intake_refusals"]
    assert refusals["total"] == {"RECHAZADO_ENTRADA": 1, "CONFLICTO": 0}

    code, out, _ = run(capsys, "stats")
    assert code == 0
    assert "FAD06  1       Valor del CUFE" in out
    assert "2 waiting" in out
    assert f"oldest unfinished order: {key(seeded.lease_expired)} (PROCESANDO)" in out
    assert "input refused at intake (not orders; never on an order's timeline): 1 invalid" in out


def test_stats_without_redis_says_na(
    ops_env: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("BROKER_URL", f"sqla+sqlite:///{tmp_path}/broker.sqlite")
    code, out, _ = run(capsys, "stats")
    assert code == 0
    assert "queue: n/a (the broker is not Redis)" in out
    assert "oldest unfinished order: none" in out


def test_export_streams_the_audit_trail(
    ops_env: str, engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seed(engine)
    with engine.connect() as conn:
        expected = conn.execute(select(InvoiceLogRow.id).order_by(InvoiceLogRow.id)).scalars()
        ids = list(expected)
    today = datetime.now(BOGOTA).date().isoformat()  # dates are Colombian days

    code, out, err = run(
        capsys, "export", "--from", "2026-01-01", "--to", "2099-12-31", "--batch", "3"
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["id"] for r in rows] == ids
    assert {"id", "created_at", "status", "order_key", "payload_in", "response_out"} == set(rows[0])
    assert f"exported {len(ids)} audit rows" in err
    assert rows[0]["status"] == "RECIBIDO"

    target = tmp_path / "audit.csv"
    code, _, err = run(
        capsys,
        "export",
        "--from",
        today,
        "--to",
        "2099-12-31",
        "--format",
        "csv",
        "--output",
        str(target),
        "--progress",
    )
    table = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert code == 0
    assert [int(r["id"]) for r in table] == ids
    assert json.loads(table[0]["payload_in"])["order"]["id_pedido_origen"]
    assert f"100%  {len(ids)}/{len(ids)}" in err

    code, out, err = run(capsys, "export", "--from", "2001-01-01", "--to", "2001-01-31")
    assert (code, out) == (0, "")
    assert "exported 0 audit rows" in err

    code, out, err = run(capsys, "export", "--from", today, "--to", "2099-12-31", "--refusals")
    refused = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and "exported 1 refused-input rows" in err
    assert [r["status"] for r in refused] == ["RECHAZADO_ENTRADA"]
    assert refused[0]["response_out"]["errors"][0]["field"] == "id_pedido_origen"


def test_flower_refuses_to_start_without_credentials(
    ops_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    monkeypatch.delenv("FLOWER_AUTH", raising=False)
    code, _, err = run(capsys, "flower")
    assert code == 78  # a configuration error
    assert "FLOWER_BASIC_AUTH" in err
    with pytest.raises(FlowerRefused):
        flower_argv({"FLOWER_BASIC_AUTH": "nopassword"}, None, None, False, False)
    argv = flower_argv({"FLOWER_BASIC_AUTH": "ops:s3cret"}, 5601, None, False, False)
    assert "--read_only=True" in argv
    assert not any("s3cret" in a for a in argv)  # never on the command line


def test_flower_serves_behind_basic_auth(ops_env: str) -> None:
    port = free_port()
    env = {**os.environ, "FLOWER_BASIC_AUTH": "ops:s3cret-pass"}
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "flower", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                anonymous = httpx.get(f"{url}/tasks", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, (
                    process.stderr.read().decode() if process.stderr else ""
                )
                assert time.monotonic() < deadline, "flower did not start"
                time.sleep(0.3)
        assert anonymous.status_code == 401
        wrong = httpx.get(f"{url}/tasks", auth=("ops", "wrong"), timeout=5)
        assert wrong.status_code == 401
        allowed = httpx.get(f"{url}/api/tasks", auth=("ops", "s3cret-pass"), timeout=5)
        assert allowed.status_code == 200
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 200  # exempt, as documented
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_worker_logs_are_json_lines_with_order_key_and_task_id(
    ops_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("SIMULATED__STATE_PATH", str(tmp_path / "authority.sqlite"))
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker", "worker", "-c", "1", "-n", "ops-logs@%h"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log_file,  # both streams: every line either writes must be JSON
            stderr=log_file,
        )
        try:
            from worker.producer import Producer

            deadline = time.monotonic() + 30
            while "ready." not in log_path.read_text():
                assert worker.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the worker did not start"
                time.sleep(0.2)
            from worker.settings import Settings

            order = json.loads((ROOT / "worker" / "samples" / "orders.json").read_text())[0]
            with Producer(Settings()) as producer:
                producer.enqueue(order)
            store = SqlDocumentStore(engine)
            deadline = time.monotonic() + 60
            while (record := store.get(key(order["id_pedido_origen"]))) is None or (
                not record.state.is_final
            ):
                assert worker.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the worker did not finish the order"
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)

    lines = log_path.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON object, from the first
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in events)
    starting = events[0] if os.geteuid() != 0 else events[1]
    if os.geteuid() == 0:  # Celery's warning about root comes first, as an event
        assert events[0]["logger"] == "py.warnings" and "superuser" in events[0]["message"]
    assert starting["message"].startswith("worker ops-logs@") and starting["concurrency"] == 1
    assert any("Warm shutdown" in e["message"] for e in events)  # Celery writes it to fd 1
    order_key = f"900123456:{order['id_pedido_origen']}"
    done = [e for e in events if e["logger"] == "worker.tasks" and e.get("order_key") == order_key]
    assert done and done[0]["task"] == "einvoice.process_order" and done[0]["task_id"]
    traced = [e for e in events if e["logger"] == "celery.app.trace" and e.get("task_id")]
    assert any(e.get("order_key") == order_key for e in traced)
    info = [e for e in events if e["level"] == "INFO"]
    assert not any("Cerveza" in e["message"] or "precio_unitario" in e["message"] for e in info)


def test_list_stuck_stats_and_export_by_issuer(
    ops_env: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seed(engine)
    other = "800197268"
    unnumbered = DocumentPlan(DocumentKind.INVOICE, "1", numbered=False)
    SqlDocumentStore(engine).accept(
        OrderKey(other, "OTRO-1"), fx._order("OTRO-1"), "factus", unnumbered
    )

    code, out, _ = run(capsys, "list", "--issuer", other, "--json")
    assert code == 0 and [r["order_key"] for r in json.loads(out)] == [f"{other}:OTRO-1"]
    code, out, _ = run(capsys, "list", "--issuer", fx.ISSUER, "--json")
    assert f"{other}:" not in out and seeded.succeeded in out

    code, out, _ = run(capsys, "stuck", "--older-than", "30m", "--issuer", other)
    assert (code, out.strip()) == (0, "no order has been open for more than 30m")
    code, out, _ = run(capsys, "stuck", "--older-than", "30m", "--issuer", fx.ISSUER)
    assert code == 1 and seeded.never_taken in out

    code, out, _ = run(capsys, "stats", "--json")
    by_issuer = json.loads(out)["orders_by_issuer"]
    assert by_issuer[other]["PENDIENTE"] == 1 and sum(by_issuer[other].values()) == 1
    assert sum(by_issuer[fx.ISSUER].values()) == 7
    code, out, _ = run(capsys, "stats")
    assert "orders by issuer" in out and other in out

    code, out, err = run(
        capsys, "export", "--from", "2026-01-01", "--to", "2099-12-31", "--issuer", other
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["order_key"] for r in rows] == [f"{other}:OTRO-1"]
    assert "exported 1 audit rows" in err
