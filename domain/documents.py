"""Documents: what an order becomes at the authority, and who sells it at which register.

An order gives one sale document: a factura electrónica de venta (01) or a documento
equivalente electrónico POS (20). Which one is decided once, when the order is accepted
(`choose_kind`), and stored with the document; every later attempt builds the same kind.

Each kind belongs to a software family: DIAN registers the software that issues invoices and
the software that issues equivalent documents separately, each with its own id, PIN and
environment, so a POS family may still be in habilitación while invoices are in production.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from domain.errors import FieldError

DocumentMode = Literal["pos", "invoice", "payload"]


class SoftwareFamily(enum.StrEnum):
    INVOICE = "invoice"  # facturación electrónica (01, notes 91/92)
    POS = "pos"  # documentos equivalentes (20, adjustment notes 93/94)


class DocumentKind(enum.StrEnum):
    """DIAN's document type code."""

    INVOICE = "01"  # factura electrónica de venta
    POS = "20"  # documento equivalente electrónico del tiquete de máquina registradora POS

    @property
    def family(self) -> SoftwareFamily:
        return SoftwareFamily.POS if self is DocumentKind.POS else SoftwareFamily.INVOICE

    @property
    def uses_cude(self) -> bool:
        """Keyed with the software PIN (CUDE) rather than the range's technical key (CUFE)."""
        return self is not DocumentKind.INVOICE

    @property
    def label(self) -> str:
        return LABELS[self]

    @property
    def word(self) -> str:
        """The word a payload and the command line use for this kind."""
        return "pos" if self is DocumentKind.POS else "factura"


LABELS = {
    DocumentKind.INVOICE: "Factura electrónica de venta",
    DocumentKind.POS: (
        "Documento equivalente electrónico del tiquete de máquina registradora con sistema P.O.S."
    ),
}


@dataclass(frozen=True)
class Register:
    """A till (caja) as the POS extension `InformacionCajaVenta` describes it."""

    code: str
    plate: str  # PlacaCaja
    location: str  # UbicaciónCaja
    kind: str  # TipoCaja
    cashier: str  # Cajero: the payload's `cajero`, else the register's default


@dataclass(frozen=True)
class SoftwareMaker:
    """Who made the software (`FabricanteSoftware`, and the printed representation)."""

    name: str  # NombreApellido
    legal_name: str  # RazonSocial
    nit: str
    software_name: str  # NombreSoftware


def choose_kind(
    requested: str | None, buyer_identified: bool, mode: DocumentMode, default: str = "factura"
) -> DocumentKind:
    """The sale document an order becomes.

    - `invoice`: always 01; asking for a POS ticket is refused.
    - `pos`: 20, unless an identified buyer asks for an invoice (`documento: "factura"`).
    - `payload`: what `documento` says; absent means `default`.
    An invoice asked for by an anonymous buyer under `pos` is refused: the POS ticket is what
    a consumidor final gets. Raises `InvalidOrder`-ready field errors as `KindRefused`.
    """
    if mode == "invoice":
        if requested == "pos":
            raise KindRefused(
                FieldError(
                    "documento",
                    "document_kind_not_offered",
                    "this register issues invoices only (DOCUMENTS__MODE=invoice)",
                )
            )
        return DocumentKind.INVOICE
    if mode == "pos":
        if requested == "factura":
            if not buyer_identified:
                raise KindRefused(
                    FieldError(
                        "documento",
                        "invoice_needs_buyer",
                        "an invoice is issued on request to an identified buyer: send "
                        "adquirente with the buyer's identification, or omit documento",
                    )
                )
            return DocumentKind.INVOICE
        return DocumentKind.POS
    word = requested or default
    return DocumentKind.POS if word == "pos" else DocumentKind.INVOICE


class KindRefused(Exception):
    """The order asks for a document this deployment does not issue to it."""

    def __init__(self, error: FieldError) -> None:
        self.error = error
        super().__init__(error.message)
