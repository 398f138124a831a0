"""What the simulated DIAN checks in a documento equivalente electrónico POS (type 20), and the
rule FAB10a it checks in every document. Written from DIAN's rules, not from our builder.

A document is validated as an equivalent document when its InvoiceTypeCode is 20, its
ProfileID is the POS literal, or it comes from software registered for equivalent documents
(DIAN knows which family each registered software belongs to). Then:

    rule      checks                                                      code
    DEAD02    CustomizationID is an operation type of the POS (10)        DIAN (per J)
    DEAD03    ProfileID is exactly `DIAN 2.1: Documento Equivalente POS`  DIAN
    DEAD12a   InvoiceTypeCode is 20                                       DIAN
    DEPD11    each of FabricanteSoftware, BeneficiosComprador, PuntoVenta
              is present, each in its own UBLExtension                    DIAN (per J)
    DEPD21    each group holds its Name/Value pairs with the exact names  DIAN (per J)
    DEAD06    the CUDE, keyed with the PIN of the DE software             inferred*
    DEAB05a   InvoiceControl names an authorized POS range of the issuer  DIAN (per J)
    DEAB07b, DEAB08b, DEAB11b, DEAB12b
              its dates and From/To are the range's                       inferred*
    DEAD05e   the number lies in the authorized range                     inferred*
    FAB10a    (every kind) CorporateRegistrationScheme/ID = the prefix    DIAN (real answer)

* DE counterparts of the invoice rules FAD06, FAB07b, FAB08b, FAB11b, FAB12b and FAD05e: DIAN
names DE rules after the FE ones (DEAD01 UBLVersionID as FAD01, ...), but these codes were not
seen in a DIAN answer. DIAN reports which DE rule is DEPD11 and which DEPD21 only as "the
mandatory nodes"; here a missing extension is DEPD11 and a group without its exact names DEPD21.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from lxml import etree

from adapters.dian.simulator.checks import NS as BASE_NS
from adapters.dian.simulator.checks import Document, amount_text, tax_text

log = logging.getLogger(__name__)

NS = {
    **BASE_NS,
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
}
POS_TYPE = "20"
POS_PROFILE = "DIAN 2.1: Documento Equivalente POS"
POS_OPERATIONS = ("10",)
# extension element -> (group element, the Name literals in order)
GROUPS = {
    "FabricanteSoftware": (
        "InformacionDelFabricanteDelSoftware",
        ("NombreApellido", "RazonSocial", "NombreSoftware"),
    ),
    "BeneficiosComprador": (
        "InformacionBeneficiosComprador",
        ("Codigo", "NombresApellidos", "Puntos"),
    ),
    "PuntoVenta": (
        "InformacionCajaVenta",
        ("PlacaCaja", "UbicaciónCaja", "Cajero", "TipoCaja", "CódigoVenta", "SubTotal"),
    ),
}
PREFIX_RULE = (
    "Regla: FAB10a, Rechazo: El prefijo de numeración no es igual al código de la sucursal "
    "correspondiente a este punto de facturación"
)
PREFIX_NOTE = (
    "Regla: FAJ50, Notificación: El prefijo debe corresponder al código de la sucursal de "
    "este punto de facturación"
)
CUDE_RULE = "Regla: DEAD06, Rechazo: El valor del CUDE no está calculado correctamente."


@dataclass(frozen=True)
class AuthorizedRange:
    """A numbering authorization DIAN holds for the issuer (type D.E./P.O.S.)."""

    resolution: str
    prefix: str
    first: int
    last: int
    valid_from: date
    valid_to: date

    @classmethod
    def parse(cls, prefix: str, data: dict[str, Any]) -> AuthorizedRange:
        return cls(
            resolution=str(data["resolution"]),
            prefix=prefix,
            first=int(data["from"]),
            last=int(data["to"]),
            valid_from=date.fromisoformat(str(data["valid_from"])),
            valid_to=date.fromisoformat(str(data["valid_to"])),
        )


def _text(tree: etree._Element, path: str) -> str:
    return (tree.findtext(path, "", NS) or "").strip()


def software_id(document: Document) -> str:
    return _text(document.tree, "ext:UBLExtensions//sts:DianExtensions//sts:SoftwareID")


def is_equivalent(document: Document, pos_software: dict[str, str]) -> bool:
    tree = document.tree
    return (
        _text(tree, "cbc:InvoiceTypeCode") == POS_TYPE
        or _text(tree, "cbc:ProfileID") == POS_PROFILE
        or software_id(document) in pos_software
    )


def prefix_errors(document: Document) -> list[str]:
    """FAB10a (with its FAJ50 notification): the branch code is not the range's prefix."""
    tree = document.tree
    branch = _text(
        tree,
        "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/"
        "cac:CorporateRegistrationScheme/cbc:ID",
    )
    prefix = _text(tree, "ext:UBLExtensions//sts:InvoiceControl/sts:AuthorizedInvoices/sts:Prefix")
    return [] if branch == prefix else [PREFIX_RULE, PREFIX_NOTE]


