"""HTTP client for the Factus v2 document endpoints: bills, credit notes and debit notes.

Every request takes a slot from the shared rate limiter and carries the shared Bearer token;
a 401 drops that access token (keeping its refresh token) and the request goes again with a
renewed one, up to three tokens. httpx exceptions and
HTTP statuses are translated here, at the boundary, into what the caller must do next:

    our request budget spent, or the breaker open (not sent) → GatewayBusy (due when it reopens)
    connect error / connect or pool timeout, 408, 429, 5xx  → GatewayUnavailable (safe to resend)
    read/write timeout, reset or broken answer after sending → OutcomeUnknown on POST/DELETE,
                                                             GatewayUnavailable on GET
    504 on POST/DELETE (a proxy gave up; Factus may be done) → OutcomeUnknown
    401 on three tokens in a row                             → GatewayUnavailable (retried)
    402, 403, other 4xx, bad URL                             → GatewayMisconfigured
    404 / 409 / 422                                          → FactusNotFound / FactusConflict /
                                                               FactusUnprocessable, for the gateway
"""

from __future__ import annotations

import base64
import binascii
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from adapters.factus.auth import TokenProvider
from adapters.factus.breaker import CircuitBreaker, InMemoryCircuitBreaker
from adapters.factus.ratelimit import RateLimiter
from domain.errors import GatewayMisconfigured, GatewayUnavailable, OutcomeUnknown

SAFE_METHODS = frozenset({"GET", "HEAD"})
UNAUTHORIZED_ATTEMPTS = 3
UNAUTHORIZED_PAUSE = 0.3  # seconds before the third token, so renewals elsewhere can settle


