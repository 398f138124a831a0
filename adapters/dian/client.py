"""DIAN's SOAP service (`WcfDianCustomerServices`), one method per operation we use.

The zeep client is built once from the project's own WSDL (read from the package, never
fetched) and talks through an `httpx.Client` with explicit connect/read timeouts. Every
answer comes back as a plain dataclass. Foreign errors are translated here:

    connection refused, DNS, connect/pool timeout   -> GatewayUnavailable (nothing was sent)
    HTTP 403/500/502/503/504/507/508 (no SOAP fault) -> GatewayUnavailable
    read/write timeout, reset or close after sending -> OutcomeUnknown
    SOAP fault with subcode InvalidSecurity          -> GatewayMisconfigured
    any other SOAP fault                             -> GatewayUnavailable
    malformed, truncated or hostile (DTD) XML answer -> OutcomeUnknown
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import httpx
import zeep
import zeep.exceptions
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from zeep.settings import Settings

from adapters.dian.direct_post import DirectPost, environment_proxies
from adapters.dian.reply import DianResponse, read_dian_response
from adapters.dian.wssecurity import SOAP12, WSA, DianWsSecurity, body_content
from adapters.dian.xmltext import escape, refuse_non_xml
from domain.errors import GatewayMisconfigured, GatewayUnavailable, OutcomeUnknown

BINDING = "{http://wcf.dian.colombia}WSHttpBinding_IWcfDianCustomerServices"
UNAVAILABLE_HTTP = frozenset({403, 500, 502, 503, 504, 507, 508})
INVALID_SECURITY = "InvalidSecurity"

T = TypeVar("T")


@dataclass(frozen=True)
class RefusedFile:
    """One XmlParamsResponseTrackId of an upload's ErrorMessageList."""

    document_key: str
    processed_message: str
    sender_code: str
    success: bool
    xml_file_name: str


@dataclass(frozen=True)
class UploadDocumentResponse:
    zip_key: str
    errors: tuple[RefusedFile, ...]


@dataclass(frozen=True)
class NumberRange:
    resolution_number: str
    resolution_date: str
    prefix: str
    from_number: int
    to_number: int
    valid_date_from: str
    valid_date_to: str
    technical_key: str


@dataclass(frozen=True)
class NumberRangeResponseList:
    operation_code: str
    operation_description: str
    ranges: tuple[NumberRange, ...]


@dataclass(frozen=True)
class EventResponse:
    """GetXmlByDocumentKey: `code` 100 means found; `xml` is the decoded document."""

    code: str
    message: str
    validation_date: str
    xml: bytes | None


def wsdl_path() -> Path:
    return Path(str(resources.files("adapters.dian") / "wsdl" / "dian.wsdl"))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def wire_bytes(envelope: etree._Element) -> bytes:
    """The bytes posted for `envelope`: exactly what was signed, no pretty printing."""
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


class _Captured(Exception):
    """Raised by `_CaptureTransport` instead of posting."""


class _NoSessionTransport(zeep.Transport):
    """A zeep transport without the `requests` session zeep would open."""

    def __init__(self) -> None:
        self.cache = None
        self.load_timeout = None
        self.operation_timeout = None
        self._close_session = False
        self.session = None


