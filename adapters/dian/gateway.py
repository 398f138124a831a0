"""DIAN as a `Gateway`: build and sign the document, send it, and read DIAN's verdict.

    SendBillSync / GetStatus answer          verdict
    00                                       ACCEPTED (cufe, number, qr; notifications kept)
    99 with `Regla: 90` (already processed)  ACCEPTED if DIAN holds OUR CUFE, else REJECTED
    99 with other rules                      REJECTED with every rule
    98, 66 (on submit), empty StatusCode     PENDING
    66 "TrackId no existe" (on status)       NOT_FOUND
    89 about the certificate / NIT           GatewayMisconfigured (raised)
    89 otherwise                             REJECTED
Each software family (invoices, equivalent documents) has its own DIAN registration and may
be in another environment: a document goes to its family's client (endpoint), and with the
family's `test_set_id` (habilitación) it goes by SendTestSetAsync: PENDING with the ZipKey,
and `status` polls GetStatusZip at the same endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.dian.client import DianSoapClient
from adapters.dian.document import DianDocumentFactory, cufe_for
from adapters.dian.reply import DianResponse
from adapters.dian.signer import SigningError
from domain.documents import SoftwareFamily
from domain.errors import GatewayMisconfigured, GatewayUnavailable
from domain.ports import GatewayResult, Rule, Submission, Verdict

MAX_APPLICATION_RESPONSE = 20_000
APPLICATION_RESPONSE = "application_response"
DUPLICATE_RULE = "90"
_RULE = re.compile(
    r"^\s*Regla:\s*(?P<code>[^,]+?)\s*,\s*(?P<kind>[^:]+?)\s*:\s*(?P<text>.*)$", re.DOTALL
)
_MISCONFIGURED_89 = ("certificado", "NIT")
BOGOTA = timedelta(hours=-5)


def parse_rules(messages: tuple[str, ...]) -> tuple[Rule, ...]:
    """`Regla: FAD06, Rechazo: ...` -> Rule("FAD06", "Rechazo", "..."); other text kept as is."""
    rules = []
    for message in messages:
        match = _RULE.match(message)
        if match:
            rules.append(Rule(match["code"], match["kind"], match["text"].strip()))
        elif message.strip():
            rules.append(Rule("", "Mensaje", message.strip()))
    return tuple(rules)


def _is_rejection(rule: Rule) -> bool:
    return rule.kind.lower().startswith("rechazo")


def _summary(operation: str, answer: DianResponse) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "operation": operation,
        "status_code": answer.status_code,
        "status_description": answer.status_description,
        "status_message": answer.status_message,
        "is_valid": answer.is_valid,
        "error_messages": list(answer.error_messages),
        "xml_document_key": answer.xml_document_key,
        "xml_file_name": answer.xml_file_name,
    }
    if answer.xml_base64_bytes:
        text = answer.xml_base64_bytes.decode("utf-8", errors="replace")
        if len(text) > MAX_APPLICATION_RESPONSE:
            text = text[:MAX_APPLICATION_RESPONSE]
            summary["application_response_truncated"] = True
        summary["application_response"] = text
    return summary


def signing_time_for(submission: Submission, now: datetime | None = None) -> datetime:
    """Now, unless that is no longer the issue date in Colombia: DIAN requires the signing
    date to equal the issue date (FAD09e), and the issue date is fixed when the order is
    accepted (it is part of the CUFE), so a retry on a later day signs at the issue time."""
    current = now or datetime.now(UTC)
    if (current + BOGOTA).date() == (submission.issued_at + BOGOTA).date():
        return current
    return submission.issued_at


class DianGateway:
    """The `Gateway` port over DIAN's SOAP service (own software, direct submission).

    `clients` is one SOAP client for every family, or one per family (the same client object
    may serve both when their endpoints are equal).
    """

    name = "dian"

    def __init__(
        self,
        clients: DianSoapClient | Mapping[SoftwareFamily, DianSoapClient],
        factory: DianDocumentFactory,
    ) -> None:
        if isinstance(clients, DianSoapClient):
            clients = dict.fromkeys(SoftwareFamily, clients)
        self._clients = dict(clients)
        self._factory = factory
        self._setup = factory.setup

    def client_for(self, submission: Submission) -> DianSoapClient:
        family = submission.kind.family
        client = self._clients.get(family)
        if client is None:
            raise GatewayMisconfigured(f"no DIAN endpoint is configured for the {family} family")
        return client

    def submit(self, submission: Submission) -> GatewayResult:
        client = self.client_for(submission)
        software = self._setup.software_for(submission.kind)
        try:
            invoice = self._factory.build(submission, signing_time=signing_time_for(submission))
        except SigningError as exc:
            raise GatewayMisconfigured(f"the certificate cannot sign: {exc}") from exc
        base = {"cufe": invoice.cufe, "number": invoice.number}
        if software.test_set_id:
            upload = client.send_test_set_async(
                invoice.zip_name, invoice.zip_bytes, software.test_set_id
            )
            response: dict[str, Any] = {
                "operation": "SendTestSetAsync",
                "zip_key": upload.zip_key,
                "errors": [e.processed_message for e in upload.errors],
            }
            if not upload.zip_key:
                messages = tuple(e.processed_message for e in upload.errors)
                return GatewayResult(Verdict.REJECTED, base, parse_rules(messages), response)
            return GatewayResult(Verdict.PENDING, {**base, "zip_key": upload.zip_key}, (), response)
        answer = client.send_bill_sync(invoice.zip_name, invoice.zip_bytes)
        references = {**base, "qr": invoice.qr_url}
        result = self._verdict(client, "SendBillSync", answer, references, on_submit=True)
        if result.verdict is Verdict.ACCEPTED:
            return replace(result, files={**result.files, "document": invoice.xml})
        return result

    def status(self, submission: Submission) -> GatewayResult:
        client = self.client_for(submission)
        zip_key = submission.references.get("zip_key")
        if zip_key:
            answers = client.get_status_zip(zip_key)
            references = {k: v for k, v in submission.references.items() if k != "qr"}
            if not answers or not answers[0].status_code:
                first = answers[0] if answers else None
                response = (
                    _summary("GetStatusZip", first) if first else {"operation": "GetStatusZip"}
                )
                return GatewayResult(Verdict.PENDING, references, (), response)
            return self._verdict(client, "GetStatusZip", answers[0], references, on_submit=False)
        cufe = submission.references.get("cufe") or cufe_for(submission, self._setup)
        answer = client.get_status(cufe)
        references = {"cufe": cufe}
        if submission.number is not None:
            references["number"] = str(submission.number)
        result = self._verdict(client, "GetStatus", answer, references, on_submit=False)
        return self._with_document(client, result)

    @staticmethod
    def _with_document(client: DianSoapClient, result: GatewayResult) -> GatewayResult:
        """An accepted document found by asking: the signed XML as DIAN holds it (the one
        this attempt would build is signed anew), for the buyer's copy."""
        if result.verdict is not Verdict.ACCEPTED or "document" in result.files:
            return result
        held = client.get_xml_by_document_key(result.references["cufe"])
        if held.code != "100" or not held.xml:
            return result
        return replace(result, files={**result.files, "document": held.xml})

    def _verdict(
        self,
        client: DianSoapClient,
        operation: str,
        answer: DianResponse,
        references: dict[str, str],
        *,
        on_submit: bool,
    ) -> GatewayResult:
        rules = parse_rules(answer.error_messages)
        response = _summary(operation, answer)
        code = answer.status_code
        if code == "00":
            files = (
                {APPLICATION_RESPONSE: answer.xml_base64_bytes} if answer.xml_base64_bytes else {}
            )
            return GatewayResult(Verdict.ACCEPTED, references, rules, response, files)
        if code == "89":
            text = " ".join(answer.error_messages) or answer.status_description
            if any(word in text for word in _MISCONFIGURED_89):
                raise GatewayMisconfigured(f"DIAN refused the sender: {text[:300]}")
            return GatewayResult(Verdict.REJECTED, references, rules, response)
        if code == "99":
            if any(r.code == DUPLICATE_RULE and _is_rejection(r) for r in rules):
                return self._duplicate(client, answer, references, rules, response)
            return GatewayResult(Verdict.REJECTED, references, rules, response)
        if code in ("98", ""):
            return GatewayResult(Verdict.PENDING, references, rules, response)
        if code == "66":
            verdict = Verdict.PENDING if on_submit else Verdict.NOT_FOUND
            return GatewayResult(verdict, references, rules, response)
        if code == "500":
            raise GatewayUnavailable(f"{operation}: DIAN reported an internal error (500)")
        return GatewayResult(Verdict.PENDING, references, rules, response)

    def _duplicate(
        self,
        client: DianSoapClient,
        answer: DianResponse,
        references: dict[str, str],
        rules: tuple[Rule, ...],
        response: dict[str, Any],
    ) -> GatewayResult:
        """Rule 90: DIAN already holds a document with this number. Is it ours?"""
        ours = references["cufe"]
        held = answer.xml_document_key.strip().lower()
        if held and held != ours.lower():
            return self._not_ours(references, rules, response, held)
        stored = client.get_xml_by_document_key(ours)
        confirmed = client.get_status(ours)
        response = {
            **response,
            "confirmation": _summary("GetStatus", confirmed),
            "stored_document_code": stored.code,
        }
        if confirmed.status_code == "00" and stored.code == "100":
            notes = tuple(r for r in rules if r.code != DUPLICATE_RULE)
            notes += tuple(r for r in parse_rules(confirmed.error_messages) if not _is_rejection(r))
            files = {"document": stored.xml} if stored.xml else {}
            if confirmed.xml_base64_bytes:
                files[APPLICATION_RESPONSE] = confirmed.xml_base64_bytes
            return GatewayResult(Verdict.ACCEPTED, references, notes, response, files)
        return self._not_ours(references, rules, response, held)

    def _not_ours(
        self,
        references: dict[str, str],
        rules: tuple[Rule, ...],
        response: dict[str, Any],
        held: str,
    ) -> GatewayResult:
        number = references.get("number", "")
        explanation = (
            f"DIAN already holds a different document numbered {number} "
            f"(CUFE {held or 'not given'}); this order's document was not accepted"
        )
        return GatewayResult(
            Verdict.REJECTED, references, rules, {**response, "explanation": explanation}
        )
