"""Issuers in PostgreSQL: who a deployment issues for, each with its identity (RUT), the gateway
it uses, its DIAN software per family and its secrets, sealed with the master key.

Secrets (`issuer_secrets`) are sealed by `adapters.secretbox.SecretBox` before they reach the
database and opened only in the application: the services' database role reads ciphertext.
What operators see of a secret is whether it is set and when; never its value.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Engine,
    ForeignKey,
    String,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from adapters.db.models import Base
from adapters.db.ranges import reseal_technical_keys
from adapters.secretbox import SecretBox
from domain.issuer import Address, IssuerProfile

JSON_DOC = JSON().with_variant(postgresql.JSONB(), "postgresql")
GATEWAYS = ("dian", "factus", "simulated")


class Secret(enum.StrEnum):
    """What an issuer keeps secret; the value is the CLI's name for it."""

    CERTIFICATE = "certificate"  # the PKCS#12 file's bytes
    CERTIFICATE_PASSWORD = "certificate-password"
    INVOICE_PIN = "invoice-pin"  # DIAN software PIN, invoices and their notes
    POS_PIN = "pos-pin"  # DIAN software PIN, POS documents and their notes
    FACTUS_CLIENT_SECRET = "factus-client-secret"
    FACTUS_PASSWORD = "factus-password"


SECRET_NAMES = tuple(s.value for s in Secret)


