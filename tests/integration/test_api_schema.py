"""The OpenAPI document against the server.

- schemathesis generates requests from `docs/openapi.json`: the live intake never answers 5xx
  nor anything its own document does not describe, and a body the document allows is never
  refused for a value it allows (only for rules that compare values, which JSON Schema cannot
  say);
- the same, in process and with many more bodies, against the order validation itself;
- the document's schemas compile in a strict JSON Schema validator (jsonschema-rs), so tools
  do not silently drop a pattern they cannot read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    CheckContext,
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode

from domain.errors import InvalidOrder
from domain.order import parse_order
from tests.integration.api_fixtures import (
    api_database,
    api_key,
    api_keys,
    api_queue,
    api_settings,
    api_url,
    settings_factory,
)
from worker.api.body import unstorable_text

__all__ = [  # fixtures used by name
    "api_database",
    "api_key",
    "api_keys",
    "api_queue",
    "api_settings",
    "api_url",
    "settings_factory",
]

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
INTAKES = ("/api/v1/pedidos", "/api/v1/pedidos/consumo-local/")
# Rules that compare several values: the only refusals a body the document allows may meet.
CROSS_FIELD_RULES = {
    "taxes_sum",
    "subtotal_sum",
    "invoice_total",
    "payments_total",
    "item_total",
    "tax_matches_rate",
    "duplicate_tax",
    "nit_digits",
    "nit_check_digit",
}

DOC = json.loads(DOCUMENT.read_text(encoding="utf-8"))
ORDER_SCHEMA = jsonschema_rs.validator_for({**DOC, "$ref": "#/components/schemas/Order"})


def refused_rules(response: Response) -> set[str]:
    body = response.json()
    if isinstance(body.get("detail"), list):  # the original API's FastAPI shape
        return {str(entry["type"]) for entry in body["detail"]}
    return {str(entry["rule"]) for entry in body.get("errors", [])}


def allowed_values_are_accepted(ctx: CheckContext, response: Response, case: Case[Any]) -> None:
    """A body the document allows is refused only for rules that compare values."""
    if case.method != "POST" or case.path not in INTAKES or response.status_code != 422:
        return
    if not isinstance(case.body, dict) or not ORDER_SCHEMA.is_valid(case.body):
        return
    unexpected = refused_rules(response) - CROSS_FIELD_RULES
    assert not unexpected, f"the document allows a value the server refuses: {unexpected}"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    allowed_values_are_accepted,
]

schema = schemathesis.openapi.from_path(str(DOCUMENT)).include(path_regex="^/api/v1/pedidos")


@schema.parametrize()
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_intake_conforms_to_its_openapi_document(
    case: Case[Any], api_url: str, api_key: str
) -> None:
    case.call_and_validate(base_url=api_url, headers={"X-API-Key": api_key}, checks=CHECKS)


def test_the_documents_schemas_compile_in_a_strict_validator() -> None:
    for name in DOC["components"]["schemas"]:
        jsonschema_rs.validator_for({**DOC, "$ref": f"#/components/schemas/{name}"})
    for path in INTAKES:
        content = DOC["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert ORDER_SCHEMA.is_valid(content["example"])


def test_every_order_the_document_allows_meets_every_single_value_rule() -> None:
    bodies = {
        DOC["paths"][p]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for p in INTAKES
    }
    assert bodies == {"#/components/schemas/Order"}, "both intakes take the same body"
    operation = schemathesis.openapi.from_path(str(DOCUMENT))[INTAKES[0]]["POST"]
    seen = {"bodies": 0}

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def check(case: Case[Any]) -> None:
        assert ORDER_SCHEMA.is_valid(case.body), "the generator left the document"
        seen["bodies"] += 1
        assert unstorable_text(case.body) == []
        try:
            parse_order(case.body)
        except InvalidOrder as exc:
            unexpected = {(e.field, e.rule) for e in exc.errors if e.rule not in CROSS_FIELD_RULES}
            assert not unexpected, f"allowed by the document, refused: {unexpected}"

    check()
    assert seen["bodies"] >= 100
