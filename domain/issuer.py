"""Who issues the documents: identity, DIAN software registration, numbering range."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from domain.documents import DocumentKind


@dataclass(frozen=True)
class Address:
    municipality_code: str = "11001"  # DANE, 5 digits
    city: str = "Bogotá, D.C."
    department: str = "Bogotá"
    department_code: str = "11"
    line: str = "Calle 1 # 1-1"
    postal_zone: str = "110111"
    country_code: str = "CO"
    country_name: str = "Colombia"


@dataclass(frozen=True)
class IssuerProfile:
    """The seller as DIAN knows it (RUT)."""

    nit: str
    dv: str
    legal_name: str
    trade_name: str
    person_type: str = "1"  # AdditionalAccountID: 1 jurídica, 2 natural
    tax_responsibilities: tuple[str, ...] = ("R-99-PN",)
    tax_scheme: str = "01"  # IVA responsible; "ZZ" not responsible
    address: Address = field(default_factory=Address)
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class SoftwareRegistration:
    """The issuer's own-software registration at DIAN. `pin` is secret."""

    software_id: str
    pin: str = field(repr=False)
    provider_nit: str  # own NIT for own software
    provider_dv: str
    environment: str = "2"  # ProfileExecutionID: 1 producción, 2 habilitación
    test_set_id: str | None = None


@dataclass(frozen=True)
class NumberingRange:
    """An authorized numbering resolution for one document kind.

    `technical_key` is secret and never written in XML (POS ranges have none: the CUDE is keyed
    with the software PIN). `register` is the till the range serves (None: every till of the
    issuer without a range of its own). `width` keeps leading zeros: a range authorized as
    `0001`-`5000` numbers `0001`, `0002`, ... (`width` 4); 0 writes the number as it is.
    `id` is the stored range's id (None for a range that only lives in settings).
    `sealed_key` is the technical key as stored, encrypted with the master key (see
    `adapters.secretbox`): `technical_key` is then empty until the document builder opens it.
    """

    resolution: str
    prefix: str
    first: int
    last: int
    valid_from: date
    valid_to: date
    technical_key: str = field(default="", repr=False)
    kind: DocumentKind = DocumentKind.INVOICE
    register: str | None = None
    width: int = 0
    id: int | None = None
    sealed_key: str = field(default="", repr=False)

    @property
    def has_technical_key(self) -> bool:
        return bool(self.technical_key or self.sealed_key)

    def contains(self, number: int) -> bool:
        return self.first <= number <= self.last

    def digits(self, number: int) -> str:
        """The number as this range writes it (`From`, `To` and every `cbc:ID`)."""
        return str(number).zfill(self.width)
