"""The original REST API's contract on its path (`POST /api/v1/pedidos/consumo-local/`), in
compatibility mode (the default), over real HTTP, PostgreSQL and Redis.

Where the original answered through FastAPI itself (422 bodies, the path without its slash),
the answers are compared with what FastAPI answers for the same request to an app shaped like
the original one: its router prefix and a pydantic body model.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from adapters.db.api_keys import SqlApiKeys
from domain.order import Order
from domain.ports import OrderKey
from tests.integration.api_fixtures import (
    ISSUER,
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
from worker.api.config import ApiSettings
from worker.publisher import task_id_for
from worker.settings import Settings

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

ORIGINAL = "/api/v1/pedidos/consumo-local/"
BUSINESS_RULES = {
    "non_negative",
    "too_large",
    "positive",
    "unknown_tax",
    "duplicate_tax",
    "rate_fraction",
    "tax_matches_rate",
    "item_total",
    "taxes_sum",
    "subtotal_sum",
    "invoice_total",
    "unknown_payment_method",
    "payments_total",
    "nit_digits",
    "nit_check_digit",
}


@pytest.fixture(scope="module")
def reference() -> Iterator[httpx.Client]:
    """An app shaped like the original service, served over HTTP: FastAPI's defaults, the
    router prefix of its controller, a pydantic model as the body (the domain's order model
    stands in for the original's request schema)."""
    app = FastAPI()
    pedidos = APIRouter(prefix="/api/v1/pedidos/consumo-local")

    @pedidos.post("/", status_code=201)
    def facturar(pedido: Order) -> dict[str, str]:
        return {"id": pedido.id_pedido_origen}

    app.include_router(pedidos)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def without_ctx(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "ctx"} for e in entries]


# -- 201 -------------------------------------------------------------------------------------


def test_an_accepted_order_answers_201_with_the_original_body(http: httpx.Client) -> None:
    order_id = unique_id()
    response = http.post(ORIGINAL, json=seed_order(order_id))

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"track_id", "cufe", "status", "message"}
    assert body["track_id"] == task_id_for(OrderKey(ISSUER, order_id))
    assert uuid.UUID(body["track_id"])
    assert body["cufe"] is None, "no CUFE before the authority accepts the document"
    assert body["status"] == "PENDIENTE"
    assert order_id in body["message"]
    assert response.headers["location"] == f"/api/v1/pedidos/{order_id}"

    again = http.post(ORIGINAL, json=seed_order(order_id))
    assert again.status_code == 201
    assert again.json()["track_id"] == body["track_id"]
    assert "already accepted" in again.json()["message"]

    read = http.get(response.headers["location"])
    assert read.status_code == 200 and read.json()["state"] == "PENDIENTE"


# -- 422 -------------------------------------------------------------------------------------


def test_structural_errors_are_fastapis_detail_entries(
    http: httpx.Client, reference: httpx.Client
) -> None:
    order = seed_order(unique_id())
    order["items"][0]["cantidad"] = "dos"
    order["items"][0].pop("descripcion")
    order["items"][0]["impuestos"][0]["tasa"] = 0.0800000000000000001
    order["metodos_pago"] = []
    order["subtotal"] = None

    ours = http.post(ORIGINAL, json=order)
    theirs = reference.post(ORIGINAL, json=order)

    assert ours.status_code == theirs.status_code == 422
    assert ours.headers["content-type"] == "application/json"
    expected = without_ctx(theirs.json()["detail"])
    detail = ours.json()["detail"]
    assert detail[: len(expected)] == expected
    assert all(set(e) == {"type", "loc", "msg", "input"} for e in detail)
    assert {"type": "missing", "loc": ["body", "items", 0, "descripcion"]}.items() <= detail[
        [e["loc"] for e in detail].index(["body", "items", 0, "descripcion"])
    ].items()


