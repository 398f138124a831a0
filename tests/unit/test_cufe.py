"""CUFE/CUDE, SoftwareSecurityCode, QR and DV against the published vectors (dian-facts §3.5)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.cufe import (
    cude,
    cufe,
    format_amount,
    key_input,
    qr_text,
    qr_url,
    software_security_code,
)
from domain.dian_codes import nit_check_digit

D = Decimal


def test_cude_credit_note_from_the_anexo() -> None:
    assert (
        cude(
            number="8110007871",
            issue_date="2019-01-12",
            issue_time="07:00:00-05:00",
            line_extension=D("5000.00"),
            taxes={"01": D("950.00"), "04": D("0.00"), "03": D("0.00")},
            payable=D("5950.00"),
            supplier_nit="900373076",
            buyer_id="8355990",
            pin="12301",
            environment="1",
        )
        == "907e4444decc9e59c160a2fb3b6659b33dc5b632a5008922"
        "b9a62f83f757b1c448e47f5867f2b50dbdb96f48c7681168"
    )


def test_cude_debit_note_from_the_anexo() -> None:
    fields = {
        "number": "ND1001",
        "issue_date": "2019-01-18",
        "issue_time": "10:58:00-05:00",
        "line_extension": D("30000"),
        "taxes": {"04": D("2400")},
        "payable": D("32400"),
        "supplier_nit": "900197264",
        "buyer_id": "10254102",
        "environment": "2",
    }
    assert (
        key_input(secret="10201", **fields)  # type: ignore[arg-type]
        == "ND10012019-01-1810:58:00-05:0030000.00010.000424"
        "00.00030.0032400.0090019726410254102102012"
    )
    assert (
        cude(pin="10201", **fields)  # type: ignore[arg-type]
        == "3fa73a86d57d9341c536afde1f85c4efd9d4591c2c22bce4"
        "dfb0e6b0d2e83b8f047a8bde7098292e9d2493e60d1c31da"
    )


def test_cufe_ubl21dian_invoice() -> None:
    assert (
        cufe(
            number="SETP990000008",
            issue_date="2019-06-12",
            issue_time="12:53:36-05:00",
            line_extension=D("1720000.00"),
            taxes={"01": D("342000.00"), "04": D("0.00"), "03": D("0.00")},
            payable=D("2023060.00"),
            supplier_nit="901210113",
            buyer_id="901210113",
            technical_key="x" * 40,
            environment="2",
        )
        == "d48db2461fc229b54a1b92df388fc66844d23cddd120bf0c"
        "c952dda6243c9db9046b23ca3cea0185aac2a985d1fb6c7c"
    )


def test_cude_ubl21dian_debit_note() -> None:
    assert (
        cude(
            number="ND1",
            issue_date="2019-06-21",
            issue_time="09:15:23-05:00",
            line_extension=D("12600.06"),
            taxes={"01": D("2394.01")},
            payable=D("14994.07"),
            supplier_nit="800197268",
            buyer_id="900108281",
            pin="xxxxx",
            environment="2",
        )
        == "17ef520059982ca6443c543a7f3b2af2c836af88bf7479e2"
        "eb4cf538ef1b2957ce77a3ba3bff80df3c8aef4dabebdfed"
    )


def test_cufe_odoo_signed_fixture() -> None:
    assert (
        cufe(
            number="SETP/2024/00001",
            issue_date="2024-01-29",
            issue_time="19:00:00-05:00",
            line_extension=D("1000"),
            taxes={"01": D("50")},
            payable=D("1050"),
            supplier_nit="1018419008",
            buyer_id="90010828",
            technical_key="dummy_journal_technical_key",
            environment="2",
        )
        == "7e08eb9e1c18c85cb77dd46d2000c34b553eb46d270622b7"
        "4b43401b3bfb2c6875ca88e605ab8dc854cce97002fa77fa"
    )


@pytest.mark.parametrize(
    ("software_id", "pin", "number", "expected"),
    [
        (
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
            "12345",
            "SETP990000008",
            "54d15940890b5ed395e7476d294a972cee650200942adb7a899de35cb0cf22f98831e7c9a95d90b961c6845340b09efd",
        ),
        (
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
            "12345",
            "ND1",
            "31e48a81d2d90d1cd81d386d9c4fc5c0030ef582b401b3825bcd0d1d17e1d6441b5b7b95e10d11d5c65861daa2bada67",
        ),
        (
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
            "12345",
            "NC1000",
            "eb7ff57a48c4bc5840e846382346e2a5546a3903c150fdf34bec4e7e8fb29c6437ef9c99575f0f78f80f7dfcc97d3e02",
        ),
        (
            "Odoo",
            "12345",
            "SETP/2024/00001",
            "ef6c3ad4781873a0a5effcbd7651dc1d26c41822b54ecafe19413bf490ca233683c53953565f70ea025f234eb62675c8",
        ),
    ],
)
def test_software_security_code(software_id: str, pin: str, number: str, expected: str) -> None:
    assert software_security_code(software_id, pin, number) == expected


@pytest.mark.parametrize(
    ("nit", "dv"), [("800197268", "4"), ("1018419008", "5"), ("901210113", "3"), ("90010828", "1")]
)
def test_nit_check_digit(nit: str, dv: str) -> None:
    assert nit_check_digit(nit) == dv


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1.239", "1.23"),
        ("1.2", "1.20"),
        ("0", "0.00"),
        ("0.009", "0.00"),
        ("1234567.899", "1234567.89"),
        ("24600", "24600.00"),
        ("1E+3", "1000.00"),
    ],
)
def test_format_amount_truncates_to_two_decimals(value: str, text: str) -> None:
    assert format_amount(D(value)) == text


def test_format_amount_refuses_nan() -> None:
    with pytest.raises(ValueError):
        format_amount(D("NaN"))


def test_cufe_truncates_instead_of_rounding() -> None:
    common = {
        "number": "SETP990000001",
        "issue_date": "2024-01-01",
        "issue_time": "12:00:00-05:00",
        "taxes": {},
        "supplier_nit": "900373076",
        "buyer_id": "222222222222",
        "technical_key": "k",
        "environment": "2",
    }
    truncated = cufe(line_extension=D("1.239"), payable=D("1.239"), **common)  # type: ignore[arg-type]
    exact = cufe(line_extension=D("1.23"), payable=D("1.23"), **common)  # type: ignore[arg-type]
    rounded = cufe(line_extension=D("1.24"), payable=D("1.24"), **common)  # type: ignore[arg-type]
    assert truncated == exact != rounded


def test_environment_is_checked() -> None:
    with pytest.raises(ValueError):
        qr_url("abc", "3")


def test_qr_url_per_environment() -> None:
    assert (
        qr_url("abc", "2")
        == "https://catalogo-vpfe-hab.dian.gov.co/document/searchqr?documentkey=abc"
    )
    assert (
        qr_url("abc", "1") == "https://catalogo-vpfe.dian.gov.co/document/searchqr?documentkey=abc"
    )


def test_qr_text_lines() -> None:
    text = qr_text(
        number="SETP990000001",
        issue_date="2024-05-02",
        issue_time="13:05:00-05:00",
        supplier_nit="900373076",
        buyer_id="222222222222",
        line_extension=D("20000"),
        iva=D("0"),
        other_taxes=D("1600"),
        payable=D("24600"),
        document_key="abc",
        environment="2",
    )
    assert text.splitlines() == [
        "NumFac: SETP990000001",
        "FecFac: 2024-05-02",
        "HorFac: 13:05:00-05:00",
        "NitFac: 900373076",
        "DocAdq: 222222222222",
        "ValFac: 20000.00",
        "ValIva: 0.00",
        "ValOtroIm: 1600.00",
        "ValTolFac: 24600.00",
        "CUFE: abc",
        "https://catalogo-vpfe-hab.dian.gov.co/document/searchqr?documentkey=abc",
    ]
