"""`einvoice issuer add|show|list|set|enable|disable|add-certificate|set-secret|rotate-secrets`:
the issuers a deployment issues for, stored in the database with their secrets sealed by
SECRETS_KEY.

Secrets never come from the command line (it is visible to other users and kept in shell
history): a PIN or password is read from the environment variable you name
(`--invoice-pin-env VAR`) or asked for on the terminal. The settings' single issuer
(ISSUER__*, DIAN__*, FACTUS__*) stays the default for small deployments; `issuer add
--from-settings` stores it like any other.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from adapters.db.issuers import GATEWAYS, Issuer, Secret, Software, SqlIssuers
from domain.dian_codes import is_nit_number, nit_check_digit
from worker.cli_exits import BadInput, Misconfigured, NoInput, UsageError
from worker.settings import Settings

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
RESPONSIBILITIES = ("O-13", "O-15", "O-23", "O-47", "R-99-PN")


@dataclass(frozen=True)
class Field:
    """One stored field as an option of `issuer add` and `issuer set`."""

    option: str
    help: str
    check: Callable[[str], str | None]  # the rule it breaks, or None
    apply: Callable[[Issuer, str], Issuer]


def _pattern(regex: str, rule: str) -> Callable[[str], str | None]:
    compiled = re.compile(regex)
    return lambda value: None if compiled.fullmatch(value) else rule


def _text(limit: int) -> Callable[[str], str | None]:
    return lambda value: None if 0 < len(value.strip()) <= limit else f"1 to {limit} characters"


def _one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda value: None if value in choices else "one of " + ", ".join(choices)


def _address(name: str) -> Callable[[Issuer, str], Issuer]:
    return lambda i, v: replace(i, address=replace(i.address, **{name: v}))


def _software(family: str, name: str) -> Callable[[Issuer, str], Issuer]:
    attribute = f"{family}_software"
    return lambda i, v: replace(i, **{attribute: replace(getattr(i, attribute), **{name: v})})


def _factus(name: str) -> Callable[[Issuer, str], Issuer]:
    return lambda i, v: replace(i, factus={**i.factus, name: v})


def _software_fields(family: str, label: str) -> list[Field]:
    return [
        Field(
            f"--{family}-software-id",
            f"DIAN software id of the {label} family",
            _pattern(UUID.pattern, "a UUID, as DIAN assigned it"),
            _software(family, "software_id"),
        ),
        Field(
            f"--{family}-environment",
            f"{label} family: 1 producción, 2 habilitación",
            _one_of("1", "2"),
            _software(family, "environment"),
        ),
        Field(
            f"--{family}-test-set-id",
            f"{label} family: the habilitación test set id",
            _pattern(UUID.pattern, "a UUID, as DIAN assigned it"),
            _software(family, "test_set_id"),
        ),
    ]


FIELDS = [
    Field(
        "--legal-name",
        "razón social, as in the RUT",
        _text(450),
        lambda i, v: replace(i, legal_name=v),
    ),
    Field("--trade-name", "nombre comercial", _text(450), lambda i, v: replace(i, trade_name=v)),
    Field(
        "--person-type",
        "1 jurídica, 2 natural",
        _one_of("1", "2"),
        lambda i, v: replace(i, person_type=v),
    ),
    Field(
        "--tax-scheme",
        "01 IVA, ZZ not responsible",
        _one_of("01", "ZZ"),
        lambda i, v: replace(i, tax_scheme=v),
    ),
    Field(
        "--responsibilities",
        "fiscal responsibilities, comma-separated (" + ", ".join(RESPONSIBILITIES) + ")",
        lambda v: (
            None
            if v and all(r in RESPONSIBILITIES for r in v.split(","))
            else "comma-separated codes among " + ", ".join(RESPONSIBILITIES)
        ),
        lambda i, v: replace(i, tax_responsibilities=tuple(v.split(","))),
    ),
    Field(
        "--municipality-code",
        "DANE code, 5 digits",
        _pattern(r"[0-9]{5}", "5 digits (DANE)"),
        _address("municipality_code"),
    ),
    Field("--city", "municipality name", _text(100), _address("city")),
    Field("--department", "department name", _text(100), _address("department")),
    Field(
        "--department-code",
        "DANE department code, 2 digits",
        _pattern(r"[0-9]{2}", "2 digits (DANE)"),
        _address("department_code"),
    ),
    Field("--address", "street address", _text(200), _address("line")),
    Field(
        "--postal-zone",
        "postal code, 6 digits",
        _pattern(r"[0-9]{6}", "6 digits"),
        _address("postal_zone"),
    ),
    Field(
        "--email",
        "the issuer's e-mail",
        lambda v: None if EMAIL.fullmatch(v) else "an e-mail address",
        lambda i, v: replace(i, email=v),
    ),
    Field("--phone", "the issuer's phone", _text(40), lambda i, v: replace(i, phone=v)),
    Field(
        "--gateway",
        "dian, factus or simulated",
        _one_of(*GATEWAYS),
        lambda i, v: replace(i, gateway=v),
    ),
    *_software_fields("invoice", "invoice"),
    *_software_fields("pos", "POS"),
    Field(
        "--factus-base-url",
        "Factus API address",
        _pattern(r"https?://\S+", "an http(s) URL"),
        _factus("base_url"),
    ),
    Field("--factus-client-id", "Factus OAuth client id", _text(200), _factus("client_id")),
    Field("--factus-username", "Factus user (e-mail)", _text(254), _factus("username")),
]
SECRET_OPTIONS = {
    Secret.INVOICE_PIN: "--invoice-pin-env",
    Secret.POS_PIN: "--pos-pin-env",
    Secret.FACTUS_CLIENT_SECRET: "--factus-client-secret-env",
    Secret.FACTUS_PASSWORD: "--factus-password-env",
}
TYPED_SECRETS = {s.value: s for s in SECRET_OPTIONS}


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def add_issuer_commands(sub: Any) -> None:
    p = sub.add_parser(
        "issuer",
        help="issuers: add, show, list, set, disable, certificates and secrets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = p.add_subparsers(dest="issuer_command", required=True)

    a = commands.add_parser("add", help="store a new issuer")
    a.add_argument("nit", nargs="?", help="the NIT, digits only, without its check digit")
    a.add_argument("--dv", help="the NIT's check digit (verified)")
    a.add_argument(
        "--from-settings",
        action="store_true",
        help="store the settings' issuer (ISSUER__*, DIAN__*, FACTUS__*) with its secrets",
    )
    for f in FIELDS:
        a.add_argument(f.option, dest=_dest(f.option), help=f.help)
    for option in SECRET_OPTIONS.values():
        a.add_argument(option, metavar="VAR", help="environment variable holding it")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_add)

    s = commands.add_parser("set", help="change stored fields of an issuer")
    s.add_argument("nit")
    for f in FIELDS:
        s.add_argument(f.option, dest=_dest(f.option), help=f.help)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_set)

    sh = commands.add_parser("show", help="one issuer (secrets: only whether and when set)")
    sh.add_argument("nit")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)

    ls = commands.add_parser("list", help="every stored issuer")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    for name, enabled in (("disable", False), ("enable", True)):
        d = commands.add_parser(
            name, help=f"{name} an issuer (its orders are refused at intake while disabled)"
        )
        d.add_argument("nit")
        d.add_argument("--json", action="store_true")
        d.set_defaults(func=cmd_enable, enabled=enabled)

    c = commands.add_parser(
        "add-certificate", help="check and store the issuer's signing certificate (PKCS#12)"
    )
    c.add_argument("nit")
    c.add_argument("file", type=Path, help="the .p12 / .pfx file")
    c.add_argument(
        "--password-env", metavar="VAR", help="environment variable holding its password"
    )
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_add_certificate)

    ss = commands.add_parser("set-secret", help="store a PIN or Factus credential, sealed")
    ss.add_argument("nit")
    ss.add_argument("name", choices=sorted(TYPED_SECRETS))
    ss.add_argument("--value-env", metavar="VAR", help="environment variable holding it")
    ss.set_defaults(func=cmd_set_secret)

    r = commands.add_parser(
        "rotate-secrets", help="re-seal every stored secret with the first key of SECRETS_KEY"
    )
    r.set_defaults(func=cmd_rotate)

    k = commands.add_parser("new-secrets-key", help="print a new key for SECRETS_KEY")
    k.set_defaults(func=cmd_new_key)


def _issuers(settings: Settings, *, sealing: bool = False) -> SqlIssuers:
    from adapters.secretbox import SecretBox, SecretsKeyError
    from worker.bootstrap import container

    box = None
    key = settings.secrets_key.get_secret_value()
    if key or sealing:
        try:
            box = SecretBox.from_setting(key)
        except SecretsKeyError as exc:
            raise Misconfigured(str(exc)) from None
    return SqlIssuers(container(settings).engine, box)


def _changed(issuer: Issuer, args: argparse.Namespace) -> Issuer:
    """`issuer` with every field the arguments give; UsageError naming each broken rule."""
    problems = []
    for f in FIELDS:
        value = getattr(args, _dest(f.option))
        if value is None:
            continue
        rule = f.check(value)
        if rule:
            problems.append(f"{f.option}: {rule}")
        else:
            issuer = f.apply(issuer, value)
    if problems:
        raise UsageError("; ".join(problems))
    return issuer


def _checked_nit(nit: str | None, dv: str | None) -> tuple[str, str]:
    if not nit:
        raise UsageError("NIT: give the issuer's NIT (or --from-settings)")
    if not is_nit_number(nit):
        raise UsageError(f"NIT: digits only, without the check digit (got {nit!r})")
    expected = nit_check_digit(nit)
    if dv is None:
        raise UsageError(f"--dv: give the NIT's check digit (for {nit} it is {expected})")
    if dv != expected:
        raise UsageError(f"--dv: {dv} is not the check digit of NIT {nit} (it is {expected})")
    return nit, dv


def _from_environment(option: str, variable: str | None, prompt: str) -> bytes | None:
    if variable:
        value = os.environ.get(variable)
        if not value:
            raise UsageError(f"{option}: {variable} is not set")
        return value.encode("utf-8")
    if prompt and sys.stdin.isatty():
        return getpass.getpass(prompt).encode("utf-8") or None
    return None


def _settings_issuer(settings: Settings) -> tuple[Issuer, dict[Secret, bytes]]:
    from worker.bootstrap import issuer_profile

    d, f = settings.dian, settings.factus
    p = issuer_profile(settings)
    issuer = Issuer(
        nit=p.nit,
        dv=p.dv,
        legal_name=p.legal_name,
        trade_name=p.trade_name,
        gateway=settings.gateway,
        person_type=p.person_type,
        tax_scheme=p.tax_scheme,
        tax_responsibilities=p.tax_responsibilities,
        address=p.address,
        email=p.email,
        phone=p.phone,
        invoice_software=Software(d.software_id, d.environment, d.test_set_id or ""),
        pos_software=Software(d.pos_software_id, d.pos_environment, d.pos_test_set_id or ""),
        factus={"base_url": f.base_url, "client_id": f.client_id, "username": f.username},
    )
    values = {
        Secret.INVOICE_PIN: d.software_pin.get_secret_value(),
        Secret.POS_PIN: d.pos_software_pin.get_secret_value(),
        Secret.FACTUS_CLIENT_SECRET: f.client_secret.get_secret_value(),
        Secret.FACTUS_PASSWORD: f.password.get_secret_value(),
    }
    return issuer, {k: v.encode("utf-8") for k, v in values.items() if v}


def _print(issuer: Issuer, as_json: bool, verb: str = "") -> None:
    if as_json:
        print(json.dumps(issuer.as_dict(), ensure_ascii=False, indent=2))
        return
    if verb:
        print(f"{verb} issuer {issuer.nit}-{issuer.dv} {issuer.legal_name}")
        return
    d = issuer.as_dict()
    a = issuer.address
    certificate = issuer.certificate
    lines = [
        f"NIT            {issuer.nit}-{issuer.dv}",
        f"legal name     {issuer.legal_name}",
        f"trade name     {issuer.trade_name}",
        f"state          {'enabled' if issuer.enabled else 'disabled'}",
        f"gateway        {issuer.gateway}",
        f"tax            scheme {issuer.tax_scheme}, person type {issuer.person_type}, "
        + ", ".join(issuer.tax_responsibilities),
        f"address        {a.line}, {a.city} ({a.municipality_code}), {a.department}",
        f"contact        {issuer.email} {issuer.phone}".rstrip(),
    ]
    for family in ("invoice", "pos"):
        sw = d["software"][family]
        lines.append(
            f"{family + ' software':<15}{sw['software_id'] or '(none)'}, environment "
            f"{sw['environment']}"
            + (f", test set {sw['test_set_id']}" if sw["test_set_id"] else "")
        )
    if issuer.factus:
        lines.append(f"factus         {issuer.factus}")
    lines.append(
        "certificate    "
        + (
            f"{certificate['subject']}, valid to {certificate['not_after']}"
            if certificate
            else "(none)"
        )
    )
    for name, when in d["secrets"].items():
        lines.append(f"{'secret ' + name:<30} {'set ' + when if when else '(not set)'}")
    print("\n".join(lines))


def cmd_add(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.from_settings:
        issuer, secrets = _settings_issuer(settings)
        if args.nit and args.nit != issuer.nit:
            raise UsageError(
                f"NIT: --from-settings stores ISSUER__NIT {issuer.nit}, not {args.nit}"
            )
    else:
        nit, dv = _checked_nit(args.nit, args.dv)
        missing = [o for o in ("--legal-name", "--gateway") if getattr(args, _dest(o)) is None]
        if missing:
            raise UsageError(", ".join(missing) + ": required")
        issuer = Issuer(nit=nit, dv=dv, legal_name="", trade_name="", gateway="")
        secrets = {}
    issuer = _changed(issuer, args)
    if not issuer.trade_name:
        issuer = replace(issuer, trade_name=issuer.legal_name)
    for name, option in SECRET_OPTIONS.items():
        value = _from_environment(option, getattr(args, _dest(option)), "")
        if value is not None:
            secrets[name] = value
    stored = _issuers(settings, sealing=bool(secrets)).add(issuer, secrets)
    _print(stored, args.json, "added")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    issuers = _issuers(Settings())
    changed = _changed(issuers.get(args.nit), args)
    _print(issuers.update(changed), args.json, "updated")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _print(_issuers(Settings()).get(args.nit), args.json)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    stored = _issuers(Settings()).list()
    if args.json:
        print(json.dumps([i.as_dict() for i in stored], ensure_ascii=False, indent=2))
        return 0
    from worker.ops.tables import render_table

    rows = [
        [
            f"{i.nit}-{i.dv}",
            i.legal_name,
            i.gateway,
            "enabled" if i.enabled else "disabled",
            str(i.certificate["not_after"])[:10] if i.certificate else "(none)",
            ", ".join(sorted(i.secrets_set)) or "(none)",
        ]
        for i in stored
    ]
    headers = ["NIT", "LEGAL NAME", "GATEWAY", "STATE", "CERTIFICATE TO", "SECRETS SET"]
    print(render_table(headers, rows, max_width=40) if rows else "no issuers stored")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    stored = _issuers(Settings()).set_enabled(args.nit, args.enabled)
    _print(stored, args.json, "enabled" if args.enabled else "disabled")
    return 0


def cmd_add_certificate(args: argparse.Namespace) -> int:
    from adapters.dian.certificates import CertificateRefused, check_certificate

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise NoInput(f"cannot read {args.file} ({exc.strerror or type(exc).__name__})") from None
    password = _from_environment("--password-env", args.password_env, "certificate password: ")
    text = password.decode("utf-8") if password else ""
    try:
        info = check_certificate(data, text, args.nit)
    except CertificateRefused as exc:
        raise BadInput(f"certificate refused for issuer {args.nit}: {exc}") from None
    facts = {
        "subject": info.subject,
        "issuer": info.issuer,
        "serial_number": str(info.serial_number),
        "not_before": info.not_valid_before.isoformat(),
        "not_after": info.not_valid_after.isoformat(),
    }
    secrets = {Secret.CERTIFICATE: data}
    if password:
        secrets[Secret.CERTIFICATE_PASSWORD] = password
    stored = _issuers(Settings(), sealing=True).put_secrets(args.nit, secrets, facts)
    if args.json:
        print(json.dumps(stored.as_dict(), ensure_ascii=False, indent=2))
    else:
        days = (info.not_valid_after - info.not_valid_before).days
        print(
            f"stored the certificate of issuer {args.nit}: {info.subject}, valid to "
            f"{info.not_valid_after:%Y-%m-%d} ({days} days in all)"
        )
    return 0


def cmd_set_secret(args: argparse.Namespace) -> int:
    name = TYPED_SECRETS[args.name]
    value = _from_environment("--value-env", args.value_env, f"{args.name}: ")
    if value is None:
        raise UsageError(
            "--value-env: name the environment variable holding it (no terminal to ask on)"
        )
    _issuers(Settings(), sealing=True).put_secrets(args.nit, {name: value}, None)
    print(f"stored {args.name} of issuer {args.nit}")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    secrets, keys = _issuers(Settings(), sealing=True).rotate()
    print(
        f"re-sealed {secrets} secrets and {keys} range technical keys with the first key of "
        "SECRETS_KEY"
    )
    return 0


def cmd_new_key(args: argparse.Namespace) -> int:
    from adapters.secretbox import SecretBox

    print(SecretBox.new_key())
    return 0
