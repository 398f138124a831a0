"""Notes over the HTTP intake (uvicorn on loopback, real PostgreSQL and Redis): accepted
durably and idempotently by `id_nota`, refused as problems naming field and rule, read back
with the order, and never crediting more than remains whatever arrives at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from adapters.db.engine import make_engine
from adapters.db.store import SqlDocumentStore
from domain.ports import OrderKey
from domain.store import State, StepNote
from tests.factories import line, order
from tests.integration.api_fixtures import (
    ISSUER,
    REDIS_URL,
    api_database,
    api_key,
    api_keys,
    api_queue,
    api_settings,
    api_url,
    http,
    seed_order,
    serve,
    settings_factory,
    unique_id,
)
from worker.api import create_api
from worker.api.config import ApiSettings
from worker.settings import DocumentSettings, Settings

__all__ = [  # fixtures used by name
    "api_database",
    "api_key",
    "api_keys",
    "api_queue",
    "api_settings",
    "api_url",
    "http",
    "settings_factory",
]

ORDERS = "/api/v1/pedidos"
PROBLEM_JSON = "application/problem+json"
CUFE = "c" * 96
ROOT = Path(__file__).resolve().parents[2]


def notes_of(order_id: str) -> str:
    return f"{ORDERS}/{order_id}/notas"


def ret(note_id: str, quantity: int | str = 1, line_no: int = 1) -> dict[str, Any]:
    return {
        "id_nota": note_id,
        "tipo": "devolucion",
        "lineas": [{"linea": line_no, "cantidad": quantity}],
        "motivo": "devuelto en caja",
    }


@pytest.fixture
def store(api_database: str) -> Iterator[SqlDocumentStore]:
    engine = make_engine(api_database, pool_size=2)
    yield SqlDocumentStore(engine)
    engine.dispose()


@pytest.fixture
def sale(http: httpx.Client, store: SqlDocumentStore) -> Callable[..., str]:
    """An order accepted over HTTP, then (unless `ends` is None) ended as the worker would."""

    def make(ends: State | None = State.SUCCESS, data: dict[str, Any] | None = None) -> str:
        order_id = unique_id()
        body = {**(data or seed_order(order_id)), "id_pedido_origen": order_id}
        assert http.post(ORDERS, json=body).status_code == 202
        if ends is not None:
            claim = store.claim(OrderKey(ISSUER, order_id), 60)
            assert claim is not None
            refs = {"cufe": CUFE} if ends is State.SUCCESS else {}
            assert store.finish(claim, ends, refs, StepNote(str(ends)), None)
        return order_id

    return make


def query(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


# -- accepting -------------------------------------------------------------------------------


def test_a_note_is_201_with_its_location_and_the_same_note_again_is_200(
    http: httpx.Client, sale: Callable[..., str]
) -> None:
    order_id = sale()
    note_id = unique_id("DEV")

    first = http.post(notes_of(order_id), json=ret(note_id))
    again = http.post(notes_of(order_id), json=ret(note_id, "1.000"))  # the same, spelled apart

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    made = first.json()
    location = f"{ORDERS}/{order_id}/notas/{note_id}"
    assert first.headers["location"] == again.headers["location"] == location
    assert made["links"] == {"self": location, "order": f"{ORDERS}/{order_id}"}
    assert made["created"] is True and again.json()["created"] is False
    assert made["note_key"] == again.json()["note_key"] == f"{ISSUER}:{order_id}/{note_id}"
    assert made["number"] == again.json()["number"] and made["number"].startswith("NC")
    assert made["document_type"] == "91" and made["tipo"] == "devolucion"
    assert made["state"] == "PENDIENTE" and made["waits_for_document"] is False
    assert made["corrects"]["document_type"] == "01" and made["corrects"]["cufe"] == CUFE
    assert made["corrects"]["number"].startswith("SETP")
    assert made["total"] == "10800.00"  # one beer: 10000 + INC 8 %
    assert made["lineas"] == [
        {
            "linea": 1,
            "cantidad": "1",
            "base": "10000.00",
            "impuestos": [{"tributo": "04", "tasa": "0.08", "monto": "800.00"}],
        }
    ]

    read = http.get(location)
    assert read.status_code == 200
    view = read.json()
    assert view["number"] == made["number"] and view["motivo"] == "devuelto en caja"
    assert [e["status"] for e in view["timeline"]] == ["RECIBIDO"]
    assert view["refusals"] == {"count": 0, "latest": []}


def test_the_order_shows_its_notes_and_what_remains_creditable(
    http: httpx.Client, sale: Callable[..., str]
) -> None:
    order_id = sale()
    before = http.get(f"{ORDERS}/{order_id}").json()
    assert before["notes"] == []
    assert before["creditable"] == {
        "total": "24600.00",
        "tip": "3000.00",
        "lines": [{"linea": 1, "cantidad": "2", "base": "20000.00", "impuestos": "1600.00"}],
    }
    note_id = unique_id("DEV")
    made = http.post(notes_of(order_id), json=ret(note_id)).json()

    view = http.get(f"{ORDERS}/{order_id}").json()
    listed = http.get(notes_of(order_id)).json()

    assert view["cufe"] == CUFE and view["state"] == "SUCCESS"
    assert [(n["id_nota"], n["number"], n["state"]) for n in view["notes"]] == [
        (note_id, made["number"], "PENDIENTE")
    ]
    assert view["creditable"] == {
        "total": "13800.00",
        "tip": "3000.00",
        "lines": [{"linea": 1, "cantidad": "1", "base": "10000.00", "impuestos": "800.00"}],
    }
    assert listed == {
        "id_pedido_origen": order_id,
        "notes": view["notes"],
        "creditable": view["creditable"],
    }
    assert {k: v for k, v in made.items() if k not in ("created", "warnings")} == listed["notes"][0]


def test_a_note_for_a_sale_not_yet_issued_is_accepted_and_waits(
    http: httpx.Client, sale: Callable[..., str], store: SqlDocumentStore
) -> None:
    order_id = sale(ends=None)
    void = http.post(notes_of(order_id), json={"id_nota": unique_id("V"), "tipo": "anulacion"})

    assert void.status_code == 201, void.text
    assert void.json()["state"] == "PENDIENTE" and void.json()["waits_for_document"] is True
    assert void.json()["corrects"]["cufe"] is None  # known once the authority accepts it
    assert http.get(f"{ORDERS}/{order_id}").json()["creditable"]["total"] == "0.00"

    claim = store.claim(OrderKey(ISSUER, order_id), 60)
    assert claim is not None
    store.finish(claim, State.SUCCESS, {"cufe": CUFE}, StepNote("SUCCESS"), None)
    woken = http.get(void.headers["location"]).json()
    assert woken["waits_for_document"] is False and woken["corrects"]["cufe"] == CUFE


def test_the_same_note_id_with_another_request_or_order_is_a_conflict(
    http: httpx.Client, sale: Callable[..., str], api_database: str
) -> None:
    order_id, other_order = sale(), sale()
    note_id = unique_id("DEV")
    assert http.post(notes_of(order_id), json=ret(note_id)).status_code == 201

    changed = http.post(notes_of(order_id), json=ret(note_id, 2))
    elsewhere = http.post(notes_of(other_order), json=ret(note_id))

    for response in (changed, elsewhere):
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        problem = response.json()
        assert problem["type"] == "/api/v1/problems/note-conflict"
        assert [(e["field"], e["rule"]) for e in problem["errors"]] == [
            ("id_nota", "note_conflict")
        ]
    rows = query(api_database, "SELECT count(*) FROM documents WHERE note_id = :n", n=note_id)
    assert rows[0][0] == 1
    assert http.get(f"{ORDERS}/{order_id}").json()["creditable"]["lines"][0]["cantidad"] == "1"


# -- refusing --------------------------------------------------------------------------------


def refused_rules(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.headers["content-type"] == PROBLEM_JSON, response.text
    return [(e["field"], e["rule"]) for e in response.json()["errors"]]


def test_a_note_for_an_unknown_order_is_404_naming_the_rule(http: httpx.Client) -> None:
    for order_id in (unique_id(), "a b", "x" * 65):
        response = http.post(notes_of(order_id), json=ret(unique_id("DEV")))
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "/api/v1/problems/unknown-order"
        assert refused_rules(response) == [("(order)", "unknown_order")]
    assert http.get(notes_of(unique_id())).status_code == 404
    assert http.get(f"{notes_of(unique_id())}/X-1").status_code == 404


def test_every_refusal_names_the_field_and_the_rule_and_numbers_nothing(
    http: httpx.Client, sale: Callable[..., str], api_database: str
) -> None:
    issued, failed = sale(), sale(ends=State.FAILED)
    voided = sale()
    assert http.post(notes_of(voided), json={"id_nota": unique_id("V"), "tipo": "anulacion"})
    numbered_before = query(
        api_database, "SELECT count(*) FROM documents WHERE note_id IS NOT NULL"
    )

    cases: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
        (failed, ret("F-1"), [("(order)", "document_failed")]),
        (issued, ret("L-1", 1, 7), [("lineas[0].linea", "unknown_line")]),
        (issued, ret("Q-1", 3), [("lineas[0].cantidad", "beyond_remaining")]),
        (voided, {"id_nota": "V-2", "tipo": "anulacion"}, [("tipo", "nothing_left")]),
        (issued, {"id_nota": "D-1", "tipo": "descuento", "monto": "100"}, [("motivo", "required")]),
        (
            issued,
            {"id_nota": "D-2", "tipo": "descuento", "monto": "20000.01", "motivo": "cortesía"},
            [("monto", "beyond_remaining")],
        ),
        (issued, {"id_nota": "T-1", "tipo": "regalo"}, [("tipo", "literal_error")]),
        (
            issued,
            {"tipo": "anulacion", "extra": 1},
            [("id_nota", "missing"), ("extra", "extra_forbidden")],
        ),
    ]
    for order_id, body, rules in cases:
        response = http.post(notes_of(order_id), json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["type"] == "/api/v1/problems/invalid-note"
        assert sorted(refused_rules(response)) == sorted(rules), body
        pointers = [e["pointer"] for e in response.json()["errors"]]
        assert all(p.startswith("#") for p in pointers)

    not_json = http.post(
        notes_of(issued), content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert not_json.json()["type"] == "/api/v1/problems/unreadable-body"
    as_text = http.post(notes_of(issued), content=b"x", headers={"content-type": "text/plain"})
    assert as_text.status_code == 415 and as_text.headers["accept-post"] == "application/json"

    numbered_after = query(api_database, "SELECT count(*) FROM documents WHERE note_id IS NOT NULL")
    assert numbered_after == numbered_before, "a refused note is never numbered nor stored"
    refused = query(
        api_database,
        "SELECT order_key FROM intake_refusals WHERE order_key = :k",
        k=f"{ISSUER}:{issued}/L-1",
    )
    assert len(refused) == 1, "the refusal is recorded under the note's key"
    assert http.get(f"{notes_of(issued)}/L-1").json()["refusals"]["count"] == 1


def test_a_note_the_gateway_does_not_issue_is_refused(
    settings_factory: Callable[..., Settings],
    api_key: str,
) -> None:
    """Factus issues credit notes to invoices but has no POS document, so no adjustment note
    (94) to one: a POS ticket issued before the deployment moved to Factus cannot get one."""
    order_id = unique_id()
    pos_intake = settings_factory(documents=DocumentSettings(mode="pos"))
    with serve(create_api(pos_intake, ApiSettings())) as url:
        body = seed_order(order_id)
        taken = httpx.post(f"{url}{ORDERS}", json=body, headers={"X-API-Key": api_key})
        assert taken.status_code == 202, taken.text
    engine = make_engine(pos_intake.database_url, pool_size=1)
    store = SqlDocumentStore(engine)
    claim = store.claim(OrderKey(ISSUER, order_id), 60)
    assert claim is not None and claim.record.kind.value == "20"
    assert store.finish(claim, State.SUCCESS, {"cufe": CUFE}, StepNote("SUCCESS"), None)
    engine.dispose()
    factus = settings_factory(gateway="factus")
    with serve(create_api(factus, ApiSettings())) as url:
        response = httpx.post(
            f"{url}{notes_of(order_id)}",
            json={"id_nota": unique_id("V"), "tipo": "anulacion"},
            headers={"X-API-Key": api_key},
            timeout=10,
        )
    assert response.status_code == 422, response.text
    assert refused_rules(response) == [("tipo", "note_kind_not_offered")]


def test_a_failed_order_has_nothing_creditable(
    http: httpx.Client, sale: Callable[..., str]
) -> None:
    order_id = sale(ends=State.FAILED)
    assert http.get(f"{ORDERS}/{order_id}").json()["creditable"] is None
    assert http.get(notes_of(order_id)).json() == {
        "id_pedido_origen": order_id,
        "notes": [],
        "creditable": None,
    }


# -- at once ---------------------------------------------------------------------------------


def at_once(count: int, send: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    barrier = threading.Barrier(count)

    def run(n: int) -> httpx.Response:
        barrier.wait()
        return send(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_the_same_note_posted_at_once_is_one_note(
    api_url: str, api_key: str, sale: Callable[..., str], api_database: str
) -> None:
    order_id = sale()
    note_id = unique_id("DEV")
    with httpx.Client(base_url=api_url, headers={"X-API-Key": api_key}, timeout=30) as client:
        answers = at_once(8, lambda _: client.post(notes_of(order_id), json=ret(note_id)))

    assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
    assert len({a.json()["number"] for a in answers}) == 1
    rows = query(api_database, "SELECT count(*) FROM documents WHERE note_id = :n", n=note_id)
    assert rows[0][0] == 1
    received = query(
        api_database,
        "SELECT count(*) FROM invoice_log WHERE order_key = :k",
        k=f"{ISSUER}:{order_id}/{note_id}",
    )
    assert received[0][0] == 1


def test_returns_racing_for_the_last_units_never_over_credit(
    api_url: str, api_key: str, http: httpx.Client, sale: Callable[..., str], api_database: str
) -> None:
    data = order("X", [line("Cerveza", 3, 10000), line("Empanada", 2, 4500, ())], tip=2000)
    order_id = sale(data=data)
    with httpx.Client(base_url=api_url, headers={"X-API-Key": api_key}, timeout=30) as client:
        returns = at_once(
            8, lambda n: client.post(notes_of(order_id), json=ret(f"R-{order_id}-{n}"))
        )
        voids = at_once(
            6,
            lambda n: client.post(
                notes_of(order_id), json={"id_nota": f"V-{order_id}-{n}", "tipo": "anulacion"}
            ),
        )

    codes = sorted(r.status_code for r in returns)
    assert codes == [201] * 3 + [422] * 5, [r.text for r in returns]
    for refused in (r for r in returns if r.status_code == 422):
        assert refused_rules(refused) in (
            [("lineas[0].cantidad", "beyond_remaining")],
            [("(note)", "beyond_remaining")],  # the database's check, past the Python one
        )
    assert sorted(v.status_code for v in voids) == [201] + [422] * 5
    assert {tuple(refused_rules(v)) for v in voids if v.status_code == 422} <= {
        (("tipo", "nothing_left"),),
        (("(note)", "beyond_remaining"),),
    }
    void = next(v.json() for v in voids if v.status_code == 201)
    assert void["total"] == "11000.00"  # the two empanadas and the tip: all that was left

    view = http.get(f"{ORDERS}/{order_id}").json()
    assert view["creditable"]["total"] == "0.00"
    credited = sum(Decimal(n["total"]) for n in view["notes"])
    assert credited == Decimal(data["total_factura"])
    numbers = [
        int(r[0][2:]) for r in query(api_database, "SELECT number FROM documents WHERE kind = '91'")
    ]
    assert sorted(numbers) == list(range(1, len(numbers) + 1)), "gap-free: nothing in vain"


def test_the_status_command_shows_what_the_order_read_back_shows(
    http: httpx.Client, sale: Callable[..., str], store: SqlDocumentStore, api_database: str
) -> None:
    order_id = sale()
    issued = http.post(notes_of(order_id), json=ret(unique_id("DEV"))).json()
    http.post(notes_of(order_id), json=ret(unique_id("DEV")))
    claim = store.claim(OrderKey.parse(issued["note_key"]), 60)
    assert claim is not None
    store.finish(claim, State.SUCCESS, {"cufe": "d" * 96}, StepNote("SUCCESS"), None)
    env = {
        **os.environ,
        "DATABASE_URL": api_database,
        "BROKER_URL": REDIS_URL,
        "GATEWAY": "simulated",
        "ISSUER__NIT": ISSUER,
    }

    def status(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "worker", "status", order_id, *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = json.loads(status("--json"))
    view = http.get(f"{ORDERS}/{order_id}").json()

    assert shown["creditable"] == view["creditable"]
    assert view["creditable"]["lines"][0]["cantidad"] == "0"
    assert [
        (n["key"], n["document_type"], n["state"], n["number"], n["cude"], n["total"])
        for n in shown["notes"]
    ] == [
        (n["note_key"], n["document_type"], n["state"], n["number"], n["cude"], n["total"])
        for n in view["notes"]
    ]
    assert [n["state"] for n in view["notes"]] == ["SUCCESS", "PENDIENTE"]
    assert view["notes"][0]["cude"] == "d" * 96
    printed = status()
    assert f"CUDE {'d' * 96}" in printed
    assert "creditable 3000.00 left of the document" in printed  # the tip alone
    assert "line 1" in printed and "tip" in printed
