"""What the intake answers, as pydantic models (they also write the OpenAPI document).

The request body is not parsed by a model here: `domain.order.parse_order` validates it, so
that every broken rule is reported at once and amounts stay exact `Decimal`s. Its JSON schema
is still published (`order_request_schema`) so clients and API tests can generate payloads,
with what the intake itself adds: fields the order does not know are ignored, but like all of
the body they may not hold NUL (`worker.api.body.unstorable_text`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.order import Order
from worker.api.note_schemas import Creditable, Note
from worker.api.trail_schemas import FieldErrorBody, Refusals, Rule, TimelineEntry, TimelinePage

SEED_EXAMPLE: dict[str, Any] = {
    "id_pedido_origen": "POS-100",
    "items": [
        {
            "id_producto": "BEB-01",
            "descripcion": "Cerveza Artesanal",
            "cantidad": 2,
            "precio_unitario": 10000,
            "impuestos": [{"nombre": "INC", "tasa": 0.08, "monto": 1600}],
            "total_item": 21600,
        }
    ],
    "subtotal": 20000,
    "propina_voluntaria": 3000,
    "impuestos_totales": 1600,
    "total_factura": 24600,
    "metodos_pago": [{"tipo": "Efectivo", "monto": 24600}],
}

REF_TEMPLATE = "#/components/schemas/{model}"


_NO_NUL = "^[^\\u0000]*$"
UNKNOWN_VALUE = "UnknownValue"
_UNKNOWN_VALUE_SCHEMA: dict[str, Any] = {
    "description": (
        "A field the order does not know: ignored, but like all text in the body it may not "
        "hold NUL (`\\u0000`) nor unpaired surrogates, in names or values."
    ),
    "anyOf": [
        {"type": "string", "pattern": _NO_NUL},
        {"type": ["number", "boolean", "null"]},
        {"type": "array", "items": {"$ref": REF_TEMPLATE.format(model=UNKNOWN_VALUE)}},
        {
            "type": "object",
            "propertyNames": {"pattern": _NO_NUL},
            "additionalProperties": {"$ref": REF_TEMPLATE.format(model=UNKNOWN_VALUE)},
        },
    ],
}


def order_request_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The order's JSON schema and the schemas it refers to, for `components/schemas`."""
    order, defs = component_schema(Order)
    for schema in (order, *defs.values()):
        if schema.get("type") == "object":
            schema["propertyNames"] = {"pattern": _NO_NUL}
            schema["additionalProperties"] = {"$ref": REF_TEMPLATE.format(model=UNKNOWN_VALUE)}
    defs[UNKNOWN_VALUE] = _UNKNOWN_VALUE_SCHEMA
    return order, defs


def component_schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model's JSON schema and the schemas it refers to, for `components/schemas`."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    defs: dict[str, Any] = schema.pop("$defs", {})
    return schema, defs


class ErrorBody(BaseModel):
    """The original API's (FastAPI's) error body, answered on its path in compatibility mode."""

    detail: str


class Links(BaseModel):
    self: str = Field(description="Where to read the order back.")


class Accepted(BaseModel):
    order_key: str = Field(description="Issuer NIT and POS order id: `900123456:POS-100`.")
    id_pedido_origen: str
    state: str = Field(description="PENDIENTE, PROCESANDO, EN_ESPERA, SUCCESS or FAILED.")
    created: bool = Field(description="False when this order had already been accepted.")
    document_type: str = Field(
        description="DIAN document type: `01` invoice, `20` POS equivalent document."
    )
    number: str | None = Field(description="The document number, when already allocated.")
    warnings: list[str] = Field(default_factory=list)
    links: Links


class OrderView(BaseModel):
    order_key: str
    id_pedido_origen: str
    state: str
    document_type: str = Field(
        description="DIAN document type: `01` invoice, `20` POS equivalent document."
    )
    document: str = Field(description="What the order's sale document is, in DIAN's words.")
    caja: str | None = Field(description="The till (register) that sold it.")
    number: str | None = Field(description="Document number (own range, or Factus's).")
    cufe: str | None = Field(description="CUFE (invoice) or CUDE (POS document).")
    qr_url: str | None = Field(
        default=None,
        description="What the document's QR holds: DIAN's catalogue page of the CUFE/CUDE "
        "(once issued), for a POS that prints its own ticket.",
    )
    references: dict[str, Any]
    attempts: int
    rules: list[Rule] = Field(description="The authority's rule codes when it rejected it.")
    errors: list[FieldErrorBody] = Field(description="Field errors when the order was invalid.")
    reason: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    timeline: list[TimelineEntry] = Field(description="One page of the audit trail, in order.")
    timeline_page: TimelinePage
    refusals: Refusals = Field(
        description="Input refused under this id (never part of the order's own timeline)."
    )
    notes: list[Note] = Field(
        description="The notes that correct the document (voids, returns, discounts, price "
        "changes), in the order they were accepted, each with its state, number and CUDE."
    )
    creditable: Creditable | None = Field(
        description="What remains creditable of the document after its notes, per line and in "
        "all; null when the document failed."
    )


class NotFound(BaseModel):
    detail: str
    refusals: Refusals


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    message: str
    database: str
    broker: str
