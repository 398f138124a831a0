"""A local Factus (API v2) simulator speaking HTTP, for tests, the demo and benchmarks.

Implements `/oauth/token` (password and refresh grants) and the v2 bill endpoints with the
behaviour Factus documents: Laravel-style 422 field errors, DIAN rule rejections as 422
`{status:"Validation error", data:{errors:{"FAK24": "Regla: FAK24, Rechazo: ..."}}}`, bills
unique by `reference_code`, 409 "Se encontró una factura pendiente por enviar a la DIAN",
deletion of unvalidated bills only, base64 downloads named as Factus names them (one name
for the PDF and the XML, no extension), and 80 requests/minute per user with 429 +
Retry-After + X-RateLimit-* headers.

Stricter where Factus is: access tokens that die after `token_ttl` seconds or `token_uses`
requests, logins that revoke the account's other tokens (`login_revokes_tokens`), rotating
refresh tokens, `invalid_client` / `invalid_grant` at login; quantities and prices with at
most two decimals, untaxed items only in the excluded form (`is_excluded`), and payments equal
to Factus' cent arithmetic (each line and its tax rounded half up) plus
`cash_rounding_amount` (at most 500 either way), else a 422 on `payment_details`.

Same `reference_code` again: a pending (unvalidated, not rejected) bill is re-sent to DIAN and
updated (200); a rejected bill answers 409 until it is deleted; a validated bill answers 409
("ya existe ... validado") — the client looks the bill up and keeps it.

Credit and debit notes (`/v2/credit-notes/...`, `/v2/debit-notes/...`) are served by
`adapters.factus.simulator.notes`, with the checks Factus makes on them.

Faults are options, set at start (`start_simulator(**options)`) or at run time with
`POST /_control` (JSON with the same names; `{"reset": true}` clears bills, tokens and stats;
`{"revoke_tokens": true}` expires every access token). `GET /_stats` returns counters.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
import socket
import threading
import time
from collections import Counter, deque
from contextlib import suppress
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PENDING_MESSAGE = "Se encontró una factura pendiente por enviar a la DIAN"
TRIBUTE_CODES = frozenset({"01", "02", "03", "04", "22", "32", "33", "34", "35", "ZZ"})
PAYMENT_METHOD_CODES = frozenset({"1", "10", "20", "42", "47", "48", "49", "71", "72", "ZZZ"})
DOCUMENT_CODES = frozenset({"11", "12", "13", "21", "22", "31", "41", "42", "47", "48", "50", "91"})


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return int(query.get(name, [str(default)])[0])
    except ValueError:
        return default


@dataclass
class SimulatorOptions:
    client_id: str = "sim-client"
    client_secret: str = "sim-secret"
    username: str = "sandbox@factus.test"
    password: str = "sim-password"
    token_ttl: int = 600  # expires_in of the password grant (Factus' example)
    token_uses: int = 0  # an access token dies after this many API requests (0: no limit)
    login_revokes_tokens: bool = False  # a password login revokes the account's other tokens
    unauthorized_next: int = 0  # the next N API requests answer 401 (tokens revoked elsewhere)
    refresh_ttl: int = 3600  # expires_in of the refresh grant
    numbering_range_ids: list[int] = field(default_factory=lambda: [8])
    prefix: str = "SETP"
    rate_limit: int = 80
    rate_limit_window: float = 60.0
    latency: float = 0.0  # seconds added to every request (token endpoint included)
    fail_next: int = 0  # the next N API requests answer 500
    maintenance: bool = False  # every API request answers 503
    payment_required: bool = False  # every API request answers 402
    dian_slow: int = 0  # a new bill stays unvalidated for N more sends of it
    dian_rejections: dict[str, str] = field(default_factory=dict)  # code → text, every new bill
    dian_notifications: dict[str, str] = field(default_factory=dict)
    hang_next: int = 0  # the next N bill POSTs are processed, then answered after hang_seconds
    hang_seconds: float = 5.0
    drop_next: int = 0  # the next N bill POSTs are processed, then the connection is dropped
    conflict_next: int = 0  # the next N bill POSTs answer 409 before processing
    refresh_fails: bool = False  # the refresh grant answers 401
    reject_all_tokens: bool = False  # every API request answers 401
    block_on_rejected: bool = True  # a rejected bill blocks every new bill (409) until deleted
    credit_note_range_ids: list[int] = field(default_factory=lambda: [9])  # Factus document 22
    debit_note_range_ids: list[int] = field(default_factory=lambda: [10])  # Factus document 23


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    after: str | None = None  # None | "hang" | "drop"


@dataclass
class _Bill:
    id: int
    number: str
    reference_code: str
    cufe: str
    body: dict[str, Any]
    created_at: str
    is_validated: bool = False
    validated_at: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    pending_checks: int = 0

    @property
    def rejected(self) -> bool:
        return not self.is_validated and any("Rechazo" in text for text in self.errors.values())


class FactusSimulator:
    """The simulator's state; `handle()` answers one request. Thread-safe."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self._tokens: dict[str, float] = {}  # access token → expiry (monotonic)
        self._token_uses: Counter[str] = Counter()
        self._refresh_tokens: set[str] = set()
        self._bills: dict[str, _Bill] = {}
        self._next_number = 990000001
        self._window: deque[float] = deque()
        self.stats: dict[str, Any] = {
            "logins": 0,
            "failed_logins": 0,
            "refreshes": 0,
            "failed_refreshes": 0,
            "requests": 0,
            "unauthorized": 0,
            "rate_limited": 0,
            "conflicts": 0,
            "max_requests_in_window": 0,
            "bills_created": Counter(),
            "validate_requests": Counter(),
            "deleted": Counter(),
            "by_kind": Counter(),  # requests that got past auth and the rate limit
            "emails_sent": Counter(),
        }
        from adapters.factus.simulator.notes import NoteDesk  # it builds on this module

        self.notes = NoteDesk(self)

    # -- control ------------------------------------------------------------------------------

    def control(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if changes.get("reset"):
                self._reset()
            if changes.get("revoke_tokens"):
                self._tokens.clear()
            names = {f.name for f in fields(SimulatorOptions)}
            unknown = set(changes) - names - {"reset", "revoke_tokens"}
            if unknown:
                raise ValueError(f"unknown options: {sorted(unknown)}")
            for name, value in changes.items():
                if name in names:
                    setattr(self.options, name, value)
            public = asdict(self.options)
            for secret in ("client_secret", "password"):
                public.pop(secret)
            return public

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {k: dict(v) if isinstance(v, Counter) else v for k, v in self.stats.items()}

    # -- dispatch -----------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        raw: bytes,
    ) -> Reply:
        if path == "/_stats" and method == "GET":
            return Reply(200, self.snapshot())
        if path == "/_control" and method == "POST":
            try:
                return Reply(200, self.control(_json_object(raw)))
            except ValueError as exc:
                return Reply(400, {"message": str(exc)})
        if path == "/oauth/token" and method == "POST":
            return self._oauth({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        if path.startswith("/v2/"):
            return self._api(method, path, query, headers, raw)
        return Reply(404, {"message": "Not Found"})

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        raw: bytes,
    ) -> Reply:
        with self._lock:
            self.stats["requests"] += 1
            opts = self.options
            if opts.maintenance:
                return Reply(503, {"status": "Service Unavailable", "message": "En mantenimiento"})
            if opts.fail_next > 0:
                opts.fail_next -= 1
                return Reply(500, {"status": "Server Error", "message": "Server Error"})
            if not self._authorized(headers.get("authorization", "")):
                self.stats["unauthorized"] += 1
                return Reply(401, {"message": "Unauthenticated."})
            if opts.payment_required:
                return Reply(402, {"status": "Payment Required", "message": "Plan sin documentos"})
            limited = self._rate_limit()
            if limited.status == 429:
                return limited
            self.stats["by_kind"][_kind(method, path)] += 1
            reply = self._route(method, path, query, raw)
            reply.headers.update(limited.headers)
            return reply

    def _route(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Reply:
        if path.startswith(("/v2/credit-notes", "/v2/debit-notes")):
            return self.notes.route(method, path, query, raw)
        if path == "/v2/bills/validate":
            return self._validate(raw) if method == "POST" else _method_not_allowed()
        if path == "/v2/bills":
            return self._list(query) if method == "GET" else _method_not_allowed()
        match = re.fullmatch(r"/v2/bills/destroy/reference/([^/]+)", path)
        if match:
            return self._destroy(unquote(match[1])) if method == "DELETE" else _method_not_allowed()
        match = re.fullmatch(r"/v2/bills/([^/]+)/download-(pdf|xml)", path)
        if match:
            return (
                self._download(unquote(match[1]), match[2])
                if method == "GET"
                else _method_not_allowed()
            )
        match = re.fullmatch(r"/v2/bills/([^/]+)/send-email", path)
        if match:
            return (
                self._send_email(unquote(match[1]), raw)
                if method == "POST"
                else _method_not_allowed()
            )
        match = re.fullmatch(r"/v2/bills/([^/]+)", path)
        if match:
            return self._show(unquote(match[1])) if method == "GET" else _method_not_allowed()
        return Reply(404, {"message": "Not Found"})

    # -- oauth --------------------------------------------------------------------------------

    def _oauth(self, form: dict[str, str]) -> Reply:
        with self._lock:
            opts = self.options
            client_ok = (
                form.get("client_id") == opts.client_id
                and form.get("client_secret") == opts.client_secret
            )
            grant = form.get("grant_type")
            if grant == "password":
                user_ok = (
                    form.get("username") == opts.username and form.get("password") == opts.password
                )
                if not client_ok:
                    self.stats["failed_logins"] += 1
                    return Reply(
                        401, {"error": "invalid_client", "message": "Client authentication failed"}
                    )
                if not user_ok:
                    self.stats["failed_logins"] += 1
                    return Reply(
                        400, {"error": "invalid_grant", "message": "Credenciales inválidas"}
                    )
                self.stats["logins"] += 1
                if opts.login_revokes_tokens:
                    self._tokens.clear()
                return self._issue(opts.token_ttl)
            if grant == "refresh_token":
                token = form.get("refresh_token", "")
                if not client_ok or opts.refresh_fails or token not in self._refresh_tokens:
                    self.stats["failed_refreshes"] += 1
                    return Reply(
                        401, {"error": "invalid_grant", "message": "Refresh token inválido"}
                    )
                self._refresh_tokens.discard(token)  # refresh tokens rotate
                self.stats["refreshes"] += 1
                return self._issue(opts.refresh_ttl)
            return Reply(
                400, {"error": "unsupported_grant_type", "message": "grant_type no soportado"}
            )

    def _issue(self, ttl: int) -> Reply:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._tokens[access] = time.monotonic() + ttl
        self._refresh_tokens.add(refresh)
        return Reply(
            200,
            {
                "token_type": "Bearer",
                "expires_in": ttl,
                "access_token": access,
                "refresh_token": refresh,
            },
        )

    def _authorized(self, header: str) -> bool:
        opts = self.options
        if opts.unauthorized_next > 0:
            opts.unauthorized_next -= 1
            return False
        if opts.reject_all_tokens or not header.startswith("Bearer "):
            return False
        token = header[len("Bearer ") :]
        expiry = self._tokens.get(token)
        if expiry is None or expiry <= time.monotonic():
            return False
        self._token_uses[token] += 1
        if opts.token_uses and self._token_uses[token] >= opts.token_uses:
            del self._tokens[token]  # this use is the last one
        return True

    def _rate_limit(self) -> Reply:
        opts = self.options
        now = time.monotonic()
        while self._window and self._window[0] <= now - opts.rate_limit_window:
            self._window.popleft()
        headers = {"X-RateLimit-Limit": str(opts.rate_limit)}
        if len(self._window) >= opts.rate_limit:
            self.stats["rate_limited"] += 1
            wait = self._window[0] + opts.rate_limit_window - now
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time() + wait) + 1),
                    "Retry-After": str(max(1, math.ceil(wait))),
                }
            )
            return Reply(429, {"message": "Too Many Attempts."}, headers)
        self._window.append(now)
        count = len(self._window)
        self.stats["max_requests_in_window"] = max(self.stats["max_requests_in_window"], count)
        headers["X-RateLimit-Remaining"] = str(opts.rate_limit - count)
        return Reply(200, None, headers)

    # -- bills --------------------------------------------------------------------------------

    def _validate(self, raw: bytes) -> Reply:
        try:
            body = _json_object(raw)
        except ValueError:
            return Reply(400, {"message": "El cuerpo de la petición no es JSON válido"})
        problems = validate_bill(body, self.options.numbering_range_ids)
        if problems:
            first = next(iter(problems.values()))[0]
            more = sum(len(v) for v in problems.values()) - 1
            message = first + (f" (y {more} error(es) más)" if more else "")
            return Reply(422, {"message": message, "errors": problems})
        reference = str(body["reference_code"])
        self.stats["validate_requests"][reference] += 1
        opts = self.options
        after = self._after_processing()
        if opts.conflict_next > 0:
            opts.conflict_next -= 1
            return self._conflict(PENDING_MESSAGE)
        existing = self._bills.get(reference)
        if existing is not None and existing.is_validated:
            return self._conflict(
                f"Ya existe un documento validado con el código de referencia {reference}"
            )
        if existing is not None and existing.rejected:
            return self._conflict(PENDING_MESSAGE)
        if opts.block_on_rejected and any(b.rejected for b in self._bills.values()):
            return self._conflict(PENDING_MESSAGE)
        if existing is not None:  # same reference, pending at DIAN: a retry updates it
            existing.body = body
            existing.pending_checks -= 1
            reply = self._dian(existing, created=False)
        else:
            bill = self._create(reference, body)
            reply = self._dian(bill, created=True)
        reply.after = after
        return reply

    def _after_processing(self) -> str | None:
        opts = self.options
        if opts.drop_next > 0:
            opts.drop_next -= 1
            return "drop"
        if opts.hang_next > 0:
            opts.hang_next -= 1
            return "hang"
        return None

    def _conflict(self, message: str) -> Reply:
        self.stats["conflicts"] += 1
        return Reply(
            409,
            {
                "status": "Conflict",
                "message": message,
                "errors": [{"code": 409, "message": message}],
            },
        )

    def _create(self, reference: str, body: dict[str, Any]) -> _Bill:
        number = f"{self.options.prefix}{self._next_number}"
        self._next_number += 1
        self.stats["bills_created"][reference] += 1
        cufe = hashlib.sha384(f"{number}|{reference}|{time.time_ns()}".encode()).hexdigest()
        bill = _Bill(
            id=self._next_number - 990000001,
            number=number,
            reference_code=reference,
            cufe=cufe,
            body=body,
            created_at=_now(),
            pending_checks=self.options.dian_slow,
        )
        self._bills[reference] = bill
        return bill

    def _dian(self, bill: _Bill, created: bool) -> Reply:
        """DIAN's answer for the bill as it is now: rejection, still pending, or validated."""
        rules = {
            code: f"Regla: {code}, Rechazo: {text}"
            for code, text in self.options.dian_rejections.items()
        }
        status_word = "Created" if created else "OK"
        if rules:
            bill.errors = rules
            return Reply(
                422,
                {
                    "status": "Validation error",
                    "message": "El documento contiene errores de validación",
                    "data": {"message": "Documento rechazado por la DIAN", "errors": dict(rules)},
                },
            )
        if bill.pending_checks > 0:
            bill.errors = {}
            message = f"Documento {bill.reference_code}: pendiente de validación DIAN"
            return Reply(
                201 if created else 200,
                {"status": status_word, "message": message, "data": self._full(bill)},
            )
        bill.is_validated = True
        bill.validated_at = _now()
        bill.errors = {
            code: f"Regla: {code}, Notificación: {text}"
            for code, text in self.options.dian_notifications.items()
        }
        message = (
            f"Documento con el código de referencia {bill.reference_code} "
            "registrado y validado con éxito"
        )
        return Reply(
            201 if created else 200,
            {"status": status_word, "message": message, "data": self._full(bill)},
        )

    def _list(self, query: dict[str, list[str]]) -> Reply:
        # Filters match partially, as Laravel query builders do by default: `ref-1` also
        # lists `ref-10`. Pages of `per_page` rows (default 10, at most 100).
        wanted = {k[len("filter[") : -1]: v[0] for k, v in query.items() if k.startswith("filter[")}
        rows = [
            self._summary(b)
            for b in self._bills.values()
            if all(value in str(getattr(b, name, "")) for name, value in wanted.items())
        ]
        per_page = min(100, max(1, _int_param(query, "per_page", 10)))
        page = max(1, _int_param(query, "page", 1))
        last_page = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        pagination = {
            "total": len(rows),
            "per_page": per_page,
            "current_page": page,
            "last_page": last_page,
        }
        return Reply(
            200,
            {
                "status": "OK",
                "message": "Solicitud exitosa",
                "data": {"data": chunk, "pagination": pagination},
            },
        )

    def _find_number(self, number: str) -> _Bill | None:
        return next((b for b in self._bills.values() if b.number == number), None)

    def _show(self, number: str) -> Reply:
        bill = self._find_number(number)
        if bill is None:
            return Reply(
                404, {"status": "Not Found", "message": f"Documento {number} no encontrado"}
            )
        return Reply(
            200, {"status": "OK", "message": "Solicitud exitosa", "data": self._full(bill)}
        )

    def _send_email(self, number: str, raw: bytes) -> Reply:
        """`POST /v2/bills/{number}/send-email` `{email}`: Factus e-mails its copy."""
        bill = self._find_number(number)
        if bill is None:
            return Reply(
                404, {"status": "Not Found", "message": f"Documento {number} no encontrado"}
            )
        try:
            email = json.loads(raw or b"{}").get("email")
        except (ValueError, AttributeError):
            email = None
        if not isinstance(email, str) or "@" not in email or "." not in email.rpartition("@")[2]:
            return Reply(
                422,
                {
                    "status": "Validation error",
                    "message": "Los datos proporcionados no son válidos.",
                    "data": {"errors": {"email": ["El campo email debe ser un correo válido."]}},
                },
            )
        self.stats["emails_sent"][number] += 1
        return Reply(200, {"status": "OK", "message": "Correo enviado con éxito"})

    def _download(self, number: str, kind: str) -> Reply:
        bill = self._find_number(number)
        if bill is None:
            return Reply(
                404, {"status": "Not Found", "message": f"Documento {number} no encontrado"}
            )
        if kind == "pdf":
            content = f"%PDF-1.4\n% Factus simulator {bill.number} {bill.cufe}\n%%EOF\n".encode()
        else:
            content = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Invoice><ID>{bill.number}</ID><UUID>{bill.cufe}</UUID></Invoice>"
            ).encode()
        encoded = base64.b64encode(content).decode()
        return Reply(
            200,
            {
                "status": "OK",
                "message": "Solicitud exitosa",
                # Factus names both files alike and without an extension (the DIAN name).
                "data": {"file_name": _dian_file_name(bill), f"{kind}_base_64_encoded": encoded},
            },
        )

    def _destroy(self, reference: str) -> Reply:
        bill = self._bills.get(reference)
        if bill is None:
            return Reply(
                404, {"status": "Not Found", "message": f"Documento {reference} no encontrado"}
            )
        if bill.is_validated:
            return self._conflict("No se puede eliminar un documento validado por la DIAN")
        del self._bills[reference]
        self.stats["deleted"][reference] += 1
        return Reply(
            200,
            {
                "status": "OK",
                "message": f"Documento con código de referencia {reference} eliminado con éxito",
            },
        )

    def _summary(self, bill: _Bill) -> dict[str, Any]:
        return {
            "id": bill.id,
            "number": bill.number,
            "reference_code": bill.reference_code,
            "status": 1 if bill.is_validated else 0,
            "created_at": bill.created_at,
        }

    def _full(self, bill: _Bill) -> dict[str, Any]:
        qr = f"https://catalogo-vpfe-hab.dian.gov.co/document/searchqr?documentkey={bill.cufe}"
        return {
            "id": bill.id,
            "number": bill.number,
            "reference_code": bill.reference_code,
            "document": {"code": "01", "name": "Factura electrónica de Venta"},
            "cufe": bill.cufe,
            "is_validated": bill.is_validated,
            "validated_at": bill.validated_at,
            "errors": dict(bill.errors),
            "links": {"qr": qr, "public_url": f"https://factus.simulator/documents/{bill.cufe}"},
            "qr_image": "data:image/png;base64," + base64.b64encode(b"\x89PNG fake" * 50).decode(),
            "totals": bill_totals(bill.body),
            "payment_details": bill.body.get("payment_details", []),
            "created_at": bill.created_at,
        }


