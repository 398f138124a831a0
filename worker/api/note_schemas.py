"""What the intake answers about notes, as pydantic models (they also write the OpenAPI
document). Amounts are decimal strings, exactly as the note carries them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from worker.api.trail_schemas import FieldErrorBody, Refusals, Rule, TimelineEntry, TimelinePage

NOTE_EXAMPLE: dict[str, Any] = {
    "id_nota": "DEV-100-1",
    "tipo": "devolucion",
    "lineas": [{"linea": 1, "cantidad": 1}],
    "motivo": "El cliente devolvió una cerveza",
}


class CorrectedDocument(BaseModel):
    """The document a note corrects, as its BillingReference names it."""

    document_type: str = Field(description="`01` invoice or `20` POS equivalent document.")
    number: str | None = Field(description="Its number (null until it has one).")
    cufe: str | None = Field(description="Its CUFE (invoice) or CUDE (POS document).")
    issued_at: datetime


class NoteTax(BaseModel):
    tributo: str = Field(description="DIAN tribute code: `01` IVA, `04` INC, ...")
    tasa: str = Field(description="The rate the document charged, as a fraction (`0.08`).")
    monto: str


class NoteLine(BaseModel):
    linea: int = Field(description="The document line it corrects (1-based, as sent).")
    cantidad: str = Field(description="Quantity returned (0 for a pure amount correction).")
    base: str = Field(description="Amount before taxes it credits or debits.")
    impuestos: list[NoteTax]


class NoteLinks(BaseModel):
    self: str = Field(description="Where to read the note back.")
    order: str = Field(description="Where to read its order back.")


class Note(BaseModel):
    """A note: what it corrects, what it carries and how far it has gone."""

    note_key: str = Field(description="Issuer, order and note id: `900123456:POS-100/DEV-1`.")
    id_pedido_origen: str
    id_nota: str
    tipo: str = Field(description="anulacion, devolucion, descuento, ajuste_precio or aumento.")
    motivo: str
    state: str = Field(description="PENDIENTE, PROCESANDO, EN_ESPERA, SUCCESS or FAILED.")
    waits_for_document: bool = Field(
        description="True while the document it corrects is not yet issued: the note goes out "
        "once that document is SUCCESS (and fails if it fails)."
    )
    document_type: str = Field(
        description="`91` credit / `92` debit note to an invoice, `94` credit / `93` debit "
        "adjustment note to a POS document."
    )
    document: str = Field(description="What the note is, in DIAN's words.")
    number: str | None = Field(description="The note's number (own numbering), when allocated.")
    cude: str | None = Field(description="The note's CUDE once it is computed.")
    corrects: CorrectedDocument
    total: str = Field(description="What it credits (or debits), taxes and tip included.")
    propina: str = Field(description="The tip it credits (a void only).")
    lineas: list[NoteLine]
    attempts: int
    rules: list[Rule] = Field(description="The authority's rule codes when it rejected it.")
    errors: list[FieldErrorBody] = Field(description="Why it failed, as field errors.")
    reason: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    links: NoteLinks


class AcceptedNote(Note):
    created: bool = Field(description="False when this note had already been accepted.")
    warnings: list[str] = Field(default_factory=list)


class NoteView(Note):
    timeline: list[TimelineEntry] = Field(description="One page of the audit trail, in order.")
    timeline_page: TimelinePage
    refusals: Refusals = Field(
        description="Input refused under this note id (never part of the note's timeline)."
    )


class CreditableLine(BaseModel):
    linea: int
    cantidad: str = Field(description="Quantity left to return.")
    base: str = Field(description="Amount before taxes left to credit.")
    impuestos: str = Field(description="Taxes left to credit.")


class Creditable(BaseModel):
    """What remains creditable of the order's document after its notes: credits not FAILED
    hold what they take, debits add once SUCCESS."""

    total: str = Field(description="Everything left: bases, taxes and tip.")
    tip: str = Field(description="The tip left (only a void credits it).")
    lines: list[CreditableLine]


class OrderNotes(BaseModel):
    id_pedido_origen: str
    notes: list[Note] = Field(description="The order's notes, in the order they were accepted.")
    creditable: Creditable | None = Field(
        description="What remains creditable; null when the order's document failed."
    )
