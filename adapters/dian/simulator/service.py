"""The simulated WcfDianCustomerServices: one method per operation, over `State`."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

from adapters.dian.simulator import checks, equivalent, notes, responses
from adapters.dian.simulator.application_response import signed_application_response
from adapters.dian.simulator.responses import DianAnswer
from adapters.dian.simulator.state import Batch, State, Stored
from adapters.dian.wssecurity import SecurityError, safe_parser, verify_envelope

WCF = responses.WCF
ACCEPTED = "Procesado Correctamente."
REJECTED = "Validación contiene errores en campos mandatorios."
REJECTED_MESSAGE = "Documento con errores en campos mandatorios."
DUPLICATE = "Regla: 90, Rechazo: Documento procesado anteriormente."
NOT_FOUND = "TrackId no existe en los registros de la DIAN."
BATCH_PENDING = "Batch en proceso de validación."
NO_TEST_SET = "Identificador del set de pruebas es obligatorio."
LABEL_INVOICE = ("La Factura electrónica", "autorizada")
NOTE_LABELS = {
    "91": ("La Nota Crédito", "autorizada"),
    "92": ("La Nota Débito", "autorizada"),
    "94": ("La Nota de Ajuste Crédito", "autorizada"),
    "93": ("La Nota de Ajuste Débito", "autorizada"),
}


class SecurityRefused(Exception):
    """WS-Security did not verify: answer the InvalidSecurity fault."""


def _refused(text: str) -> DianAnswer:
    return DianAnswer("89", text, text, False, [text])


def certificate_nit(certificate: x509.Certificate) -> str | None:
    """The NIT an accredited certificate carries: serialNumber, else `NIT <digits>` in CN."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        digits = re.sub(r"\D", "", str(attribute.value))
        if digits:
            return digits
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        found = re.search(r"NIT\D*(\d+)", str(attribute.value))
        if found:
            return found.group(1)
    return None


