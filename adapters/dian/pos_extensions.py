"""The three extensions only the POS equivalent document (20) carries.

DIAN rejects a POS document without any of them (DEPD11/DEPD21) and compares every name
literally, accents included. Each is its own `ext:UBLExtension` whose content is one
unprefixed element, so it lives in the document's default namespace (Invoice-2), holding a
group of alternating `Name` / `Value` children:

    FabricanteSoftware / InformacionDelFabricanteDelSoftware   who made the software
        NombreApellido, RazonSocial, NombreSoftware
    BeneficiosComprador / InformacionBeneficiosComprador        the buyer's loyalty data
        Codigo, NombresApellidos, Puntos
    PuntoVenta / InformacionCajaVenta                           the till that sold it
        PlacaCaja, UbicaciónCaja, Cajero, TipoCaja, CódigoVenta, SubTotal

The buyer group is mandatory even without a loyalty programme: it carries the buyer's
identification and name and 0 points. `CódigoVenta` is the POS's own order id and `SubTotal`
the document's LineExtensionAmount.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from adapters.dian.xmltext import XmlText
from domain.cufe import format_amount
from domain.documents import Register, SoftwareMaker
from domain.order import Order

# (extension element, group element, the names of its pairs in order)
MAKER = ("FabricanteSoftware", "InformacionDelFabricanteDelSoftware")
MAKER_NAMES = ("NombreApellido", "RazonSocial", "NombreSoftware")
BUYER = ("BeneficiosComprador", "InformacionBeneficiosComprador")
BUYER_NAMES = ("Codigo", "NombresApellidos", "Puntos")
TILL = ("PuntoVenta", "InformacionCajaVenta")
TILL_NAMES = ("PlacaCaja", "UbicaciónCaja", "Cajero", "TipoCaja", "CódigoVenta", "SubTotal")
NO_POINTS = "0"


@dataclass(frozen=True)
class PointOfSale:
    """Who made the software and which till sold the order: what the extensions describe."""

    maker: SoftwareMaker
    register: Register


def _extension(out: XmlText, names: tuple[str, str], pairs: tuple[tuple[str, str], ...]) -> None:
    outer, group = names
    with (
        out.element("ext:UBLExtension"),
        out.element("ext:ExtensionContent"),
        out.element(outer),
        out.element(group),
    ):
        for name, value in pairs:
            out.leaf("Name", name)
            out.leaf("Value", value)


def write_pos_extensions(
    out: XmlText,
    point_of_sale: PointOfSale,
    order: Order,
    buyer_name: str,
    line_extension: Decimal,
) -> None:
    """The three `ext:UBLExtension`s, in the order DIAN's example lists them. `buyer_name`
    is the name the customer party carries."""
    maker, till = point_of_sale.maker, point_of_sale.register
    _extension(out, MAKER, _pairs(MAKER_NAMES, maker.name, maker.legal_name, maker.software_name))
    buyer_id = order.adquirente.numero_documento
    _extension(out, BUYER, _pairs(BUYER_NAMES, buyer_id, buyer_name, NO_POINTS))
    values = (
        till.plate,
        till.location,
        order.cajero or till.cashier,
        till.kind,
        order.id_pedido_origen,
        format_amount(line_extension),
    )
    _extension(out, TILL, _pairs(TILL_NAMES, *values))


def _pairs(names: tuple[str, ...], *values: str) -> tuple[tuple[str, str], ...]:
    return tuple(zip(names, values, strict=True))