# -- request validation (Laravel style) and DIAN checks --------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def validate_bill(body: dict[str, Any], range_ids: list[int]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def need(name: str, ok: bool, message: str) -> None:
        if not ok:
            errors.setdefault(name, []).append(message)

    ref = body.get("reference_code")
    need(
        "reference_code",
        isinstance(ref, str) and 0 < len(ref) <= 100,
        "El campo código de referencia es obligatorio.",
    )
    need(
        "numbering_range_id",
        body.get("numbering_range_id") in range_ids,
        "El rango de numeración seleccionado no es válido.",
    )
    need("document", body.get("document", "01") in ("01", "03"), "El campo documento no es válido.")
    need(
        "operation_type",
        body.get("operation_type", "10") in ("10", "11", "12"),
        "El tipo de operación no es válido.",
    )
    customer = body.get("customer")
    if not isinstance(customer, dict):
        need("customer", False, "El campo cliente es obligatorio.")
    else:
        need(
            "customer.identification_document_code",
            customer.get("identification_document_code") in DOCUMENT_CODES,
            "El tipo de documento del cliente no es válido.",
        )
        ident = customer.get("identification")
        need(
            "customer.identification",
            isinstance(ident, str) and ident.isalnum(),
            "El campo identificación es obligatorio.",
        )
        need(
            "customer.legal_organization_code",
            customer.get("legal_organization_code") in ("1", "2"),
            "El tipo de organización no es válido.",
        )
        need(
            "customer.tribute_code",
            customer.get("tribute_code", "ZZ") in ("01", "ZZ"),
            "El tributo del cliente no es válido.",
        )
        need(
            "customer.names",
            bool(customer.get("names") or customer.get("company")),
            "El campo nombres es obligatorio cuando no se envía razón social.",
        )
    items = body.get("items")
    if not isinstance(items, list) or not items:
        need("items", False, "El campo items es obligatorio.")
        items = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            need(f"items.{i}", False, "El item no es válido.")
            continue
        need(
            f"items.{i}.code_reference",
            bool(item.get("code_reference")),
            f"El campo items.{i}.code_reference es obligatorio.",
        )
        need(f"items.{i}.name", bool(item.get("name")), f"El campo items.{i}.name es obligatorio.")
        quantity = _decimal(item.get("quantity"))
        need(
            f"items.{i}.quantity",
            quantity is not None and quantity > 0,
            f"El campo items.{i}.quantity debe ser mayor que 0.",
        )
        need(
            f"items.{i}.quantity",
            quantity is None or _places(quantity) <= MAX_DECIMALS,
            f"El campo items.{i}.quantity debe tener máximo {MAX_DECIMALS} decimales.",
        )
        price = _decimal(item.get("price"))
        need(
            f"items.{i}.price",
            price is not None and price >= 0,
            f"El campo items.{i}.price es obligatorio.",
        )
        need(
            f"items.{i}.price",
            price is None or _places(price) <= MAX_DECIMALS,
            f"El campo items.{i}.price debe tener máximo {MAX_DECIMALS} decimales.",
        )
        need(
            f"items.{i}.unit_measure_code",
            bool(item.get("unit_measure_code")),
            f"El campo items.{i}.unit_measure_code es obligatorio.",
        )
        need(
            f"items.{i}.standard_code",
            bool(item.get("standard_code")),
            f"El campo items.{i}.standard_code es obligatorio.",
        )
        taxes = item.get("taxes", [])
        need(
            f"items.{i}.taxes",
            isinstance(taxes, list),
            f"El campo items.{i}.taxes debe ser una lista.",
        )
        # An item without taxes is sent in the excluded form, never as an empty list.
        need(
            f"items.{i}.taxes",
            not isinstance(taxes, list) or bool(taxes),
            f"El campo items.{i}.taxes es obligatorio; un producto excluido se envía con "
            "is_excluded.",
        )
        for j, tax in enumerate(taxes if isinstance(taxes, list) else []):
            ok = isinstance(tax, dict) and tax.get("code") in TRIBUTE_CODES
            need(
                f"items.{i}.taxes.{j}.code",
                ok,
                f"El tributo items.{i}.taxes.{j}.code no es válido.",
            )
            rate = _decimal(tax.get("rate")) if isinstance(tax, dict) else None
            need(
                f"items.{i}.taxes.{j}.rate",
                rate is not None and 0 <= rate <= 100,
                f"La tarifa items.{i}.taxes.{j}.rate no es válida.",
            )
    payments = body.get("payment_details")
    if not isinstance(payments, list) or not payments:
        need("payment_details", False, "El campo detalles de pago es obligatorio.")
        payments = []
    for k, payment in enumerate(payments):
        ok = isinstance(payment, dict)
        need(
            f"payment_details.{k}.payment_form",
            ok and payment.get("payment_form") in ("1", "2"),
            "La forma de pago no es válida.",
        )
        need(
            f"payment_details.{k}.payment_method_code",
            ok and payment.get("payment_method_code") in PAYMENT_METHOD_CODES,
            "El medio de pago no es válido.",
        )
        amount = _decimal(payment.get("amount")) if ok else None
        need(
            f"payment_details.{k}.amount",
            amount is not None and amount > 0,
            "El valor del pago no es válido.",
        )
    rounding = _decimal(body.get("cash_rounding_amount", "0"))
    need(
        "cash_rounding_amount",
        rounding is not None and abs(rounding) <= MAX_CASH_ROUNDING and _places(rounding) <= 2,
        f"El redondeo debe estar entre -{MAX_CASH_ROUNDING} y {MAX_CASH_ROUNDING}.",
    )
    for m, charge in enumerate(body.get("allowance_charges") or []):
        ok = isinstance(charge, dict)
        need(
            f"allowance_charges.{m}.concept_type",
            ok and charge.get("concept_type") == "03",
            "Solo está habilitado el concepto 03.",
        )
        need(
            f"allowance_charges.{m}.amount",
            ok and _decimal(charge.get("amount")) is not None,
            "El valor del cargo no es válido.",
        )
    if not errors and rounding is not None:
        total = Decimal(bill_totals(body)["total"]) + rounding
        paid = sum((Decimal(str(p["amount"])) for p in payments), Decimal(0))
        need(
            "payment_details",
            paid == total,
            f"La suma de payment_details ({paid}) no coincide con el total ({total}).",
        )
    return errors


