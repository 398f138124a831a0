"""Issuers stored in PostgreSQL and managed from the command line, with their secrets sealed by
SECRETS_KEY: what is stored, what is refused (and that a refusal stores nothing), rotation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from adapters.db.issuers import Secret, SqlIssuers
from adapters.dian.devcert import make_test_pkcs12
from adapters.secretbox import SecretBox, SecretsKeyError

ROOT = Path(__file__).resolve().parents[2]
NIT, DV = "900123456", "8"
OTHER_NIT, OTHER_DV = "800197268", "4"
KEY = SecretBox.new_key()
ADD = [
    "issuer", "add", NIT, "--dv", DV, "--legal-name", "Panadería Ñandú S.A.S.",
    "--gateway", "dian", "--municipality-code", "05001", "--city", "Medellín",
    "--invoice-software-id", "56f2ae4e-9812-4fad-9255-08fcfcd5ccb0",
    "--invoice-pin-env", "THE_PIN",
]  # fmt: skip


def cli(
    database_url: str, *args: str, key: str | None = KEY, **env: str
) -> subprocess.CompletedProcess[str]:
    variables = {**os.environ, "DATABASE_URL": database_url, "THE_PIN": "pin-7781", **env}
    variables.pop("SECRETS_KEY", None)
    if key is not None:
        variables["SECRETS_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        env=variables,
        cwd=ROOT,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def sealed_values(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT sealed FROM issuer_secrets")).scalars())


def test_an_issuer_is_added_shown_listed_changed_and_disabled(
    database_url: str, clean_db: Engine
) -> None:
    added = cli(database_url, *ADD, "--json")
    assert added.returncode == 0, added.stderr
    shown = json.loads(cli(database_url, "issuer", "show", NIT, "--json").stdout)
    assert shown["legal_name"] == "Panadería Ñandú S.A.S."
    assert shown["trade_name"] == "Panadería Ñandú S.A.S.", "defaults to the legal name"
    assert shown["address"]["city"] == "Medellín" and shown["gateway"] == "dian"
    assert shown["software"]["invoice"]["software_id"].startswith("56f2ae4e")
    assert shown["secrets"]["invoice-pin"] is not None and shown["secrets"]["pos-pin"] is None
    assert "pin-7781" not in added.stdout + json.dumps(shown)

    changed = cli(database_url, "issuer", "set", NIT, "--trade-name", "Ñandú", "--json")
    assert json.loads(changed.stdout)["trade_name"] == "Ñandú", changed.stderr
    disabled = cli(database_url, "issuer", "disable", NIT, "--json")
    assert json.loads(disabled.stdout)["enabled"] is False
    listed = cli(database_url, "issuer", "list")
    assert "disabled" in listed.stdout and f"{NIT}-{DV}" in listed.stdout
    enabled = cli(database_url, "issuer", "enable", NIT, "--json")
    assert json.loads(enabled.stdout)["enabled"] is True


def test_refusals_name_the_rule_and_store_nothing(database_url: str, clean_db: Engine) -> None:
    wrong_dv = cli(database_url, *ADD[:4], "7", *ADD[5:])
    assert wrong_dv.returncode == 2
    assert "--dv: 7 is not the check digit of NIT 900123456 (it is 8)" in wrong_dv.stderr
    bad = cli(
        database_url, *ADD, "--municipality-code", "5001", "--email", "nope", "--gateway", "x"
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    for problem in ("--municipality-code: 5 digits", "--email: an e-mail", "--gateway: one of"):
        assert problem in bad.stderr
    assert cli(database_url, "issuer", "list", "--json").stdout.strip() == "[]"

    assert cli(database_url, *ADD).returncode == 0
    duplicate = cli(database_url, *ADD[:6], "Otra S.A.S.", *ADD[7:])
    assert duplicate.returncode == 1 and "already stored" in duplicate.stderr
    assert SqlIssuers(clean_db).get(NIT).legal_name == "Panadería Ñandú S.A.S."

    unknown = cli(database_url, "issuer", "show", OTHER_NIT)
    assert unknown.returncode == 2 and f"no issuer {OTHER_NIT}" in unknown.stderr


def test_secrets_are_sealed_at_rest_and_need_the_key(database_url: str, clean_db: Engine) -> None:
    no_key = cli(database_url, *ADD, key=None)
    assert no_key.returncode == 78 and "SECRETS_KEY is not set" in no_key.stderr
    assert "Traceback" not in no_key.stderr
    assert SqlIssuers(clean_db).find(NIT) is None, "nothing stored half-way"

    assert cli(database_url, *ADD).returncode == 0
    (sealed,) = sealed_values(clean_db)
    assert "pin-7781" not in sealed
    issuers = SqlIssuers(clean_db, SecretBox([KEY]))
    assert issuers.secret(NIT, Secret.INVOICE_PIN) == b"pin-7781"
    with pytest.raises(SecretsKeyError, match="not in SECRETS_KEY"):
        SqlIssuers(clean_db, SecretBox([SecretBox.new_key()])).secret(NIT, Secret.INVOICE_PIN)


def test_a_sealed_secret_moved_to_another_issuer_is_refused(clean_db: Engine) -> None:
    issuers = SqlIssuers(clean_db, SecretBox([KEY]))
    from adapters.db.issuers import Issuer

    for nit, dv in ((NIT, DV), (OTHER_NIT, OTHER_DV)):
        issuers.add(Issuer(nit, dv, "S.A.S.", "S.A.S.", "dian"), {Secret.INVOICE_PIN: nit.encode()})
    with clean_db.begin() as conn:
        conn.execute(
            text(
                "UPDATE issuer_secrets SET sealed = (SELECT sealed FROM issuer_secrets "
                "WHERE nit = :other) WHERE nit = :nit"
            ),
            {"nit": NIT, "other": OTHER_NIT},
        )
    assert issuers.secret(OTHER_NIT, Secret.INVOICE_PIN) == OTHER_NIT.encode()
    with pytest.raises(SecretsKeyError, match="sealed for another issuer"):
        issuers.secret(NIT, Secret.INVOICE_PIN)


def test_rotation_reseals_every_secret_with_the_new_key(
    database_url: str, clean_db: Engine
) -> None:
    assert cli(database_url, *ADD, "--pos-pin-env", "THE_PIN").returncode == 0
    before = sealed_values(clean_db)
    new = SecretBox.new_key()
    rotated = cli(database_url, "issuer", "rotate-secrets", key=f"{new},{KEY}")
    assert rotated.returncode == 0 and "re-sealed 2 secrets" in rotated.stdout, rotated.stderr
    assert set(sealed_values(clean_db)).isdisjoint(before)
    only_new = SqlIssuers(clean_db, SecretBox([new]))
    assert only_new.secret(NIT, Secret.POS_PIN) == b"pin-7781"
    stale = cli(database_url, "issuer", "rotate-secrets", key=KEY)
    assert stale.returncode == 78 and "cannot open the stored secret" in stale.stderr
    assert only_new.secret(NIT, Secret.INVOICE_PIN) == b"pin-7781", (
        "a failed rotation changes nothing"
    )


@pytest.mark.parametrize(
    ("nit", "password", "valid_from", "reason"),
    [
        (NIT, "wrong", timedelta(days=-1), "the password is wrong"),
        (NIT, "secreto", timedelta(days=-400), "expired on"),
        (NIT, "secreto", timedelta(days=10), "not valid before"),
        (OTHER_NIT, "secreto", timedelta(days=-1), f"issued to NIT {OTHER_NIT}, not to {NIT}"),
    ],
)
def test_a_certificate_that_cannot_sign_for_the_issuer_is_refused(
    database_url: str,
    clean_db: Engine,
    tmp_path: Path,
    nit: str,
    password: str,
    valid_from: timedelta,
    reason: str,
) -> None:
    assert cli(database_url, *ADD).returncode == 0
    p12 = tmp_path / "cert.p12"
    p12.write_bytes(
        make_test_pkcs12(nit, "secreto", not_before=datetime.now(UTC) + valid_from, valid_days=365)
    )
    refused = cli(
        database_url,
        "issuer",
        "add-certificate",
        NIT,
        str(p12),
        "--password-env",
        "PW",
        PW=password,
    )
    assert refused.returncode == 65, refused.stderr
    assert reason in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert "certificate" not in SqlIssuers(clean_db).get(NIT).secrets_set


def test_a_good_certificate_is_stored_sealed_and_described(
    database_url: str, clean_db: Engine, tmp_path: Path
) -> None:
    assert cli(database_url, *ADD).returncode == 0
    data = make_test_pkcs12(NIT, "secreto")
    (tmp_path / "cert.p12").write_bytes(data)
    stored = cli(
        database_url, "issuer", "add-certificate", NIT, str(tmp_path / "cert.p12"),
        "--password-env", "PW", "--json", PW="secreto",
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    described = json.loads(stored.stdout)
    assert NIT in described["certificate"]["subject"]
    assert described["secrets"]["certificate"] and described["secrets"]["certificate-password"]
    issuers = SqlIssuers(clean_db, SecretBox([KEY]))
    assert issuers.secret(NIT, Secret.CERTIFICATE) == data
    assert issuers.secret(NIT, Secret.CERTIFICATE_PASSWORD) == b"secreto"
    missing = cli(database_url, "issuer", "add-certificate", NIT, str(tmp_path / "none.p12"))
    assert missing.returncode == 66 and "cannot read" in missing.stderr


def test_the_settings_issuer_is_stored_with_its_secrets(
    database_url: str, clean_db: Engine
) -> None:
    stored = cli(
        database_url, "issuer", "add", "--from-settings", "--json",
        ISSUER__NIT=OTHER_NIT, ISSUER__DV=OTHER_DV, DIAN__SOFTWARE_PIN="pin-from-env",
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout)["nit"] == OTHER_NIT
    issuers = SqlIssuers(clean_db, SecretBox([KEY]))
    assert issuers.secret(OTHER_NIT, Secret.INVOICE_PIN) == b"pin-from-env"


def test_api_keys_are_only_made_for_an_issuer_this_deployment_signs_as(
    database_url: str, clean_db: Engine
) -> None:
    other = cli(database_url, "api-key", "create", "--name", "caja", "--issuer", OTHER_NIT)
    assert other.returncode == 2
    assert f"issuer {OTHER_NIT} is unknown (einvoice issuer add)" in other.stderr
    assert cli(database_url, *ADD).returncode == 0
    assert cli(database_url, "issuer", "disable", NIT).returncode == 0
    disabled = cli(database_url, "api-key", "create", "--name", "caja", "--issuer", NIT)
    assert disabled.returncode == 2 and f"issuer {NIT} is disabled" in disabled.stderr
    assert cli(database_url, "issuer", "enable", NIT).returncode == 0
    made = cli(database_url, "api-key", "create", "--name", "caja", "--issuer", NIT)
    assert made.returncode == 0 and made.stdout.startswith("eik_"), made.stderr
    assert "is not ready to issue: it lacks its certificate" in made.stderr


def test_enqueue_refuses_an_issuer_it_cannot_issue_for_in_one_line(
    database_url: str, clean_db: Engine, tmp_path: Path
) -> None:
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps({"id_pedido_origen": "X-1"}), encoding="utf-8")
    refused = cli(database_url, "enqueue", str(orders), "--issuer", OTHER_NIT)
    assert refused.returncode == 2, refused.stderr
    assert (
        refused.stderr.strip() == f"einvoice: issuer {OTHER_NIT} is unknown (einvoice issuer add)"
    )
