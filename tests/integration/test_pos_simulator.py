"""The POS equivalent document (20) against the DIAN simulator, over real HTTP.

- a POS document goes through the gateway by its family's client and is accepted (00), and
  GetStatus finds it by its CUDE;
- each break of a rule DIAN applies to type 20 is refused with that rule's code: the header
  literals (DEAD02, DEAD03, DEAD12a), the three extensions (DEPD11, DEPD21), the CUDE keyed
  with the POS software's PIN (DEAD06), InvoiceControl against the authorized POS range
  (DEAB05a, DEAB08b, DEAB11b, DEAB12b, DEAD05e), and the branch code (FAB10a, invoices too);
- habilitación of the POS family: its own test set id, SendTestSetAsync and GetStatusZip at
  the POS family's endpoint while invoices go to theirs.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree

from adapters.dian.client import DianSoapClient
from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory, DianSetup
from adapters.dian.gateway import DianGateway
from adapters.dian.signer import XadesSigner
from adapters.dian.simulator import SimulatorServer, start_simulator
from adapters.dian.ubl import build_invoice
from domain.documents import DocumentKind, SoftwareFamily
from domain.errors import GatewayMisconfigured
from domain.ports import DocumentNumber, Submission, Verdict
from tests.integration.test_dian_soap import control, make_client, stats
from tests.pos_data import (
    INVOICE_RANGE,
    INVOICE_SOFTWARE,
    LUNCH,
    NIT,
    POS_RANGE,
    POS_SOFTWARE,
    SETUP,
    TECHNICAL_KEY,
    pos_submission,
)

PASSWORD = "clave de pruebas"
POS_TEST_SET_ID = "9a1c2b3d-4e5f-4061-8a7b-1c2d3e4f5a6b"
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
}
CONTROL = ".//sts:DianExtensions/sts:InvoiceControl/"
BRANCH = (
    "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/"
    "cac:CorporateRegistrationScheme/cbc:ID"
)
OPTIONS: dict[str, Any] = {
    "checks": True,
    "technical_keys": {"SETP": TECHNICAL_KEY},
    "pos_software_pins": {POS_SOFTWARE.software_id: POS_SOFTWARE.pin},
    "pos_ranges": {
        "EPOS": {
            "resolution": "18760000001",
            "from": 1,
            "to": 1000000,
            "valid_from": "2019-01-19",
            "valid_to": "2030-01-19",
        }
    },
    "batch_polls": 1,
    "sync_answer": None,
    "extra_rejections": [],
    "notifications": [],
}


@pytest.fixture(scope="module")
def credentials() -> tuple[bytes, rsa.RSAPrivateKey, x509.Certificate]:
    p12 = make_test_pkcs12(NIT, PASSWORD)
    key, cert, _ = pkcs12.load_key_and_certificates(p12, PASSWORD.encode())
    assert isinstance(key, rsa.RSAPrivateKey) and cert is not None
    return p12, key, cert


@pytest.fixture(scope="module")
def signer(credentials: tuple[bytes, Any, Any]) -> XadesSigner:
    return XadesSigner.from_pkcs12(credentials[0], PASSWORD)


@pytest.fixture(scope="module")
def simulators() -> Iterator[list[tuple[SimulatorServer, str]]]:
    """Two DIANs: one endpoint per software family, as when POS is in another environment."""
    started = [start_simulator(**OPTIONS), start_simulator(**OPTIONS)]
    yield started
    for server, _ in started:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def sims(simulators: list[tuple[SimulatorServer, str]]) -> list[str]:
    urls = [url for _, url in simulators]
    for url in urls:
        control(url, reset=True, **OPTIONS)
    return urls


@pytest.fixture()
def client(sims: list[str], credentials: tuple[bytes, Any, Any]) -> Iterator[DianSoapClient]:
    dian = make_client(sims[0], credentials[1], credentials[2])
    yield dian
    dian.close()


def _now_submission(data: dict[str, Any], number: int, **kwargs: Any) -> Submission:
    issued = datetime.now(UTC) - timedelta(minutes=1)
    return pos_submission(data, number, issued_at=issued, **kwargs)


def _rezip(xml: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ds.xml", xml)
    return buffer.getvalue()


def _send_mutated(
    client: DianSoapClient,
    signer: XadesSigner,
    submission: Submission,
    mutate: Callable[[etree._Element], None],
    setup: DianSetup = SETUP,
) -> tuple[str, ...]:
    """Build the document, change it as `mutate` says, sign it, send it: DIAN's messages."""
    unsigned = build_invoice(
        submission,
        setup.issuer,
        setup.software_for(submission.kind),
        setup.numbering_for(submission),
        setup.point_of_sale(submission),
    )
    tree = unsigned.root
    mutate(tree)
    xml = signer.sign(tree, datetime.now(UTC))
    answer = client.send_bill_sync("z.zip", _rezip(xml))
    if answer.status_code == "00":
        return ()
    assert answer.status_code == "99", answer
    return answer.error_messages


