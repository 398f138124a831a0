"""Documents: what an order becomes at the authority, and who sells it at which register.

An order gives one sale document: a factura electrónica de venta (01) or a documento
equivalente electrónico POS (20). Which one is decided once, when the order is accepted
(`Planner.plan`), and stored with the document; every later attempt builds the same kind.

Each kind belongs to a software family: DIAN registers the software that issues invoices and
the software that issues equivalent documents separately, each with its own id, PIN and
environment, so a POS family may still be in habilitación while invoices are in production.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from domain.errors import FieldError, InvalidOrder

if TYPE_CHECKING:
    from domain.order import Order

DocumentMode = Literal["pos", "invoice", "payload"]


class SoftwareFamily(enum.StrEnum):
    INVOICE = "invoice"  # facturación electrónica (01, notes 91/92)
    POS = "pos"  # documentos equivalentes (20, adjustment notes 93/94)


class DocumentKind(enum.StrEnum):
    """DIAN's document type code."""

    INVOICE = "01"  # factura electrónica de venta
    POS = "20"  # documento equivalente electrónico del tiquete de máquina registradora POS
    CREDIT_NOTE = "91"  # nota crédito de factura electrónica de venta
    DEBIT_NOTE = "92"  # nota débito de factura electrónica de venta
    POS_DEBIT_NOTE = "93"  # nota de ajuste débito al documento equivalente
    POS_CREDIT_NOTE = "94"  # nota de ajuste crédito al documento equivalente

    @property
    def family(self) -> SoftwareFamily:
        pos = (DocumentKind.POS, DocumentKind.POS_CREDIT_NOTE, DocumentKind.POS_DEBIT_NOTE)
        return SoftwareFamily.POS if self in pos else SoftwareFamily.INVOICE

    @property
    def is_note(self) -> bool:
        return self not in (DocumentKind.INVOICE, DocumentKind.POS)

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
        return WORDS[self]


LABELS = {
    DocumentKind.INVOICE: "Factura electrónica de venta",
    DocumentKind.POS: (
        "Documento equivalente electrónico del tiquete de máquina registradora con sistema P.O.S."
    ),
    DocumentKind.CREDIT_NOTE: "Nota crédito de factura electrónica de venta",
    DocumentKind.DEBIT_NOTE: "Nota débito de factura electrónica de venta",
    DocumentKind.POS_CREDIT_NOTE: "Nota de ajuste crédito al documento equivalente",
    DocumentKind.POS_DEBIT_NOTE: "Nota de ajuste débito al documento equivalente",
}
WORDS = {
    DocumentKind.INVOICE: "factura",
    DocumentKind.POS: "pos",
    DocumentKind.CREDIT_NOTE: "nota-credito",
    DocumentKind.DEBIT_NOTE: "nota-debito",
    DocumentKind.POS_CREDIT_NOTE: "nota-credito-pos",
    DocumentKind.POS_DEBIT_NOTE: "nota-debito-pos",
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


@dataclass(frozen=True)
class DocumentPlan:
    """What an accepted order becomes: its kind, the till that sold it, whether it is numbered
    here (DIAN) or by the provider (Factus)."""

    kind: DocumentKind
    register: str
    numbered: bool


@dataclass(frozen=True)
class Planner:
    """Decides, per order, which sale document it becomes and from which till.

    Modes (per deployment, or per till):
    - `invoice`: always 01; asking for a POS ticket (`documento: "pos"`) is refused.
    - `pos`: 20, unless an identified buyer asks for an invoice (`documento: "factura"`); an
      anonymous buyer asking for an invoice is refused (the ticket is what a consumidor final
      gets).
    - `payload`: what `documento` says; absent means `default`.
    `pos_as_invoice` issues what would be a POS ticket as an invoice (a provider without the
    equivalent document). `registers` maps every known till to its mode. `gateway_check`, when
    given, raises `InvalidOrder` for an order the gateway could never issue (a provider's own
    precision rules), so it is refused at intake rather than accepted and then failed.
    """

    registers: Mapping[str, DocumentMode]
    default_register: str
    numbered: bool
    default: str = "factura"
    pos_as_invoice: bool = False
    gateway_check: Callable[[Order], None] | None = None

    def plan(self, order: Order) -> DocumentPlan:
        """Raises `InvalidOrder` naming `caja` or `documento` and the rule, or the field the
        gateway cannot carry."""
        register = order.caja or self.default_register
        mode = self.registers.get(register)
        if mode is None:
            known = ", ".join(sorted(self.registers)) or "none"
            raise InvalidOrder(
                [
                    FieldError(
                        "caja" if order.caja else "(order)",
                        "unknown_register",
                        f"unknown register {register!r} (known: {known})",
                    )
                ]
            )
        kind = _kind(order, mode, self.default)
        if kind is DocumentKind.POS and self.pos_as_invoice:
            kind = DocumentKind.INVOICE
        if self.gateway_check is not None:
            self.gateway_check(order)
        return DocumentPlan(kind, register, self.numbered)


def _kind(order: Order, mode: DocumentMode, default: str) -> DocumentKind:
    requested = order.documento
    if mode == "invoice":
        if requested == "pos":
            raise InvalidOrder(
                [
                    FieldError(
                        "documento",
                        "document_kind_not_offered",
                        "this register issues invoices only (DOCUMENTS__MODE=invoice)",
                    )
                ]
            )
        return DocumentKind.INVOICE
    if mode == "pos":
        if requested != "factura":
            return DocumentKind.POS
        if order.adquirente.is_consumidor_final:
            raise InvalidOrder(
                [
                    FieldError(
                        "documento",
                        "invoice_needs_buyer",
                        "an invoice is issued on request to an identified buyer: send "
                        "adquirente with the buyer's identification, or omit documento",
                    )
                ]
            )
        return DocumentKind.INVOICE
    word = requested or default
    return DocumentKind.POS if word == "pos" else DocumentKind.INVOICE
