"""Abuse checks: bad and oversized input, hostile messages and responses, secrets, audit rows.

Each returns a Row like the fault scenarios; `orders` counts the orders that went through the
real pipeline, and `notes` carries the figures (peak RSS, refusals, hits).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text

from chaos.authorities import SECRETS, Factus
from chaos.harness import ROOT, Deployment, Row, until
from chaos.scenarios import Context, _deploy, make_orders
from tests.factories import line, order
from worker.publisher import TASK_PROCESS

# -- bad payloads through a real worker ---------------------------------------------------------

BAD_PAYLOADS: list[Any] = [
    {},
    [],
    "POS-1",
    {"id_pedido_origen": "BAD-1"},
    {**order("BAD-2"), "total_factura": "1"},
    {**order("BAD-3"), "items": []},
    {**order("BAD-4"), "items": [{**line(), "cantidad": "-1"}]},
    {**order("BAD-5"), "metodos_pago": [{"tipo": "Bitcoin", "monto": "1"}]},
    {**order("BAD-6"), "subtotal": "NaN"},
    {**order("BAD-7"), "subtotal": "Infinity"},
    {**order("BAD-8"), "subtotal": "1e999999"},
    {**order("BAD-9"), "id_pedido_origen": "x" * 65},
    {**order("BAD-10"), "id_pedido_origen": "a b;DROP TABLE orders"},
    {**order("BAD-11"), "items": "not a list"},
    {**order("BAD-12"), "adquirente": {"tipo_documento": "99", "numero_documento": "1"}},
    # refused payloads carrying text PostgreSQL JSONB cannot hold (found by the fuzzing)
    {"\x00": None},
    order("BAD-13", buyer={"tipo_documento": "13", "numero_documento": "1", "nombre": "x\udcff"}),
    {**order("BAD-14"), "id_pedido_origen": "BAD-14\x00"},
]
GARBAGE_ARGS: list[list[Any]] = [
    ["no-colon"],
    ["900123456:DOES-NOT-EXIST"],
    [12345],
    [],
    ["a", "b"],
    [{"order": "x"}],
    ["x" * 100_000],
]


def bad_payloads_through_worker(ctx: Context) -> Row:
    rng = ctx.rng("bad-payloads")
    d, auth = _deploy(ctx, "bad_payloads_worker")
    notes: list[str] = []
    try:
        worker = d.start_worker("w1")
        d.start_beat()
        refused, crashes = _enqueue_each(d, BAD_PAYLOADS)
        if crashes:
            notes.append(
                f"{len(crashes)} payloads crashed the intake instead of being refused: "
                f"{crashes[:3]}"
            )
        from celery import Celery

        app = Celery(broker=d.redis.url)
        for args in GARBAGE_ARGS:  # wake-ups nobody should send: the worker must shrug
            app.send_task(TASK_PROCESS, args=args, queue=d.queue)
        app.close()
        started = time.monotonic()
        d.enqueue(make_orders("GOOD", 40, rng))
        drain = d.wait_drained(started, ctx.drain_timeout())
        failed_rows = d.query("SELECT response_out::text FROM invoice_log WHERE status = 'FAILED'")
        processing = d.query(
            "SELECT count(*) FROM invoice_log WHERE status = 'PROCESANDO' AND order_key LIKE :p",
            p="%:BAD-%",
        )[0][0]
        named = sum('"field"' in r[0] for r in failed_rows)
        notes.append(
            f"{refused}/{len(BAD_PAYLOADS)} refused at intake, {len(failed_rows)} FAILED "
            f"audit rows ({named} naming a field), {processing} sent to a worker"
        )
        notes.append(f"{len(GARBAGE_ARGS)} garbage wake-ups; worker alive={worker.poll() is None}")
        row = d.measure("bad_payloads_worker", drain, auth.submissions(), notes)
        row.ok = row.ok and refused == len(BAD_PAYLOADS) and processing == 0 and not crashes
        row.ok = row.ok and named == len(failed_rows) and worker.poll() is None
        return row
    finally:
        d.stop_all()


def _enqueue_each(d: Deployment, payloads: list[Any]) -> tuple[int, list[str]]:
    from domain.errors import InvalidOrder
    from worker.producer import Producer

    refused, crashes = 0, []
    with Producer(d.settings()) as producer:
        for data in payloads:
            try:
                producer.enqueue(data)
            except InvalidOrder:
                refused += 1
            except Exception as exc:  # what this check looks for
                crashes.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}")
    return refused, crashes


# -- pickle (and any non-JSON content) is refused -----------------------------------------------


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def pickle_refused(ctx: Context) -> Row:
    from kombu import Connection

    rng = ctx.rng("pickle")
    d, auth = _deploy(ctx, "pickle_refused")
    marker = d.workdir / "PWNED"
    notes: list[str] = []
    try:
        worker = d.start_worker("w1")
        d.start_beat()
        body = ((_Exploit(marker),), {}, {"callbacks": None, "errbacks": None, "chain": None})
        with Connection(d.redis.url) as conn:
            producer = conn.Producer()
            for serializer in ("pickle", "yaml"):
                if serializer == "yaml":
                    payload: Any = "!!python/object/apply:os.system ['touch " + str(marker) + "']"
                    kwargs: dict[str, Any] = {
                        "content_type": "application/x-yaml",
                        "content_encoding": "utf-8",
                    }
                else:
                    payload = body
                    kwargs = {"serializer": "pickle"}
                producer.publish(
                    payload,
                    routing_key=d.queue,
                    headers={
                        "task": TASK_PROCESS,
                        "id": f"evil-{serializer}",
                        "lang": "py",
                        "argsrepr": "()",
                        "kwargsrepr": "{}",
                    },
                    **kwargs,
                )
        until(lambda: d.count_in_logs("evil-yaml") > 0 or d.count_in_logs("Refusing") >= 2, 20)
        started = time.monotonic()
        d.enqueue(make_orders("AFTERPICKLE", 30, rng))
        drain = d.wait_drained(started, ctx.drain_timeout())
        refusals = d.count_in_logs("Refusing to deserialize")
        notes.append(f"{refusals} refusals logged ('Refusing to deserialize untrusted content')")
        notes.append(f"payload executed: {marker.exists()}; worker alive: {worker.poll() is None}")
        row = d.measure("pickle_refused", drain, auth.submissions(), notes)
        row.ok = row.ok and refusals >= 2 and not marker.exists() and worker.poll() is None
        return row
    finally:
        d.stop_all()


# -- secrets never leak -------------------------------------------------------------------------


def _broker_snapshot(d: Deployment, sink: list[bytes], stop: threading.Event) -> None:
    client = redis.Redis.from_url(d.redis.url)
    while not stop.is_set():
        try:
            sink.extend(client.lrange(d.queue, 0, -1))
            sink.extend(client.hvals("unacked"))
        except redis.RedisError:
            pass
        stop.wait(0.2)
    client.close()


def _scan(d: Deployment, secrets: dict[str, str], broker: list[bytes]) -> dict[str, list[str]]:
    db_text = ""
    for table in ("orders", "documents", "invoice_log", "intake_refusals"):
        db_text += "\n".join(r[0] for r in d.query(f"SELECT t::text FROM {table} t"))
    places = {
        "database": db_text,
        "logs": d.log_text(),
        "task messages": b"\n".join(broker).decode(errors="replace"),
    }
    hits: dict[str, list[str]] = {}
    for place, blob in places.items():
        for name, value in secrets.items():
            if value and value in blob:
                hits.setdefault(place, []).append(name)
    return hits


def _secret_run(
    ctx: Context, name: str, authority: str, n: int, faults: list[dict[str, Any]]
) -> tuple[Row, dict[str, list[str]]]:
    rng = ctx.rng(name)
    d, auth = _deploy(ctx, name, authority, LOG_LEVEL="DEBUG")
    try:
        broker: list[bytes] = []
        stop = threading.Event()
        snap = threading.Thread(target=_broker_snapshot, args=(d, broker, stop), daemon=True)
        snap.start()
        d.start_worker("w1")
        d.start_beat()
        started = time.monotonic()
        for fault in faults:
            auth.control(**fault)
        d.enqueue(make_orders(name.upper()[:6], n, rng))
        drain = d.wait_drained(started, ctx.drain_timeout())
        stop.set()
        snap.join()
        secrets = dict(SECRETS)
        if isinstance(auth, Factus):
            client = redis.Redis.from_url(d.redis.url)
            for key in client.scan_iter("factus:token:*"):
                if client.type(key) == b"hash":
                    for field_name in (b"access_token", b"refresh_token"):
                        value = client.hget(key, field_name)
                        if value:
                            secrets[f"oauth_{field_name.decode()}"] = value.decode()
            client.close()
        hits = _scan(d, secrets, broker)
        notes = [
            f"scanned {len(secrets)} secret values in DB, DEBUG logs and "
            f"{len(broker)} broker messages"
        ]
        if hits:
            notes.append(f"LEAKS: {hits}")
        row = d.measure(name, drain, auth.submissions(), notes)
        row.ok = row.ok and not hits
        return row, hits
    finally:
        d.stop_all()
        auth.stop()


def secrets_dian(ctx: Context) -> Row:
    faults = [
        {"timeouts": 3, "timeout_seconds": 4.0},
        {"http_errors": 3},
        {"server_faults": 2},
        {"invalid_security": 0},
    ]
    return _secret_run(ctx, "secrets_dian", "dian", 40, faults)[0]


def secrets_factus(ctx: Context) -> Row:
    faults = [{"fail_next": 3, "drop_next": 2}]
    return _secret_run(ctx, "secrets_factus", "factus", 40, faults)[0]


# -- hostile XML in responses -------------------------------------------------------------------


def hostile_xml(ctx: Context) -> Row:
    rng = ctx.rng("hostile")
    n = 30 if ctx.short else 60
    d, auth = _deploy(ctx, "hostile_xml_responses", "dian")
    notes: list[str] = []
    try:
        auth.control(xxe=-1)
        d.start_worker("w1")
        d.start_beat()
        started = time.monotonic()
        d.enqueue(make_orders("XXE", n // 2, rng))
        until(lambda: d.states().get("EN_ESPERA", 0) >= n // 4, 60)
        auth.control(xxe=0, billion_laughs=-1)
        d.enqueue(make_orders("LOL", n - n // 2, rng))
        time.sleep(8)
        auth.control(billion_laughs=0)
        drain = d.wait_drained(started, ctx.drain_timeout())
        blob = d.log_text() + "\n".join(r[0] for r in d.query("SELECT t::text FROM invoice_log t"))
        expanded = "root:x:0:0" in blob or "lollollollollol" in blob
        refused = d.query(
            "SELECT count(*) FROM invoice_log WHERE response_out::text ILIKE :p",
            p="%malformed or unsafe answer%",
        )[0][0]
        notes.append(
            f"{refused} audit rows record a refused (DTD/entity) answer; "
            f"expanded anywhere: {expanded}"
        )
        row = d.measure("hostile_xml_responses", drain, auth.submissions(), notes)
        row.ok = row.ok and not expanded and refused > 0
        return row
    finally:
        d.stop_all()
        auth.stop()


# -- names with markup, quotes, SQL and emoji round-trip ----------------------------------------

HOSTILE_NAMES = [
    'Ñandú & Cía <Norte> "S.A.S."',
    "O'Brien's Bar'; DROP TABLE orders; --",
    "<script>alert(1)</script> & &amp; &lt;",
    "Café 🍽️ 👩‍🍳 Ωmega ☕",
    'Robert"); DELETE FROM invoice_log; --',
    "]]> <![CDATA[ x ]]> <!-- c -->",
]


def names_roundtrip(ctx: Context) -> Row:
    d, auth = _deploy(ctx, "names_roundtrip", "dian")
    notes: list[str] = []
    try:
        d.start_worker("w1")
        d.start_beat()
        orders = []
        for i, name in enumerate(HOSTILE_NAMES):
            buyer = {"tipo_documento": "31", "numero_documento": "900373076", "nombre": name}
            item = line(name[:60], 1, 10000)
            orders.append(order(f"NAME-{i}", [item], buyer=buyer))
        started = time.monotonic()
        keys = d.enqueue(orders)
        drain = d.wait_drained(started, ctx.drain_timeout())
        intact = 0
        for key, data in zip(keys, orders, strict=True):
            rec = d.query(
                "SELECT o.payload, d.state FROM orders o JOIN documents d ON d.order_ref = o.id "
                "WHERE o.order_id = :o",
                o=key.order_id,
            )[0]
            same = rec[0]["adquirente"]["nombre"] == data["adquirente"]["nombre"]
            same = same and rec[0]["items"][0]["descripcion"] == data["items"][0]["descripcion"]
            intact += same and rec[1] == "SUCCESS"
        rendered = _render_and_verify(d, orders[0])
        notes.append(
            f"{intact}/{len(orders)} SUCCESS with names intact (DIAN simulator checked "
            f"XAdES signature and schema); render+xmlsec1: {rendered}"
        )
        row = d.measure("names_roundtrip", drain, auth.submissions(), notes)
        row.ok = row.ok and intact == len(orders) and rendered.startswith("ok")
        return row
    finally:
        d.stop_all()
        auth.stop()


def _render_and_verify(d: Deployment, data: dict[str, Any]) -> str:
    from lxml import etree

    src = d.workdir / "render-order.json"
    src.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "worker", "render", str(src), "--number", "990000999"],
        env=d.env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    if out.returncode != 0:
        return f"render failed: {out.stderr.decode(errors='replace')[-300:]}"
    doc = etree.fromstring(out.stdout)
    names = [t for t in doc.itertext() if t == data["adquirente"]["nombre"]]
    xml_path = d.workdir / "rendered.xml"
    xml_path.write_bytes(out.stdout)
    verify = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--insecure",
            "--id-attr:Id",
            "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2:Invoice",
            str(xml_path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    status = "ok" if names and verify.returncode == 0 else "mismatch"
    return f"{status} (name found {len(names)}x, xmlsec1 rc={verify.returncode})"


# -- the audit trail is append-only for the application's role ----------------------------------


def audit_append_only(ctx: Context) -> Row:
    rng = ctx.rng("audit")
    d, auth = _deploy(ctx, "audit_append_only")
    notes: list[str] = []
    try:
        d.start_worker("w1")
        started = time.monotonic()
        d.enqueue(make_orders("AUD", 10, rng))
        drain = d.wait_drained(started, 60)
        db = d.database_url.rsplit("/", 1)[1]
        role = "einvoice_app_chaos"
        d.cluster.execute_admin(db, f"DROP ROLE IF EXISTS {role}")
        d.cluster.execute_admin(db, f"CREATE ROLE {role} LOGIN")
        d.cluster.execute_admin(
            db, f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        d.cluster.execute_admin(db, f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        url = d.database_url.replace("postgres@", f"{role}@")
        outcomes = {}
        for verb, sql in (
            ("UPDATE", "UPDATE invoice_log SET status = 'SUCCESS' WHERE id = 1"),
            ("DELETE", "DELETE FROM invoice_log WHERE id = 1"),
            ("TRUNCATE", "TRUNCATE invoice_log"),
            ("INSERT", "INSERT INTO invoice_log (status, payload_in) VALUES ('RECIBIDO', '{}')"),
        ):
            outcomes[verb] = _try_sql(url, sql)
        superuser_update = _try_sql(d.database_url, "UPDATE invoice_log SET status='x'")
        count = d.query("SELECT count(*) FROM invoice_log")[0][0]
        notes.append(
            f"app role (DML grants): {outcomes}; superuser UPDATE: {superuser_update}; "
            f"{count} audit rows remain"
        )
        row = d.measure("audit_append_only", drain, auth.submissions(), notes)
        row.ok = row.ok and outcomes["UPDATE"] != "allowed" and outcomes["DELETE"] != "allowed"
        row.ok = row.ok and outcomes["TRUNCATE"] != "allowed"
        return row
    finally:
        d.stop_all()


def _try_sql(url: str, sql: str) -> str:
    eng = create_engine(url)
    try:
        with eng.begin() as conn:
            conn.execute(text(sql))
        return "allowed"
    except Exception as exc:
        return "refused: " + str(getattr(exc, "orig", exc)).splitlines()[0][:80]
    finally:
        eng.dispose()


ABUSE: dict[str, Callable[[Context], Row]] = {
    "bad_payloads_worker": bad_payloads_through_worker,
    "pickle_refused": pickle_refused,
    "secrets_dian": secrets_dian,
    "secrets_factus": secrets_factus,
    "hostile_xml_responses": hostile_xml,
    "names_roundtrip": names_roundtrip,
    "audit_append_only": audit_append_only,
}
ABUSE_SHORT = ["bad_payloads_worker", "pickle_refused", "secrets_dian"]


def _register_oversized() -> None:
    from chaos.oversized import oversized_input

    ABUSE["oversized_input"] = oversized_input
    ABUSE_SHORT.append("oversized_input")


_register_oversized()