class IssuerRow(Base):
    __tablename__ = "issuers"
    __table_args__ = (
        CheckConstraint("gateway IN ('dian', 'factus', 'simulated')", name="gateway"),
    )

    nit: Mapped[str] = mapped_column(String(20), primary_key=True)
    dv: Mapped[str] = mapped_column(String(1))
    legal_name: Mapped[str] = mapped_column(String(450))
    trade_name: Mapped[str] = mapped_column(String(450))
    person_type: Mapped[str] = mapped_column(String(1))
    tax_scheme: Mapped[str] = mapped_column(String(2))
    tax_responsibilities: Mapped[list[str]] = mapped_column(JSON_DOC)
    address: Mapped[dict[str, str]] = mapped_column(JSON_DOC)
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(40))
    gateway: Mapped[str] = mapped_column(String(10))
    software: Mapped[dict[str, Any]] = mapped_column(JSON_DOC)
    factus: Mapped[dict[str, str]] = mapped_column(JSON_DOC)
    certificate: Mapped[dict[str, Any] | None] = mapped_column(JSON_DOC)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IssuerSecretRow(Base):
    __tablename__ = "issuer_secrets"
    __table_args__ = (
        CheckConstraint("name IN (" + ", ".join(f"'{n}'" for n in SECRET_NAMES) + ")", name="name"),
    )

    nit: Mapped[str] = mapped_column(ForeignKey("issuers.nit"), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


@dataclass(frozen=True)
class Software:
    """One DIAN software registration (family `invoice` or `pos`); its PIN is a secret."""

    software_id: str = ""
    environment: str = "2"  # 1 producción, 2 habilitación
    test_set_id: str = ""


@dataclass(frozen=True)
class Issuer:
    """An issuer as stored, without its secrets."""

    nit: str
    dv: str
    legal_name: str
    trade_name: str
    gateway: str
    person_type: str = "1"
    tax_scheme: str = "01"
    tax_responsibilities: tuple[str, ...] = ("R-99-PN",)
    address: Address = field(default_factory=Address)
    email: str = ""
    phone: str = ""
    invoice_software: Software = field(default_factory=Software)
    pos_software: Software = field(default_factory=Software)
    factus: Mapping[str, str] = field(default_factory=dict)  # base_url, client_id, username
    certificate: Mapping[str, Any] | None = None  # subject, serial, not_after (no secret)
    enabled: bool = True
    secrets_set: Mapping[str, datetime] = field(default_factory=dict)

    def profile(self) -> IssuerProfile:
        return IssuerProfile(
            nit=self.nit,
            dv=self.dv,
            legal_name=self.legal_name,
            trade_name=self.trade_name,
            person_type=self.person_type,
            tax_responsibilities=self.tax_responsibilities,
            tax_scheme=self.tax_scheme,
            address=self.address,
            email=self.email,
            phone=self.phone,
        )

    def as_dict(self) -> dict[str, Any]:
        """What `issuer show --json` prints: every stored field, and for secrets only when
        each was set."""
        return {
            "nit": self.nit,
            "dv": self.dv,
            "legal_name": self.legal_name,
            "trade_name": self.trade_name,
            "gateway": self.gateway,
            "enabled": self.enabled,
            "person_type": self.person_type,
            "tax_scheme": self.tax_scheme,
            "tax_responsibilities": list(self.tax_responsibilities),
            "address": asdict(self.address),
            "email": self.email,
            "phone": self.phone,
            "software": {
                "invoice": asdict(self.invoice_software),
                "pos": asdict(self.pos_software),
            },
            "factus": dict(self.factus),
            "certificate": dict(self.certificate) if self.certificate else None,
            "secrets": {
                name: (self.secrets_set[name].isoformat() if name in self.secrets_set else None)
                for name in SECRET_NAMES
            },
        }


class IssuerExists(ValueError):
    pass


class UnknownIssuer(LookupError):
    pass


def _row_values(issuer: Issuer) -> dict[str, Any]:
    return {
        "nit": issuer.nit,
        "dv": issuer.dv,
        "legal_name": issuer.legal_name,
        "trade_name": issuer.trade_name,
        "person_type": issuer.person_type,
        "tax_scheme": issuer.tax_scheme,
        "tax_responsibilities": list(issuer.tax_responsibilities),
        "address": asdict(issuer.address),
        "email": issuer.email,
        "phone": issuer.phone,
        "gateway": issuer.gateway,
        "software": {
            "invoice": asdict(issuer.invoice_software),
            "pos": asdict(issuer.pos_software),
        },
        "factus": dict(issuer.factus),
        "certificate": dict(issuer.certificate) if issuer.certificate else None,
        "enabled": issuer.enabled,
    }


def _issuer(row: Any, secrets_set: Mapping[str, datetime]) -> Issuer:
    software = row.software or {}
    return Issuer(
        nit=row.nit,
        dv=row.dv,
        legal_name=row.legal_name,
        trade_name=row.trade_name,
        gateway=row.gateway,
        person_type=row.person_type,
        tax_scheme=row.tax_scheme,
        tax_responsibilities=tuple(row.tax_responsibilities),
        address=Address(**row.address),
        email=row.email,
        phone=row.phone,
        invoice_software=Software(**software.get("invoice", {})),
        pos_software=Software(**software.get("pos", {})),
        factus=dict(row.factus or {}),
        certificate=row.certificate,
        enabled=bool(row.enabled),
        secrets_set=secrets_set,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def secret_label(nit: str, name: str) -> str:
    return f"{nit}/{name}"


class SqlIssuers:
    def __init__(self, engine: Engine, box: SecretBox | None = None) -> None:
        self._engine = engine
        self._box = box

    def _sealer(self) -> SecretBox:
        if self._box is None:
            raise ValueError("SECRETS_KEY is needed to store or read issuers' secrets")
        return self._box

    def add(self, issuer: Issuer, secrets: Mapping[Secret, bytes] | None = None) -> Issuer:
        """Store a new issuer with its secrets in one transaction; IssuerExists for a NIT
        already stored (nothing is stored then)."""
        sealed = self._sealed(issuer.nit, secrets or {})
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(IssuerRow).values(**_row_values(issuer)))
                for name, token in sealed.items():
                    conn.execute(
                        insert(IssuerSecretRow).values(nit=issuer.nit, name=name, sealed=token)
                    )
        except IntegrityError:
            raise IssuerExists(f"issuer {issuer.nit} is already stored") from None
        return self.get(issuer.nit)

    def get(self, nit: str) -> Issuer:
        found = self.find(nit)
        if found is None:
            raise UnknownIssuer(f"no issuer {nit} (see `einvoice issuer list`)")
        return found

    def find(self, nit: str) -> Issuer | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(IssuerRow).where(IssuerRow.nit == nit)).first()
            if row is None:
                return None
            return _issuer(row, self._secrets_set(conn, [nit]).get(nit, {}))

    def list(self, include_disabled: bool = True) -> list[Issuer]:
        query = select(IssuerRow).order_by(IssuerRow.nit)
        if not include_disabled:
            query = query.where(IssuerRow.enabled.is_(True))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            secrets = self._secrets_set(conn, [r.nit for r in rows])
        return [_issuer(r, secrets.get(r.nit, {})) for r in rows]

    def update(self, issuer: Issuer) -> Issuer:
        """Replace the stored fields of `issuer.nit` (secrets are kept)."""
        values = _row_values(issuer)
        del values["nit"]
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(IssuerRow)
                .where(IssuerRow.nit == issuer.nit)
                .values(**values, updated_at=func.now())
            ).rowcount
        if not changed:
            raise UnknownIssuer(f"no issuer {issuer.nit} (see `einvoice issuer list`)")
        return self.get(issuer.nit)

    def set_enabled(self, nit: str, enabled: bool) -> Issuer:
        return self.update(replace(self.get(nit), enabled=enabled))

    def put_secrets(
        self, nit: str, secrets: Mapping[Secret, bytes], certificate: Mapping[str, Any] | None
    ) -> Issuer:
        """Store (or replace) secrets of a stored issuer, and the public facts of its
        certificate when one is among them, in one transaction."""
        sealed = self._sealed(nit, secrets)
        with self._engine.begin() as conn:
            found = conn.execute(
                select(IssuerRow.nit).where(IssuerRow.nit == nit).with_for_update()
            ).first()
            if found is None:
                raise UnknownIssuer(f"no issuer {nit} (see `einvoice issuer list`)")
            for name, token in sealed.items():
                self._upsert(conn, nit, name, token)
            if certificate is not None:
                conn.execute(
                    update(IssuerRow)
                    .where(IssuerRow.nit == nit)
                    .values(certificate=dict(certificate), updated_at=func.now())
                )
        return self.get(nit)

    def secret(self, nit: str, name: Secret) -> bytes | None:
        with self._engine.connect() as conn:
            token = conn.execute(
                select(IssuerSecretRow.sealed).where(
                    IssuerSecretRow.nit == nit, IssuerSecretRow.name == name.value
                )
            ).scalar()
        if token is None:
            return None
        return self._sealer().open(secret_label(nit, name.value), token)

    def rotate(self) -> tuple[int, int]:
        """Re-seal every stored secret and every range's technical key (a clear one is sealed)
        with the first key of SECRETS_KEY, in one transaction (a secret no key opens stops the
        rotation and changes nothing); how many secrets, how many technical keys."""
        box = self._sealer()
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(IssuerSecretRow.nit, IssuerSecretRow.name, IssuerSecretRow.sealed)
                .order_by(IssuerSecretRow.nit, IssuerSecretRow.name)
                .with_for_update()
            ).all()
            for row in rows:
                token = box.reseal(secret_label(row.nit, row.name), row.sealed)
                conn.execute(
                    update(IssuerSecretRow)
                    .where(IssuerSecretRow.nit == row.nit, IssuerSecretRow.name == row.name)
                    .values(sealed=token, updated_at=func.now())
                )
            keys = reseal_technical_keys(conn, box)
        return len(rows), keys

    def _sealed(self, nit: str, secrets: Mapping[Secret, bytes]) -> dict[str, str]:
        if not secrets:
            return {}
        box = self._sealer()
        return {
            name.value: box.seal(secret_label(nit, name.value), value)
            for name, value in secrets.items()
        }

    @staticmethod
    def _upsert(conn: Any, nit: str, name: str, token: str) -> None:
        changed = conn.execute(
            update(IssuerSecretRow)
            .where(IssuerSecretRow.nit == nit, IssuerSecretRow.name == name)
            .values(sealed=token, updated_at=func.now())
        ).rowcount
        if not changed:
            conn.execute(insert(IssuerSecretRow).values(nit=nit, name=name, sealed=token))

    @staticmethod
    def _secrets_set(conn: Any, nits: Sequence[str]) -> dict[str, dict[str, datetime]]:
        found: dict[str, dict[str, datetime]] = {}
        if not nits:
            return found
        rows: Iterator[Any] = iter(
            conn.execute(
                select(IssuerSecretRow.nit, IssuerSecretRow.name, IssuerSecretRow.updated_at).where(
                    IssuerSecretRow.nit.in_(list(nits))
                )
            ).all()
        )
        for row in rows:
            found.setdefault(row.nit, {})[row.name] = _aware(row.updated_at)
        return found
