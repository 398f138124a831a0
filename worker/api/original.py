"""The original REST API's answers, for `POST /api/v1/pedidos/consumo-local/` in compatibility
mode (`API_COMPAT_MODE`, on by default).

The original FastAPI service answered `201` with `{track_id, cufe, status, message}` after
sending the invoice synchronously, `422` with FastAPI's `{"detail": [{type, loc, msg, input}]}`
and `{"detail": "..."}` for every other error. This service issues asynchronously, so:

- `track_id`: the order's task id (a UUID derived from the order key, the same on every
  resend of the same order; Flower and the logs show it);
- `cufe`: the CUFE once the authority accepted the document (`status` SUCCESS), else null;
- `status`: the order's state: PENDIENTE, PROCESANDO, EN_ESPERA, SUCCESS or FAILED;
- `message`: a sentence saying what happens next and where to read the outcome.

Each `detail[]` entry of a `422` has the type (pydantic's error type, or this service's rule
name for business rules, e.g. `invoice_total`), the location under `body`, the message and the
input found there (for a missing field, the object it is missing from), as FastAPI sends them.
"""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from domain.errors import FieldError
from domain.ports import OrderKey
from domain.store import State
from worker.api.fields import location, value_at
from worker.publisher import task_id_for


class OriginalAccepted(BaseModel):
    track_id: str = Field(description="The order's task id: one UUID per order key.")
    cufe: str | None = Field(description="The CUFE once the document is accepted, else null.")
    status: str = Field(description="PENDIENTE, PROCESANDO, EN_ESPERA, SUCCESS or FAILED.")
    message: str


class OriginalFieldError(BaseModel):
    type: str = Field(description="pydantic's error type, or the business rule's name.")
    loc: list[str | int]
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = Field(
        default=None, description="Only for `json_invalid`: the parser's message."
    )


class OriginalInvalid(BaseModel):
    detail: list[OriginalFieldError]


def accepted(key: OrderKey, state: State, created: bool, cufe: str | None) -> JSONResponse:
    link = f"/api/v1/pedidos/{key.order_id}"
    if state is State.SUCCESS:
        message = f"order {key.order_id} is issued; the document is accepted"
    elif state is State.FAILED:
        message = f"order {key.order_id} was refused by the authority; see {link}"
    elif created:
        message = f"order {key.order_id} accepted; the document is being issued: see {link}"
    else:
        message = f"order {key.order_id} was already accepted and is being issued: see {link}"
    body = OriginalAccepted(
        track_id=task_id_for(key),
        cufe=cufe if state is State.SUCCESS else None,
        status=str(state),
        message=message,
    )
    return JSONResponse(body.model_dump(), status_code=201, headers={"Location": link})


def invalid(errors: list[FieldError], data: Any) -> JSONResponse:
    """FastAPI's 422 body for the refused order `data`."""
    detail = [_entry(error, data) for error in errors]
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


def unreadable(message: str, position: int | None) -> JSONResponse:
    """FastAPI's 422 body for a body that is not JSON (`position` None: an empty body)."""
    if position is None:
        entry: dict[str, Any] = {
            "type": "missing",
            "loc": ["body"],
            "msg": "Field required",
            "input": None,
        }
    else:
        entry = {
            "type": "json_invalid",
            "loc": ["body", position],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": message},
        }
    return JSONResponse({"detail": [entry]}, status_code=422)


_NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"


def _entry(error: FieldError, data: Any) -> dict[str, Any]:
    if error.field == "(order)" and error.rule == "type":
        return {
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": _NOT_AN_OBJECT,
            "input": data,
        }
    where = location(error.field)
    # pydantic reports a missing field with the object it is missing from as its input
    holder = where[:-1] if error.rule == "missing" else where
    return {
        "type": error.rule,
        "loc": ["body", *where],
        "msg": error.message,
        "input": value_at(data, holder),
    }


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every other error, as FastAPI's HTTPException answers it."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