def _rejected(messages: tuple[str, ...]) -> set[str]:
    """The codes of the rules that rejected the document."""
    return {m.split(",")[0].removeprefix("Regla: ") for m in messages if "Rechazo" in m}


def _set(path: str, value: str) -> Callable[[etree._Element], None]:
    def mutate(tree: etree._Element) -> None:
        element = tree.find(path, NS)
        assert element is not None, path
        element.text = value

    return mutate


def _drop_extension(name: str) -> Callable[[etree._Element], None]:
    def mutate(tree: etree._Element) -> None:
        outer = tree.find(f"ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/inv:{name}", NS)
        assert outer is not None, name
        extension = outer.getparent().getparent()  # type: ignore[union-attr]
        extension.getparent().remove(extension)  # type: ignore[union-attr]

    return mutate


def _rename(old: str, new: str) -> Callable[[etree._Element], None]:
    def mutate(tree: etree._Element) -> None:
        found = [e for e in tree.iter() if e.text == old or etree.QName(e).localname == old]
        assert len(found) == 1, old
        if found[0].text == old:
            found[0].text = new
        else:
            found[0].tag = "{" + NS["inv"] + "}" + new

    return mutate


def _drop_invoice_control(tree: etree._Element) -> None:
    control = tree.find(".//sts:DianExtensions/sts:InvoiceControl", NS)
    assert control is not None
    control.getparent().remove(control)  # type: ignore[union-attr]


# ------------------------------------------------------------------------ acceptance


def test_a_pos_document_is_accepted_and_found_by_its_cude(
    sims: list[str], client: DianSoapClient, signer: XadesSigner
) -> None:
    gateway = DianGateway(client, DianDocumentFactory(SETUP, signer))
    submission = _now_submission(LUNCH, 11)
    sent = gateway.submit(submission)
    assert sent.verdict is Verdict.ACCEPTED, sent.response
    assert sent.references["number"] == "EPOS11"
    authorized = "El Documento Equivalente POS EPOS11, ha sido autorizado."
    assert sent.response["status_message"] == authorized
    later = replace(submission, references=dict(sent.references))
    assert gateway.status(later).verdict is Verdict.ACCEPTED
    assert stats(sims[0])["submissions"] == {"EPOS11": 1}
    # no break, no rule: the unchanged document passes every check the breaks below trip
    assert _send_mutated(client, signer, _now_submission(LUNCH, 12), lambda tree: None) == ()


# -------------------------------------------------------------------------- breaks

BREAKS: dict[str, tuple[Callable[[etree._Element], None], set[str]]] = {
    "ProfileID is the long literal no source shows DIAN accepting": (
        _set(
            "cbc:ProfileID",
            "DIAN 2.1: documento equivalente electrónico del tiquete de máquina registradora "
            "con sistema P.O.S.",
        ),
        {"DEAD03"},
    ),
    "ProfileID with a trailing space": (
        _set("cbc:ProfileID", "DIAN 2.1: Documento Equivalente POS "),
        {"DEAD03"},
    ),
    "InvoiceTypeCode 01": (_set("cbc:InvoiceTypeCode", "01"), {"DEAD12a"}),
    "CustomizationID of another operation": (_set("cbc:CustomizationID", "11"), {"DEAD02"}),
    "no FabricanteSoftware": (_drop_extension("FabricanteSoftware"), {"DEPD11"}),
    "no BeneficiosComprador": (_drop_extension("BeneficiosComprador"), {"DEPD11"}),
    "no PuntoVenta": (_drop_extension("PuntoVenta"), {"DEPD11"}),
    "the Anexo's V spelling of the buyer group": (
        _rename("InformacionBeneficiosComprador", "InformacionVeneficiosComprador"),
        {"DEPD21"},
    ),
    "UbicaciónCaja without its accent": (_rename("UbicaciónCaja", "UbicacionCaja"), {"DEPD21"}),
    "CódigoVenta without its accent": (_rename("CódigoVenta", "CodigoVenta"), {"DEPD21"}),
    "NombreSoftware misspelled": (_rename("NombreSoftware", "NombreDelSoftware"), {"DEPD21"}),
    # without InvoiceControl there is no prefix for the branch code to equal either
    "no InvoiceControl": (_drop_invoice_control, {"DEAB05a", "FAB10a"}),
    "another resolution": (_set(CONTROL + "sts:InvoiceAuthorization", "18760000002"), {"DEAB05a"}),
    "another authorization end date": (
        _set(CONTROL + "sts:AuthorizationPeriod/cbc:EndDate", "2031-01-19"),
        {"DEAB08b"},
    ),
    "another From": (_set(CONTROL + "sts:AuthorizedInvoices/sts:From", "0"), {"DEAB11b"}),
    "a branch code that is not the prefix": (_set(BRANCH, "SUC1"), {"FAB10a"}),
}


