"""Three issuers in one deployment: the settings' issuer and a stored one through DIAN, a third
through Factus. Each document is signed with its own issuer's certificate (xmlsec1 verifies it
with that certificate and refuses it with the other's), carries its own issuer's NIT and is
numbered from its own range (the stored issuer's technical key sealed with SECRETS_KEY, the
CUFE it keys checked by the simulator); the Factus issuer's bills go through its own account."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from lxml import etree
from sqlalchemy import text

from adapters.db.issuers import Issuer, Secret, Software, SqlIssuers
from adapters.db.ranges import SqlNumberingRanges
from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.simulator import start_simulator as start_dian
from adapters.dian.simulator.app import SimulatorServer
from adapters.factus.simulator.app import SimulatorOptions
from adapters.factus.simulator.app import start_simulator as start_factus
from adapters.secretbox import SecretBox
from domain.documents import DocumentKind
from domain.issuer import NumberingRange
from tests.e2e.harness import Pipeline, wait_until
from tests.factories import order
from tests.xmlsec import xmlsec1_verify
from worker.producer import Producer

pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]
A, B, C = "900123456", "800197268", "901234567"
KEY_A = "fc8eac422eba16e22ffd8c6f94b3f40a6e38162c"
KEY_B = "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
SECRETS_KEY = SecretBox.new_key()
NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}
SUPPLIER_NIT = "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"


@pytest.fixture
def dian() -> Iterator[tuple[SimulatorServer, str]]:
    server, url = start_dian(technical_keys={"SETP": KEY_A, "BB": KEY_B})
    yield server, url
    server.shutdown()
    server.server_close()


@pytest.fixture
def factus() -> Iterator[tuple[str, SimulatorOptions]]:
    options = SimulatorOptions()
    server, url = start_factus()
    yield url, options
    server.stop()


def certificate_pem(p12: bytes, password: str) -> bytes:
    _key, certificate, _chain = pkcs12.load_key_and_certificates(p12, password.encode())
    assert certificate is not None
    return certificate.public_bytes(Encoding.PEM)


def xmlsec1_verifies(xml: bytes, cert_pem: bytes, tmp_path: Path) -> bool:
    return xmlsec1_verify(xml, cert_pem, tmp_path).returncode == 0


def test_three_issuers_each_signed_numbered_and_sent_as_itself(
    pipeline_factory: Factory,
    dian: tuple[SimulatorServer, str],
    factus: tuple[str, SimulatorOptions],
    redis_url: str,
    tmp_path: Path,
) -> None:
    server, dian_url = dian
    factus_url, account = factus
    p12 = {nit: make_test_pkcs12(nit, f"pw-{nit}") for nit in (A, B)}
    (tmp_path / "a.p12").write_bytes(p12[A])
    p = pipeline_factory(
        GATEWAY="dian",
        DIAN__ENDPOINT=dian_url,
        DIAN__CERT_PATH=str(tmp_path / "a.p12"),
        DIAN__CERT_PASSWORD=f"pw-{A}",
        DIAN__CONNECT_TIMEOUT="1",
        DIAN__READ_TIMEOUT="4",
        ISSUER__NIT=A,
        SECRETS_KEY=SECRETS_KEY,
        REDIS_URL=redis_url,
    )
    issuers = SqlIssuers(p.engine, SecretBox([SECRETS_KEY]))
    software = Software("56f2ae4e-9812-4fad-9255-08fcfcd5ccb0", "2")
    issuers.add(
        Issuer(
            B, "4", "Cadena Dos S.A.S.", "Cadena Dos", "dian",
            invoice_software=software,
            pos_software=Software("7d5c3a41-2b6e-4f0a-9c1d-5e8f2a7b4c90", "2"),
        ),
        {
            Secret.CERTIFICATE: p12[B],
            Secret.CERTIFICATE_PASSWORD: f"pw-{B}".encode(),
            Secret.INVOICE_PIN: b"12345",
            Secret.POS_PIN: b"54321",
        },
    )  # fmt: skip
    SqlNumberingRanges(p.engine, SecretBox([SECRETS_KEY])).add(
        B,
        NumberingRange(
            "18760000002", "BB", 1, 1000, date(2019, 1, 1), date(2030, 1, 1), KEY_B,
            kind=DocumentKind.INVOICE,
        ),
    )  # fmt: skip
    with p.engine.connect() as conn:
        held = conn.execute(
            text("SELECT technical_key FROM numbering_ranges WHERE prefix = 'BB'")
        ).scalar_one()
        assert KEY_B not in held, "the technical key is stored sealed"
    issuers.add(
        Issuer(
            C, "7", "Cadena Tres S.A.S.", "Cadena Tres", "factus",
            factus={
                "base_url": factus_url,
                "client_id": account.client_id,
                "username": account.username,
                "numbering_range_id": "8",
            },
        ),
        {
            Secret.FACTUS_CLIENT_SECRET: account.client_secret.encode(),
            Secret.FACTUS_PASSWORD: account.password.encode(),
        },
    )  # fmt: skip
    p.start_worker()
    p.start_beat()
    keys = {}
    for nit in (A, B, C):
        with Producer(p.settings(), issuer=nit) as producer:
            keys[nit] = [producer.enqueue(order(f"MI-{nit}-{n}")).key for n in range(3)]
    wait_until(lambda: p.states().get("SUCCESS") == 9, 90, "9 documents of 3 issuers", p)

    pems = {nit: certificate_pem(p12[nit], f"pw-{nit}") for nit in (A, B)}
    for nit, other in ((A, B), (B, A)):
        numbers = []
        for key in keys[nit]:
            record = p.store.get(key)
            assert record is not None and record.gateway == "dian"
            stored = server.state.documents[record.references["cufe"]]
            tree = etree.fromstring(stored.xml)
            supplier = tree.findtext(SUPPLIER_NIT, namespaces=NS)
            assert stored.supplier_nit == nit and supplier == nit
            assert xmlsec1_verifies(stored.xml, pems[nit], tmp_path), f"{key} not signed by {nit}"
            assert not xmlsec1_verifies(stored.xml, pems[other], tmp_path)
            numbers.append(str(record.number))
        prefix = "SETP" if nit == A else "BB"
        assert all(n.startswith(prefix) for n in numbers), numbers

    stats = httpx.get(f"{factus_url}/_stats").json()
    assert stats["bills_created"] == {f"{C}-MI-{C}-{n}": 1 for n in range(3)}
    for key in keys[C]:
        record = p.store.get(key)
        assert record is not None and record.gateway == "factus" and record.number is None


def test_one_issuers_backlog_does_not_hold_back_another(pipeline_factory: Factory) -> None:
    """200 orders of issuer A wait in the queue before a worker starts; 5 of issuer B are
    enqueued after them. B has its own lane, which the worker takes from in turn with A's:
    B's orders are done before most of A's, not after all of them (with one queue for both,
    B's last order is the 205th)."""
    p = pipeline_factory(GATEWAY="simulated", ISSUER__NIT=A, WORKER__CONCURRENCY="1")
    SqlIssuers(p.engine).add(Issuer(B, "4", "Cadena Dos S.A.S.", "Cadena Dos", "simulated"))
    SqlNumberingRanges(p.engine).add(
        B,
        NumberingRange(
            "18760000002", "BB", 1, 1000, date(2019, 1, 1), date(2030, 1, 1), KEY_B,
            kind=DocumentKind.INVOICE,
        ),
    )  # fmt: skip
    settings = p.settings()
    assert settings.queue_for(B) != settings.queue_for(A)
    with Producer(settings) as producer:
        for n in range(200):
            producer.enqueue(order(f"BACKLOG-{n}"))
    with Producer(settings, issuer=B) as producer:
        for n in range(5):
            producer.enqueue(order(f"LATER-{n}"))
    p.start_worker()
    wait_until(lambda: p.states().get("SUCCESS") == 205, 120, "205 orders", p)
    with p.engine.connect() as conn:
        finished = [
            issuer
            for (issuer,) in conn.execute(
                text("SELECT issuer FROM documents ORDER BY finished_at, id")
            )
        ]
    last_b = max(i for i, issuer in enumerate(finished) if issuer == B)
    assert last_b < 60, f"issuer B's last order finished {last_b + 1}th of 205"