class _CaptureTransport(_NoSessionTransport):
    """Keeps the envelope and HTTP headers zeep would post, and posts nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: tuple[etree._Element, dict[str, str]] | None = None

    def post_xml(
        self, address: str, envelope: etree._Element, headers: dict[str, str]
    ) -> httpx.Response:
        self.sent = (envelope, dict(headers))
        raise _Captured


@dataclass(frozen=True)
class _BillMessage:
    """SendBillSync as zeep writes it from the WSDL, with tokens for the two values."""

    body: str
    action: str
    headers: dict[str, str]
    name_token: str
    content_token: str

    def body_for(self, file_name: str, zip_bytes: bytes) -> str:
        """`ValueError` (nothing sent) for a file name XML cannot carry."""
        refuse_non_xml(file_name)
        content = base64.b64encode(zip_bytes).decode("ascii")
        return self.body.replace(self.name_token, escape(file_name)).replace(
            self.content_token, content
        )


class _HttpxTransport(_NoSessionTransport):
    """zeep transport over an `httpx.Client`; documents load from local files only."""

    def __init__(self, http: httpx.Client) -> None:
        super().__init__()
        self._http = http

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> httpx.Response:
        return self._http.post(address, content=message, headers=headers)

    def post_xml(
        self, address: str, envelope: etree._Element, headers: dict[str, str]
    ) -> httpx.Response:
        return self.post(address, wire_bytes(envelope), headers)

    def load(self, url: str) -> bytes:
        if "://" in url and not url.startswith("file://"):
            raise zeep.exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"refusing to fetch {url}: contract is local"
            )
        return Path(url.removeprefix("file://")).read_bytes()


class DianSoapClient:
    """DIAN's SOAP operations, signed with the issuer's certificate.

    `endpoint` is the service URL (habilitación or producción, or a simulator).
    `transport` lets tests hand in any `httpx.BaseTransport`.
    """

    def __init__(
        self,
        endpoint: str,
        signer_key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        *,
        connect_timeout: float,
        read_timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        )
        if transport is None and not environment_proxies():
            # the transport httpx.Client would make for itself, kept for SendBillSync
            transport = httpx.HTTPTransport()
        self._http = httpx.Client(timeout=timeout, transport=transport)
        settings = Settings(
            strict=True,
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
            xml_huge_tree=False,
        )
        self._transport = _HttpxTransport(self._http)
        self._wsse = DianWsSecurity(signer_key, certificate, endpoint)
        client = zeep.Client(  # type: ignore[no-untyped-call]
            str(wsdl_path()), transport=self._transport, settings=settings, wsse=self._wsse
        )
        self._client = client
        self._binding: Any = client.wsdl.bindings[BINDING]
        self._service: Any = client.create_service(  # type: ignore[no-untyped-call]
            BINDING, endpoint
        )
        self.endpoint = endpoint
        self._bill = self._bill_message()
        self._bill_post = DirectPost(self._http, transport, endpoint, self._bill.headers)
        self._bill_operation: Any = self._binding.get("SendBillSync")  # type: ignore[no-untyped-call]

    def _bill_message(self) -> _BillMessage:
        """Run SendBillSync once through zeep without posting, and keep what it wrote."""
        name_token = f"name{uuid.uuid4().hex}"
        content = os.urandom(24)  # its base64 (32 characters) stands for the zip
        capture = _CaptureTransport()
        self._client.transport = capture
        try:
            self._service.SendBillSync(name_token, content)
        except _Captured:
            pass
        finally:
            self._client.transport = self._transport
        assert capture.sent is not None
        envelope, headers = capture.sent
        body = body_content(envelope)
        content_token = base64.b64encode(content).decode("ascii")
        action = envelope.findtext(f"{{{SOAP12}}}Header/{{{WSA}}}Action") or ""
        if body.count(name_token) != 1 or body.count(content_token) != 1 or not action:
            raise RuntimeError("zeep wrote SendBillSync in an unexpected shape")  # pragma: no cover
        return _BillMessage(body, action, headers, name_token, content_token)

    def _bill_envelope(self, file_name: str, zip_bytes: bytes) -> etree._Element:
        body = self._bill.body_for(file_name, zip_bytes)
        return self._wsse.sign_body(body, self._bill.action, now=datetime.now(UTC))

    def send_bill_sync_envelope(self, file_name: str, zip_bytes: bytes) -> bytes:
        """The bytes `send_bill_sync` would post, without posting them."""
        return wire_bytes(self._bill_envelope(file_name, zip_bytes))

    def close(self) -> None:
        self._http.close()

    def send_bill_sync(self, file_name: str, zip_bytes: bytes) -> DianResponse:
        """The one operation on every invoice's path: the message is zeep's own SendBillSync
        (captured once, see `_bill_message`) with the values written in, posted as the HTTP
        client would post it (`adapters.dian.direct_post`); an answer of the known shape is
        read directly (`adapters.dian.reply`), any other by zeep's binding exactly as for
        the other operations."""

        envelope = self._bill_envelope(file_name, zip_bytes)  # errors here: nothing was sent

        def call() -> DianResponse:
            response = self._bill_post.post(wire_bytes(envelope))
            if response.status_code == 200:
                read = read_dian_response(response.content, "SendBillSync")
                if read is not None:
                    return read
            reply = self._binding.process_reply(self._client, self._bill_operation, response)
            return _dian_response(reply)

        return self._call("SendBillSync", call)

    def send_test_set_async(
        self, file_name: str, zip_bytes: bytes, test_set_id: str
    ) -> UploadDocumentResponse:
        result = self._call(
            "SendTestSetAsync",
            lambda: self._service.SendTestSetAsync(file_name, zip_bytes, test_set_id),
        )
        return _upload_response(result)

    def get_status(self, track_id: str) -> DianResponse:
        return _dian_response(self._call("GetStatus", lambda: self._service.GetStatus(track_id)))

    def get_status_zip(self, track_id: str) -> tuple[DianResponse, ...]:
        result = self._call("GetStatusZip", lambda: self._service.GetStatusZip(track_id))
        # zeep unwraps a result that is a bare list (ArrayOfDianResponse) into a list
        if result is None:
            items = []
        elif isinstance(result, list):
            items = result
        else:
            items = result.DianResponse or []
        return tuple(_dian_response(item) for item in items)

    def get_xml_by_document_key(self, track_id: str) -> EventResponse:
        result = self._call(
            "GetXmlByDocumentKey", lambda: self._service.GetXmlByDocumentKey(track_id)
        )
        if result is None:
            return EventResponse("", "", "", None)
        encoded = _text(result.XmlBytesBase64)
        try:
            xml = base64.b64decode(encoded, validate=True) if encoded else None
        except ValueError as exc:
            raise OutcomeUnknown("GetXmlByDocumentKey: XmlBytesBase64 is not base64") from exc
        return EventResponse(
            _text(result.Code), _text(result.Message), _text(result.ValidationDate), xml
        )

    def get_numbering_range(
        self, account_code: str, account_code_t: str, software_code: str
    ) -> NumberRangeResponseList:
        result = self._call(
            "GetNumberingRange",
            lambda: self._service.GetNumberingRange(account_code, account_code_t, software_code),
        )
        if result is None:
            return NumberRangeResponseList("", "", ())
        listed = result.ResponseList.NumberRangeResponse if result.ResponseList else None
        ranges = tuple(
            NumberRange(
                _text(r.ResolutionNumber),
                _text(r.ResolutionDate),
                _text(r.Prefix),
                int(r.FromNumber or 0),
                int(r.ToNumber or 0),
                _text(r.ValidDateFrom),
                _text(r.ValidDateTo),
                _text(r.TechnicalKey),
            )
            for r in (listed or [])
        )
        return NumberRangeResponseList(
            _text(result.OperationCode), _text(result.OperationDescription), ranges
        )

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        with translate_errors(operation):
            return call()


@contextmanager
def translate_errors(operation: str) -> Iterator[None]:
    """Map transport and zeep errors to what the caller must do next (see module doc)."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise GatewayUnavailable(f"{operation}: DIAN not reachable ({type(exc).__name__})") from exc
    except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
        raise OutcomeUnknown(
            f"{operation}: no answer in time after sending ({type(exc).__name__})"
        ) from exc
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
        raise OutcomeUnknown(
            f"{operation}: connection lost after sending ({type(exc).__name__})"
        ) from exc
    except httpx.HTTPError as exc:
        raise GatewayUnavailable(f"{operation}: HTTP failure ({type(exc).__name__})") from exc
    except zeep.exceptions.Fault as exc:
        subcodes = [getattr(q, "localname", str(q)) for q in (exc.subcodes or [])]
        if INVALID_SECURITY in subcodes or INVALID_SECURITY in _text(exc.code):
            raise GatewayMisconfigured(
                f"{operation}: DIAN refused the message security (InvalidSecurity): "
                f"{_text(exc.message)[:200]} - check the certificate and the clock"
            ) from exc
        raise GatewayUnavailable(f"{operation}: SOAP fault {_text(exc.message)[:200]}") from exc
    except zeep.exceptions.TransportError as exc:
        status = exc.status_code
        if status in UNAVAILABLE_HTTP or (status >= 400 and not exc.content):
            raise GatewayUnavailable(f"{operation}: DIAN answered HTTP {status}") from exc
        raise OutcomeUnknown(f"{operation}: unreadable answer (HTTP {status})") from exc
    except (
        zeep.exceptions.DTDForbidden,
        zeep.exceptions.EntitiesForbidden,
        zeep.exceptions.XMLSyntaxError,
        zeep.exceptions.XMLParseError,
        zeep.exceptions.ValidationError,
        etree.XMLSyntaxError,
    ) as exc:
        raise OutcomeUnknown(f"{operation}: refused a malformed or unsafe answer") from exc


def _dian_response(result: Any) -> DianResponse:
    if result is None:
        return DianResponse("", "", "", False, (), None, "", "")
    errors = result.ErrorMessage.string if result.ErrorMessage is not None else None
    return DianResponse(
        status_code=_text(result.StatusCode).strip(),
        status_description=_text(result.StatusDescription),
        status_message=_text(result.StatusMessage),
        is_valid=bool(result.IsValid),
        error_messages=tuple(_text(e) for e in (errors or [])),
        xml_base64_bytes=result.XmlBase64Bytes or None,
        xml_document_key=_text(result.XmlDocumentKey),
        xml_file_name=_text(result.XmlFileName),
    )


def _upload_response(result: Any) -> UploadDocumentResponse:
    if result is None:
        return UploadDocumentResponse("", ())
    listed = result.ErrorMessageList.XmlParamsResponseTrackId if result.ErrorMessageList else None
    errors = tuple(
        RefusedFile(
            _text(e.DocumentKey),
            _text(e.ProcessedMessage),
            _text(e.SenderCode),
            bool(e.Success),
            _text(e.XmlFileName),
        )
        for e in (listed or [])
    )
    return UploadDocumentResponse(_text(result.ZipKey), errors)
