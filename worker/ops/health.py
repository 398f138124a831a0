"""`einvoice health`: is this deployment able to issue invoices right now?

Checks the database (reachable, migrated to the newest revision), the broker, the signing
certificate when GATEWAY=dian (valid, days left) and the numbering range (numbers and days
left). Exit status 1 when any check fails; warnings alone keep it 0.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from adapters.db.ranges import describe, list_ranges
from worker.bootstrap import sync_configured_ranges
from worker.migrations import alembic_config
from worker.ops.broker import check_reachable
from worker.ops.database import engine_for
from worker.ops.listing import SubParsers
from worker.ops.tables import BOGOTA, print_json, render_table
from worker.settings import Settings

Status = Literal["ok", "warn", "fail"]
CERT_WARN_DAYS = 30


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def check_database(settings: Settings) -> list[Check]:
    head = set(ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads())
    try:
        with engine_for(settings) as engine:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                current = set(MigrationContext.configure(conn).get_current_heads())
            numbering: list[Check] = []
            if current == head and settings.needs_numbering:
                sync_configured_ranges(settings, engine)  # the settings' range as it is now
                with engine.connect() as conn:
                    numbering = _numbering(settings, conn)
            if current == head:
                numbering += _stored_issuers(settings, engine)
    except SQLAlchemyError as exc:
        return [Check("database", "fail", f"unreachable ({type(exc).__name__})")]
    revisions = {"current": sorted(current), "head": sorted(head)}
    if current != head:
        detail = (
            f"reachable, but at revision {', '.join(sorted(current)) or 'none'} instead of "
            f"{', '.join(sorted(head))}: run `einvoice migrate`"
        )
        return [Check("database", "fail", detail, revisions)]
    ok = Check("database", "ok", f"reachable, migrated to {', '.join(sorted(head))}", revisions)
    return [ok, *numbering]


def _stored_issuers(settings: Settings, engine: Any) -> list[Check]:
    """Per enabled stored issuer (other than the settings' one, checked above): its
    certificate's days left and its ranges."""
    from adapters.db.issuers import SqlIssuers

    checks = []
    now = datetime.now(UTC)
    for issuer in SqlIssuers(engine).list(include_disabled=False):
        if issuer.nit == settings.issuer.nit:
            continue
        facts = issuer.certificate
        if facts:
            ends = datetime.fromisoformat(str(facts["not_after"]))
            days = (ends - now).days
            status: Status = "fail" if ends <= now else "warn" if days < CERT_WARN_DAYS else "ok"
            detail = (
                f"expired on {ends.date()}"
                if ends <= now
                else f"valid {days} more days (to {ends.date()})"
            )
            data = {"subject": facts["subject"], "not_after": ends.isoformat(), "days_left": days}
            checks.append(Check(f"certificate:{issuer.nit}", status, detail, data))
        elif issuer.gateway == "dian":
            checks.append(
                Check(f"certificate:{issuer.nit}", "fail", "none stored (issuer add-certificate)")
            )
        if issuer.gateway != "factus":
            with engine.connect() as conn:
                checks += _numbering(settings, conn, issuer.nit)
    return checks


def _numbering(settings: Settings, conn: Any, nit: str | None = None) -> list[Check]:
    """One check per active numbering range of the settings' issuer (or of `nit`): fail when
    it can give no number today, warn at 90 % used or 30 days before it expires."""
    today = datetime.now(BOGOTA).date()
    checks = []
    label = f"{nit}:" if nit else ""
    for stored in list_ranges(conn, nit or settings.issuer.nit):
        r = stored.range
        days = (r.valid_to - today).days
        data = {
            **stored.as_dict(today),
            "next_number": stored.next_number,
            "last_number": r.last,
            "days_left": days,
        }
        till = f"register {r.register}" if r.register else "every register"
        detail = (
            f"{r.kind.word} {describe(r)} for {till}: {stored.remaining} numbers left, "
            f"valid {days} more days (to {r.valid_to})"
        )
        status: Status = "ok"
        if stored.remaining <= 0 or days < 0 or r.valid_from > today:
            status = "fail"
        elif stored.warnings(today):
            status = "warn"
        checks.append(Check(f"numbering:{label}{r.kind.word}:{r.prefix}", status, detail, data))
    return checks


def check_broker(settings: Settings) -> Check:
    try:
        check_reachable(settings.broker_url)
    except Exception as exc:  # every transport raises its own errors
        return Check("broker", "fail", f"unreachable ({type(exc).__name__})")
    return Check("broker", "ok", "reachable")


def check_certificate(settings: Settings, now: datetime | None = None) -> Check:
    path = settings.dian.cert_path
    if path is None:
        return Check("certificate", "fail", "DIAN__CERT_PATH is not set")
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Check("certificate", "fail", f"cannot read {path} ({type(exc).__name__})")
    password = settings.dian.cert_password.get_secret_value().encode("utf-8") or None
    try:
        _key, certificate, _chain = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        return Check(
            "certificate", "fail", f"cannot open {path}: not PKCS#12, or the password is wrong"
        )
    if certificate is None:
        return Check("certificate", "fail", f"{path} holds no certificate")
    now = now or datetime.now(UTC)
    ends = certificate.not_valid_after_utc
    days = (ends - now).days
    info = {
        "subject": certificate.subject.rfc4514_string(),
        "not_after": ends.isoformat(),
        "days_left": days,
    }
    if certificate.not_valid_before_utc > now:
        return Check(
            "certificate", "fail", f"not valid before {certificate.not_valid_before_utc}", info
        )
    if ends <= now:
        return Check("certificate", "fail", f"expired on {ends.date()}", info)
    status: Status = "warn" if days < CERT_WARN_DAYS else "ok"
    return Check("certificate", status, f"valid {days} more days (to {ends.date()})", info)


def run_checks(settings: Settings) -> list[Check]:
    checks = [*check_database(settings), check_broker(settings)]
    if settings.gateway == "dian":
        checks.append(check_certificate(settings))
    return checks


def add_parser(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "health",
        help="database, broker, certificate and numbering checks for orchestrators",
        description="Exit status 0 when every check passes (warnings allowed), 1 otherwise.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    results = run_checks(Settings())
    healthy = all(c.status != "fail" for c in results)
    if args.json:
        print_json({"healthy": healthy, "checks": [asdict(c) for c in results]})
    else:
        print(
            render_table(
                ["CHECK", "STATUS", "DETAIL"],
                [[c.name, c.status.upper(), c.detail] for c in results],
                max_width=120,
            )
        )
        print("\nhealthy" if healthy else "\nUNHEALTHY")
    return 0 if healthy else 1
