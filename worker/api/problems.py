"""RFC 9457 problem details (`application/problem+json`), the error shape of the native paths.

Every problem has `type`, `title`, `status`, `detail` and `instance` (the request's path); a
refused order adds the `errors` extension with each broken rule. The types this API defines
are relative URIs under `/api/v1/problems/`, each served as a short text; every other error is
`about:blank` with the HTTP status phrase as its title.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from domain.errors import FieldError
from worker.api.fields import pointer

PROBLEM_JSON = "application/problem+json"
PROBLEMS_PATH = "/api/v1/problems"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    text: str

    @property
    def uri(self) -> str:
        return f"{PROBLEMS_PATH}/{self.slug}"


INVALID_ORDER = ProblemType(
    "invalid-order",
    "Invalid order",
    "The order cannot become a legal document as sent. `errors` lists every broken rule at "
    "once, each with its field (`items[0].cantidad`), a JSON Pointer to it, the rule's name "
    "and a sentence. A register that cannot number the order (no range for its document, "
    "used up, expired) is named the same way, on `caja`. The refusal is recorded apart from "
    "every order's timeline; send a corrected order.",
)
UNREADABLE_BODY = ProblemType(
    "unreadable-body",
    "Unreadable body",
    "The request body is not a UTF-8 JSON document (empty, malformed, NaN or Infinity, nested "
    "too deep). `errors` says where. Send the order as one JSON object.",
)
ORDER_CONFLICT = ProblemType(
    "order-conflict",
    "Order conflict",
    "An order with this `id_pedido_origen` was already accepted with a different payload. A "
    "POS order id identifies one document forever: send the same payload again to read the "
    "existing order, or use a new id for a new sale.",
)
INVALID_NOTE = ProblemType(
    "invalid-note",
    "Invalid note",
    "The note cannot correct the order's document as sent. `errors` lists every broken rule, "
    "each with its field, a JSON Pointer to it, the rule's name and a sentence: a line the "
    "document does not have (`unknown_line`), more than remains to return or credit after "
    "earlier notes (`beyond_remaining`), nothing left to void (`nothing_left`), an order whose "
    "document failed (`document_failed`), a kind of note this deployment's gateway does not "
    "issue (`note_kind_not_offered`). Nothing is numbered; the refusal is recorded apart from "
    "every document's timeline.",
)
NOTE_CONFLICT = ProblemType(
    "note-conflict",
    "Note conflict",
    "A note with this `id_nota` was already accepted for the issuer with a different request "
    "(or against another order). A note id identifies one note forever: send the same request "
    "again to read the existing note, or use a new id for a new note.",
)
UNKNOWN_ORDER = ProblemType(
    "unknown-order",
    "Unknown order",
    "No order with this `id_pedido_origen` was accepted for the API key's issuer, so there is "
    "no document for a note to correct. Send the order first (`POST /api/v1/pedidos`).",
)
TYPES = {
    t.slug: t
    for t in (
        INVALID_ORDER,
        UNREADABLE_BODY,
        ORDER_CONFLICT,
        INVALID_NOTE,
        NOTE_CONFLICT,
        UNKNOWN_ORDER,
    )
}


class ProblemFieldError(BaseModel):
    field: str = Field(description="Path of the broken field, e.g. `items[0].cantidad`.")
    pointer: str = Field(
        description="JSON Pointer to it in the request body: `#/items/0/cantidad`."
    )
    rule: str = Field(description="Which rule it breaks, e.g. `missing`, `invoice_total`.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(default="about:blank", description="The problem type (a URI reference).")
    title: str
    status: int
    detail: str
    instance: str = Field(description="The path of the request that met the problem.")
    errors: list[ProblemFieldError] | None = Field(
        default=None,
        description="Every broken rule, when an order, a note or its body was refused.",
    )


def problem(
    status: int,
    detail: str,
    instance: str,
    kind: ProblemType | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    """`extensions`: more members of the problem (RFC 9457 §3.2), beside the standard ones."""
    body = Problem(
        type=kind.uri if kind else "about:blank",
        title=kind.title if kind else HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        errors=(
            [
                ProblemFieldError(
                    field=e.field, pointer=pointer(e.field), rule=e.rule, message=e.message
                )
                for e in errors
            ]
            if errors is not None
            else None
        ),
    )
    return JSONResponse(
        {**body.model_dump(exclude_none=True), **(extensions or {})},
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response object for a problem answer."""
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


problems_router = APIRouter()


@problems_router.get(
    f"{PROBLEMS_PATH}/{{slug}}",
    response_class=PlainTextResponse,
    operation_id="problemType",
    summary="What a problem type means (its `type` URI, dereferenced)",
    responses={
        404: problem_response("No such problem type."),
        422: problem_response("Invalid request."),
    },
)
def problem_type(slug: str) -> Response:
    kind = TYPES.get(slug)
    if kind is None:
        return problem(404, f"no problem type {slug!r}", f"{PROBLEMS_PATH}/{slug}")
    return PlainTextResponse(f"{kind.title}\n\n{kind.text}\n")
