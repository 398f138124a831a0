"""SendBillSync's answer read directly gives what zeep gives, and zeep reads everything else.

`DianSoapClient.send_bill_sync` reads its answer with `adapters.dian.reply`; `get_status`
still reads the same DianResponse through zeep's binding. The client talks to an in-memory
`httpx.MockTransport` that answers both operations with the same DianResponse, so the two
readings are compared on identical bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from adapters.dian.client import DianSoapClient
from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.reply import DianResponse, read_dian_response
from adapters.dian.simulator import responses
from adapters.dian.simulator.responses import DianAnswer

Answer = Callable[[str], bytes]  # operation -> the HTTP body answering it

WRAP = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">\n'
    "  <s:Body>\n"
    '    <{op}Response xmlns="http://wcf.dian.colombia">\n'
    '      <{op}Result xmlns:b="http://schemas.datacontract.org/2004/07/DianResponse"\n'
    '                  xmlns:i="http://www.w3.org/2001/XMLSchema-instance">\n'
    "{fields}\n"
    "      </{op}Result>\n"
    "    </{op}Response>\n"
    "  </s:Body>\n"
    "</s:Envelope>\n"
)


def written(fields: str) -> Answer:
    return lambda op: WRAP.format(op=op, fields=fields).encode()


def simulated(answer: DianAnswer) -> Answer:
    return lambda op: responses.single(op, answer)


KNOWN: dict[str, Answer] = {
    "accepted with its ApplicationResponse": simulated(
        DianAnswer(
            "00",
            "Procesado Correctamente.",
            "La Factura electrónica SETP990000001, ha sido autorizada.",
            True,
            ["Regla: FAJ50, Notificación: Correo no informado."],
            xml_base64_bytes="<ApplicationResponse>ñ</ApplicationResponse>".encode(),
            xml_document_key="a" * 96,
            xml_file_name="fv09003730760002400000001.xml",
        )
    ),
    "rejected with every rule": simulated(
        DianAnswer(
            "99",
            "Validación contiene errores en campos mandatorios.",
            "Documento con errores en campos mandatorios.",
            False,
            ["Regla: FAD06, Rechazo: CUFE errado", "Regla: 90, Rechazo: procesado antes"],
            xml_document_key="b" * 96,
        )
    ),
    "every field nil": simulated(DianAnswer(None)),
    "in process": simulated(DianAnswer("98", "En Proceso", "En Proceso")),
    "refused sender (89)": simulated(DianAnswer("89", "NIT", "NIT no autorizado", False, ["x"])),
    "pretty-printed, comments, lenient values": written(
        "        <!-- as a .NET service may write it -->\n"
        '        <b:ErrorMessage xmlns:c="http://schemas.microsoft.com/2003/10/Serialization/Arrays">\n'
        "          <c:string>Regla: FAJ50, Notificación: uno</c:string>\n"
        '          <c:string i:nil="true"/>\n'
        "          <c:string/>\n"
        "        </b:ErrorMessage>\n"
        "        <b:IsValid> 1 </b:IsValid>\n"
        "        <b:StatusCode> 00 </b:StatusCode>\n"
        "        <b:StatusDescription/>\n"
        "        <b:XmlBase64Bytes>PEFwcGxpY2F0aW9u\nUmVzcG9uc2Uv\nPg==</b:XmlBase64Bytes>\n"
        "        <b:XmlFileName>fv.xml</b:XmlFileName>"
    ),
    "only some fields": written("<b:StatusCode>66</b:StatusCode>"),
    "no fields": written(""),
}

# Not the known shape: read by zeep, whatever it makes of them.
ODD: dict[str, Answer] = {
    "an unknown field": written("<b:StatusCode>00</b:StatusCode><b:Extra>1</b:Extra>"),
    "fields out of order": written("<b:StatusCode>00</b:StatusCode><b:IsValid>true</b:IsValid>"),
    "a field twice": written("<b:StatusCode>00</b:StatusCode><b:StatusCode>99</b:StatusCode>"),
    "a typed field": written('<b:StatusCode i:type="b:Other">00</b:StatusCode>'),
    "base64 that does not decode": written("<b:XmlBase64Bytes>abc</b:XmlBase64Bytes>"),
    "a nil result": lambda op: (
        WRAP.format(op=op, fields="")
        .replace(f'<{op}Result xmlns:b="', f'<{op}Result i:nil="true" xmlns:b="')
        .encode()
    ),
    "another operation's answer": lambda op: responses.single("GetStatusZip", DianAnswer("00")),
    "a fault": lambda op: responses.sender_fault("The message has no operation in its body."),
    "a DTD": lambda op: responses.hostile(responses.single(op, DianAnswer("00")), "xxe"),
    "entity expansion": lambda op: responses.hostile(responses.single(op, DianAnswer("00")), "x"),
    "truncated": lambda op: responses.single(op, DianAnswer("00"))[:200],
    "not XML": lambda op: b"Service Unavailable",
}


@pytest.fixture(scope="module")
def credentials() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key, cert, _ = pkcs12.load_key_and_certificates(make_test_pkcs12("900373076", "k"), b"k")
    assert isinstance(key, rsa.RSAPrivateKey) and cert is not None
    return key, cert


@pytest.fixture()
def answering(
    credentials: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> Iterator[Callable[[Answer], DianSoapClient]]:
    clients: list[DianSoapClient] = []

    def make(answer: Answer) -> DianSoapClient:
        def handler(request: httpx.Request) -> httpx.Response:
            operation = request.headers["content-type"].split("IWcfDianCustomerServices/")[1]
            body = answer(operation.rstrip('"'))
            headers = {"Content-Type": "application/soap+xml"}
            return httpx.Response(200, content=body, headers=headers)

        client = DianSoapClient(
            "https://dian.test/WcfDianCustomerServices.svc",
            *credentials,
            connect_timeout=1.0,
            read_timeout=1.0,
            transport=httpx.MockTransport(handler),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _outcome(call: Callable[[], DianResponse]) -> DianResponse | tuple[type, type | None]:
    """The answer, or the error raised and its cause (zeep's own errors included)."""
    try:
        return call()
    except Exception as exc:
        return type(exc), type(exc.__cause__) if exc.__cause__ else None


@pytest.mark.parametrize("case", sorted(KNOWN))
def test_the_known_shape_is_read_directly_as_zeep_reads_it(
    case: str, answering: Callable[[Answer], DianSoapClient]
) -> None:
    answer = KNOWN[case]
    direct = read_dian_response(answer("SendBillSync"), "SendBillSync")
    assert direct is not None
    client = answering(answer)
    assert client.send_bill_sync("z.zip", b"zip") == direct
    assert client.get_status("a" * 96) == direct  # zeep's reading of the same bytes


def test_the_values_are_those_written(answering: Callable[[Answer], DianSoapClient]) -> None:
    lenient = read_dian_response(
        KNOWN["pretty-printed, comments, lenient values"]("SendBillSync"), "SendBillSync"
    )
    assert lenient == DianResponse(
        status_code="00",
        status_description="",
        status_message="",
        is_valid=True,
        error_messages=("Regla: FAJ50, Notificación: uno", "", ""),
        xml_base64_bytes=b"<ApplicationResponse/>",
        xml_document_key="",
        xml_file_name="fv.xml",
    )
    accepted = read_dian_response(
        KNOWN["accepted with its ApplicationResponse"]("SendBillSync"), "SendBillSync"
    )
    assert accepted is not None and accepted.is_valid and accepted.status_code == "00"
    assert accepted.xml_base64_bytes == "<ApplicationResponse>ñ</ApplicationResponse>".encode()
    assert accepted.error_messages == ("Regla: FAJ50, Notificación: Correo no informado.",)


@pytest.mark.parametrize("case", sorted(ODD))
def test_any_other_answer_is_left_to_zeep(
    case: str, answering: Callable[[Answer], DianSoapClient]
) -> None:
    answer = ODD[case]
    assert read_dian_response(answer("SendBillSync"), "SendBillSync") is None
    client = answering(answer)
    sent = _outcome(lambda: client.send_bill_sync("z.zip", b"zip"))
    asked = _outcome(lambda: client.get_status("a" * 96))
    assert sent == asked