@pytest.mark.parametrize("case", BREAKS)
def test_each_break_is_refused_with_its_rule(
    case: str, sims: list[str], client: DianSoapClient, signer: XadesSigner
) -> None:
    mutate, expected = BREAKS[case]
    messages = _send_mutated(client, signer, _now_submission(LUNCH, 20), mutate)
    assert _rejected(messages) == expected, messages


def test_fab10a_comes_with_its_faj50_notification(
    sims: list[str], client: DianSoapClient, signer: XadesSigner
) -> None:
    messages = _send_mutated(client, signer, _now_submission(LUNCH, 21), _set(BRANCH, "SUC1"))
    assert (
        "Regla: FAB10a, Rechazo: El prefijo de numeración no es igual al código de la sucursal "
        "correspondiente a este punto de facturación"
    ) in messages
    assert any(m.startswith("Regla: FAJ50, Notificación:") for m in messages)


def test_fab10a_is_checked_on_invoices_too(
    sims: list[str], client: DianSoapClient, signer: XadesSigner
) -> None:
    invoice = replace(
        _now_submission(LUNCH, 1),
        kind=DocumentKind.INVOICE,
        numbering=INVOICE_RANGE,
        number=DocumentNumber("SETP", 990000031),
    )
    assert _send_mutated(client, signer, invoice, lambda tree: None) == ()
    invoice = replace(invoice, number=DocumentNumber("SETP", 990000032))
    messages = _send_mutated(client, signer, invoice, _set(BRANCH, "SETT"))
    assert _rejected(messages) == {"FAB10a"}, messages


def test_a_cude_keyed_with_another_pin_is_refused_with_dead06(
    sims: list[str], client: DianSoapClient, signer: XadesSigner
) -> None:
    """The invoice software's PIN is not the POS software's: DEAD06 (the DE counterpart of
    FAD06; DIAN's code for it is inferred)."""
    wrong = replace(POS_SOFTWARE, pin=INVOICE_SOFTWARE.pin)
    setup = replace(
        SETUP, software={SoftwareFamily.INVOICE: INVOICE_SOFTWARE, SoftwareFamily.POS: wrong}
    )
    messages = _send_mutated(client, signer, _now_submission(LUNCH, 22), lambda t: None, setup)
    assert _rejected(messages) == {"DEAD06"}, messages
    assert "Regla: DEAD06, Rechazo: El valor del CUDE no está calculado correctamente." in messages


def test_a_number_outside_the_authorized_range_is_refused(
    sims: list[str], client: DianSoapClient, signer: XadesSigner
) -> None:
    """Our range says 1-2,000,000; DIAN authorized 1-1,000,000 for EPOS."""
    wider = replace(POS_RANGE, last=2000000)
    submission = _now_submission(LUNCH, 1500000, numbering=wider)
    messages = _send_mutated(client, signer, submission, lambda tree: None)
    assert _rejected(messages) == {"DEAB12b", "DEAD05e"}, messages


def test_a_prefix_dian_never_authorized_is_refused(
    sims: list[str], client: DianSoapClient, signer: XadesSigner
) -> None:
    till_two = replace(POS_RANGE, prefix="C2", register="2")
    submission = _now_submission(LUNCH, 5, numbering=till_two)
    messages = _send_mutated(client, signer, submission, lambda tree: None)
    assert _rejected(messages) == {"DEAB05a"}, messages
    control(sims[0], pos_ranges={**OPTIONS["pos_ranges"], "C2": OPTIONS["pos_ranges"]["EPOS"]})
    again = replace(submission, number=DocumentNumber("C2", 6))
    assert _send_mutated(client, signer, again, lambda tree: None) == ()


