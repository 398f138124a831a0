"""The simulator's credit-note and debit-note endpoints (Factus API v2), with the checks
Factus makes before a note reaches DIAN:

- the body: reference_code, correction_concept_code (credit 1-6, debit 1-4), customization_id
  (credit 20/22, debit 30/32), numbering_range_id (optional while one range is active), and
  the item, payment and charge rules of bills — each broken rule a Laravel-style 422;
- `bill_number` names a bill Factus holds, validated by DIAN (422 otherwise);
- a credit note never takes more than remains of its bill: the bill's total, plus its
  validated debit notes, less its credit notes not rejected (422 otherwise);
- `reference_code` is unique per kind of note: the same code again re-sends a pending note to
  DIAN (200), and answers 409 for a validated or rejected one (delete the rejected one first).

DIAN's verdict comes as for bills (the simulator's `dian_slow`, `dian_rejections`,
`dian_notifications`), with the payments-add-up rule under its note code (CAU14: DIAN's note
rules are the invoice rules with the prefix CA). The POST faults (`conflict_next`,
`drop_next`, `hang_next`) and the block while a rejected document exists apply to notes too.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from adapters.factus.simulator.app import (
    Reply,
    _Bill,
    _int_param,
    _json_object,
    _method_not_allowed,
    _now,
    bill_totals,
    totals_rule,
    validate_bill,
)

if TYPE_CHECKING:
    from adapters.factus.simulator.app import FactusSimulator

# The rules of bills that notes share: their items, payments and charges.
SHARED_FIELDS = ("items", "payment_details", "allowance_charges")


@dataclass(frozen=True)
class Family:
    resource: str  # credit-notes | debit-notes
    word: str  # nota crédito | nota débito
    prefix: str
    concepts: frozenset[str]
    customizations: frozenset[str]  # with a bill reference first
    root: str  # the UBL root of its XML

    @property
    def is_credit(self) -> bool:
        return self.resource == "credit-notes"


CREDIT = Family(
    "credit-notes",
    "nota crédito",
    "NC",
    frozenset("123456"),
    frozenset({"20", "22"}),
    "CreditNote",
)
DEBIT = Family(
    "debit-notes", "nota débito", "ND", frozenset("1234"), frozenset({"30", "32"}), "DebitNote"
)
FAMILIES = {f.resource: f for f in (CREDIT, DEBIT)}
_PATH = re.compile(r"/v2/(credit-notes|debit-notes)(?:/(.*))?")


class NoteDesk:
    """The notes of one simulator; called under the simulator's lock."""

    def __init__(self, simulator: FactusSimulator) -> None:
        self._sim = simulator
        self._notes: dict[str, dict[str, _Bill]] = {name: {} for name in FAMILIES}
        self._next = {name: 1 for name in FAMILIES}
        simulator.stats.update(
            notes_created=Counter(), note_validate_requests=Counter(), notes_deleted=Counter()
        )

    def route(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Reply:
        match = _PATH.fullmatch(path)
        if match is None:
            return Reply(404, {"message": "Not Found"})
        family, rest = FAMILIES[match[1]], match[2] or ""
        if rest == "validate":
            return self._validate(family, raw) if method == "POST" else _method_not_allowed()
        if rest.startswith("reference/"):
            if method != "DELETE":
                return _method_not_allowed()
            return self._destroy(family, unquote(rest[len("reference/") :]))
        if method != "GET":
            return _method_not_allowed()
        if rest == "":
            return self._list(family, query)
        download = re.fullmatch(r"([^/]+)/download-(pdf|xml)", rest)
        if download is not None:
            return self._download(family, unquote(download[1]), download[2])
        if "/" not in rest:
            return self._show(family, unquote(rest))
        return Reply(404, {"message": "Not Found"})

    # -- create and validate ------------------------------------------------------------------

    def _validate(self, family: Family, raw: bytes) -> Reply:
        try:
            body = _json_object(raw)
        except ValueError:
            return Reply(400, {"message": "El cuerpo de la petición no es JSON válido"})
        problems = self._problems(family, body)
        if problems:
            first = next(iter(problems.values()))[0]
            more = sum(len(v) for v in problems.values()) - 1
            message = first + (f" (y {more} error(es) más)" if more else "")
            return Reply(422, {"message": message, "errors": problems})
        reference = str(body["reference_code"])
        sim, notes = self._sim, self._notes[family.resource]
        sim.stats["note_validate_requests"][reference] += 1
        after = sim._after_processing()
        if sim.options.conflict_next > 0:
            sim.options.conflict_next -= 1
            return sim._conflict(self._pending(family))
        existing = notes.get(reference)
        if existing is not None and existing.is_validated:
            return sim._conflict(
                f"Ya existe un documento validado con el código de referencia {reference}"
            )
        if existing is not None and existing.rejected:
            return sim._conflict(self._pending(family))
        if sim.options.block_on_rejected and any(n.rejected for n in notes.values()):
            return sim._conflict(self._pending(family))
        if existing is not None:  # same reference, pending at DIAN: a retry updates it
            existing.body = body
            existing.pending_checks -= 1
            reply = self._dian(family, existing, created=False)
        else:
            reply = self._dian(family, self._create(family, reference, body), created=True)
        reply.after = after
        return reply

    def _pending(self, family: Family) -> str:
        return f"Se encontró una {family.word} pendiente por enviar a la DIAN"

    def _problems(self, family: Family, body: dict[str, Any]) -> dict[str, list[str]]:
        errors = {
            name: messages
            for name, messages in validate_bill(body, []).items()
            if name.startswith(SHARED_FIELDS)
        }

        def need(name: str, ok: bool, message: str) -> None:
            if not ok:
                errors.setdefault(name, []).append(message)

        reference = body.get("reference_code")
        need(
            "reference_code",
            isinstance(reference, str) and 0 < len(reference) <= 100,
            "El campo código de referencia es obligatorio.",
        )
        need(
            "correction_concept_code",
            str(body.get("correction_concept_code")) in family.concepts,
            "El código de corrección seleccionado no es válido.",
        )
        default = min(family.customizations)
        customization = str(body.get("customization_id", default))
        need(
            "customization_id",
            customization in family.customizations,
            "El tipo de operación seleccionado no es válido.",
        )
        ranges = self._ranges(family)
        range_id = body.get("numbering_range_id")
        need(
            "numbering_range_id",
            range_id in ranges if range_id is not None else len(ranges) == 1,
            "El rango de numeración seleccionado no es válido.",
        )
        if customization == default:
            self._check_bill(family, body, errors)
        return errors

    def _ranges(self, family: Family) -> list[int]:
        opts = self._sim.options
        return opts.credit_note_range_ids if family.is_credit else opts.debit_note_range_ids

    def _check_bill(self, family: Family, body: dict[str, Any], errors: dict[str, Any]) -> None:
        number = body.get("bill_number")
        bill = self._sim._find_number(number) if isinstance(number, str) else None
        if bill is None:
            errors["bill_number"] = ["La factura seleccionada no existe."]
            return
        if not bill.is_validated:
            errors["bill_number"] = [f"La factura {number} no ha sido validada por la DIAN."]
            return
        if not family.is_credit or errors:
            return
        left = self.balance(bill, except_reference=str(body.get("reference_code")))
        total = Decimal(bill_totals(body)["total"])
        if total > left:
            errors["items"] = [
                f"El valor de la nota crédito ({total}) supera el saldo de la factura "
                f"{number} ({left})."
            ]

    def balance(self, bill: _Bill, except_reference: str = "") -> Decimal:
        """What a credit note may still take from `bill`: its total, plus its validated debit
        notes, less its credit notes that were not rejected."""

        def total(notes: dict[str, _Bill], counted: Any) -> Decimal:
            return sum(
                (
                    Decimal(bill_totals(n.body)["total"])
                    for n in notes.values()
                    if n.body.get("bill_number") == bill.number
                    and n.reference_code != except_reference
                    and counted(n)
                ),
                Decimal(0),
            )

        credited = total(self._notes[CREDIT.resource], lambda n: not n.rejected)
        debited = total(self._notes[DEBIT.resource], lambda n: n.is_validated)
        return Decimal(bill_totals(bill.body)["total"]) + debited - credited

    def _create(self, family: Family, reference: str, body: dict[str, Any]) -> _Bill:
        serial = self._next[family.resource]
        self._next[family.resource] += 1
        number = f"{family.prefix}{serial}"
        self._sim.stats["notes_created"][reference] += 1
        cude = hashlib.sha384(f"{number}|{reference}|{time.time_ns()}".encode()).hexdigest()
        note = _Bill(
            id=serial,
            number=number,
            reference_code=reference,
            cufe=cude,
            body=body,
            created_at=_now(),
            pending_checks=self._sim.options.dian_slow,
        )
        self._notes[family.resource][reference] = note
        return note

    def _dian(self, family: Family, note: _Bill, created: bool) -> Reply:
        """DIAN's answer for the note as it is now: rejection, still pending, or validated."""
        opts = self._sim.options
        rules = {
            code: f"Regla: {code}, Rechazo: {text}" for code, text in opts.dian_rejections.items()
        }
        for code, text in totals_rule(note.body).items():
            note_code = "CA" + code[2:]
            rules[note_code] = text.replace(code, note_code).replace("factura", family.word)
        status = "Created" if created else "OK"
        if rules:
            note.errors = rules
            data = {"message": "Documento rechazado por la DIAN", "errors": dict(rules)}
            message = "El documento contiene errores de validación"
            return Reply(422, {"status": "Validation error", "message": message, "data": data})
        if note.pending_checks > 0:
            note.errors = {}
            message = f"Documento {note.reference_code}: pendiente de validación DIAN"
        else:
            note.is_validated = True
            note.validated_at = _now()
            note.errors = {
                code: f"Regla: {code}, Notificación: {text}"
                for code, text in opts.dian_notifications.items()
            }
            message = (
                f"Documento con el código de referencia {note.reference_code} "
                "registrado y validado con éxito"
            )
        data = self._full(family, note)
        return Reply(201 if created else 200, {"status": status, "message": message, "data": data})

    # -- read, download, delete ---------------------------------------------------------------

    def _list(self, family: Family, query: dict[str, list[str]]) -> Reply:
        # Filters match partially, as for bills: `ref-1` also lists `ref-10`.
        wanted = {k[len("filter[") : -1]: v[0] for k, v in query.items() if k.startswith("filter[")}
        rows = [
            self._summary(n)
            for n in self._notes[family.resource].values()
            if all(value in str(getattr(n, name, "")) for name, value in wanted.items())
        ]
        per_page = min(100, max(1, _int_param(query, "per_page", 10)))
        page = max(1, _int_param(query, "page", 1))
        pagination = {
            "total": len(rows),
            "per_page": per_page,
            "current_page": page,
            "last_page": max(1, -(-len(rows) // per_page)),
        }
        chunk = rows[(page - 1) * per_page : page * per_page]
        data = {"data": chunk, "pagination": pagination}
        return Reply(200, {"status": "OK", "message": "Solicitud exitosa", "data": data})

    def _find(self, family: Family, number: str) -> _Bill | None:
        return next((n for n in self._notes[family.resource].values() if n.number == number), None)

    def _show(self, family: Family, number: str) -> Reply:
        note = self._find(family, number)
        if note is None:
            return _not_found(number)
        data = self._full(family, note)
        return Reply(200, {"status": "OK", "message": "Solicitud exitosa", "data": data})

    def _download(self, family: Family, number: str, kind: str) -> Reply:
        note = self._find(family, number)
        if note is None:
            return _not_found(number)
        if kind == "pdf":
            content = f"%PDF-1.4\n% Factus simulator {note.number} {note.cufe}\n%%EOF\n".encode()
        else:
            content = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<{family.root}><ID>{note.number}</ID><UUID>{note.cufe}</UUID></{family.root}>"
            ).encode()
        data = {
            "file_name": f"{note.number}.{kind}",
            f"{kind}_base_64_encoded": base64.b64encode(content).decode(),
        }
        return Reply(200, {"status": "OK", "message": "Solicitud exitosa", "data": data})

    def _destroy(self, family: Family, reference: str) -> Reply:
        note = self._notes[family.resource].get(reference)
        if note is None:
            return _not_found(reference)
        if note.is_validated:
            return self._sim._conflict("No se puede eliminar un documento validado por la DIAN")
        del self._notes[family.resource][reference]
        self._sim.stats["notes_deleted"][reference] += 1
        message = f"Documento con código de referencia {reference} eliminado con éxito"
        return Reply(200, {"status": "OK", "message": message})

    def _summary(self, note: _Bill) -> dict[str, Any]:
        return {
            "id": note.id,
            "number": note.number,
            "reference_code": note.reference_code,
            "status": 1 if note.is_validated else 0,
            "total": bill_totals(note.body)["total"],
            "created_at": note.created_at,
        }

    def _full(self, family: Family, note: _Bill) -> dict[str, Any]:
        bill = self._sim._find_number(str(note.body.get("bill_number")))
        qr = f"https://catalogo-vpfe-hab.dian.gov.co/document/searchqr?documentkey={note.cufe}"
        return {
            "id": note.id,
            "number": note.number,
            "reference_code": note.reference_code,
            "cude": note.cufe,
            "is_validated": note.is_validated,
            "validated_at": note.validated_at,
            "errors": dict(note.errors),
            "correction_concept": {"code": str(note.body.get("correction_concept_code"))},
            "customization": {"code": str(note.body.get("customization_id", "20"))},
            "related_bill": (
                {"number": bill.number, "cufe": bill.cufe} if bill is not None else None
            ),
            "links": {"qr": qr, "public_url": f"https://factus.simulator/documents/{note.cufe}"},
            "totals": bill_totals(note.body),
            "payment_details": note.body.get("payment_details", []),
            "created_at": note.created_at,
        }


def _not_found(what: str) -> Reply:
    return Reply(404, {"status": "Not Found", "message": f"Documento {what} no encontrado"})