def totals_rule(body: dict[str, Any]) -> dict[str, str]:
    """DIAN-style check that a note's payments add up to its total (rounding tolerated)."""
    total = Decimal(bill_totals(body)["total"])
    paid = sum((Decimal(str(p["amount"])) for p in body.get("payment_details", [])), Decimal(0))
    tolerance = max(Decimal(2), Decimal(len(body.get("items", []))))
    if abs(paid - total) > tolerance:
        return {
            "FAU14": f"Regla: FAU14, Rechazo: El total de los pagos ({paid}) no corresponde "
            f"al valor total de la factura ({total})"
        }
    return {}


def _places(number: Decimal) -> int:
    exponent = number.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


CENT = Decimal("0.01")
MAX_DECIMALS = 2  # quantities, prices and rates: Factus keeps two decimals
MAX_CASH_ROUNDING = Decimal(500)


def bill_totals(body: dict[str, Any]) -> dict[str, str]:
    """Factus' arithmetic: each line and each line's tax rounded half up to the cent."""
    gross = tax = Decimal(0)
    for item in body.get("items", []):
        line = (Decimal(str(item["quantity"])) * Decimal(str(item["price"]))).quantize(
            CENT, ROUND_HALF_UP
        )
        gross += line
        for t in item.get("taxes", []):
            if not t.get("is_excluded"):
                tax += (line * Decimal(str(t["rate"])) / 100).quantize(CENT, ROUND_HALF_UP)
    surcharge = sum(
        (
            Decimal(str(c["amount"]))
            for c in body.get("allowance_charges") or []
            if c.get("is_surcharge")
        ),
        Decimal(0),
    )
    total = gross + tax + surcharge
    return {
        "gross_value": str(gross),
        "tax_amount": str(tax),
        "surcharge_amount": str(surcharge),
        "total": str(total),
    }


