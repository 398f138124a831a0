"""`einvoice health` against real PostgreSQL and Redis, with real PKCS#12 certificates."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adapters.db.issuers import Issuer, SqlIssuers
from adapters.db.ranges import SqlNumberingRanges
from adapters.db.store import SqlDocumentStore
from adapters.dian.devcert import make_test_pkcs12
from domain.documents import DocumentKind
from domain.issuer import NumberingRange
from tests.integration import ops_fixtures as fx
from tests.integration.ops_fixtures import SALE, _order, key, seed
from worker.cli import main
from worker.ops.tables import BOGOTA

database_url = fx.database_url
bare_database_url = fx.bare_database_url
engine = fx.engine
ops_env = fx.ops_env
queue_name = fx.queue_name
PASSWORD = "cl4ve-del-certificado"


INVOICES = "numbering:factura:SETP"


def health(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, object]], str]:
    code = main(["health", "--json"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["healthy"] is (code == 0)
    return code, {c["name"]: c for c in report["checks"]}, out


def test_healthy_deployment(
    ops_env: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(engine)

    code, checks, _ = health(capsys)

    assert code == 0
    names = ("database", "broker", INVOICES, "numbering:pos:EPOS")
    assert [checks[n]["status"] for n in names] == ["ok"] * 4
    data = checks["database"]["data"]
    assert isinstance(data, dict) and data["current"] == data["head"] and data["head"]
    numbering = checks[INVOICES]["data"]
    assert isinstance(numbering, dict)
    assert numbering["next_number"] == 990000007  # seven orders numbered
    assert numbering["remaining"] == 995000000 - 990000007 + 1
    assert "certificate" not in checks  # only for GATEWAY=dian

    assert main(["health"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert text.rstrip().endswith("healthy")


def test_unmigrated_database_is_unhealthy(
    ops_env: str,
    bare_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", bare_database_url)
    code, checks, _ = health(capsys)
    assert code == 1
    assert checks["database"]["status"] == "fail"
    assert "einvoice migrate" in str(checks["database"]["detail"])


def test_unreachable_database_and_broker(
    ops_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/none")
    monkeypatch.setenv("BROKER_URL", "redis://127.0.0.1:1/0")
    code, checks, _ = health(capsys)
    assert code == 1
    assert checks["database"]["status"] == "fail"
    assert checks["broker"]["status"] == "fail"
    assert "unreachable" in str(checks["broker"]["detail"])


def test_numbering_running_out(
    ops_env: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(engine)  # numbers 990000000..990000006 are taken
    monkeypatch.setenv("NUMBERING__LAST", "990000008")  # 7 of 9 used: 77 %
    code, checks, _ = health(capsys)
    assert (code, checks[INVOICES]["status"]) == (0, "ok")

    store = SqlDocumentStore(engine)
    store.accept(key("POS-X"), _order("POS-X"), "simulated", SALE)  # 8 of 9: 88 %
    code, checks, _ = health(capsys)
    assert (code, checks[INVOICES]["status"]) == (0, "ok")
    monkeypatch.setenv("NUMBERING__LAST", "990000007")  # 8 of 8 left to use... 100 %
    code, checks, _ = health(capsys)
    assert (code, checks[INVOICES]["status"]) == (1, "fail")
    monkeypatch.setenv("NUMBERING__LAST", "990000008")
    health(capsys)  # the settings' range as they say now
    store.accept(key("POS-Y"), _order("POS-Y"), "simulated", SALE)  # 9 of 9... used up
    code, checks, _ = health(capsys)
    assert (code, checks[INVOICES]["status"]) == (1, "fail")
    assert "0 numbers left" in str(checks[INVOICES]["detail"])

    monkeypatch.setenv("NUMBERING__LAST", "990000009")  # 9 of 10: 90 %
    code, checks, _ = health(capsys)
    assert (code, checks[INVOICES]["status"]) == (0, "warn")
    assert "90 % used (1 numbers left)" in str(checks[INVOICES]["data"]["warnings"])

    monkeypatch.delenv("NUMBERING__LAST")
    soon = (datetime.now(BOGOTA).date() + timedelta(days=10)).isoformat()
    monkeypatch.setenv("NUMBERING__VALID_TO", soon)
    code, checks, _ = health(capsys)
    assert (code, checks[INVOICES]["status"]) == (0, "warn")
    assert "valid 10 more days" in str(checks[INVOICES]["detail"])


@pytest.mark.parametrize(
    ("valid_days", "starts_days_ago", "password", "status", "says"),
    [
        (365, 1, PASSWORD, "ok", "valid 363 more days"),
        (20, 1, PASSWORD, "warn", "valid 18 more days"),
        (365, 400, PASSWORD, "fail", "expired on"),
        (365, 1, "not-the-password", "fail", "password is wrong"),
    ],
)
def test_dian_certificate(
    valid_days: int,
    starts_days_ago: int,
    password: str,
    status: str,
    says: str,
    ops_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "firma.p12"
    start = datetime.now(UTC) - timedelta(days=starts_days_ago)
    path.write_bytes(
        make_test_pkcs12("900123456", PASSWORD, valid_days=valid_days, not_before=start)
    )
    monkeypatch.setenv("GATEWAY", "dian")
    monkeypatch.setenv("DIAN__CERT_PATH", str(path))
    monkeypatch.setenv("DIAN__CERT_PASSWORD", password)

    code, checks, out = health(capsys)

    assert checks["certificate"]["status"] == status
    assert says in str(checks["certificate"]["detail"])
    assert code == (1 if status == "fail" else 0)
    assert password not in out
    assert main(["health"]) == code
    assert password not in capsys.readouterr().out


def test_dian_without_a_certificate(
    ops_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY", "dian")
    code, checks, _ = health(capsys)
    assert code == 1
    assert checks["certificate"]["detail"] == "DIAN__CERT_PATH is not set"


def test_each_stored_issuers_certificate_and_ranges(
    ops_env: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(engine)
    issuers = SqlIssuers(engine)
    soon = datetime.now(UTC) + timedelta(days=12)
    facts = {"subject": "CN=Dos NIT 800197268", "not_after": soon.isoformat()}
    issuers.add(Issuer("800197268", "4", "Dos S.A.S.", "Dos", "dian", certificate=facts))
    issuers.add(Issuer("901234567", "7", "Tres S.A.S.", "Tres", "dian"))
    issuers.add(Issuer("830000000", "1", "Cuatro S.A.S.", "Cuatro", "dian", enabled=False))
    SqlNumberingRanges(engine).add(
        "800197268",
        NumberingRange(
            "1", "DOS", 1, 100, date(2019, 1, 1), date(2030, 1, 1), "k", kind=DocumentKind.INVOICE
        ),
    )

    code, checks, _ = health(capsys)

    assert checks["certificate:800197268"]["status"] == "warn"
    assert "valid 11 more days" in str(checks["certificate:800197268"]["detail"])
    assert checks["certificate:901234567"]["status"] == "fail"
    assert "certificate:830000000" not in checks  # disabled issuers are not watched
    assert checks["numbering:800197268:factura:DOS"]["status"] == "ok"
    assert code == 1