def header_errors(document: Document) -> list[str]:
    tree = document.tree
    errors = []
    if _text(tree, "cbc:CustomizationID") not in POS_OPERATIONS:
        errors.append(
            "Regla: DEAD02, Rechazo: CustomizationID no corresponde a un tipo de operación "
            "del documento equivalente POS."
        )
    if (tree.findtext("cbc:ProfileID", "", NS) or "") != POS_PROFILE:
        errors.append(
            f"Regla: DEAD03, Rechazo: ProfileID debe ser '{POS_PROFILE}' para un documento "
            "equivalente POS."
        )
    if _text(tree, "cbc:InvoiceTypeCode") != POS_TYPE:
        errors.append(
            "Regla: DEAD12a, Rechazo: InvoiceTypeCode no corresponde a un documento "
            "equivalente POS (20)."
        )
    return errors


def extension_errors(document: Document) -> list[str]:
    """DEPD11 for a POS extension that is missing, DEPD21 for one without its exact names."""
    contents = document.tree.findall("ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent", NS)
    errors = []
    for outer, (group, names) in GROUPS.items():
        holders = [c for c in contents if len(c) == 1 and c[0].tag == _inv(outer)]
        if len(holders) != 1:
            errors.append(f"Regla: DEPD11, Rechazo: No fue informado el grupo {outer}.")
        elif not _pairs_named(holders[0][0], group, names):
            errors.append(
                f"Regla: DEPD21, Rechazo: El grupo {outer}/{group} debe informar "
                + ", ".join(names)
                + " con su Name y Value."
            )
    return errors


def _inv(name: str) -> str:
    """`name` in the document's default namespace, where the POS extensions live."""
    return f"{{{NS['inv']}}}{name}"


def _pairs_named(block: etree._Element, group: str, names: tuple[str, ...]) -> bool:
    """`block` holds only `group`, which holds Name/Value pairs with exactly `names`."""
    if len(block) != 1 or block[0].tag != _inv(group):
        return False
    children = list(block[0])
    if len(children) != 2 * len(names):
        return False
    for index, name in enumerate(names):
        label, value = children[2 * index], children[2 * index + 1]
        if label.tag != _inv("Name") or label.text != name or value.tag != _inv("Value"):
            return False
    return True


def expected_cude(document: Document, pin: str) -> str:
    """[ATDE] 14.1.3: the CUFE's chain with the software PIN in place of the technical key."""
    tree = document.tree
    totals = "cac:LegalMonetaryTotal/"
    customer = _text(tree, "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID")
    parts = [
        document.number,
        _text(tree, "cbc:IssueDate"),
        _text(tree, "cbc:IssueTime"),
        amount_text(tree.findtext(totals + "cbc:LineExtensionAmount", None, NS)),
        "01",
        tax_text(tree, "01"),
        "04",
        tax_text(tree, "04"),
        "03",
        tax_text(tree, "03"),
        amount_text(tree.findtext(totals + "cbc:PayableAmount", None, NS)),
        document.supplier_nit,
        customer,
        pin,
        _text(tree, "cbc:ProfileExecutionID"),
    ]
    return hashlib.sha384("".join(parts).encode("utf-8")).hexdigest()


def cude_errors(document: Document, pos_software: dict[str, str]) -> list[str]:
    """DEAD06 unless the UUID is the CUDE keyed with the PIN of the software that sent it."""
    software = software_id(document)
    pin = pos_software.get(software)
    if pin is None:
        log.warning("no PIN configured for software %r: CUDE check skipped", software)
        return []
    return [] if expected_cude(document, pin) == document.cufe else [CUDE_RULE]


def range_errors(document: Document, ranges: dict[str, AuthorizedRange]) -> list[str]:
    """InvoiceControl against the POS range DIAN authorized for that prefix."""
    control = document.tree.find("ext:UBLExtensions//sts:DianExtensions/sts:InvoiceControl", NS)
    if control is None:
        return ["Regla: DEAB05a, Rechazo: No fue informado el grupo InvoiceControl."]
    resolution = _text(control, "sts:InvoiceAuthorization")
    prefix = _text(control, "sts:AuthorizedInvoices/sts:Prefix")
    authorized = ranges.get(prefix)
    if authorized is None or authorized.resolution != resolution:
        return [
            f"Regla: DEAB05a, Rechazo: La autorización de numeración {resolution} con prefijo "
            f"'{prefix}' no existe para este emisor."
        ]
    errors = []
    period, numbers = "sts:AuthorizationPeriod/cbc:", "sts:AuthorizedInvoices/sts:"
    checks: tuple[tuple[str, str, date | int, str], ...] = (
        ("DEAB07b", period + "StartDate", authorized.valid_from, "fecha inicial"),
        ("DEAB08b", period + "EndDate", authorized.valid_to, "fecha final"),
        ("DEAB11b", numbers + "From", authorized.first, "rango inicial"),
        ("DEAB12b", numbers + "To", authorized.last, "rango final"),
    )
    for code, path, value, words in checks:
        if not _same(_text(control, path), value):
            errors.append(
                f"Regla: {code}, Rechazo: El valor de {words} no corresponde al de la "
                f"autorización {resolution}."
            )
    digits = document.number[len(prefix) :] if document.number.startswith(prefix) else ""
    if not digits.isdigit() or not authorized.first <= int(digits) <= authorized.last:
        errors.append(
            f"Regla: DEAD05e, Rechazo: El número {document.number} no existe para la "
            f"autorización de numeración {resolution}."
        )
    return errors


def _same(text: str, value: date | int) -> bool:
    try:
        if isinstance(value, date):
            return date.fromisoformat(text) == value
        return int(text) == value
    except ValueError:
        return False