def _json_object(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw.decode() or "{}")
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _dian_file_name(bill: _Bill) -> str:
    """The name DIAN gives the document's files: fv + NIT (10 digits) + 000 + year + number."""
    return f"fv0900123456000{datetime.now(UTC):%y}{bill.id:08d}"


def _kind(method: str, path: str) -> str:
    if path == "/v2/bills/validate":
        return "validate"
    if path == "/v2/bills":
        return "lookup"
    if method == "DELETE":
        return "delete"
    return "download" if "/download-" in path else "show"


def _method_not_allowed() -> Reply:
    return Reply(405, {"message": "Method Not Allowed"})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- HTTP server ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, every answer after the first
    # on a keep-alive connection waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: SimulatorServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet, and request lines never carry secrets to a log

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        simulator = self.server.simulator
        url = urlsplit(self.path)
        if simulator.options.latency > 0 and not url.path.startswith("/_"):
            time.sleep(simulator.options.latency)
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = simulator.handle(self.command, url.path, parse_qs(url.query), headers, raw)
        if reply.after == "drop":
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.after == "hang":
            time.sleep(simulator.options.hang_seconds)
        payload = json.dumps(reply.body if reply.body is not None else {}).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client gave up waiting


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: FactusSimulator) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def start_simulator(
    port: int = 0, host: str = "127.0.0.1", **options: Any
) -> tuple[SimulatorServer, str]:
    """Start the simulator in a background thread; returns the server and its base URL."""
    server = SimulatorServer((host, port), FactusSimulator(SimulatorOptions(**options)))
    threading.Thread(target=server.serve_forever, name="factus-simulator", daemon=True).start()
    return server, server.base_url
