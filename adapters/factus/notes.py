"""Notes through Factus (API v2): credit notes (91) and debit notes (92) to an invoice, with
the outcome rules of bills (see `adapters.factus.gateway`):

201/200, is_validated true                → ACCEPTED (the note's CUDE kept as `cufe`)
201/200, not validated, a "Rechazo" rule  → REJECTED (the rejected note is then deleted)
201/200, not validated, no "Rechazo"      → PENDING  (`status` re-sends the same body with the
                                            same reference_code, as Factus asks)
422 field errors                          → InvalidOrder; "reference_code already taken" →
                                            the note an earlier attempt created, looked up
422 with DIAN rules                       → REJECTED with every rule
409                                       → look the note up by reference_code: validated →
    ACCEPTED (never deleted); rejected → delete it and re-send once; pending → re-send once;
    absent → GatewayUnavailable (another document blocks Factus)

Factus has no POS equivalent document, so it has no adjustment notes to one (93/94): such a
note is refused before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.factus.client import (
    DownloadedFile,
    FactusClient,
    FactusConflict,
    FactusNotFound,
    FactusResponseError,
    FactusUnprocessable,
)
from adapters.factus.gateway import _about_reference_code, bill_result, unprocessable_result
from adapters.factus.note_mapping import build_note
from domain.documents import DocumentKind
from domain.errors import FieldError, GatewayUnavailable, InvalidOrder
from domain.ports import GatewayResult, Submission, Verdict

if TYPE_CHECKING:
    from adapters.factus.config import FactusConfig


@dataclass(frozen=True)
class NoteFamily:
    """One kind of note at Factus: its v2 resource and what the messages call it."""

    resource: str
    word: str


FAMILIES = {
    DocumentKind.CREDIT_NOTE: NoteFamily("credit-notes", "credit note"),
    DocumentKind.DEBIT_NOTE: NoteFamily("debit-notes", "debit note"),
}
OFFERED = frozenset(FAMILIES)
NOT_OFFERED_RULE = (
    "Factus (API v2) issues credit and debit notes to invoices only: it has no POS equivalent "
    "document, so no adjustment notes to one (93, 94)"
)


def family_of(kind: DocumentKind) -> NoteFamily:
    """The Factus family of a note kind; `InvalidOrder` naming the rule for any other kind."""
    family = FAMILIES.get(kind)
    if family is None:
        raise InvalidOrder(
            [FieldError("tipo", "note_kind_not_offered", f"{NOT_OFFERED_RULE}; not {kind.value}")]
        )
    return family


def note_result(note: dict[str, Any]) -> GatewayResult:
    """The verdict a v2 note (`data`) carries. Its key is the CUDE; a `cufe` in a note's
    answer names the invoice it corrects, so it is never taken for the note's."""
    result = bill_result(note)
    references = {k: v for k, v in result.references.items() if k != "cufe"}
    cude = note.get("cude")
    if isinstance(cude, str) and cude:
        references["cufe"] = cude
    return GatewayResult(result.verdict, references, result.rules, result.response)


class FactusNoteGateway:
    name = "factus"

    def __init__(self, client: FactusClient, config: FactusConfig) -> None:
        self.client = client
        self._config = config

    def submit(self, submission: Submission) -> GatewayResult:
        family = family_of(submission.kind)
        return self._send(submission, family, repairs_left=1)

    def status(self, submission: Submission) -> GatewayResult:
        family = family_of(submission.kind)
        note = self._lookup(submission.reference_code, family)
        if note is None:
            return GatewayResult(
                Verdict.NOT_FOUND,
                references={"reference_code": submission.reference_code},
                response={"found": False, "reference_code": submission.reference_code},
            )
        result = note_result(note)
        if result.verdict is Verdict.PENDING:
            return self._send(submission, family, repairs_left=0)
        if result.verdict is Verdict.REJECTED and self._config.delete_rejected:
            self._delete(submission.reference_code, family)
        return result

    def download_pdf(self, kind: DocumentKind, number: str) -> DownloadedFile:
        return self.client.download_pdf(number, family_of(kind).resource)

    def download_xml(self, kind: DocumentKind, number: str) -> DownloadedFile:
        return self.client.download_xml(number, family_of(kind).resource)

    # -- steps --------------------------------------------------------------------------------

    def _body(self, submission: Submission) -> dict[str, Any]:
        ranges = {
            DocumentKind.CREDIT_NOTE: self._config.credit_note_range_id,
            DocumentKind.DEBIT_NOTE: self._config.debit_note_range_id,
        }
        return build_note(
            submission,
            numbering_range_id=ranges.get(submission.kind),
            send_email=self._config.send_email,
        )

    def _send(self, submission: Submission, family: NoteFamily, repairs_left: int) -> GatewayResult:
        body = self._body(submission)
        try:
            note = self.client.create_and_validate(body, family.resource)
        except FactusUnprocessable as exc:
            if _about_reference_code(exc.body):
                # "already taken": an earlier attempt created it; that note is the document
                existing = self._lookup(submission.reference_code, family)
                if existing is not None:
                    return note_result(existing)
            result = unprocessable_result(exc.body)
        except FactusConflict:
            return self._resolve_conflict(submission, family, repairs_left)
        else:
            result = note_result(note)
        if result.verdict is Verdict.REJECTED and self._config.delete_rejected:
            self._delete(submission.reference_code, family)
        return result

    def _resolve_conflict(
        self, submission: Submission, family: NoteFamily, repairs_left: int
    ) -> GatewayResult:
        note = self._lookup(submission.reference_code, family)
        if note is None:
            raise GatewayUnavailable(
                f"Factus holds another document pending to be sent to DIAN (HTTP 409); it must "
                f"be resolved before this {family.word} goes through"
            )
        known = note_result(note)
        if known.verdict is Verdict.ACCEPTED:
            return known  # a validated note is the document: keep it, never delete it
        if repairs_left <= 0:
            raise GatewayUnavailable(
                f"Factus still reports this {family.word} pending (HTTP 409) after one repair"
            )
        if known.verdict is Verdict.REJECTED:
            self._delete(submission.reference_code, family)
        return self._send(submission, family, repairs_left - 1)

    def _lookup(self, reference_code: str, family: NoteFamily) -> dict[str, Any] | None:
        listed = self.client.find_by_reference(reference_code, family.resource)
        if listed is None:
            return None
        if {"is_validated", "errors", "cude"} <= listed.keys():
            return listed
        number = listed.get("number")
        if not isinstance(number, str) or not number:
            raise GatewayUnavailable(f"Factus listed the {family.word} without its number")
        try:
            return self.client.show(number, family.resource)
        except FactusNotFound:
            return None

    def _delete(self, reference_code: str, family: NoteFamily) -> None:
        try:
            self.client.delete_by_reference(reference_code, family.resource)
        except FactusNotFound:
            return
        except FactusResponseError as exc:
            raise GatewayUnavailable(
                f"Factus would not delete the unvalidated {family.word} (HTTP {exc.status_code})"
            ) from exc