def test_a_malformed_range_setting_is_refused_by_the_simulator(sims: list[str]) -> None:
    answer = httpx.post(f"{sims[0]}/_control", json={"pos_ranges": {"X": {"to": 1}}}, timeout=5)
    assert answer.status_code == 400 and "pos_ranges" in answer.text


# ------------------------------------------------------------------------ habilitación


def test_the_pos_family_goes_through_its_own_test_set_at_its_own_endpoint(
    sims: list[str], credentials: tuple[bytes, Any, Any], signer: XadesSigner
) -> None:
    invoices_url, pos_url = sims
    in_test = replace(POS_SOFTWARE, test_set_id=POS_TEST_SET_ID)
    setup = replace(
        SETUP, software={SoftwareFamily.INVOICE: INVOICE_SOFTWARE, SoftwareFamily.POS: in_test}
    )
    invoices_client = make_client(invoices_url, credentials[1], credentials[2])
    pos_client = make_client(pos_url, credentials[1], credentials[2])
    try:
        gateway = DianGateway(
            {SoftwareFamily.INVOICE: invoices_client, SoftwareFamily.POS: pos_client},
            DianDocumentFactory(setup, signer),
        )
        control(pos_url, batch_polls=2)
        submission = _now_submission(LUNCH, 31)
        sent = gateway.submit(submission)
        assert sent.verdict is Verdict.PENDING
        assert sent.response["operation"] == "SendTestSetAsync"
        assert POS_TEST_SET_ID.encode() in httpx.get(f"{pos_url}/_last_request", timeout=5).content
        later = replace(submission, references=dict(sent.references))
        assert gateway.status(later).verdict is Verdict.PENDING
        assert gateway.status(later).verdict is Verdict.PENDING
        done = gateway.status(later)
        assert done.verdict is Verdict.ACCEPTED, done.response
        assert done.references["zip_key"] == sent.references["zip_key"]
        # invoices are in production at their own endpoint: SendBillSync, no test set
        invoice = replace(
            _now_submission(LUNCH, 1),
            kind=DocumentKind.INVOICE,
            numbering=INVOICE_RANGE,
            number=DocumentNumber("SETP", 990000041),
        )
        assert gateway.submit(invoice).verdict is Verdict.ACCEPTED
    finally:
        invoices_client.close()
        pos_client.close()
    pos_requests, invoice_requests = stats(pos_url)["requests"], stats(invoices_url)["requests"]
    assert pos_requests == {"SendTestSetAsync": 1, "GetStatusZip": 3}
    assert invoice_requests == {"SendBillSync": 1}


# --------------------------------------------------------------------------- wiring


def test_a_family_without_an_endpoint_is_a_misconfiguration(
    client: DianSoapClient, signer: XadesSigner
) -> None:
    gateway = DianGateway({SoftwareFamily.INVOICE: client}, DianDocumentFactory(SETUP, signer))
    with pytest.raises(GatewayMisconfigured, match="pos family"):
        gateway.submit(_now_submission(LUNCH, 51))


def test_settings_give_one_client_per_endpoint_and_each_familys_registration(
    signer: XadesSigner,
) -> None:
    from worker.settings import DianSettings, Settings
    from worker.wiring import dian_parts

    same = dian_parts(Settings(dian=DianSettings(endpoint="http://127.0.0.1:9/svc")), signer)
    try:
        assert same.clients[SoftwareFamily.INVOICE] is same.clients[SoftwareFamily.POS]
        setup = same.setup
        assert setup.software_for(DocumentKind.POS).software_id != (
            setup.software_for(DocumentKind.INVOICE).software_id
        )
        assert setup.ranges[DocumentKind.POS].prefix == "EPOS"
        assert setup.ranges[DocumentKind.POS].kind is DocumentKind.POS
        assert setup.register is not None and setup.register.code == "1"
    finally:
        same.close()
    production_pos = DianSettings(endpoint="http://127.0.0.1:9/svc", pos_environment="1")
    apart = dian_parts(Settings(dian=production_pos), signer)
    try:
        pos_client = apart.clients[SoftwareFamily.POS]
        assert pos_client is not apart.clients[SoftwareFamily.INVOICE]
        assert pos_client.endpoint == "https://vpfe.dian.gov.co/WcfDianCustomerServices.svc"
        assert apart.setup.software_for(DocumentKind.POS).environment == "1"
        assert len(apart.distinct_clients()) == 2
    finally:
        apart.close()