class DianService:
    def __init__(self, state: State) -> None:
        self.state = state
        self._schema = checks.SchemaCheck(
            Path(state.options.ubl_xsd_dir) if state.options.ubl_xsd_dir else None
        )

    def handle(self, envelope_bytes: bytes) -> tuple[str, bytes]:
        """Answer one SOAP request; returns (operation, answer envelope)."""
        options = self.state.options
        try:
            root = etree.fromstring(envelope_bytes, parser=safe_parser())
        except etree.XMLSyntaxError:
            return "", responses.sender_fault("The message is not well-formed XML.")
        certificate: x509.Certificate | None = None
        with self.state.lock:
            injected = options.take("invalid_security")
        if injected:
            raise SecurityRefused("injected")
        if options.checks:
            try:
                certificate = verify_envelope(
                    envelope_bytes, skew=timedelta(seconds=options.clock_skew_seconds)
                )
            except SecurityError as exc:
                raise SecurityRefused(str(exc)) from exc
        body = root.find(f"{{{responses.SOAP12}}}Body")
        request = body[0] if body is not None and len(body) else None
        if request is None or etree.QName(request).namespace != WCF:
            return "", responses.sender_fault("The message has no operation in its body.")
        operation = etree.QName(request).localname
        action = root.findtext(f"{{{responses.SOAP12}}}Header/{{{responses.WSA}}}Action")
        if action and action != responses.ACTION_BASE + operation:
            return operation, responses.sender_fault("wsa:Action does not match the body.")
        params = {etree.QName(c).localname: (c.text or "") for c in request}
        with self.state.lock:
            self.state.counters[f"op:{operation}"] += 1
        handler = {
            "SendBillSync": self.send_bill_sync,
            "SendTestSetAsync": self.send_test_set_async,
            "GetStatus": self.get_status,
            "GetStatusZip": self.get_status_zip,
            "GetXmlByDocumentKey": self.get_xml_by_document_key,
            "GetNumberingRange": self.get_numbering_range,
        }.get(operation)
        if handler is None:
            return operation, responses.sender_fault(f"Operation {operation} is not available.")
        return operation, handler(params, certificate)

    # --- operations -----------------------------------------------------------------

    def send_bill_sync(self, params: dict[str, str], cert: x509.Certificate | None) -> bytes:
        answer = self._receive(params, cert, sync=True)
        return responses.single("SendBillSync", answer)

    def send_test_set_async(self, params: dict[str, str], cert: x509.Certificate | None) -> bytes:
        if not params.get("testSetId", "").strip():
            return responses.upload("SendTestSetAsync", None, [("", NO_TEST_SET)])
        answer = self._receive(params, cert, sync=False)
        zip_key = str(uuid.uuid4())
        with self.state.lock:
            self.state.batches[zip_key] = Batch(self.state.options.batch_polls, [answer])
        return responses.upload("SendTestSetAsync", zip_key, [])

    def get_status(self, params: dict[str, str], _: x509.Certificate | None) -> bytes:
        track_id = params.get("trackId", "").strip().lower()
        if len(track_id) < 20:
            return responses.single("GetStatus", _refused("TrackId inválido (Length)."))
        with self.state.lock:
            stored = self.state.documents.get(track_id)
            if stored is None:
                answer = DianAnswer("66", NOT_FOUND, NOT_FOUND)
            elif stored.processing_polls > 0:
                stored.processing_polls -= 1
                answer = DianAnswer("98", "En Proceso", "En Proceso", False)
            else:
                answer = stored.answer
        return responses.single("GetStatus", answer)

    def get_status_zip(self, params: dict[str, str], _: x509.Certificate | None) -> bytes:
        track_id = params.get("trackId", "").strip()
        try:
            uuid.UUID(track_id)
        except ValueError:
            return responses.many("GetStatusZip", [_refused("Formato trackId inválido.")])
        with self.state.lock:
            batch = self.state.batches.get(track_id)
            if batch is None:
                answers = [DianAnswer("66", NOT_FOUND, NOT_FOUND)]
            elif batch.polls_left > 0:
                batch.polls_left -= 1
                answers = [DianAnswer("", BATCH_PENDING, "", False)]
            else:
                answers = list(batch.answers)
        return responses.many("GetStatusZip", answers)

    def get_xml_by_document_key(self, params: dict[str, str], _: x509.Certificate | None) -> bytes:
        track_id = params.get("trackId", "").strip().lower()
        with self.state.lock:
            stored = self.state.documents.get(track_id)
        if stored is None or stored.answer.status_code != "00":
            return responses.event("404", f"Xml con CUFE: '{track_id}' no encontrado.", None)
        return responses.event("100", "Accion completada OK", stored.xml)

    def get_numbering_range(self, params: dict[str, str], _: x509.Certificate | None) -> bytes:
        # The invoice ranges DIAN's habilitación hands out, one per configured technical key;
        # POS ranges carry no technical key and are not listed here.
        ranges = [
            {
                "ResolutionNumber": "18760000001",
                "ResolutionDate": "2019-01-19",
                "Prefix": prefix,
                "FromNumber": "990000000",
                "ToNumber": "995000000",
                "ValidDateFrom": "2019-01-19",
                "ValidDateTo": "2030-01-19",
                "TechnicalKey": key,
            }
            for prefix, key in sorted(self.state.options.technical_keys.items())
        ]
        return responses.numbering(ranges)

    # --- validation -----------------------------------------------------------------

    def _receive(
        self, params: dict[str, str], cert: x509.Certificate | None, *, sync: bool
    ) -> DianAnswer:
        options = self.state.options
        try:
            content = base64.b64decode(params.get("contentFile", ""), validate=True)
        except (binascii.Error, ValueError):
            content = b""
        try:
            name, xml = checks.unzip_single(content)[0]
            document = checks.parse_document(name, xml)
        except checks.Refused as exc:
            with self.state.lock:
                self.state.counters["refused"] += 1
            return _refused(str(exc))
        with self.state.lock:
            self.state.submissions[document.number] += 1
        if options.checks and cert is not None:
            nit = certificate_nit(cert)
            if nit is None:
                return _refused("NIT de la empresa no informado en el certificado.")
            if nit != document.supplier_nit:
                return _refused(
                    f"NIT {nit} no autorizado a enviar documentos para emisor con NIT "
                    f"{document.supplier_nit}."
                )
        forced = options.sync_answer if sync else None
        if forced == "66":
            return DianAnswer("66", "", "", False)
        with self.state.lock:
            number_key = (document.supplier_nit, document.duplicity_type, document.number)
            earlier = self.state.accepted_numbers.get(number_key)
            if earlier is not None:
                self.state.counters["duplicates"] += 1
                return DianAnswer(
                    "99",
                    REJECTED,
                    REJECTED_MESSAGE,
                    False,
                    [DUPLICATE],
                    xml_document_key=earlier,
                    xml_file_name=document.xml_name,
                )
        answer = self._validate(document)
        with self.state.lock:
            polls = options.processing_polls if forced in ("98", "") else 0
            if document.cufe:
                self.state.documents[document.cufe] = Stored(
                    document.number, document.supplier_nit, xml, answer, polls
                )
            if answer.status_code == "00":
                self.state.counters["accepted"] += 1
                self.state.accepted_numbers[number_key] = document.cufe
                self._remember_note(document)
            else:
                self.state.counters["rejected"] += 1
        if forced == "98":
            return DianAnswer(
                "98", "En Proceso", "En Proceso", False, xml_document_key=document.cufe
            )
        if forced == "":
            return DianAnswer("", "", "", False, xml_document_key=document.cufe)
        return answer

    def _remember_note(self, document: checks.Document) -> None:
        """An accepted note counts against the document it references (lock held)."""
        kind = notes.kind_of(document)
        named = notes.reference(document)
        if kind is not None and named is not None:
            entry = (kind, notes.figures(document.tree))
            self.state.accepted_notes.setdefault(named.key, []).append(entry)

    def _note_errors(self, document: checks.Document, kind: str) -> list[str]:
        options = self.state.options
        errors = notes.cude_errors(document, kind, options.software_pins, options.pos_software_pins)
        named = notes.reference(document)
        held: str | None = None
        referenced: notes.Figures | None = None
        earlier: list[tuple[str, notes.Figures]] = []
        if named is not None:
            rules = notes.RULES[kind]
            with self.state.lock:
                held = self.state.accepted_numbers.get(
                    (document.supplier_nit, rules.corrects, named.number)
                )
                stored = self.state.documents.get(held) if held else None
                earlier = list(self.state.accepted_notes.get(held or "", []))
            if stored is not None:
                referenced = notes.figures_of(stored.xml)
        refused = notes.reference_errors(document, kind, held, referenced)
        errors += refused
        if not refused and referenced is not None:
            errors += notes.amount_errors(document, kind, referenced, earlier)
        return errors

    def _validate(self, document: checks.Document) -> DianAnswer:
        options = self.state.options
        errors: list[str] = []
        note = notes.kind_of(document)
        pos = note is None and equivalent.is_equivalent(document, options.pos_software_pins)
        if options.checks:
            errors += self._schema.errors(document)
            errors += checks.signature_errors(document)
            if note is not None:
                errors += self._note_errors(document, note)
            elif pos:
                errors += equivalent.header_errors(document)
                errors += equivalent.extension_errors(document)
                errors += equivalent.cude_errors(document, options.pos_software_pins)
                errors += equivalent.range_errors(document, options.authorized_pos_ranges())
            else:
                errors += checks.cufe_errors(document, options.technical_keys)
            if note is None:  # FAB10a compares the prefix with an authorized range's
                errors += equivalent.prefix_errors(document)
        errors += options.extra_rejections
        notifications = list(options.notifications)
        if errors:
            return DianAnswer(
                "99",
                REJECTED,
                REJECTED_MESSAGE,
                False,
                errors + notifications,
                xml_document_key=document.cufe,
                xml_file_name=document.xml_name,
            )
        label, done = (
            NOTE_LABELS[note]
            if note is not None
            else (("El Documento Equivalente POS", "autorizado") if pos else LABEL_INVOICE)
        )
        return DianAnswer(
            "00",
            ACCEPTED,
            f"{label} {document.number}, ha sido {done}.",
            True,
            notifications,
            xml_base64_bytes=signed_application_response(document, notifications),
            xml_document_key=document.cufe,
            xml_file_name=document.xml_name,
        )
