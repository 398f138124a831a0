"""Property-based API test: schemathesis generates requests from `docs/openapi.json` and the
live intake must never answer 5xx nor anything its own document does not describe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation.case import Case

from tests.integration.api_fixtures import (
    api_database,
    api_key,
    api_keys,
    api_queue,
    api_settings,
    api_url,
    settings_factory,
)

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
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(str(DOCUMENT)).include(path_regex="^/api/v1/pedidos/")


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