class FactusResponseError(Exception):
    """A Factus answer the gateway must interpret (404, 409, 422). Carries the parsed body."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        self.status_code = status_code
        self.body = body
        message = body.get("message") if isinstance(body.get("message"), str) else ""
        super().__init__(f"Factus HTTP {status_code}: {message}"[:300])


class FactusNotFound(FactusResponseError):
    pass


class FactusConflict(FactusResponseError):
    pass


class FactusUnprocessable(FactusResponseError):
    pass


_RESPONSE_ERRORS: dict[int, type[FactusResponseError]] = {
    404: FactusNotFound,
    409: FactusConflict,
    422: FactusUnprocessable,
}


@dataclass(frozen=True)
class DownloadedFile:
    file_name: str
    content: bytes = field(repr=False)


MAX_LOOKUP_PAGES = 20
LOOKUP_PAGE_SIZE = 100


def _last_page(pagination: Any, rows_on_page: int) -> int:
    """The last page number a v2 list answer announces (1 when it announces nothing and the
    page was not full)."""
    if isinstance(pagination, dict):
        for name in ("last_page", "total_pages"):
            value = pagination.get(name)
            if isinstance(value, int) and value >= 1:
                return value
        total, per_page = pagination.get("total"), pagination.get("per_page")
        if isinstance(total, int) and isinstance(per_page, int) and per_page > 0:
            return max(1, -(-total // per_page))
    return 1 if rows_on_page < LOOKUP_PAGE_SIZE else MAX_LOOKUP_PAGES


class FactusClient:
    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        tokens: TokenProvider,
        limiter: RateLimiter,
        *,
        max_wait: float = 20.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._tokens = tokens
        self._limiter = limiter
        self._max_wait = max_wait
        self.breaker: CircuitBreaker = breaker or InMemoryCircuitBreaker()

    def close(self) -> None:
        self._http.close()

    # -- calls --------------------------------------------------------------------------------

    def create_and_validate(self, body: dict[str, Any], resource: str = "bills") -> dict[str, Any]:
        """`POST /v2/bills/validate` (or `/v2/credit-notes/validate`, ...) → the document."""
        owner = body.get("reference_code")
        answer = self._request(
            "POST",
            f"/v2/{resource}/validate",
            json=body,
            owner=owner if isinstance(owner, str) else None,
        )
        if not isinstance(answer.get("data"), dict):
            raise OutcomeUnknown("Factus accepted the bill request but answered without the bill")
        return _data(answer)

    def find_by_reference(
        self, reference_code: str, resource: str = "bills"
    ) -> dict[str, Any] | None:
        """`GET /v2/bills?filter[reference_code]=…` → the listed bill with exactly that code,
        or None once every page was read without it.

        The filter may match partially (`…-1` also lists `…-10`), so every page is read and
        codes are compared exactly. An answer whose shape is not understood raises
        GatewayUnavailable: "not found" would mean "send it", so it is never guessed.
        """
        for page in range(1, MAX_LOOKUP_PAGES + 1):
            answer = self._request(
                "GET",
                f"/v2/{resource}",
                params={
                    "filter[reference_code]": reference_code,
                    "page": str(page),
                    "per_page": str(LOOKUP_PAGE_SIZE),
                },
                owner=reference_code,
            )
            data = answer.get("data")
            rows = data.get("data") if isinstance(data, dict) else data
            if not isinstance(rows, list):
                raise GatewayUnavailable("Factus listed bills in a shape this client does not know")
            for row in rows:
                if isinstance(row, dict) and row.get("reference_code") == reference_code:
                    return row
            pagination = data.get("pagination") if isinstance(data, dict) else None
            last = _last_page(pagination, len(rows))
            if page >= last:
                return None
        raise GatewayUnavailable(
            f"Factus lists more than {MAX_LOOKUP_PAGES * LOOKUP_PAGE_SIZE} bills for one "
            "reference_code filter; the lookup cannot conclude"
        )

    def show(self, number: str, resource: str = "bills") -> dict[str, Any]:
        """`GET /v2/bills/{number}` (or `/v2/credit-notes/{number}`, ...) → the document."""
        return _data(self._request("GET", f"/v2/{resource}/{quote(number, safe='')}"))

    def download_pdf(self, number: str, resource: str = "bills") -> DownloadedFile:
        return self._download(number, "pdf", resource)

    def download_xml(self, number: str, resource: str = "bills") -> DownloadedFile:
        return self._download(number, "xml", resource)

    def delete_by_reference(self, reference_code: str, resource: str = "bills") -> None:
        """`DELETE /v2/bills/destroy/reference/{reference_code}`, or for notes
        `/v2/credit-notes/reference/{reference_code}` (unvalidated documents only)."""
        where = "bills/destroy" if resource == "bills" else resource
        self._request(
            "DELETE",
            f"/v2/{where}/reference/{quote(reference_code, safe='')}",
            owner=reference_code,
        )

    def send_email(self, number: str, email: str) -> dict[str, Any]:
        """`POST /v2/bills/{number}/send-email`: Factus e-mails its copy of the bill."""
        return self._request(
            "POST", f"/v2/bills/{quote(number, safe='')}/send-email", json={"email": email}
        )

    def _download(self, number: str, kind: str, resource: str = "bills") -> DownloadedFile:
        path = f"/v2/{resource}/{quote(number, safe='')}/download-{kind}"
        data = _data(self._request("GET", path))
        encoded = data.get(f"{kind}_base_64_encoded")
        if not isinstance(encoded, str):
            raise GatewayUnavailable(f"Factus answered a {kind} download without the file")
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise GatewayUnavailable(f"Factus sent a {kind} file that is not base64") from exc
        return DownloadedFile(_file_name(data.get("file_name"), number, kind), content)

    # -- transport ----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """`owner`: the reference_code the request is for; when the request budget is spent
        the slot that opens first is reserved for it (see `ratelimit`)."""
        # A 401 on a call says the token died (it expired, was used up, or a login elsewhere
        # revoked it), never that the credentials are wrong: Factus says that at login.
        for attempt in range(1, UNAUTHORIZED_ATTEMPTS + 1):
            self.breaker.before()
            token = self._tokens.get()
            slot = self._limiter.acquire(self._max_wait, owner)
            try:
                response = self._send(method, path, token, json=json, params=params)
            except (GatewayUnavailable, OutcomeUnknown):
                self.breaker.failed()
                raise
            finally:
                self._limiter.release(slot)
            if response.status_code == 408 or response.status_code >= 500:
                self.breaker.failed()
            else:
                self.breaker.succeeded()
            if response.status_code != 401:
                return _interpret(method, response)
            self._tokens.invalidate(token)
            if attempt > 1 and attempt < UNAUTHORIZED_ATTEMPTS:
                time.sleep(random.uniform(0.5, 1.0) * UNAUTHORIZED_PAUSE * (attempt - 1))
        raise GatewayUnavailable(
            f"Factus refused {UNAUTHORIZED_ATTEMPTS} tokens in a row (HTTP 401); "
            "the request is retried later with a new token"
        )

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        *,
        json: dict[str, Any] | None,
        params: dict[str, str] | None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            return self._http.request(
                method, self._base + path, headers=headers, json=json, params=params
            )
        except Exception as exc:
            raise translate_transport_error(method, exc) from exc


def translate_transport_error(method: str, exc: Exception) -> Exception:
    """Map an exception raised while sending to the domain error saying what to do next."""
    kind = type(exc).__name__
    if isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ProxyError
    ):
        return GatewayUnavailable(f"Factus unreachable ({kind})")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.InvalidURL):
        return GatewayMisconfigured(f"cannot send to Factus as configured ({kind})")
    if isinstance(exc, httpx.RequestError):
        # The request may have reached Factus: a POST may have created the bill.
        if method in SAFE_METHODS:
            return GatewayUnavailable(f"Factus did not answer ({kind})")
        return OutcomeUnknown(f"Factus may have processed the {method} ({kind})")
    if isinstance(exc, httpx.HTTPError | httpx.InvalidURL | httpx.StreamError):
        return GatewayMisconfigured(f"HTTP client error talking to Factus ({kind})")
    # Anything else interrupted the request in flight (the worker's soft time limit, a
    # signal): a POST may have reached Factus, so it is looked up before it goes again.
    if method in SAFE_METHODS:
        return GatewayUnavailable(f"the call to Factus was interrupted ({kind})")
    return OutcomeUnknown(f"Factus may have processed the {method}: interrupted ({kind})")


def _file_name(given: Any, number: str, kind: str) -> str:
    """A file name ending in `.pdf` / `.xml`: Factus names both files of a bill alike and
    without an extension, and one must not be saved over the other. Only the last path
    part is kept."""
    name = str(given).replace("\\", "/").rsplit("/", 1)[-1].strip() if given else ""
    if not name or name in (".", ".."):
        name = number
    return name if name.lower().endswith(f".{kind}") else f"{name}.{kind}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _interpret(method: str, response: httpx.Response) -> dict[str, Any]:
    """Map one Factus HTTP answer (anything but 401) to a body or a domain error."""
    status = response.status_code
    unsafe = method not in SAFE_METHODS
    if 200 <= status < 300:
        try:
            body = response.json() if response.content else {}
        except ValueError as exc:
            if unsafe:
                raise OutcomeUnknown(
                    f"Factus answered {method} with HTTP {status} but no JSON"
                ) from exc
            raise GatewayUnavailable(f"Factus answered HTTP {status} without JSON") from exc
        return body if isinstance(body, dict) else {"data": body}
    if status in _RESPONSE_ERRORS:
        raise _RESPONSE_ERRORS[status](status, _json_or_empty(response))
    if status == 429:
        raise GatewayUnavailable(
            "Factus rate limit exceeded (HTTP 429)", retry_after=_retry_after(response)
        )
    if status == 402:
        raise GatewayMisconfigured("Factus refused the request: payment required (HTTP 402)")
    if status == 504 and unsafe:
        raise OutcomeUnknown(f"Factus gateway timeout on {method} (HTTP 504)")
    if status == 408 or status >= 500:
        raise GatewayUnavailable(
            f"Factus unavailable (HTTP {status})", retry_after=_retry_after(response)
        )
    if 300 <= status < 400 or 400 <= status < 500:
        raise GatewayMisconfigured(f"Factus refused the request (HTTP {status})")
    # 1xx never reaches us from httpx; anything else is a protocol violation.
    raise GatewayUnavailable(f"unexpected HTTP status {status} from Factus")


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict):
        raise GatewayUnavailable("Factus answer without a data object")
    return data
