"""The HTTP intake over real HTTP (uvicorn on loopback), real PostgreSQL and real Redis."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from adapters.db.api_keys import RememberedKeys, SqlApiKeys
from adapters.db.engine import make_engine
from adapters.db.issuers import Issuer, SqlIssuers
from adapters.db.ranges import SqlNumberingRanges
from adapters.db.store import SqlDocumentStore
from domain.issuer import NumberingRange
from domain.ports import OrderKey
from domain.store import State, StepNote
from tests.integration.api_fixtures import (
    ISSUER,
    SEED_ORDER,
    TEST_BODY_LIMIT,
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
from worker.api.__main__ import openapi_text
from worker.api.config import ApiSettings
from worker.api.services import build_services
from worker.settings import NumberingSettings, Settings

KEY_CACHE_SECONDS = 5.0  # what docs/API.md states

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

INTAKE = "/api/v1/pedidos"
PROBLEM_JSON = "application/problem+json"
ROOT = Path(__file__).resolve().parents[2]


def audit_rows(
    database_url: str, order_key: str | None = None, table: str = "invoice_log"
) -> list[Any]:
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            query = f"SELECT status, order_key, payload_in, response_out FROM {table}"
            if order_key is None:
                return list(conn.execute(text(query + " ORDER BY id")).all())
            return list(
                conn.execute(
                    text(query + " WHERE order_key = :k ORDER BY id"), {"k": order_key}
                ).all()
            )
    finally:
        engine.dispose()


# -- accepting -------------------------------------------------------------------------------


def test_accepts_the_seed_payload_unchanged_and_reads_it_back(http: httpx.Client) -> None:
    order_id = unique_id()
    response = http.post(INTAKE, json=seed_order(order_id))

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["order_key"] == f"{ISSUER}:{order_id}"
    assert body["state"] == "PENDIENTE"
    assert body["created"] is True
    assert body["number"].startswith("SETP")
    assert response.headers["location"] == f"/api/v1/pedidos/{order_id}"
    assert body["links"]["self"] == response.headers["location"]

    read = http.get(response.headers["location"])
    assert read.status_code == 200
    view = read.json()
    assert view["state"] == "PENDIENTE"
    assert view["number"] == body["number"]
    assert [e["status"] for e in view["timeline"]] == ["RECIBIDO"]


def test_decimals_stay_exact(http: httpx.Client, api_database: str) -> None:
    order_id = unique_id()
    order = seed_order(order_id)
    raw = json.dumps(order).replace('"tasa": 0.08', '"tasa": 0.0800000000000000001')
    response = http.post(INTAKE, content=raw, headers={"content-type": "application/json"})
    # a float would round 0.0800000000000000001 to 0.08; Decimal keeps it and the rate is refused
    assert response.status_code == 422, response.text
    assert any(e["field"] == "items[0].impuestos[0].tasa" for e in response.json()["errors"])


def test_a_number_is_not_text(http: httpx.Client) -> None:
    order = seed_order(unique_id())
    order["items"][0]["descripcion"] = 1.5
    order["metodos_pago"][0]["tipo"] = 10.0

    response = http.post(INTAKE, json=order)

    assert response.status_code == 422, response.text
    found = {(e["field"], e["rule"]) for e in response.json()["errors"]}
    assert found == {
        ("items[0].descripcion", "string_type"),
        ("metodos_pago[0].tipo", "string_type"),
    }


def test_repeating_an_order_answers_the_existing_one(http: httpx.Client) -> None:
    order_id = unique_id()
    first = http.post(INTAKE, json=seed_order(order_id)).json()
    # the same order spelled differently (strings, trailing zeros) is the same order
    again = seed_order(order_id)
    again["subtotal"] = "20000.00"
    second = http.post(INTAKE, json=again)

    assert second.status_code == 202
    assert second.json()["created"] is False
    assert second.json()["order_key"] == first["order_key"]
    assert second.json()["number"] == first["number"]


def test_same_order_id_with_another_payload_is_a_conflict(
    http: httpx.Client, api_database: str
) -> None:
    order_id = unique_id()
    assert http.post(INTAKE, json=seed_order(order_id)).status_code == 202
    other = seed_order(order_id)
    other["propina_voluntaria"] = 0
    other["total_factura"] = 21600
    other["metodos_pago"][0]["monto"] = 21600

    response = http.post(INTAKE, json=other)

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == "/api/v1/problems/order-conflict"
    assert order_id in response.json()["detail"]
    statuses = [r.status for r in audit_rows(api_database, f"{ISSUER}:{order_id}")]
    assert statuses == ["RECIBIDO"], "a refused payload is never on the order's timeline"
    refused = audit_rows(api_database, f"{ISSUER}:{order_id}", "intake_refusals")
    assert [r.status for r in refused] == ["CONFLICTO"]


# -- refusing --------------------------------------------------------------------------------


def test_invalid_order_lists_every_field_error_and_is_recorded_as_refused_input(
    http: httpx.Client, api_database: str
) -> None:
    order_id = unique_id()
    order = seed_order(order_id)
    order["items"][0]["cantidad"] = "dos"
    order["items"][0].pop("descripcion")
    order["metodos_pago"] = []

    response = http.post(INTAKE, json=order)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert {k: body[k] for k in ("type", "title", "status", "instance")} == {
        "type": "/api/v1/problems/invalid-order",
        "title": "Invalid order",
        "status": 422,
        "instance": INTAKE,
    }
    assert body["detail"] == f"the order breaks {len(body['errors'])} rules"
    fields = {(e["field"], e["rule"]) for e in body["errors"]}
    assert ("items[0].descripcion", "missing") in fields
    assert ("items[0].cantidad", "decimal_parsing") in fields
    assert ("metodos_pago", "too_short") in fields
    assert all(e["message"] for e in body["errors"])
    pointers = {e["field"]: e["pointer"] for e in body["errors"]}
    assert pointers["items[0].descripcion"] == "#/items/0/descripcion"

    assert audit_rows(api_database, f"{ISSUER}:{order_id}") == []
    rows = audit_rows(api_database, f"{ISSUER}:{order_id}", "intake_refusals")
    assert [r.status for r in rows] == ["RECHAZADO_ENTRADA"]
    assert rows[0].response_out["error"] == "invalid_order"
    assert len(rows[0].response_out["errors"]) == len(body["errors"])

    read = http.get(f"/api/v1/pedidos/{order_id}")
    assert read.status_code == 404, "nothing was accepted under this id"
    refusals = read.json()["refusals"]
    assert refusals["count"] == 1
    errors = refusals["latest"][0]["response"]["errors"]
    assert {e["field"] for e in errors} == {e["field"] for e in body["errors"]}


def test_refused_input_under_an_accepted_id_never_rewrites_the_orders_story(
    http: httpx.Client, api_database: str
) -> None:
    order_id = unique_id()
    assert http.post(INTAKE, json=seed_order(order_id)).status_code == 202
    broken = seed_order(order_id)
    broken["items"][0]["cantidad"] = "-1"
    for _ in range(5):
        assert http.post(INTAKE, json=broken).status_code == 422

    read = http.get(f"/api/v1/pedidos/{order_id}").json()
    assert read["state"] == "PENDIENTE" and read["errors"] == []
    assert [e["status"] for e in read["timeline"]] == ["RECIBIDO"]
    assert read["refusals"]["count"] == 5
    statuses = [r.status for r in audit_rows(api_database, f"{ISSUER}:{order_id}")]
    assert statuses == ["RECIBIDO"]


def test_the_timeline_is_read_in_pages(http: httpx.Client, api_database: str) -> None:
    order_id = unique_id()
    assert http.post(INTAKE, json=seed_order(order_id)).status_code == 202
    engine = make_engine(api_database, pool_size=1)
    store = SqlDocumentStore(engine)
    key = OrderKey(ISSUER, order_id)
    for n in range(3):  # three attempts that found the authority out: seven rows in all
        claim = store.claim(key, 60)
        assert claim is not None
        due = datetime.now(UTC) - timedelta(seconds=1)
        store.defer(claim, State.PENDIENTE, due, {}, StepNote("REINTENTO", {"n": n}), None)
    engine.dispose()

    seen: list[int] = []
    link: str | None = f"/api/v1/pedidos/{order_id}?limit=3"
    pages = 0
    while link:
        page = http.get(link).json()
        assert len(page["timeline"]) <= 3
        seen += [e["id"] for e in page["timeline"]]
        link = page["timeline_page"]["next"]
        pages += 1
    assert pages == 3 and len(seen) == 7 and seen == sorted(seen)
    assert http.get(f"/api/v1/pedidos/{order_id}?limit=501").status_code == 422


def test_business_rule_violations_are_422_not_500(http: httpx.Client) -> None:
    order = seed_order(unique_id())
    order["total_factura"] = 99999

    response = http.post(INTAKE, json=order)

    assert response.status_code == 422
    rules = {e["rule"] for e in response.json()["errors"]}
    assert "invoice_total" in rules


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"{not json", "not JSON"),
        (b"", "empty"),
        ('{"id_pedido_origen": "POS-ñ"}'.encode("latin-1"), "not UTF-8"),
        (b'{"subtotal": NaN}', "not acceptable JSON"),
        (b"[" * 100_00 + b"]" * 100_00, "not acceptable JSON"),
    ],
)
def test_a_body_that_is_not_json_is_422_and_recorded(
    http: httpx.Client, api_database: str, content: bytes, needle: str
) -> None:
    before = len(audit_rows(api_database, table="intake_refusals"))

    response = http.post(INTAKE, content=content, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert response.json()["type"] == "/api/v1/problems/unreadable-body"
    errors = response.json()["errors"]
    assert errors[0]["field"] == "(body)" and errors[0]["rule"] == "json"
    assert needle in errors[0]["message"]
    rows = audit_rows(api_database, table="intake_refusals")
    assert len(rows) == before + 1
    assert rows[-1].status == "RECHAZADO_ENTRADA"
    assert rows[-1].payload_in["order"]["unreadable"] is True
    assert rows[-1].payload_in["order"]["issuer"] == ISSUER


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800"])
def test_text_no_document_or_audit_row_can_hold_is_422_and_recorded(
    http: httpx.Client, api_database: str, bad: str
) -> None:
    order_id = unique_id()
    raw = json.dumps(seed_order(order_id)).replace("Cerveza", "Cerve" + bad + "za")
    assert bad in raw

    response = http.post(INTAKE, content=raw, headers={"content-type": "application/json"})

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "items[0].descripcion"
    assert response.json()["errors"][0]["rule"] == "text"
    rows = audit_rows(api_database, f"{ISSUER}:{order_id}", "intake_refusals")
    assert [r.status for r in rows] == ["RECHAZADO_ENTRADA"]


def test_structure_and_business_errors_come_in_one_answer(http: httpx.Client) -> None:
    order = seed_order(unique_id())
    order["items"][0]["cantidad"] = -2
    del order["total_factura"]

    response = http.post(INTAKE, json=order)

    assert response.status_code == 422
    found = {(e["field"], e["rule"]) for e in response.json()["errors"]}
    assert {("total_factura", "missing"), ("items[0].cantidad", "positive")} <= found


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"],
)
def test_a_body_not_sent_as_json_is_415(
    http: httpx.Client, api_database: str, content_type: str
) -> None:
    before = len(audit_rows(api_database))

    response = http.post(
        INTAKE, content=json.dumps(seed_order(unique_id())), headers={"content-type": content_type}
    )

    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["accept-post"] == "application/json"
    body = response.json()
    assert body["title"] == "Unsupported Media Type" and body["status"] == 415
    assert content_type in body["detail"]
    assert len(audit_rows(api_database)) == before, "nothing was read, nothing is recorded"


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "application/vnd.pos+json"],
)
def test_json_media_types_and_no_content_type_are_read_as_json(
    http: httpx.Client, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    request = http.build_request("POST", INTAKE, content=json.dumps(seed_order(unique_id())))
    request.headers.pop("content-type", None)
    request.headers.update(headers)

    response = http.send(request)

    assert response.status_code == 202, response.text


def test_problem_types_are_documented_where_they_point(http: httpx.Client) -> None:
    refused = http.post(INTAKE, json={"id_pedido_origen": unique_id()})
    kind = refused.json()["type"]

    page = http.get(kind)

    assert page.status_code == 200
    assert page.text.startswith(refused.json()["title"])
    assert http.get("/api/v1/problems/none").status_code == 404


def test_a_json_value_that_is_not_an_object_is_422(http: httpx.Client) -> None:
    response = http.post(INTAKE, json=[SEED_ORDER])
    assert response.status_code == 422
    assert response.json()["errors"][0]["rule"] == "type"


def test_oversized_body_with_content_length_is_413(http: httpx.Client, api_database: str) -> None:
    before = len(audit_rows(api_database))
    order = seed_order(unique_id())
    order["adquirente"] = {"nombre": "x" * (TEST_BODY_LIMIT + 1)}

    response = http.post(INTAKE, json=order)

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    assert str(TEST_BODY_LIMIT) in response.json()["detail"]
    assert len(audit_rows(api_database)) == before


def test_oversized_chunked_body_is_413_before_it_is_all_sent(api_url: str, api_key: str) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"id_pedido_origen": "POS-big", "x": "'
        for _ in range(1000):  # 16 MiB if it were all read
            sent += 16 * 1024
            yield b"a" * (16 * 1024)
        yield b'"}'

    with httpx.Client(base_url=api_url, headers={"X-API-Key": api_key}, timeout=10) as client:
        try:
            response = client.post(INTAKE, content=chunks())
        except httpx.HTTPError:
            pytest.fail("the server should answer 413, not drop the connection")
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert sent < 16 * 1024 * 1000


# -- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "eik_not-a-key"}, {"X-API-Key": ""}])
def test_requests_without_a_valid_key_are_401_and_logged_without_payload(
    api_url: str,
    api_database: str,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = len(audit_rows(api_database)) + len(audit_rows(api_database, table="intake_refusals"))
    marker = unique_id("SECRET-ORDER")
    caplog.set_level(logging.INFO)

    with httpx.Client(base_url=api_url, timeout=10) as client:
        posted = client.post(INTAKE, json=seed_order(marker), headers=headers)
        read = client.get("/api/v1/pedidos/POS-100", headers=headers)

    assert posted.status_code == 401 and read.status_code == 401
    assert posted.headers["www-authenticate"] == "ApiKey"
    assert posted.headers["content-type"] == read.headers["content-type"] == PROBLEM_JSON
    assert posted.json()["title"] == "Unauthorized"
    assert (
        len(audit_rows(api_database)) + len(audit_rows(api_database, table="intake_refusals"))
        == before
    )
    refusals = [r for r in caplog.records if r.name == "worker.api.auth"]
    assert len(refusals) == 2
    assert marker not in caplog.text
    assert "Cerveza" not in caplog.text
    assert "eik_not-a-key" not in caplog.text


def test_revoked_keys_are_refused(api_url: str, api_keys: SqlApiKeys) -> None:
    client, key = api_keys.create("caja-temporal", ISSUER)
    with httpx.Client(base_url=api_url, headers={"X-API-Key": key}, timeout=10) as http:
        assert http.get("/api/v1/pedidos/none").status_code == 404
        assert api_keys.revoke(client.id) is True
        assert http.get("/api/v1/pedidos/none").status_code == 401
    assert api_keys.revoke(client.id) is False
    stored = api_keys.get(client.id)
    assert stored is not None and stored.revoked_at is not None


def test_a_revoked_key_stops_working_once_its_remembered_period_ends(
    api_settings: Settings, api_keys: SqlApiKeys
) -> None:
    now = [1000.0]
    services = build_services(api_settings, db_pool_size=2)
    services.keys = RememberedKeys(services.keys.keys, KEY_CACHE_SECONDS, clock=lambda: now[0])
    client, key = api_keys.create("caja-recordada", ISSUER)
    read = "/api/v1/pedidos/none"
    try:
        with (
            serve(create_api(api_settings, ApiSettings(), services=services)) as url,
            httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=10) as http,
        ):
            assert http.get(read).status_code == 404  # verified now, remembered from now on
            assert api_keys.revoke(client.id) is True
            assert http.get(read).status_code == 404  # the process has not asked again
            now[0] += KEY_CACHE_SECONDS - 0.01
            assert http.get(read).status_code == 404
            now[0] += 0.01
            assert http.get(read).status_code == 401  # the stated period is over
            now[0] += 0.01
            assert http.get(read).status_code == 401  # and a refused key is not remembered
    finally:
        services.close()


def test_served_intakes_remember_keys_for_the_documented_time() -> None:
    assert ApiSettings().key_cache_seconds == KEY_CACHE_SECONDS
    api_doc = (Path(__file__).parents[2] / "docs" / "API.md").read_text(encoding="utf-8")
    assert f"| `API_KEY_CACHE_SECONDS` | {KEY_CACHE_SECONDS:g} |" in api_doc


def test_keys_are_stored_only_as_hashes(api_database: str, api_keys: SqlApiKeys) -> None:
    _, key = api_keys.create("caja-hash", ISSUER)
    engine = make_engine(api_database, pool_size=1)
    with engine.connect() as conn:
        dump = json.dumps(
            [list(r) for r in conn.execute(text("SELECT * FROM api_keys")).all()], default=str
        )
    engine.dispose()
    assert key not in dump
    assert key[4:] not in dump


def test_the_issuer_comes_from_the_key_not_the_body(http: httpx.Client) -> None:
    order_id = unique_id()
    order = seed_order(order_id)
    order["issuer"] = "800999111"  # ignored: not a field of the order
    response = http.post(INTAKE, json=order)
    assert response.status_code == 202, response.text
    assert response.json()["order_key"] == f"{ISSUER}:{order_id}"


def test_a_key_for_an_issuer_this_deployment_does_not_sign_as_is_refused(
    api_url: str, api_keys: SqlApiKeys, api_database: str
) -> None:
    """Orders under another NIT would be signed with the deployment's own name and
    certificate: the key is refused before anything is recorded."""
    other_issuer = "800999111"
    _, other_key = api_keys.create("otro-restaurante", other_issuer)
    order_id = unique_id()
    with httpx.Client(base_url=api_url, headers={"X-API-Key": other_key}, timeout=10) as other:
        response = other.post(INTAKE, json=seed_order(order_id))
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert f"issuer {other_issuer} is unknown (einvoice issuer add)" in response.text
    engine = make_engine(api_database, pool_size=1)
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM orders WHERE order_id = :id"), {"id": order_id}
        ).scalar_one()
    engine.dispose()
    assert found == 0


def test_a_stored_issuers_orders_are_taken_until_it_is_disabled(
    api_url: str, api_keys: SqlApiKeys, api_database: str
) -> None:
    nit = "800197268"
    engine = make_engine(api_database, pool_size=1)
    issuers = SqlIssuers(engine)
    if issuers.find(nit) is None:  # stored by an earlier run of this test
        issuers.add(Issuer(nit, "4", "Otra Cadena S.A.S.", "Otra", "simulated"))
        own = NumberingRange("1", "OC", 1, 1000, date(2019, 1, 1), date(2030, 1, 1), "k")
        SqlNumberingRanges(engine).add(nit, own)
    _, key = api_keys.create("otra-cadena", nit)
    with httpx.Client(base_url=api_url, headers={"X-API-Key": key}, timeout=10) as other:
        order_id = unique_id()
        taken = other.post(INTAKE, json=seed_order(order_id))
        assert taken.status_code == 202, taken.text
        assert taken.json()["order_key"] == f"{nit}:{order_id}"
        issuers.set_enabled(nit, False)
        try:
            refused = other.post(INTAKE, json=seed_order(unique_id()))
            assert refused.status_code == 403, refused.text
            assert f"issuer {nit} is disabled" in refused.text
        finally:
            issuers.set_enabled(nit, True)
        assert other.post(INTAKE, json=seed_order(unique_id())).status_code == 202
    engine.dispose()


# -- read-back, health, errors of the service itself -----------------------------------------


def test_unknown_order_is_404(http: httpx.Client) -> None:
    order_id = unique_id()
    response = http.get(f"/api/v1/pedidos/{order_id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": f"no order {order_id!r} for this issuer",
        "instance": f"/api/v1/pedidos/{order_id}",
        "refusals": {"count": 0, "latest": []},
    }


def test_health_reports_database_and_broker(api_url: str) -> None:
    response = httpx.get(f"{api_url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "message": "intake is accepting orders",
        "database": "ok",
        "broker": "ok",
    }


def test_health_and_intake_without_broker_or_database(
    settings_factory: Callable[..., Settings], api_keys: SqlApiKeys, api_database: str
) -> None:
    _, key = api_keys.create("caja-health", ISSUER)
    no_broker = settings_factory(broker_url="redis://127.0.0.1:1/0")
    with serve(create_api(no_broker)) as url:
        health = httpx.get(f"{url}/health", timeout=20)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["broker"] == "unavailable"
        # the order is still accepted: durable first, the reconciler publishes it later
        order_id = unique_id()
        posted = httpx.post(
            f"{url}{INTAKE}", json=seed_order(order_id), headers={"X-API-Key": key}, timeout=30
        )
        assert posted.status_code == 202, posted.text

    no_database = settings_factory(database_url="postgresql+psycopg2://postgres@127.0.0.1:1/x")
    with serve(create_api(no_database)) as url:
        health = httpx.get(f"{url}/health", timeout=20)
        assert health.status_code == 503
        assert health.json()["database"] == "unavailable"
        posted = httpx.post(
            f"{url}{INTAKE}", json=seed_order(unique_id()), headers={"X-API-Key": key}, timeout=20
        )
        assert posted.status_code == 503
        assert "psycopg2" not in posted.text and "127.0.0.1" not in posted.text


def test_an_expired_range_refuses_the_order_naming_the_register_and_the_range(
    settings_factory: Callable[..., Settings], api_key: str
) -> None:
    expired = settings_factory(
        numbering=NumberingSettings(valid_from=date(2019, 1, 1), valid_to=date(2020, 1, 1))
    )
    with serve(create_api(expired, ApiSettings())) as url:
        response = httpx.post(
            f"{url}{INTAKE}",
            json=seed_order(unique_id()),
            headers={"X-API-Key": api_key},
            timeout=10,
        )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "caja" and error["rule"] == "numbering_range_expired"
    assert "register '1'" in error["message"] and "SETP990000000-995000000" in error["message"]


def test_served_openapi_document_is_the_one_in_the_repository(api_url: str) -> None:
    served = httpx.get(f"{api_url}/openapi.json", timeout=10).json()
    kept = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert served == kept, "regenerate it: python -m worker.api --write-openapi docs/openapi.json"
    assert json.loads(openapi_text()) == kept
    intake = kept["paths"][INTAKE]["post"]
    assert intake["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"
    }
    assert set(intake["responses"]) >= {"202", "401", "409", "413", "415", "422", "503"}
