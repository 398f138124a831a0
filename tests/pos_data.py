"""One issuer with both DIAN software families, for the tests of the POS document (20).

The invoice family is in habilitación (ProfileExecutionID 2); the POS family has its own
software id and PIN, and its range is DIAN's habilitación POS range (`EPOS`, 1-1000000).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from adapters.dian.document import DianSetup
from domain.dian_codes import nit_check_digit
from domain.documents import DocumentKind, Register, SoftwareFamily, SoftwareMaker
from domain.issuer import IssuerProfile, NumberingRange, SoftwareRegistration
from domain.order import parse_order
from domain.ports import DocumentNumber, OrderKey, Submission

NIT = "900373076"
ISSUER = IssuerProfile(
    nit=NIT,
    dv=nit_check_digit(NIT),
    legal_name="Cocina de Pruebas S.A.S.",
    trade_name="Cocina de Pruebas",
)
INVOICE_SOFTWARE = SoftwareRegistration(
    software_id="56f2ae4e-9812-4fad-9255-08fcfcd5ccb0",
    pin="12345",
    provider_nit=NIT,
    provider_dv=nit_check_digit(NIT),
    environment="2",
)
POS_SOFTWARE = SoftwareRegistration(
    software_id="7d5c3a41-2b6e-4f0a-9c1d-5e8f2a7b4c90",
    pin="54321",
    provider_nit=NIT,
    provider_dv=nit_check_digit(NIT),
    environment="2",
)
TECHNICAL_KEY = "fc8eac422eba16e22ffd8c6f94b3f40a6e38162c"
INVOICE_RANGE = NumberingRange(
    resolution="18760000001",
    prefix="SETP",
    first=990000000,
    last=995000000,
    valid_from=date(2019, 1, 19),
    valid_to=date(2030, 1, 19),
    technical_key=TECHNICAL_KEY,
)
POS_RANGE = NumberingRange(
    resolution="18760000001",
    prefix="EPOS",
    first=1,
    last=1000000,
    valid_from=date(2019, 1, 19),
    valid_to=date(2030, 1, 19),
    kind=DocumentKind.POS,
)
MAKER = SoftwareMaker(
    name="Ana María Pérez",
    legal_name="Programas & Cajas S.A.S.",
    nit="901210113",
    software_name="Caja <Rápida>",
)
REGISTER = Register("1", "CAJA-01", "Barra, 2º piso", "Caja principal", "Luis Gómez")
SETUP = DianSetup(
    issuer=ISSUER,
    software={SoftwareFamily.INVOICE: INVOICE_SOFTWARE, SoftwareFamily.POS: POS_SOFTWARE},
    maker=MAKER,
    ranges={DocumentKind.INVOICE: INVOICE_RANGE, DocumentKind.POS: POS_RANGE},
    register=REGISTER,
)
ISSUED_AT = datetime(2024, 5, 2, 23, 30, 5, tzinfo=UTC)  # 18:30:05 in Bogotá
SIGNED_AT = datetime(2024, 5, 2, 23, 30, 6, tzinfo=UTC)

# One lunch with INC and a tip, to a consumidor final: the worked CUDE vector below.
LUNCH: dict[str, Any] = {
    "id_pedido_origen": "MESA-7",
    "items": [
        {
            "id_producto": "ALM-1",
            "descripcion": "Almuerzo ejecutivo",
            "cantidad": "1",
            "precio_unitario": "20000",
            "impuestos": [{"nombre": "INC", "tasa": "0.08", "monto": "1600"}],
            "total_item": "21600",
        }
    ],
    "subtotal": "20000",
    "propina_voluntaria": "2000",
    "impuestos_totales": "1600",
    "total_factura": "23600",
    "metodos_pago": [{"tipo": "Efectivo", "monto": "23600"}],
}
# NumDE + FecDE + HorDE + ValDE + 01 + ValIVA + 04 + ValINC + 03 + ValICA + ValTot + NitOFE
# + NumAdq + Software-PIN (of the POS software) + TipoAmbiente, written out by hand:
LUNCH_CUDE_INPUT = (
    "EPOS1"
    + "2024-05-02"
    + "18:30:05-05:00"
    + "20000.00"
    + "01"
    + "0.00"
    + "04"
    + "1600.00"
    + "03"
    + "0.00"
    + "23600.00"
    + "900373076"
    + "222222222222"
    + "54321"
    + "2"
)
# SHA-384 of that text (hashlib.sha384(LUNCH_CUDE_INPUT.encode()).hexdigest(), computed once).
LUNCH_CUDE = (
    "aef1cdb8f0e5a0e2b28710d968fede092706a7bf0e5e1f79"
    "9d0e6c01c5d005f5ff11e2e8f432620246f62e4cdb0abc1c"
)


def pos_submission(
    data: dict[str, Any],
    number: int = 1,
    *,
    numbering: NumberingRange | None = POS_RANGE,
    register: Register | None = REGISTER,
    issued_at: datetime = ISSUED_AT,
) -> Submission:
    order = parse_order(data)
    prefix = numbering.prefix if numbering else POS_RANGE.prefix
    width = numbering.width if numbering else 0
    return Submission(
        key=OrderKey(NIT, order.id_pedido_origen),
        order=order,
        issued_at=issued_at,
        number=DocumentNumber(prefix, number, width),
        kind=DocumentKind.POS,
        numbering=numbering,
        register=register,
    )
