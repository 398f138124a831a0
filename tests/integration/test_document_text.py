"""Every free text of an order and of the issuer's settings, through the document builders.

The documents are written as text and signed by a splice into that text, so this pins both
paths with hostile text (`tests.hostile_text`): line breaks, tabs, quotes, `]]>`, markup,
tags the signer looks for, characters XML cannot carry. For every builder in `BUILDERS`,
an order is refused at intake naming the fields at fault, or its document parses, gives
back every value exactly as the validated order (or the settings) hold it, is valid
against the UBL 2.1 schema and verifies with xmlsec1.

Free text that reaches the XML: the order id (`cbc:Note`, `cac:OrderReference`), the buyer's
name, identification number, e-mail and phone (not for the consumidor final, whose name is
DIAN's), each line's description and product id; from the settings the issuer's names,
address, e-mail and phone and the range's resolution and prefix. Payment method and tax
names are matched to DIAN codes and never written; the buyer's address is not written.
The POS document adds the register's plate, location and cashier and the software maker's
names (`Setting.register`, `Setting.maker`, the payload's `cajero`).

Examples are derandomized (`tests.hostile_text.PINNED`): the same on every run and in CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory, DianSetup
from adapters.dian.signer import XadesSigner
from adapters.dian.ubl import CONSUMIDOR_FINAL_NAME
from domain.catalog import IDENTIFICATION_TYPES, payment_means_for
from domain.dian_codes import nit_check_digit
from domain.documents import DocumentKind, Register, SoftwareFamily, SoftwareMaker
from domain.errors import InvalidOrder
from domain.issuer import Address, IssuerProfile, NumberingRange, SoftwareRegistration
from domain.order import MAILBOX, Order, parse_order
from domain.ports import DocumentNumber, OrderKey, Submission
from tests.factories import line, order
from tests.hostile_text import PINNED, hostile_text, non_xml_char
from tests.integration.test_dian_document import (  # noqa: F401  (fixtures, by name)
    NS,
    invoice_schema,
    xsd_dir,
)
from tests.xmlsec import xmlsec1_verify

ISSUED_AT = datetime(2024, 5, 2, 23, 30, 5, tzinfo=UTC)
SIGNED_AT = datetime(2024, 5, 2, 23, 30, 6, tzinfo=UTC)
NUMBER = 990000001
PAYMENT_WORDS = ("Efectivo", "  tarjeta de CRÉDITO ", "Tarjeta_Débito", "nequi", "Bitcoin")


@dataclass(frozen=True)
class Setting:
    """What a deployment configures and the documents carry: issuer, software, range, the
    register that sold and the software maker."""

    issuer: IssuerProfile
    software: SoftwareRegistration
    numbering: NumberingRange
    register: Register
    maker: SoftwareMaker


Fields = Iterator[tuple[str, str | None]]  # (XPath, the text it holds; None: absent)


@dataclass(frozen=True)
class DocumentBuilder:
    """One kind of document: how to build it signed, and where each free text lands."""

    name: str
    build: Callable[[Submission, Setting, XadesSigner], bytes]
    fields: Callable[[Order, Setting], Fields]


# --------------------------------------------------------------------- the invoice (01)

SUPPLIER = "cac:AccountingSupplierParty/cac:Party/"
CUSTOMER = "cac:AccountingCustomerParty/cac:Party/"


def ubl_fields(order_: Order, setting: Setting) -> Fields:
    """The free texts every UBL sale document carries in the same places."""
    issuer, address, numbering = setting.issuer, setting.issuer.address, setting.numbering
    yield "cac:OrderReference/cbc:ID", order_.id_pedido_origen
    yield ".//sts:InvoiceControl/sts:InvoiceAuthorization", numbering.resolution
    yield ".//sts:InvoiceControl/sts:AuthorizedInvoices/sts:Prefix", numbering.prefix
    yield "cbc:ID", f"{numbering.prefix}{NUMBER}"
    yield SUPPLIER + "cac:PartyName/cbc:Name", issuer.trade_name
    yield SUPPLIER + "cac:PartyTaxScheme/cbc:RegistrationName", issuer.legal_name
    yield SUPPLIER + "cac:PartyLegalEntity/cbc:RegistrationName", issuer.legal_name
    yield (
        SUPPLIER + "cac:PartyLegalEntity/cac:CorporateRegistrationScheme/cbc:ID",
        (numbering.prefix),
    )
    for place in (
        "cac:PhysicalLocation/cac:Address/",
        "cac:PartyTaxScheme/cac:RegistrationAddress/",
    ):
        yield SUPPLIER + place + "cbc:CityName", address.city
        yield SUPPLIER + place + "cbc:PostalZone", address.postal_zone
        yield SUPPLIER + place + "cbc:CountrySubentity", address.department
        yield SUPPLIER + place + "cac:AddressLine/cbc:Line", address.line
        yield SUPPLIER + place + "cac:Country/cbc:Name", address.country_name
    yield SUPPLIER + "cac:Contact/cbc:Telephone", issuer.phone or None
    yield SUPPLIER + "cac:Contact/cbc:ElectronicMail", issuer.email or None

    buyer = order_.adquirente
    name = CONSUMIDOR_FINAL_NAME if buyer.is_consumidor_final else buyer.nombre
    yield CUSTOMER + "cac:PartyName/cbc:Name", name
    yield CUSTOMER + "cac:PartyTaxScheme/cbc:RegistrationName", name
    yield CUSTOMER + "cac:PartyLegalEntity/cbc:RegistrationName", name
    yield CUSTOMER + "cac:PartyIdentification/cbc:ID", buyer.numero_documento
    yield CUSTOMER + "cac:PartyTaxScheme/cbc:CompanyID", buyer.numero_documento
    yield CUSTOMER + "cac:PartyLegalEntity/cbc:CompanyID", buyer.numero_documento
    identified = not buyer.is_consumidor_final
    yield CUSTOMER + "cac:Contact/cbc:Telephone", (buyer.telefono or None) if identified else None
    yield CUSTOMER + "cac:Contact/cbc:ElectronicMail", (buyer.email or None) if identified else None

    for number, item in enumerate(order_.items, start=1):
        at = f"cac:InvoiceLine[{number}]/cac:Item/"
        yield at + "cbc:Description", item.descripcion
        yield at + "cac:StandardItemIdentification/cbc:ID", item.id_producto or str(number)


def invoice_fields(order_: Order, setting: Setting) -> Fields:
    yield from ubl_fields(order_, setting)
    yield "cbc:Note", f"Pedido {order_.id_pedido_origen}"


def _factory(setting: Setting, signer: XadesSigner) -> DianDocumentFactory:
    setup = DianSetup(
        issuer=setting.issuer,
        software={family: setting.software for family in SoftwareFamily},
        maker=setting.maker,
        register=setting.register,
    )
    return DianDocumentFactory(setup, signer)


def build_invoice(submission: Submission, setting: Setting, signer: XadesSigner) -> bytes:
    invoice = replace(submission, numbering=setting.numbering)
    return _factory(setting, signer).build(invoice, SIGNED_AT).xml


# ------------------------------------------------------------- the POS document (20)

TILL = ".//inv:InformacionCajaVenta/inv:Value[preceding-sibling::inv:Name[1]='{}']"
MAKER = ".//inv:InformacionDelFabricanteDelSoftware/inv:Value[preceding-sibling::inv:Name[1]='{}']"
BUYER = ".//inv:InformacionBeneficiosComprador/inv:Value[preceding-sibling::inv:Name[1]='{}']"


def pos_fields(order_: Order, setting: Setting) -> Fields:
    yield from ubl_fields(order_, setting)
    register, maker, buyer = setting.register, setting.maker, order_.adquirente
    yield TILL.format("PlacaCaja"), register.plate
    yield TILL.format("UbicaciónCaja"), register.location
    yield TILL.format("Cajero"), order_.cajero or register.cashier
    yield TILL.format("TipoCaja"), register.kind
    yield TILL.format("CódigoVenta"), order_.id_pedido_origen
    yield MAKER.format("NombreApellido"), maker.name
    yield MAKER.format("RazonSocial"), maker.legal_name
    yield MAKER.format("NombreSoftware"), maker.software_name
    yield BUYER.format("Codigo"), buyer.numero_documento
    name = CONSUMIDOR_FINAL_NAME if buyer.is_consumidor_final else buyer.nombre
    yield BUYER.format("NombresApellidos"), name


def build_pos(submission: Submission, setting: Setting, signer: XadesSigner) -> bytes:
    pos = replace(
        submission,
        kind=DocumentKind.POS,
        numbering=replace(setting.numbering, kind=DocumentKind.POS, technical_key=""),
        register=setting.register,
    )
    return _factory(setting, signer).build(pos, SIGNED_AT).xml


INVOICE = DocumentBuilder("invoice", build_invoice, invoice_fields)
POS = DocumentBuilder("pos", build_pos, pos_fields)
# Each kind of document joins here, with its own `fields` (`ubl_fields` plus its own).
BUILDERS = [INVOICE, POS]


# ------------------------------------------------------------------------- strategies


def _cap(value: str, size: int) -> str:
    """At most `size` characters and not blank: what intake accepts in a text field."""
    value = value[:size]
    return value if value.strip() else f"x{value}"


@st.composite
def _pool(draw: st.DrawFn, carryable: bool) -> Callable[[int], str]:
    """A picker of texts for the fields of one example: a few hostile texts drawn once
    (drawing one per field makes every example several times slower), each field taking
    one of them; carryable texts are capped to `size` and never blank."""
    any_text = st.one_of(hostile_text(carryable=True, max_parts=4), hostile_text())
    texts = draw(
        st.lists(hostile_text(carryable=True) if carryable else any_text, min_size=1, max_size=4)
    )

    def pick(size: int = 60) -> str:
        value = draw(st.sampled_from(texts))
        return _cap(value, size) if carryable else value

    return pick


@st.composite
def payloads(draw: st.DrawFn, carryable: bool) -> tuple[dict[str, Any], set[str]]:
    """A consistent order whose free texts are drawn, and the paths of those fields."""
    text = draw(_pool(carryable))
    drawn: set[str] = set()
    items = []
    for index in range(draw(st.integers(1, 3))):
        product = text() if draw(st.booleans()) else None
        item = line(text(), product_id=product or "")
        item["id_producto"] = product
        items.append(item)
        drawn |= {f"items[{index}].descripcion", f"items[{index}].id_producto"}
    if carryable:
        order_id = draw(st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True))
        payment = draw(st.sampled_from(PAYMENT_WORDS[:-1]))
    else:
        order_id = draw(
            st.one_of(st.builds(text), st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True))
        )
        payment = draw(st.one_of(st.sampled_from(PAYMENT_WORDS), st.builds(text)))
    drawn |= {"id_pedido_origen", "metodos_pago[0].tipo"}
    data = order(order_id, items, tip=draw(st.sampled_from([0, 1500])), payment=payment)
    if draw(st.booleans()):
        digits = draw(st.from_regex(r"[1-9][0-9]{5,11}", fullmatch=True))
        data["adquirente"] = {
            "tipo_documento": draw(st.sampled_from(sorted(IDENTIFICATION_TYPES))),
            "numero_documento": digits if carryable or draw(st.booleans()) else text(),
            "nombre": text(),
            # a buyer's e-mail is a mailbox (refused at intake otherwise): drawn as one, with
            # every character the rule allows in it (&, ', +, ...)
            "email": draw(st.from_regex(MAILBOX, fullmatch=True)) if draw(st.booleans()) else None,
            "telefono": text(40) if draw(st.booleans()) else None,
            "direccion": text() if draw(st.booleans()) else None,
        }
        drawn |= {f"adquirente.{name}" for name in data["adquirente"]}
    if draw(st.booleans()):
        data["cajero"] = text()
        drawn.add("cajero")
    return data, drawn


@st.composite
def settings_texts(draw: st.DrawFn) -> Setting:
    """The free texts of the settings, as an operator could write them (never stripped,
    blank allowed but for the range's prefix)."""
    texts = draw(st.lists(hostile_text(carryable=True), min_size=1, max_size=4))

    def text(size: int = 60) -> str:
        return draw(st.sampled_from(texts))[:size]

    return Setting(
        issuer=IssuerProfile(
            nit="900373076",
            dv=nit_check_digit("900373076"),
            legal_name=text(),
            trade_name=text(),
            address=Address(
                city=text(),
                department=text(),
                line=text(),
                postal_zone=text(10),
                country_name=text(),
            ),
            email=text(),
            phone=text(20),
        ),
        software=SoftwareRegistration(
            software_id="56f2ae4e-9812-4fad-9255-08fcfcd5ccb0",
            pin="12345",
            provider_nit="900373076",
            provider_dv=nit_check_digit("900373076"),
        ),
        numbering=NumberingRange(
            resolution=text(20),
            prefix=_cap(text(10), 10),
            first=990000000,
            last=995000000,
            valid_from=date(2019, 1, 19),
            valid_to=date(2030, 1, 19),
            technical_key="fc8eac422eba16e22ffd8c6f94b3f40a6e38162c",
        ),
        register=Register("1", text(), text(), "POS", text()),
        maker=SoftwareMaker(text(), text(), "900373076", text()),
    )


# ---------------------------------------------------------------------------- checks


@pytest.fixture(scope="module")
def signer() -> XadesSigner:
    return XadesSigner.from_pkcs12(make_test_pkcs12("900373076", "x"), "x")


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xmlsec1")


def _submission(order_: Order, setting: Setting) -> Submission:
    return Submission(
        key=OrderKey(setting.issuer.nit, order_.id_pedido_origen),
        order=order_,
        issued_at=ISSUED_AT,
        number=DocumentNumber(setting.numbering.prefix, NUMBER),
    )


def _accepted(data: dict[str, Any], drawn: set[str]) -> Order | None:
    """The validated order, or None when intake refused it for the drawn fields only."""
    try:
        return parse_order(data)
    except InvalidOrder as exc:
        assert exc.errors
        assert {error.field for error in exc.errors} <= drawn, exc.errors
        return None


def assert_round_trip(
    xml: bytes, builder: DocumentBuilder, order_: Order, setting: Setting
) -> None:
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    for path, expected in builder.fields(order_, setting):
        found = root.xpath(path, namespaces=NS)
        assert isinstance(found, list)
        if expected is None:
            assert found == [], path
            continue
        assert len(found) == 1, f"{path}: {found!r}"
        element = found[0]
        assert isinstance(element, etree._Element)
        assert len(element) == 0, path  # text only: no markup came out of a value
        assert (element.text or "") == expected, path
    codes = [code.text for code in root.iterfind("cac:PaymentMeans/cbc:PaymentMeansCode", NS)]
    assert codes == list(dict.fromkeys(payment_means_for(p.tipo) for p in order_.metodos_pago))
    assert len(root.findall(".//ds:Signature", NS)) == 1


def assert_valid_ubl(xml: bytes, schema: etree.XMLSchema) -> None:
    document = etree.ElementTree(etree.fromstring(xml))
    assert schema.validate(document), str(schema.error_log)


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.name)
@settings(PINNED, max_examples=100)
@given(data=payloads(carryable=False), setting=settings_texts())
def test_hostile_text_is_refused_at_intake_or_round_trips_into_a_valid_document(
    builder: DocumentBuilder,
    data: tuple[dict[str, Any], set[str]],
    setting: Setting,
    signer: XadesSigner,
    invoice_schema: etree.XMLSchema,
) -> None:
    order_ = _accepted(*data)
    if order_ is None:
        return
    xml = builder.build(_submission(order_, setting), setting, signer)
    assert_round_trip(xml, builder, order_, setting)
    assert_valid_ubl(xml, invoice_schema)


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.name)
@settings(PINNED, max_examples=100)
@given(data=payloads(carryable=True), setting=settings_texts())
def test_any_text_xml_can_carry_is_accepted_and_round_trips_into_a_valid_document(
    builder: DocumentBuilder,
    data: tuple[dict[str, Any], set[str]],
    setting: Setting,
    signer: XadesSigner,
    invoice_schema: etree.XMLSchema,
) -> None:
    order_ = parse_order(data[0])
    xml = builder.build(_submission(order_, setting), setting, signer)
    assert_round_trip(xml, builder, order_, setting)
    assert_valid_ubl(xml, invoice_schema)


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.name)
@settings(PINNED, max_examples=25)
@given(data=payloads(carryable=True), setting=settings_texts())
def test_documents_of_hostile_text_verify_with_xmlsec1(
    builder: DocumentBuilder,
    data: tuple[dict[str, Any], set[str]],
    setting: Setting,
    signer: XadesSigner,
    work_dir: Path,
) -> None:
    order_ = parse_order(data[0])
    xml = builder.build(_submission(order_, setting), setting, signer)
    result = xmlsec1_verify(xml, signer.certificate_pem(), work_dir)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 3/3" in result.stdout + result.stderr


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.name)
@settings(PINNED, max_examples=50)
@given(
    setting=settings_texts(),
    field=st.sampled_from(["legal_name", "trade_name", "email", "phone"]),
    bad=non_xml_char,
)
def test_a_setting_xml_cannot_carry_stops_the_build_naming_the_character(
    builder: DocumentBuilder,
    setting: Setting,
    field: str,
    bad: str,
    signer: XadesSigner,
) -> None:
    issuer = replace(setting.issuer, **{field: f"Restaurante{bad}"})
    broken = replace(setting, issuer=issuer)
    order_ = parse_order(order("POS-1", [line()]))
    with pytest.raises(InvalidOrder) as refused:
        builder.build(_submission(order_, broken), broken, signer)
    assert [error.rule for error in refused.value.errors] == ["xml_text"]
    assert f"U+{ord(bad):04X}" in refused.value.errors[0].message
