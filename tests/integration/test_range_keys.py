"""Numbering ranges' technical keys sealed with SECRETS_KEY: never in the database in clear,
opened only by the DIAN document builder (the same CUFE as with the clear key), re-sealed by
`issuer rotate-secrets`, and a missing or wrong key is one line naming SECRETS_KEY."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import Engine, text

from adapters.db.issuers import SqlIssuers
from adapters.db.ranges import SqlNumberingRanges
from adapters.db.store import SqlDocumentStore
from adapters.dian.document import DianSetup, cufe_for
from adapters.secretbox import SecretBox
from domain.dian_codes import nit_check_digit
from domain.documents import DocumentKind, DocumentPlan, SoftwareFamily, SoftwareMaker
from domain.errors import GatewayUnavailable
from domain.issuer import IssuerProfile, NumberingRange, SoftwareRegistration
from domain.order import parse_order
from domain.ports import OrderKey, Submission
from tests.factories import order
from tests.integration.test_issuers import cli

ISSUER = "900123456"
TECHNICAL_KEY = "fc8eac422eba16e22ffd8c6f94b3f40a6e38162c"
RANGE = NumberingRange(
    "18760000001", "SETP", 990000000, 995000000, date(2019, 1, 1), date(2030, 12, 31),
    TECHNICAL_KEY,
)  # fmt: skip
KEY = SecretBox.new_key()
SOFTWARE = SoftwareRegistration(
    "56f2ae4e-9812-4fad-9255-08fcfcd5ccb0", "12345", ISSUER, nit_check_digit(ISSUER), "2"
)
MAKER = SoftwareMaker("Equipo de pruebas", "Pruebas S.A.S.", ISSUER, "einvoice-worker")


def setup(box: SecretBox | None) -> DianSetup:
    issuer = IssuerProfile(ISSUER, nit_check_digit(ISSUER), "Cadena Uno S.A.S.", "Cadena Uno")
    return DianSetup(issuer, {SoftwareFamily.INVOICE: SOFTWARE}, MAKER, secrets=box)


def stored_keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        query = text(
            "SELECT technical_key FROM numbering_ranges WHERE technical_key IS NOT NULL ORDER BY id"
        )
        return list(conn.execute(query).scalars())


def sold(engine: Engine, order_id: str) -> Submission:
    """An invoice accepted and numbered from the stored range, as the worker reads it."""
    store = SqlDocumentStore(engine)
    plan = DocumentPlan(DocumentKind.INVOICE, "1", numbered=True)
    key = OrderKey(ISSUER, order_id)
    store.accept(key, parse_order(order(order_id)), "dian", plan)
    record = store.get(key)
    assert record is not None and record.numbering is not None
    return Submission(
        key, parse_order(record.payload), record.issued_at, record.number,
        numbering=record.numbering,
    )  # fmt: skip


def clear_cufe(submission: Submission) -> str:
    assert submission.numbering is not None
    numbering = replace(submission.numbering, technical_key=TECHNICAL_KEY, sealed_key="")
    return cufe_for(replace(submission, numbering=numbering), setup(None))


def test_a_sealed_key_is_not_stored_in_clear_and_gives_the_same_cufe(clean_db: Engine) -> None:
    box = SecretBox([KEY])
    status = SqlNumberingRanges(clean_db, box).add(ISSUER, RANGE)
    [stored] = stored_keys(clean_db)
    assert stored.startswith("sealed:") and TECHNICAL_KEY not in stored
    assert status.as_dict(date(2024, 1, 1))["has_technical_key"] is True
    assert TECHNICAL_KEY not in json.dumps(status.as_dict(date(2024, 1, 1)))
    submission = sold(clean_db, "S-1")
    assert submission.numbering is not None and submission.numbering.technical_key == "", (
        "numbering an order never opens the key"
    )
    assert cufe_for(submission, setup(box)) == clear_cufe(submission)


@pytest.mark.parametrize(
    ("box", "says"),
    [
        (None, "SECRETS_KEY is not set"),
        (SecretBox([SecretBox.new_key()]), "SECRETS_KEY cannot open the stored secret"),
    ],
)
def test_a_sealed_key_without_its_master_key_keeps_the_document_waiting(
    clean_db: Engine, box: SecretBox | None, says: str
) -> None:
    SqlNumberingRanges(clean_db, SecretBox([KEY])).add(ISSUER, RANGE)
    with pytest.raises(GatewayUnavailable, match=says) as refused:
        cufe_for(sold(clean_db, "S-1"), setup(box))
    assert "\n" not in str(refused.value)


def test_a_key_sealed_for_another_range_is_refused(clean_db: Engine) -> None:
    box = SecretBox([KEY])
    ranges = SqlNumberingRanges(clean_db, box)
    ranges.add(ISSUER, RANGE)
    ranges.add(ISSUER, replace(RANGE, prefix="FE", technical_key="another"))
    with clean_db.begin() as conn:
        conn.execute(
            text(
                "UPDATE numbering_ranges SET technical_key = "
                "(SELECT technical_key FROM numbering_ranges WHERE prefix = 'FE') "
                "WHERE prefix = 'SETP'"
            )
        )
    with pytest.raises(GatewayUnavailable, match="sealed for another issuer or secret"):
        cufe_for(sold(clean_db, "S-1"), setup(box))


def test_rotation_seals_clear_keys_and_reseals_sealed_ones(clean_db: Engine) -> None:
    SqlNumberingRanges(clean_db).add(ISSUER, RANGE)  # written before keys were sealed
    [clear] = stored_keys(clean_db)
    assert clear == TECHNICAL_KEY
    submission = sold(clean_db, "S-1")
    assert cufe_for(submission, setup(None)) == clear_cufe(submission), "clear keys still read"
    old = SecretBox([KEY])
    assert SqlIssuers(clean_db, old).rotate() == (0, 1)
    [sealed] = stored_keys(clean_db)
    assert sealed.startswith("sealed:") and TECHNICAL_KEY not in sealed
    new_key = SecretBox.new_key()
    assert SqlIssuers(clean_db, SecretBox([new_key, KEY])).rotate() == (0, 1)
    [resealed] = stored_keys(clean_db)
    assert resealed != sealed
    again = sold(clean_db, "S-2")
    assert cufe_for(again, setup(SecretBox([new_key]))) == clear_cufe(again)
    with pytest.raises(GatewayUnavailable, match="SECRETS_KEY cannot open"):
        cufe_for(again, setup(old))


def test_the_settings_range_is_sealed_once_and_kept_by_a_process_without_the_key(
    clean_db: Engine,
) -> None:
    box = SecretBox([KEY])
    SqlNumberingRanges(clean_db, box).sync_configured(ISSUER, RANGE)
    [sealed] = stored_keys(clean_db)
    assert sealed.startswith("sealed:")
    SqlNumberingRanges(clean_db, box).sync_configured(ISSUER, RANGE)
    SqlNumberingRanges(clean_db).sync_configured(ISSUER, RANGE)  # an intake without the key
    assert stored_keys(clean_db) == [sealed]
    SqlNumberingRanges(clean_db, box).sync_configured(ISSUER, replace(RANGE, technical_key="new"))
    [changed] = stored_keys(clean_db)
    assert changed != sealed and changed.startswith("sealed:")


def test_the_command_line_seals_keys_and_refuses_clear_ones_of_other_issuers(
    database_url: str, clean_db: Engine
) -> None:
    add = [
        "range", "add", "--kind", "factura", "--prefix", "BB", "--resolution", "18760000002",
        "--from", "1", "--to", "1000", "--valid-from", "2019-01-01", "--valid-to", "2030-01-01",
        "--technical-key-env", "RANGE_KEY", "--issuer", "800197268", "--json",
    ]  # fmt: skip
    refused = cli(database_url, *add, key=None, RANGE_KEY=TECHNICAL_KEY)
    assert refused.returncode != 0
    assert refused.stderr.startswith("range add: SECRETS_KEY is not set"), refused.stderr
    assert refused.stderr.count("\n") == 1 and stored_keys(clean_db) == []
    added = cli(database_url, *add, key=KEY, RANGE_KEY=TECHNICAL_KEY)
    assert added.returncode == 0, added.stderr
    assert TECHNICAL_KEY not in added.stdout and json.loads(added.stdout)["has_technical_key"]
    assert all(TECHNICAL_KEY not in k for k in stored_keys(clean_db))
    listed = cli(database_url, "range", "list", "--issuer", "800197268", "--json", key=KEY)
    assert TECHNICAL_KEY not in listed.stdout
    assert [r["has_technical_key"] for r in json.loads(listed.stdout)] == [True]
    rotated = cli(database_url, "issuer", "rotate-secrets", key=f"{SecretBox.new_key()},{KEY}")
    assert rotated.returncode == 0, rotated.stderr
    assert "range technical keys" in rotated.stdout
    stale = cli(database_url, "issuer", "rotate-secrets", key=SecretBox.new_key())
    assert stale.returncode == 78 and "SECRETS_KEY cannot open" in stale.stderr
