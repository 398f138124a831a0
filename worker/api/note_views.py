"""Notes as the intake shows them: each note from its stored record, and what remains
creditable of an order's document (`domain.usecases.notes.creditable`, the same figures
`einvoice status` prints)."""

from __future__ import annotations

from typing import Any

from domain.ports import OrderKey
from domain.store import DocumentRecord, State
from domain.usecases.notes import creditable
from worker.api.intake import ORDERS_PATH
from worker.api.note_schemas import (
    CorrectedDocument,
    Creditable,
    Note,
    NoteLine,
    NoteLinks,
    NoteTax,
)
from worker.api.trail_schemas import FieldErrorBody, Rule


def order_link(order_id: str) -> str:
    return f"{ORDERS_PATH}/{order_id}"


def notes_link(order_id: str) -> str:
    return f"{order_link(order_id)}/notas"


def note_link(key: OrderKey) -> str:
    return f"{notes_link(key.order_id)}/{key.note}"


def waits_for_document(record: DocumentRecord) -> bool:
    """Accepted while its document was not yet issued, and not woken since."""
    return record.state is State.PENDIENTE and record.due_at is None


def note_fields(record: DocumentRecord) -> dict[str, Any]:
    """The members of `Note` for a note's record (subclasses add theirs)."""
    corrects = record.corrects
    assert record.note is not None and record.key.note is not None and corrects is not None
    figures = record.note["figures"]
    reason = record.reason
    return {
        "note_key": str(record.key),
        "id_pedido_origen": record.key.order_id,
        "id_nota": record.key.note,
        "tipo": figures["tipo"],
        "motivo": figures["motivo"],
        "state": str(record.state),
        "waits_for_document": waits_for_document(record),
        "document_type": record.kind.value,
        "document": record.kind.label,
        "number": str(record.number) if record.number else None,
        "cude": record.references.get("cufe"),
        "corrects": CorrectedDocument(
            document_type=corrects.kind.value,
            number=corrects.number or None,
            cufe=corrects.key or None,
            issued_at=corrects.issued_at,
        ),
        "total": figures["total"],
        "propina": figures["propina"],
        "lineas": [
            NoteLine(
                linea=line["linea"],
                cantidad=line["cantidad"],
                base=line["base"],
                impuestos=[NoteTax(**tax) for tax in line["impuestos"]],
            )
            for line in figures["lineas"]
        ],
        "attempts": record.attempts,
        "rules": rules_of(reason),
        "errors": errors_of(reason),
        "reason": reason,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "links": NoteLinks(self=note_link(record.key), order=order_link(record.key.order_id)),
    }


def note_view(record: DocumentRecord) -> Note:
    return Note(**note_fields(record))


def creditable_view(documents: list[DocumentRecord]) -> Creditable | None:
    """What remains creditable of the order's document (`documents`: the sale first, then its
    notes); None when there is no document to credit (none, or it failed)."""
    sale = next((d for d in documents if not d.kind.is_note), None)
    if sale is None or sale.state is State.FAILED:
        return None
    left = creditable(documents)
    return Creditable.model_validate(left.as_dict()) if left is not None else None


def rules_of(reason: dict[str, Any] | None) -> list[Rule]:
    """The authority's rule codes in a failure's reason."""
    return [Rule(**r) for r in _dicts(reason, "rules", ("code", "kind", "text"))]


def errors_of(reason: dict[str, Any] | None) -> list[FieldErrorBody]:
    """The field errors in a failure's reason."""
    return [FieldErrorBody(**e) for e in _dicts(reason, "errors", ("field", "rule", "message"))]


def _dicts(
    reason: dict[str, Any] | None, name: str, fields: tuple[str, ...]
) -> list[dict[str, str]]:
    items = reason.get(name) if reason else None
    if not isinstance(items, list):
        return []
    return [{f: str(item.get(f, "")) for f in fields} for item in items if isinstance(item, dict)]
