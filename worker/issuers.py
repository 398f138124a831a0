"""Which issuer a document belongs to decides how it is signed and sent.

The settings describe one issuer (ISSUER__*, DIAN__*, FACTUS__*): small deployments and the
demo need nothing else. Issuers stored with `einvoice issuer` add others, and a stored issuer
wins over the settings for its own NIT. `IssuerDirectory` answers, per NIT: may its orders be
taken (and why not), the settings as that issuer's (identity, gateway, DIAN software and PINs,
Factus account), and its gateway, built once per process with that issuer's certificate and
credentials and kept in a bounded cache. `IssuerGateway` is the worker's gateway: it sends each
document through its own issuer's.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy import Engine

from adapters.db.issuers import Issuer, Secret, SqlIssuers
from adapters.secretbox import SecretBox, SecretsKeyError
from domain.delivery import Courier, CourierUnavailable, Delivery
from domain.errors import GatewayUnavailable
from domain.ports import Gateway, GatewayResult, Submission
from worker.settings import IssuerSettings, Settings

if TYPE_CHECKING:
    from adapters.dian.signer import XadesSigner
    from domain.documents import Planner

GATEWAYS_KEPT = 32  # issuers whose gateway (certificate, connections) a process keeps


@dataclass(frozen=True)
class IssuerSetup:
    """One issuer as a process knows it: its settings (without its secrets), as stored (None:
    the settings' issuer), and why its orders cannot be taken (None: they can)."""

    nit: str
    settings: Settings
    stored: Issuer | None = None
    refusal: str | None = None
    incomplete: bool = False  # known and enabled, but its setup lacks something


def missing_setup(issuer: Issuer) -> list[str]:
    """What a stored issuer still needs before its documents can go out through its gateway."""
    have = issuer.secrets_set
    needs: dict[str, list[str]] = {
        "dian": [Secret.CERTIFICATE, Secret.INVOICE_PIN, Secret.POS_PIN],
        "factus": [Secret.FACTUS_CLIENT_SECRET, Secret.FACTUS_PASSWORD],
        "simulated": [],
    }
    missing = [
        f"its {name} (issuer set-secret / add-certificate)"
        for name in needs[issuer.gateway]
        if name not in have
    ]
    if issuer.gateway == "dian":
        for family, software in (
            ("invoice", issuer.invoice_software),
            ("pos", issuer.pos_software),
        ):
            if not software.software_id:
                missing.append(f"--{family}-software-id")
    if issuer.gateway == "factus":
        for name in ("client_id", "username", "numbering_range_id"):
            if not issuer.factus.get(name):
                missing.append("--factus-" + name.replace("_", "-"))
    return missing


def settings_for(
    base: Settings, issuer: Issuer, secret: Callable[[Secret], bytes | None]
) -> Settings:
    """`base` as the settings of `issuer`: its identity, gateway, DIAN software and Factus
    account; everything else (timeouts, workers, registers, numbering defaults) is shared."""

    def text(name: Secret) -> SecretStr:
        value = secret(name)
        return SecretStr(value.decode("utf-8") if value else "")

    a = issuer.address
    identity = IssuerSettings(
        nit=issuer.nit,
        dv=issuer.dv,
        legal_name=issuer.legal_name,
        trade_name=issuer.trade_name,
        person_type=issuer.person_type,
        tax_responsibilities=list(issuer.tax_responsibilities),
        tax_scheme=issuer.tax_scheme,
        municipality_code=a.municipality_code,
        city=a.city,
        department=a.department,
        department_code=a.department_code,
        address_line=a.line,
        postal_zone=a.postal_zone,
        email=issuer.email,
        phone=issuer.phone,
    )
    inv, pos, f = issuer.invoice_software, issuer.pos_software, issuer.factus
    dian = base.dian.model_copy(
        update={
            "software_id": inv.software_id,
            "software_pin": text(Secret.INVOICE_PIN),
            "environment": inv.environment,
            "test_set_id": inv.test_set_id or None,
            "pos_software_id": pos.software_id,
            "pos_software_pin": text(Secret.POS_PIN),
            "pos_environment": pos.environment,
            "pos_test_set_id": pos.test_set_id or None,
            "provider_nit": None,
            "cert_path": None,
            "cert_password": SecretStr(""),
        }
    )
    factus = base.factus.model_copy(
        update={
            "base_url": f.get("base_url") or base.factus.base_url,
            "client_id": f.get("client_id", ""),
            "client_secret": text(Secret.FACTUS_CLIENT_SECRET),
            "username": f.get("username", ""),
            "password": text(Secret.FACTUS_PASSWORD),
            "numbering_range_id": int(f["numbering_range_id"])
            if f.get("numbering_range_id")
            else None,
        }
    )
    return base.model_copy(
        update={"gateway": issuer.gateway, "issuer": identity, "dian": dian, "factus": factus}
    )


class IssuerDirectory:
    """Per process: what it knows of each issuer, read again after ISSUER_REFRESH_SECONDS, and a
    bounded cache of gateways (the least recently used one is closed when it overflows)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        build: Callable[[Settings, XadesSigner | None], Gateway] | None = None,
        capacity: int = GATEWAYS_KEPT,
        refresh: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        key = settings.secrets_key.get_secret_value()
        self._settings = settings
        self._issuers = SqlIssuers(engine, SecretBox.from_setting(key) if key else None)
        self._build = build or _build_gateway
        self._capacity = capacity
        self._refresh = settings.issuer_refresh_seconds if refresh is None else refresh
        self._clock = clock
        self._setups: dict[str, tuple[float, IssuerSetup]] = {}
        self._gateways: OrderedDict[str, tuple[IssuerSetup, Any]] = OrderedDict()
        self._couriers: OrderedDict[str, tuple[IssuerSetup, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def default_nit(self) -> str:
        return self._settings.issuer.nit

    def setup(self, nit: str) -> IssuerSetup:
        now = self._clock()
        with self._lock:
            cached = self._setups.get(nit)
            if cached is not None and now - cached[0] < self._refresh:
                return cached[1]
        found = self._read(nit)
        with self._lock:
            self._setups[nit] = (now, found)
        return found

    def known(self, nit: str) -> IssuerSetup | None:
        """What this process read of `nit` less than ISSUER_REFRESH_SECONDS ago, or None (then
        `setup` reads it): lets a caller on an event loop skip a thread when nothing is read."""
        now = self._clock()
        with self._lock:
            cached = self._setups.get(nit)
        if cached is not None and now - cached[0] < self._refresh:
            return cached[1]
        return None

    def refusal(self, nit: str) -> str | None:
        """Why orders for `nit` cannot be taken here, or None."""
        return self.setup(nit).refusal

    def settings(self, nit: str) -> Settings:
        return self.setup(nit).settings

    def planner(self, nit: str, configured: Planner) -> Planner:
        """What accepted orders of `nit` become: `configured` for the settings' issuer (the
        caller stores its configured ranges first), a stored issuer's own otherwise (its
        gateway decides numbering)."""
        setup = self.setup(nit)
        if setup.stored is None:
            return configured
        from worker.bootstrap import planner

        return planner(setup.settings)

    def gateway(self, nit: str) -> Gateway:
        """The gateway that signs and sends as `nit`; GatewayUnavailable while the issuer
        cannot be issued for (its documents wait, nothing is sent under another name)."""
        gateway: Gateway = self._kept(self._gateways, nit, self._build)
        return gateway

    def courier(
        self, nit: str, build: Callable[[Settings, XadesSigner | None], Courier]
    ) -> Courier:
        """The courier of `nit`'s buyers' copies (its certificate signs the AttachedDocument,
        or its Factus account sends Factus' e-mail), kept like its gateway."""
        courier: Courier = self._kept(self._couriers, nit, build)
        return courier

    def _kept(
        self,
        cache: OrderedDict[str, tuple[IssuerSetup, Any]],
        nit: str,
        build: Callable[[Settings, XadesSigner | None], Any],
    ) -> Any:
        setup = self.setup(nit)
        if setup.refusal is not None:
            raise GatewayUnavailable(f"not sent: {setup.refusal}")
        with self._lock:
            kept = cache.get(nit)
            if kept is not None and kept[0] is setup:
                cache.move_to_end(nit)
                return kept[1]
        if setup.stored is None:
            made = build(*self._with_secrets(setup))  # the settings' issuer: errors as they are
        else:
            try:
                made = build(*self._with_secrets(setup))
            except GatewayUnavailable:
                raise
            except Exception as exc:  # a stored issuer's setup the gateway cannot use
                raise GatewayUnavailable(f"not sent: issuer {nit}: {exc}") from exc
        with self._lock:
            old = cache.pop(nit, None)
            cache[nit] = (setup, made)
            evicted = [old[1]] if old and old[1] is not made else []
            while len(cache) > self._capacity:
                evicted.append(cache.popitem(last=False)[1][1])
        for gone in evicted:
            _close(gone)
        return made

    def close(self) -> None:
        with self._lock:
            kept = [g for _, g in [*self._gateways.values(), *self._couriers.values()]]
            self._gateways.clear()
            self._couriers.clear()
        for made in kept:
            _close(made)

    def _read(self, nit: str) -> IssuerSetup:
        stored = self._issuers.find(nit)
        if stored is None:
            if nit == self.default_nit:
                return IssuerSetup(nit, self._settings)
            return IssuerSetup(
                nit, self._settings, refusal=f"issuer {nit} is unknown (einvoice issuer add)"
            )
        if not stored.enabled:
            return IssuerSetup(
                nit,
                self._settings,
                stored,
                refusal=f"issuer {nit} is disabled (einvoice issuer enable {nit})",
            )
        missing = missing_setup(stored)
        if missing:
            return IssuerSetup(
                nit, self._settings, stored,
                refusal=f"issuer {nit} is not ready to issue: it lacks " + ", ".join(missing),
                incomplete=True,
            )  # fmt: skip
        return IssuerSetup(nit, settings_for(self._settings, stored, _no_secret), stored)

    def signing(self, nit: str) -> tuple[Settings, XadesSigner | None]:
        """The settings of `nit` with its secrets, and its stored certificate (None: the
        settings' DIAN__CERT_PATH) for commands that talk to its authority themselves."""
        return self._with_secrets(self.setup(nit))

    def _with_secrets(self, setup: IssuerSetup) -> tuple[Settings, XadesSigner | None]:
        """The issuer's settings with its secrets, and its stored certificate loaded: read
        only where a gateway is built (the intake never opens a secret)."""
        if setup.stored is None:
            return setup.settings, None
        nit = setup.nit
        try:
            secrets = {name: self._issuers.secret(nit, name) for name in Secret}
        except (SecretsKeyError, ValueError) as exc:
            raise GatewayUnavailable(f"not sent: issuer {nit}: {exc}") from None
        settings = settings_for(self._settings, setup.stored, secrets.__getitem__)
        certificate = secrets[Secret.CERTIFICATE]
        if certificate is None:
            return settings, None
        password = (secrets[Secret.CERTIFICATE_PASSWORD] or b"").decode("utf-8")
        return settings, _signer(certificate, password)


def _no_secret(name: Secret) -> bytes | None:
    return None


class IssuerCourier:
    """The delivery worker's courier: each buyer's copy goes through its own issuer's."""

    def __init__(
        self,
        directory: IssuerDirectory,
        build: Callable[[Settings, XadesSigner | None], Courier],
    ) -> None:
        self._directory = directory
        self._build = build

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        try:
            courier = self._directory.courier(delivery.key.issuer, self._build)
        except GatewayUnavailable as exc:
            raise CourierUnavailable(str(exc)) from None
        return courier.deliver(delivery)


class IssuerGateway:
    """The worker's gateway: each document goes through the gateway of its own issuer."""

    name = "issuers"

    def __init__(self, directory: IssuerDirectory) -> None:
        self._directory = directory

    def submit(self, submission: Submission) -> GatewayResult:
        return self._directory.gateway(submission.key.issuer).submit(submission)

    def status(self, submission: Submission) -> GatewayResult:
        return self._directory.gateway(submission.key.issuer).status(submission)


def _signer(certificate: bytes, password: str) -> XadesSigner:
    from adapters.dian.signer import SigningError, XadesSigner

    try:
        return XadesSigner.from_pkcs12(certificate, password)
    except SigningError as exc:
        raise GatewayUnavailable(f"not sent: the stored certificate cannot sign: {exc}") from None


def _build_gateway(settings: Settings, signer: XadesSigner | None) -> Gateway:
    from worker.bootstrap import build_gateway

    return build_gateway(settings, signer)


def _close(gateway: Gateway) -> None:
    close = getattr(gateway, "close", None)
    if callable(close):
        close()
