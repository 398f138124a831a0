"""The SOAP side of DIAN against the local DIAN simulator, over real HTTP.

- our WSDL agrees with DIAN's published one for the operations we use;
- the WS-Security header verifies with `xmlsec1` on the bytes the simulator received;
- every way a call can fail maps to the error that says what to do next;
- every DIAN answer maps to one verdict (00, 99, rule 90 ours / not ours, 98, 66, empty);
- the simulator refuses tampered documents (ZE02) and wrong CUFEs (FAD06);
- habilitación: SendTestSetAsync, then GetStatusZip until the batch is done.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from zeep.exceptions import DTDForbidden, EntitiesForbidden
from zeep.settings import Settings

from adapters.dian.client import DianSoapClient, translate_errors, wsdl_path
from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory, DianSetup
from adapters.dian.gateway import DianGateway
from adapters.dian.signer import XadesSigner
from adapters.dian.simulator import SimulatorServer, start_simulator
from adapters.dian.ubl import build_invoice
from adapters.dian.wssecurity import SecurityError, verify_envelope
from domain.dian_codes import nit_check_digit
from domain.documents import DocumentKind, SoftwareFamily, SoftwareMaker
from domain.errors import (
    GatewayError,
    GatewayMisconfigured,
    GatewayUnavailable,
    OutcomeUnknown,
)
from domain.issuer import IssuerProfile, NumberingRange, SoftwareRegistration
from domain.order import parse_order
from domain.ports import DocumentNumber, GatewayResult, OrderKey, Submission, Verdict

NIT = "900373076"
PASSWORD = "clave de pruebas"
TECHNICAL_KEY = "fc8eac422eba16e22ffd8c6f94b3f40a6e38162c"
TEST_SET_ID = "2f1b9e40-7c3a-4a41-9d5e-0a6c1b2d3e4f"
ISSUER = IssuerProfile(
    nit=NIT,
    dv=nit_check_digit(NIT),
    legal_name="Cocina de Pruebas S.A.S.",
    trade_name="Cocina de Pruebas",
)
SOFTWARE = SoftwareRegistration(
    software_id="56f2ae4e-9812-4fad-9255-08fcfcd5ccb0",
    pin="12345",
    provider_nit=NIT,
    provider_dv=nit_check_digit(NIT),
    environment="2",
)
NUMBERING = NumberingRange(
    resolution="18760000001",
    prefix="SETP",
    first=990000000,
    last=995000000,
    valid_from=date(2019, 1, 19),
    valid_to=date(2030, 1, 19),
    technical_key=TECHNICAL_KEY,
)
SETUP = DianSetup(
    issuer=ISSUER,
    software={SoftwareFamily.INVOICE: SOFTWARE},
    maker=SoftwareMaker("Equipo de pruebas", "Pruebas S.A.S.", NIT, "einvoice-worker"),
    ranges={DocumentKind.INVOICE: NUMBERING},
)
SOAP = {
    "soap": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "ec": "http://www.w3.org/2001/10/xml-exc-c14n#",
}
OUR_OPERATIONS = (
    "SendBillSync",
    "SendTestSetAsync",
    "GetStatus",
    "GetStatusZip",
    "GetXmlByDocumentKey",
    "GetNumberingRange",
)


def shared_dir() -> Path:
    return Path(os.environ.get("SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")


def order_data(order_id: str, buyer: str = "1018419008") -> dict[str, Any]:
    return {
        "id_pedido_origen": order_id,
        "adquirente": {
            "tipo_documento": "13",
            "numero_documento": buyer,
            "nombre": "Cliente de pruebas",
        },
        "items": [
            {
                "descripcion": "Cerveza artesanal",
                "cantidad": "2",
                "precio_unitario": "10000",
                "impuestos": [{"nombre": "INC", "tasa": "0.08", "monto": "1600"}],
                "total_item": "21600",
            }
        ],
        "subtotal": "20000",
        "propina_voluntaria": "0",
        "impuestos_totales": "1600",
        "total_factura": "21600",
        "metodos_pago": [{"tipo": "Efectivo", "monto": "21600"}],
    }


def submission(number: int, order_id: str | None = None, **kwargs: Any) -> Submission:
    order = parse_order(order_data(order_id or f"P-{number}", **kwargs))
    return Submission(
        key=OrderKey(NIT, order.id_pedido_origen),
        order=order,
        issued_at=datetime.now(UTC) - timedelta(minutes=1),
        number=DocumentNumber("SETP", number),
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def credentials() -> tuple[bytes, rsa.RSAPrivateKey, x509.Certificate]:
    p12 = make_test_pkcs12(NIT, PASSWORD)
    key, cert, _ = pkcs12.load_key_and_certificates(p12, PASSWORD.encode())
    assert isinstance(key, rsa.RSAPrivateKey) and cert is not None
    return p12, key, cert


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[SimulatorServer, str]]:
    server, url = start_simulator(technical_keys={"SETP": TECHNICAL_KEY}, batch_polls=1)
    yield server, url
    server.shutdown()
    server.server_close()


@pytest.fixture()
def sim(simulator: tuple[SimulatorServer, str]) -> str:
    """The simulator's base URL, forgotten and back to defaults for this test."""
    _, url = simulator
    control(
        url,
        reset=True,
        checks=True,
        technical_keys={"SETP": TECHNICAL_KEY},
        batch_polls=1,
        processing_polls=1,
        sync_answer=None,
        notifications=[],
        extra_rejections=[],
        latency=0.0,
        http_errors=0,
        http_error_rate=0.0,
        http_error_status=503,
        timeouts=0,
        drops=0,
        invalid_security=0,
        server_faults=0,
        malformed=0,
        xxe=0,
        billion_laughs=0,
    )
    return url


