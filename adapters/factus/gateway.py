"""The Factus gateway (API v2): the domain `Gateway` with the outcome rules Factus documents.

201/200, is_validated true                 → ACCEPTED ("Notificación" rules kept as warnings)
201/200, not validated, a "Rechazo" rule   → REJECTED (the rejected bill is then deleted)
201/200, not validated, no "Rechazo"       → PENDING  (DIAN slow: `status` re-sends the same
                                             body with the same reference_code)
422 `{message, errors:{field:[...]}}`      → InvalidOrder (field messages)
422 `{data:{errors:{"FAK24": "Regla: ..."}}}` → REJECTED with every rule
409 "factura pendiente por enviar a la DIAN" → look the bill up by reference_code:
    validated → ACCEPTED (never deleted); rejected → delete it and re-send once;
    pending → re-send once (Factus treats it as a retry); absent → GatewayUnavailable

Notes to an invoice go to the notes gateway given at construction (`adapters.factus.notes`),
which applies the same rules to Factus' credit-note and debit-note endpoints.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from adapters.factus.client import (
    FactusClient,
    FactusConflict,
    FactusNotFound,
    FactusResponseError,
    FactusUnprocessable,
)
from adapters.factus.mapping import build_bill
from domain.errors import FieldError, GatewayMisconfigured, GatewayUnavailable, InvalidOrder
from domain.ports import Gateway, GatewayResult, Rule, Submission, Verdict

if TYPE_CHECKING:
    from adapters.factus.config import FactusConfig

_RULE = re.compile(r"Regla:\s*(?P<code>[^,]+?)\s*,\s*(?P<kind>[^:]+?)\s*:\s*(?P<text>.*)", re.S)
_SECRET_WORDS = ("base_64", "qr_image", "token", "password", "secret", "authorization")
MAX_TEXT = 1000
MAX_LIST = 50


class FactusGateway:
    name = "factus"

    def __init__(
        self, client: FactusClient, config: FactusConfig, notes: Gateway | None = None
    ) -> None:
        """`notes`: the gateway of credit and debit notes (`adapters.factus.notes`)."""
        self.client = client
        self._config = config
        self.notes = notes

    def close(self) -> None:
        self.client.close()

    def submit(self, submission: Submission) -> GatewayResult:
        if submission.kind.is_note:
            return self._notes().submit(submission)
        return self._send(submission, self._body(submission), repairs_left=1)

    def status(self, submission: Submission) -> GatewayResult:
        if submission.kind.is_note:
            return self._notes().status(submission)
        bill = self._lookup(submission.reference_code)
        if bill is None:
            return GatewayResult(
                Verdict.NOT_FOUND,
                references={"reference_code": submission.reference_code},
                response={"found": False, "reference_code": submission.reference_code},
            )
        result = bill_result(bill)
        if result.verdict is Verdict.PENDING:
            # Factus: re-send the same payload with the same reference_code; it asks DIAN again.
            return self._send(submission, self._body(submission), repairs_left=0)
        if result.verdict is Verdict.REJECTED and self._config.delete_rejected:
            self._delete(submission.reference_code)
        return result

    def _notes(self) -> Gateway:
        if self.notes is None:
            raise GatewayMisconfigured("this Factus gateway was built without notes")
        return self.notes

    # -- steps --------------------------------------------------------------------------------

    def _body(self, submission: Submission) -> dict[str, Any]:
        return build_bill(
            submission,
            numbering_range_id=self._config.numbering_range_id,
            send_email=self._config.send_email,
        )

    def _send(
        self, submission: Submission, body: dict[str, Any], repairs_left: int
    ) -> GatewayResult:
        try:
            bill = self.client.create_and_validate(body)
        except FactusUnprocessable as exc:
            if _about_reference_code(exc.body):
                # "already taken": an earlier attempt created it; that bill is the document
                existing = self._lookup(submission.reference_code)
                if existing is not None:
                    return bill_result(existing)
            result = unprocessable_result(exc.body)
        except FactusConflict:
            return self._resolve_conflict(submission, body, repairs_left)
        else:
            result = bill_result(bill)
        if result.verdict is Verdict.REJECTED and self._config.delete_rejected:
            self._delete(submission.reference_code)
        return result

    def _resolve_conflict(
        self, submission: Submission, body: dict[str, Any], repairs_left: int
    ) -> GatewayResult:
        bill = self._lookup(submission.reference_code)
        if bill is None:
            # Every bill of the account waits behind that one: stop sending, probe later.
            self.client.breaker.trip()
            raise GatewayUnavailable(
                "Factus holds another bill pending to be sent to DIAN (HTTP 409); "
                "it must be resolved before new bills go through"
            )
        known = bill_result(bill)
        if known.verdict is Verdict.ACCEPTED:
            return known  # a validated bill is the document: keep it, never delete it
        if repairs_left <= 0:
            raise GatewayUnavailable(
                "Factus still reports this bill pending (HTTP 409) after one repair"
            )
        if known.verdict is Verdict.REJECTED:
            self._delete(submission.reference_code)
        return self._send(submission, body, repairs_left - 1)

    def _lookup(self, reference_code: str) -> dict[str, Any] | None:
        listed = self.client.find_by_reference(reference_code)
        if listed is None:
            return None
        if "is_validated" in listed and "errors" in listed:
            return listed
        number = listed.get("number")
        if not isinstance(number, str) or not number:
            raise GatewayUnavailable("Factus listed the bill without its number")
        try:
            return self.client.show(number)
        except FactusNotFound:
            return None

    def _delete(self, reference_code: str) -> None:
        try:
            self.client.delete_by_reference(reference_code)
        except FactusNotFound:
            return
        except FactusResponseError as exc:
            raise GatewayUnavailable(
                f"Factus would not delete the unvalidated bill (HTTP {exc.status_code})"
            ) from exc


# -- answers → results (pure) ------------------------------------------------------------------


def bill_result(bill: dict[str, Any]) -> GatewayResult:
    """The verdict a v2 bill (`data`) carries."""
    rules = parse_rules(bill.get("errors"))
    references = _references(bill)
    response = audit_copy(bill)
    if bill.get("is_validated") is True:
        return GatewayResult(Verdict.ACCEPTED, references, rules, response)
    if any(_is_rejection(rule) for rule in rules):
        return GatewayResult(Verdict.REJECTED, references, rules, response)
    return GatewayResult(Verdict.PENDING, references, rules, response)


def _about_reference_code(body: dict[str, Any]) -> bool:
    errors = body.get("errors")
    return isinstance(errors, dict) and "reference_code" in errors


def unprocessable_result(body: dict[str, Any]) -> GatewayResult:
    """A 422: DIAN rules → REJECTED; Laravel field errors → raise InvalidOrder."""
    data = body.get("data")
    if isinstance(data, dict) and data.get("errors"):
        rules = parse_rules(data.get("errors"))
        references = {k: v for k, v in _references(data).items() if k != "cufe"}
        return GatewayResult(Verdict.REJECTED, references, rules, audit_copy(body))
    field_errors: list[FieldError] = []
    errors = body.get("errors")
    if isinstance(errors, dict):
        for name, messages in errors.items():
            texts = messages if isinstance(messages, list) else [messages]
            field_errors.extend(
                FieldError(str(name), "factus_validation", str(text)[:MAX_TEXT]) for text in texts
            )
    if not field_errors:
        message = body.get("message") or "Factus refused the bill (HTTP 422)"
        field_errors.append(FieldError("(bill)", "factus_validation", str(message)[:MAX_TEXT]))
    raise InvalidOrder(field_errors)


def parse_rules(errors: Any) -> tuple[Rule, ...]:
    """DIAN messages in a Factus answer: `{"FAK24": "Regla: FAK24, Rechazo: ..."}` or a list."""
    entries: list[tuple[str, str]] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            values = value if isinstance(value, list) else [value]
            entries.extend((str(key), str(v)) for v in values)
    elif isinstance(errors, list):
        for value in errors:
            if isinstance(value, dict):
                text = value.get("message") or value.get("text") or ""
                entries.append((str(value.get("code") or ""), str(text)))
            else:
                entries.append(("", str(value)))
    elif isinstance(errors, str) and errors:
        entries.append(("", errors))
    return tuple(_rule(key, text) for key, text in entries)


def _rule(key: str, text: str) -> Rule:
    match = _RULE.search(text)
    if match:
        return Rule(match["code"], match["kind"], match["text"].strip()[:MAX_TEXT])
    lowered = text.lower()
    kind = (
        "Rechazo"
        if "rechazo" in lowered
        else "Notificación"
        if "notificaci" in lowered
        else "Mensaje"
    )
    return Rule(key or "?", kind, text.strip()[:MAX_TEXT])


def _is_rejection(rule: Rule) -> bool:
    return rule.kind.lower() == "rechazo"


def _references(bill: dict[str, Any]) -> dict[str, str]:
    links = bill.get("links") if isinstance(bill.get("links"), dict) else {}
    assert isinstance(links, dict)
    candidates = {
        "number": bill.get("number"),
        "reference_code": bill.get("reference_code"),
        "cufe": bill.get("cufe"),
        "qr": links.get("qr"),
        "public_url": links.get("public_url"),
        "validated_at": bill.get("validated_at"),
    }
    return {k: v for k, v in candidates.items() if isinstance(v, str) and v}


def audit_copy(value: Any, depth: int = 0) -> Any:
    """A small JSON-safe copy for the audit trail: no files, QR images or credentials."""
    if depth > 6:
        return "…"
    if isinstance(value, dict):
        return {
            str(k): audit_copy(v, depth + 1)
            for k, v in value.items()
            if not any(word in str(k).lower() for word in _SECRET_WORDS)
        }
    if isinstance(value, list):
        return [audit_copy(v, depth + 1) for v in value[:MAX_LIST]]
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:MAX_TEXT]