def test_business_rules_come_with_the_structural_errors_in_the_same_shape(
    http: httpx.Client,
) -> None:
    order = seed_order(unique_id())
    order["items"][0]["cantidad"] = -2
    del order["total_factura"]

    response = http.post(ORIGINAL, json=order)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {
        "type": "missing",
        "loc": ["body", "total_factura"],
        "msg": "Field required",
        "input": order,
    } in detail
    assert {
        "type": "positive",
        "loc": ["body", "items", 0, "cantidad"],
        "msg": "quantity must be above zero",
        "input": -2,
    } in detail
    assert all(e["type"] in BUSINESS_RULES for e in detail if e["loc"][1] != "total_factura")


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[1, 2]", b"null", b'{"id_pedido_origen": "POS-1", "items": [}'],
)
def test_bodies_that_are_not_an_order_answer_as_fastapi_does(
    http: httpx.Client, reference: httpx.Client, content: bytes
) -> None:
    headers = {"content-type": "application/json"}

    ours = http.post(ORIGINAL, content=content, headers=headers)
    theirs = reference.post(ORIGINAL, content=content, headers=headers)

    assert ours.status_code == theirs.status_code == 422
    assert ours.json() == theirs.json()


# -- other errors: FastAPI's {"detail": "..."} -----------------------------------------------


def test_other_errors_are_a_detail_string(
    http: httpx.Client, api_url: str, api_keys: SqlApiKeys
) -> None:
    order_id = unique_id()
    assert http.post(ORIGINAL, json=seed_order(order_id)).status_code == 201
    other = seed_order(order_id)
    other["propina_voluntaria"] = 0
    other["total_factura"] = 21600
    other["metodos_pago"][0]["monto"] = 21600

    conflict = http.post(ORIGINAL, json=other)
    unauthorized = httpx.post(f"{api_url}{ORIGINAL}", json=seed_order(unique_id()), timeout=10)
    not_json = http.post(ORIGINAL, content=b"id=1", headers={"content-type": "text/plain"})
    too_large = http.post(ORIGINAL, json={"x": "x" * (TEST_BODY_LIMIT + 1)})

    for response, code in ((conflict, 409), (unauthorized, 401), (not_json, 415), (too_large, 413)):
        assert response.status_code == code, response.text
        assert response.headers["content-type"] == "application/json"
        assert list(response.json()) == ["detail"]
        assert isinstance(response.json()["detail"], str)
    assert order_id in conflict.json()["detail"]
    assert unauthorized.headers["www-authenticate"] == "ApiKey"


# -- the path without its slash --------------------------------------------------------------


def test_the_path_without_its_slash_redirects_as_the_original_did(
    api_url: str, api_key: str, reference: httpx.Client
) -> None:
    path = ORIGINAL.rstrip("/") + "?origen=caja-1"
    order = seed_order(unique_id())

    with httpx.Client(base_url=api_url, timeout=10) as client:
        ours = client.post(path, json=order, headers={"X-API-Key": api_key})
        followed = client.post(
            path, json=order, headers={"X-API-Key": api_key}, follow_redirects=True
        )
    theirs = reference.post(path, json=order)

    assert ours.status_code == theirs.status_code == 307
    assert ours.content == theirs.content == b""
    assert theirs.headers["location"] == f"{reference.base_url}{ORIGINAL}?origen=caja-1"
    assert ours.headers["location"] == f"{api_url}{ORIGINAL}?origen=caja-1"
    assert followed.status_code == 201, followed.text
    assert followed.request.method == "POST"


# -- switched off ----------------------------------------------------------------------------


def test_with_compat_mode_off_the_original_path_answers_like_the_native_one(
    settings_factory: Callable[..., Settings], api_key: str
) -> None:
    app = create_api(settings_factory(), ApiSettings(compat_mode=False))
    order_id = unique_id()
    bad = seed_order(unique_id())
    bad["total_factura"] = "abc"
    with (
        serve(app) as url,
        httpx.Client(base_url=url, headers={"X-API-Key": api_key}, timeout=10) as client,
    ):
        accepted = client.post(ORIGINAL, json=seed_order(order_id))
        refused = client.post(ORIGINAL, json=bad)
        document = client.get("/openapi.json").json()

    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["order_key"] == f"{ISSUER}:{order_id}"
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["field"] == "total_factura"
    assert set(document["paths"][ORIGINAL]["post"]["responses"]) >= {"202", "422"}
    assert "201" not in document["paths"][ORIGINAL]["post"]["responses"]


def test_the_seed_example_in_the_document_is_accepted_on_both_paths(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    for path in (ORIGINAL, "/api/v1/pedidos"):
        example = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        order = json.loads(json.dumps(example["example"]))
        order["id_pedido_origen"] = unique_id()
        assert http.post(path, json=order).status_code in (201, 202)