def control(url: str, **options: Any) -> dict[str, Any]:
    answer = httpx.post(f"{url}/_control", json=options, timeout=5)
    answer.raise_for_status()
    return dict(answer.json())


def stats(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/_stats", timeout=5).json())


def make_client(
    url: str, key: rsa.RSAPrivateKey, cert: x509.Certificate, read_timeout: float = 5.0
) -> DianSoapClient:
    return DianSoapClient(
        f"{url}/WcfDianCustomerServices.svc",
        key,
        cert,
        connect_timeout=1.0,
        read_timeout=read_timeout,
    )


@pytest.fixture()
def client(sim: str, credentials: tuple[bytes, Any, Any]) -> Iterator[DianSoapClient]:
    _, key, cert = credentials
    dian = make_client(sim, key, cert, read_timeout=1.0)
    yield dian
    dian.close()


@pytest.fixture(scope="module")
def factory(credentials: tuple[bytes, Any, Any]) -> DianDocumentFactory:
    signer = XadesSigner.from_pkcs12(credentials[0], PASSWORD)
    return DianDocumentFactory(SETUP, signer)


@pytest.fixture()
def gateway(client: DianSoapClient, factory: DianDocumentFactory) -> DianGateway:
    return DianGateway(client, factory)


def assert_json_safe(result: GatewayResult) -> None:
    assert json.loads(json.dumps(result.as_dict())) == result.as_dict()
    dumped = json.dumps(result.as_dict())
    assert PASSWORD not in dumped and TECHNICAL_KEY not in dumped and SOFTWARE.pin not in dumped


# --------------------------------------------------------------------------- contract


def _operations(path: Path) -> dict[str, dict[str, Any]]:
    client = zeep.Client(str(path), settings=Settings(forbid_dtd=True, forbid_external=True))
    binding = client.wsdl.bindings[
        "{http://wcf.dian.colombia}WSHttpBinding_IWcfDianCustomerServices"
    ]
    found: dict[str, dict[str, Any]] = {}
    for name, operation in binding._operations.items():
        body_in, body_out = operation.input.body, operation.output.body
        found[name] = {
            "soap_action": operation.soapaction,
            "wsa_action": operation.abstract.wsa_action,
            "binding": type(binding).__name__,
            "input": (body_in.qname.text, [n for n, _ in body_in.type.elements]),
            "output": (
                body_out.qname.text,
                [
                    (n, e.type.qname.text if e.type.qname else None)
                    for n, e in body_out.type.elements
                ],
            ),
        }
    return found


def test_wsdl_agrees_with_dians_published_contract() -> None:
    reference = shared_dir() / "reference" / "dian" / "wsdl" / "WcfDianCustomerServices.wsdl"
    if not reference.is_file():
        pytest.skip(f"DIAN's WSDL not found under {shared_dir()}")
    theirs, ours = _operations(reference), _operations(wsdl_path())
    assert sorted(ours) == sorted(OUR_OPERATIONS)
    for name in OUR_OPERATIONS:
        assert ours[name] == theirs[name], name
    assert ours["SendBillSync"]["binding"] == "Soap12Binding"
    assert ours["GetStatus"]["wsa_action"] == (
        "http://wcf.dian.colombia/IWcfDianCustomerServices/GetStatus"
    )


def test_response_types_have_dians_fields() -> None:
    reference = shared_dir() / "reference" / "dian" / "xsd"
    if not reference.is_dir():
        pytest.skip("DIAN's XSDs not found")

    def fields(directory: Path, type_name: str) -> list[str]:
        for path in sorted(directory.glob("*.xsd")):
            tree = etree.parse(str(path))
            xs = "{http://www.w3.org/2001/XMLSchema}"
            for complex_type in tree.iter(f"{xs}complexType"):
                if complex_type.get("name") == type_name:
                    return [e.get("name", "") for e in complex_type.iter(f"{xs}element")]
        raise AssertionError(f"{type_name} not in {directory}")

    ours = wsdl_path().parent
    for type_name in (
        "DianResponse",
        "UploadDocumentResponse",
        "XmlParamsResponseTrackId",
        "NumberRangeResponseList",
        "NumberRangeResponse",
        "EventResponse",
    ):
        assert fields(ours, type_name) == fields(reference, type_name), type_name


# --------------------------------------------------------------------------- WS-Security


def _xmlsec1_envelope(
    document: bytes, cert: x509.Certificate, tmp_path: Path
) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 is not installed (apt-get install xmlsec1)")
    pem = tmp_path / "cert.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path = tmp_path / "envelope.xml"
    path.write_bytes(document)
    to_id = f"{SOAP['wsa']}:To"
    return subprocess.run(
        ["xmlsec1", "--verify", "--pubkey-cert-pem", str(pem), "--id-attr:Id", to_id, str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_security_header_layout_verified_by_xmlsec1(
    sim: str,
    client: DianSoapClient,
    credentials: tuple[bytes, Any, x509.Certificate],
    tmp_path: Path,
) -> None:
    client.get_status("a" * 96)
    raw = httpx.get(f"{sim}/_last_request", timeout=5).content
    root = etree.fromstring(raw)
    header = root.find("soap:Header", SOAP)
    assert header is not None
    assert header.findtext("wsa:Action", namespaces=SOAP) == (
        "http://wcf.dian.colombia/IWcfDianCustomerServices/GetStatus"
    )
    to = header.find("wsa:To", SOAP)
    assert to is not None and to.text == client.endpoint
    to_id = to.get(f"{{{SOAP['wsu']}}}Id")
    security = header.find("wsse:Security", SOAP)
    assert security is not None
    created = security.findtext("wsu:Timestamp/wsu:Created", namespaces=SOAP) or ""
    expires = security.findtext("wsu:Timestamp/wsu:Expires", namespaces=SOAP) or ""
    assert created.endswith("Z") and expires.endswith("Z") and created < expires
    token = security.find("wsse:BinarySecurityToken", SOAP)
    assert token is not None
    cert = credentials[2]
    assert base64.b64decode(token.text or "") == cert.public_bytes(serialization.Encoding.DER)
    signed_info = security.find("ds:Signature/ds:SignedInfo", SOAP)
    assert signed_info is not None
    c14n = signed_info.find("ds:CanonicalizationMethod", SOAP)
    assert c14n is not None and c14n.get("Algorithm") == SOAP["ec"]
    assert (
        signed_info.find("ds:CanonicalizationMethod/ec:InclusiveNamespaces", SOAP).get("PrefixList")
        == "wsa soap wcf"
    )
    references = signed_info.findall("ds:Reference", SOAP)
    assert [r.get("URI") for r in references] == [f"#{to_id}"]
    str_ref = security.find(
        "ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", SOAP
    )
    assert str_ref is not None
    assert str_ref.get("URI") == "#" + token.get(f"{{{SOAP['wsu']}}}Id", "")
    assert root.find("soap:Body/{http://wcf.dian.colombia}GetStatus", SOAP) is not None

    assert verify_envelope(raw).public_bytes(serialization.Encoding.DER) == (
        cert.public_bytes(serialization.Encoding.DER)
    )
    assert _xmlsec1_envelope(raw, cert, tmp_path).returncode == 0
    tampered = raw.replace(client.endpoint.encode(), b"https://attacker.example/")
    assert _xmlsec1_envelope(tampered, cert, tmp_path).returncode != 0
    with pytest.raises(SecurityError, match="digest"):
        verify_envelope(tampered)


def test_send_bill_sync_envelope_carries_the_file_and_verifies(
    sim: str,
    client: DianSoapClient,
    credentials: tuple[bytes, Any, x509.Certificate],
    tmp_path: Path,
) -> None:
    """The body zeep built, under the `wcf` prefix, with text that needs escaping."""
    name = 'z&<"ñ>.zip'
    content = bytes(range(256)) * 8
    client.send_bill_sync(name, content)
    raw = httpx.get(f"{sim}/_last_request", timeout=5).content
    assert b"<wcf:SendBillSync><wcf:fileName>" in raw
    body = etree.fromstring(raw).find("soap:Body/{http://wcf.dian.colombia}SendBillSync", SOAP)
    assert body is not None
    assert body.findtext("{http://wcf.dian.colombia}fileName") == name
    sent = body.findtext("{http://wcf.dian.colombia}contentFile") or ""
    assert base64.b64decode(sent) == content
    assert verify_envelope(raw)
    assert _xmlsec1_envelope(raw, credentials[2], tmp_path).returncode == 0
    body_tampered = raw.replace(b"<wcf:fileName>", b"<wcf:fileName>x", 1)
    assert verify_envelope(body_tampered)  # only wsa:To is signed, as DIAN's clients do


def test_send_bill_sync_is_the_message_zeep_writes_from_the_wsdl(
    credentials: tuple[bytes, Any, x509.Certificate],
) -> None:
    """SendBillSync's message is captured from zeep once and filled per invoice: the same
    body, wsa:Action and HTTP Content-Type as zeep's own call path."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(503)

    _, key, cert = credentials
    client = DianSoapClient(
        "https://vpfe-hab.dian.gov.co/WcfDianCustomerServices.svc",
        key,
        cert,
        connect_timeout=1,
        read_timeout=1,
        transport=httpx.MockTransport(record),
    )
    name, content = "z0900373076000240003b9aca01.zip", os.urandom(300)
    with pytest.raises(GatewayUnavailable):
        client.send_bill_sync(name, content)
    ours = etree.fromstring(sent[0].content)

    plain = zeep.Client(str(wsdl_path()))  # type: ignore[no-untyped-call]
    binding = plain.wsdl.bindings[
        "{http://wcf.dian.colombia}WSHttpBinding_IWcfDianCustomerServices"
    ]
    service = plain.create_service(binding.name, "https://example.invalid/")  # type: ignore[no-untyped-call]
    theirs = plain.create_message(service, "SendBillSync", fileName=name, contentFile=content)  # type: ignore[no-untyped-call]

    def body(envelope: etree._Element) -> list[tuple[str, str | None]]:
        found = envelope.find("soap:Body", SOAP)
        assert found is not None
        return [(str(element.tag), element.text) for element in found.iter()][1:]

    assert body(ours) == body(theirs)
    assert body(ours)[2] == (
        "{http://wcf.dian.colombia}contentFile",
        base64.b64encode(content).decode(),
    )
    action = binding.get("SendBillSync").soapaction
    assert ours.findtext("soap:Header/wsa:Action", namespaces=SOAP) == action
    assert sent[0].headers["Content-Type"] == (
        f'application/soap+xml; charset=utf-8; action="{action}"'
    )
    assert verify_envelope(sent[0].content)
    client.close()


def test_a_file_name_xml_cannot_carry_is_refused_before_sending(
    credentials: tuple[bytes, Any, x509.Certificate],
) -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(503)

    _, key, cert = credentials
    client = DianSoapClient(
        "https://vpfe-hab.dian.gov.co/WcfDianCustomerServices.svc",
        key,
        cert,
        connect_timeout=1,
        read_timeout=1,
        transport=httpx.MockTransport(record),
    )
    with pytest.raises(ValueError, match="U\\+0001"):
        client.send_bill_sync("z\x01.zip", b"zip")
    assert sent == []
    client.close()


def test_timestamp_outside_the_window_is_refused(sim: str, client: DianSoapClient) -> None:
    client.get_status("a" * 96)
    raw = httpx.get(f"{sim}/_last_request", timeout=5).content
    verify_envelope(raw)
    with pytest.raises(SecurityError, match="expired"):
        verify_envelope(raw, now=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(SecurityError, match="future"):
        verify_envelope(raw, now=datetime.now(UTC) - timedelta(hours=1))


def test_unsigned_request_gets_invalid_security_fault(sim: str) -> None:
    body = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
        '<GetStatus xmlns="http://wcf.dian.colombia"><trackId>abc</trackId></GetStatus>'
        "</s:Body></s:Envelope>"
    )
    answer = httpx.post(
        sim, content=body, headers={"Content-Type": "application/soap+xml"}, timeout=5
    )
    assert answer.status_code == 500
    assert b"InvalidSecurity" in answer.content
    assert b"An error occurred when verifying security for the message." in answer.content


# --------------------------------------------------------------------------- error mapping


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Every failure the client can meet, provoked for real, and what it must become.
FAILURES: dict[str, tuple[dict[str, Any], type[GatewayError]]] = {
    "connect refused": ({"endpoint": "refused"}, GatewayUnavailable),
    "dns failure": ({"endpoint": "http://dian.invalid/svc"}, GatewayUnavailable),
    **{
        f"http {code}": ({"http_errors": 1, "http_error_status": code}, GatewayUnavailable)
        for code in (403, 500, 502, 503, 504, 507, 508)
    },
    "other soap fault": ({"server_faults": 1}, GatewayUnavailable),
    "invalid security": ({"invalid_security": 1}, GatewayMisconfigured),
    "read timeout after send": ({"timeouts": 1, "timeout_seconds": 2.0}, OutcomeUnknown),
    "connection dropped after processing": ({"drops": 1}, OutcomeUnknown),
    "truncated xml": ({"malformed": 1}, OutcomeUnknown),
    "external entity": ({"xxe": 1}, OutcomeUnknown),
    "entity expansion": ({"billion_laughs": 1}, OutcomeUnknown),
}


@pytest.mark.parametrize("operation", ["GetStatus", "SendBillSync"])
@pytest.mark.parametrize("case", sorted(FAILURES))
def test_failures_map_to_what_the_caller_must_do(
    case: str, operation: str, sim: str, credentials: tuple[bytes, Any, Any]
) -> None:
    """GetStatus goes through zeep and httpx.Client; SendBillSync through DirectPost and
    the direct reading of its answer: both translate every failure the same way."""
    setup, expected = FAILURES[case]
    setup = dict(setup)
    endpoint = setup.pop("endpoint", None)
    if setup:
        control(sim, **setup)
    _, key, cert = credentials
    if endpoint == "refused":
        endpoint = f"http://127.0.0.1:{_closed_port()}/svc"
    dian = DianSoapClient(
        endpoint or f"{sim}/svc", key, cert, connect_timeout=1.0, read_timeout=1.0
    )
    try:
        with pytest.raises(GatewayError) as caught:
            if operation == "SendBillSync":
                dian.send_bill_sync("z.zip", b"this is not a zip")
            else:
                dian.get_status("a" * 96)
    finally:
        dian.close()
    assert type(caught.value) is expected, caught.value
    assert caught.value.__cause__ is not None
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("kind", ["xxe", "billion_laughs"])
def test_hostile_answers_are_refused_before_parsing(
    kind: str, sim: str, client: DianSoapClient
) -> None:
    control(sim, **{kind: 1})
    with pytest.raises(OutcomeUnknown) as caught:
        client.get_status("a" * 96)
    cause = caught.value.__cause__
    # zeep refuses the DTD, or libxml2 stops the expansion itself: never expanded either way
    assert isinstance(cause, (DTDForbidden, EntitiesForbidden)) or (
        "amplification" in str(cause)
    ), cause
    assert "root:" not in str(caught.value)


def test_failure_table_covers_every_outcome() -> None:
    assert {e for _, e in FAILURES.values()} == {
        GatewayUnavailable,
        OutcomeUnknown,
        GatewayMisconfigured,
    }


def _all_subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


@pytest.mark.parametrize(
    "error", sorted(_all_subclasses(httpx.TransportError), key=lambda c: c.__name__)
)
def test_every_httpx_transport_error_is_translated(error: type[httpx.TransportError]) -> None:
    """Total over httpx's transport error tree: none escapes untranslated."""
    with pytest.raises(GatewayError) as caught, translate_errors("GetStatus"):
        raise error("boom")
    sent = issubclass(
        error,
        (
            httpx.ReadTimeout,
            httpx.WriteTimeout,
            httpx.ReadError,
            httpx.WriteError,
            httpx.RemoteProtocolError,
        ),
    )
    assert type(caught.value) is (OutcomeUnknown if sent else GatewayUnavailable)


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def test_a_proxy_from_the_environment_carries_send_bill_sync(
    sim: str, credentials: tuple[bytes, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SendBillSync skips httpx.Client's per-request steps (DirectPost), but not its proxy:
    the simulator, named as the proxy, answers for a host that does not resolve."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", sim)
    _, key, cert = credentials
    dian = make_client("http://dian.invalid", key, cert)
    try:
        answer = dian.send_bill_sync("z.zip", b"this is not a zip")
    finally:
        dian.close()
    assert answer.status_code == "89"


# --------------------------------------------------------------------------- verdicts


def test_accepted_with_application_response(sim: str, gateway: DianGateway) -> None:
    result = gateway.submit(submission(990000001))
    assert result.verdict is Verdict.ACCEPTED
    assert set(result.references) == {"cufe", "number", "qr"}
    assert result.references["number"] == "SETP990000001"
    assert result.references["cufe"] in result.references["qr"]
    assert "<ApplicationResponse" in result.response["application_response"]
    assert result.rules == ()
    assert_json_safe(result)
    assert stats(sim)["accepted"] == 1


def test_notifications_are_kept_on_acceptance(sim: str, gateway: DianGateway) -> None:
    control(
        sim,
        notifications=[
            "Regla: FAJ50, Notificación: No fue informado el correo del adquiriente.",
            "Regla: FAK61, Notificación: Debe informar identificación del adquiriente.",
        ],
    )
    result = gateway.submit(submission(990000002))
    assert result.verdict is Verdict.ACCEPTED
    assert [(r.code, r.kind) for r in result.rules] == [
        ("FAJ50", "Notificación"),
        ("FAK61", "Notificación"),
    ]
    assert result.rules[0].text == "No fue informado el correo del adquiriente."
    assert_json_safe(result)


def test_rejected_with_every_rule(sim: str, gateway: DianGateway) -> None:
    control(
        sim,
        extra_rejections=[
            "Regla: FAB10a, Rechazo: El prefijo de numeración no es igual al código de la sucursal",
            "Regla: FAK24, Rechazo: DV no corresponde al NIT informado",
        ],
        notifications=["Regla: FAJ50, Notificación: Correo no informado."],
    )
    sub = submission(990000003)
    result = gateway.submit(sub)
    assert result.verdict is Verdict.REJECTED
    assert [(r.code, r.kind) for r in result.rules] == [
        ("FAB10a", "Rechazo"),
        ("FAK24", "Rechazo"),
        ("FAJ50", "Notificación"),
    ]
    assert gateway.status(sub).verdict is Verdict.REJECTED
    assert_json_safe(result)


def test_rule_90_for_our_own_invoice_is_acceptance(sim: str, gateway: DianGateway) -> None:
    sub = submission(990000004)
    first = gateway.submit(sub)
    again = gateway.submit(sub)
    assert first.verdict is again.verdict is Verdict.ACCEPTED
    assert again.references["cufe"] == first.references["cufe"]
    assert "Regla: 90" in " ".join(again.response["error_messages"])
    counts = stats(sim)
    assert counts["accepted"] == 1 and counts["duplicates"] == 1
    assert_json_safe(again)


def test_rule_90_for_another_invoice_is_rejection(sim: str, gateway: DianGateway) -> None:
    assert gateway.submit(submission(990000005, "ORDER-A")).verdict is Verdict.ACCEPTED
    other = gateway.submit(submission(990000005, "ORDER-B", buyer="79000001"))
    assert other.verdict is Verdict.REJECTED
    assert [r.code for r in other.rules] == ["90"]
    assert "different document" in other.response["explanation"]
    assert_json_safe(other)


@pytest.mark.parametrize("code", ["98", "66", ""])
def test_undecided_answers_are_pending(code: str, sim: str, gateway: DianGateway) -> None:
    control(sim, sync_answer=code)
    result = gateway.submit(submission(990000006))
    assert result.verdict is Verdict.PENDING
    assert result.response["status_code"] == code


def test_status_follows_processing_to_acceptance(sim: str, gateway: DianGateway) -> None:
    control(sim, sync_answer="98", processing_polls=1)
    sub = submission(990000007)
    assert gateway.submit(sub).verdict is Verdict.PENDING
    assert gateway.status(sub).verdict is Verdict.PENDING  # GetStatus 98
    done = gateway.status(sub)
    assert done.verdict is Verdict.ACCEPTED
    assert done.response["operation"] == "GetStatus"


def test_status_of_an_unknown_invoice_is_not_found(sim: str, gateway: DianGateway) -> None:
    result = gateway.status(submission(990000008))
    assert result.verdict is Verdict.NOT_FOUND
    assert result.response["status_code"] == "66"


def test_dropped_connection_then_status_never_submits_twice(sim: str, gateway: DianGateway) -> None:
    control(sim, drops=1)
    sub = submission(990000009)
    with pytest.raises(OutcomeUnknown):
        gateway.submit(sub)
    assert gateway.status(sub).verdict is Verdict.ACCEPTED
    assert stats(sim)["submissions"] == {"SETP990000009": 1}


def test_certificate_of_another_nit_is_misconfiguration(
    sim: str, factory: DianDocumentFactory
) -> None:
    other = make_test_pkcs12("800197268", PASSWORD)
    key, cert, _ = pkcs12.load_key_and_certificates(other, PASSWORD.encode())
    assert isinstance(key, rsa.RSAPrivateKey) and cert is not None
    dian = make_client(sim, key, cert)
    try:
        gateway = DianGateway(dian, factory)
        with pytest.raises(GatewayMisconfigured, match="no autorizado"):
            gateway.submit(submission(990000010))
    finally:
        dian.close()


def test_not_a_zip_is_refused_with_89(sim: str, client: DianSoapClient) -> None:
    answer = client.send_bill_sync("z.zip", b"this is not a zip")
    assert answer.status_code == "89"
    assert not answer.is_valid
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.xml", "<a/>")
        archive.writestr("b.xml", "<b/>")
    two = client.send_bill_sync("z.zip", buffer.getvalue())
    assert two.error_messages == ("El método síncrono solo puede recibir un documento.",)


# --------------------------------------------------------------------------- simulator checks


def _rezip(xml: bytes, name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, xml)
    return buffer.getvalue()


def test_tampered_invoice_is_refused_with_ze02(
    sim: str, client: DianSoapClient, factory: DianDocumentFactory
) -> None:
    invoice = factory.build(submission(990000011))
    assert b"Cerveza artesanal" in invoice.xml
    tampered = invoice.xml.replace(b"Cerveza artesanal", b"Cerveza industrial")
    answer = client.send_bill_sync(invoice.zip_name, _rezip(tampered, invoice.xml_name))
    assert answer.status_code == "99"
    assert "Regla: ZE02, Rechazo: Valor de la firma inválido." in answer.error_messages
    untouched = client.send_bill_sync(invoice.zip_name, invoice.zip_bytes)
    assert untouched.status_code == "00"


def test_wrong_cufe_is_refused_with_fad06(
    sim: str, client: DianSoapClient, factory: DianDocumentFactory
) -> None:
    control(sim, technical_keys={"SETP": "0" * 40})
    invoice = factory.build(submission(990000012))
    answer = client.send_bill_sync(invoice.zip_name, invoice.zip_bytes)
    assert answer.status_code == "99"
    assert [m for m in answer.error_messages if m.startswith("Regla: FAD06, Rechazo:")]
    assert not [m for m in answer.error_messages if "ZE02" in m]


def test_schema_invalid_invoice_is_refused_with_zb01(
    sim: str, client: DianSoapClient, credentials: tuple[bytes, Any, Any]
) -> None:
    unsigned = build_invoice(submission(990000015), ISSUER, SOFTWARE, NUMBERING)
    cbc = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
    tree = unsigned.root
    number = tree.find(f"{{{cbc}}}ID")
    assert number is not None
    number.addnext(etree.Element(f"{{{cbc}}}NotInUbl"))
    xml = XadesSigner.from_pkcs12(credentials[0], PASSWORD).sign(tree, datetime.now(UTC))
    answer = client.send_bill_sync("z.zip", _rezip(xml, "fv.xml"))
    assert answer.status_code == "99"
    assert answer.error_messages == ("Regla: ZB01, Rechazo: Fallo en el esquema XML del archivo",)


def test_numbering_range_is_read(sim: str, client: DianSoapClient) -> None:
    ranges = client.get_numbering_range(NIT, NIT, SOFTWARE.software_id)
    assert ranges.operation_code == "100"
    assert [(r.prefix, r.from_number, r.to_number, r.technical_key) for r in ranges.ranges] == [
        ("SETP", 990000000, 995000000, TECHNICAL_KEY)
    ]


def test_stored_invoice_xml_is_returned_by_its_key(
    sim: str, client: DianSoapClient, factory: DianDocumentFactory
) -> None:
    invoice = factory.build(submission(990000013))
    assert client.send_bill_sync(invoice.zip_name, invoice.zip_bytes).status_code == "00"
    found = client.get_xml_by_document_key(invoice.cufe)
    assert found.code == "100" and found.xml == invoice.xml
    assert client.get_xml_by_document_key("f" * 96).code == "404"


# --------------------------------------------------------------------------- habilitación


def test_test_set_is_pending_until_the_batch_is_validated(
    sim: str, client: DianSoapClient, credentials: tuple[bytes, Any, Any]
) -> None:
    software = SoftwareRegistration(
        software_id=SOFTWARE.software_id,
        pin=SOFTWARE.pin,
        provider_nit=NIT,
        provider_dv=SOFTWARE.provider_dv,
        environment="2",
        test_set_id=TEST_SET_ID,
    )
    setup = DianSetup(ISSUER, {SoftwareFamily.INVOICE: software}, SETUP.maker, SETUP.ranges)
    signer = XadesSigner.from_pkcs12(credentials[0], PASSWORD)
    gateway = DianGateway(client, DianDocumentFactory(setup, signer))
    control(sim, batch_polls=2)
    sub = submission(990000014)
    sent = gateway.submit(sub)
    assert sent.verdict is Verdict.PENDING
    assert set(sent.references) == {"cufe", "zip_key", "number"}
    later = Submission(sub.key, sub.order, sub.issued_at, sub.number, dict(sent.references))
    first, second = gateway.status(later), gateway.status(later)
    assert first.verdict is second.verdict is Verdict.PENDING
    assert first.response["status_description"] == "Batch en proceso de validación."
    done = gateway.status(later)
    assert done.verdict is Verdict.ACCEPTED
    assert done.references["zip_key"] == sent.references["zip_key"]
    assert stats(sim)["requests"]["SendTestSetAsync"] == 1
    assert_json_safe(done)
