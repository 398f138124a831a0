"""The buyer's copy by e-mail, through a real SMTP server (aiosmtpd) and a real PostgreSQL.

A document accepted with DIAN's answer gains a delivery in its SUCCESS transaction; the
use case sends one message with one ZIP (the AttachedDocument, schema-valid and verified by
xmlsec1, and the PDF), with the subject and the Message-ID of its round. A server down and
then up delivers once; a refused address is final; every attempt is on the audit trail
without the address.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine, text

from adapters.db.deliveries import SqlDeliveryStore
from adapters.db.store import SqlDocumentStore
from adapters.dian.signer import XadesSigner
from adapters.mail.parcel import ParcelMaker
from adapters.mail.sink import MailSink, free_port
from adapters.mail.smtp import SmtpConfig, SmtpCourier
from adapters.representation.pdf import render_pdf
from domain.delivery import Channel, CopyRequest, DeliveryState, message_id
from domain.documents import DocumentKind, DocumentPlan
from domain.order import parse_order
from domain.ports import OrderKey
from domain.store import State, StepNote
from domain.usecases.deliver import DeliverCopy, Delivered, DeliveryPolicy
from tests.factories import order
from tests.integration.test_attached_document import _pair, signer, xsd_dir
from tests.integration.test_dian_document import ISSUER, NIT_BUYER
from tests.xmlsec import xmlsec1_verify

__all__ = ["signer", "xsd_dir"]
BUYER = "comprador@example.net"
KEY = OrderKey(ISSUER.nit, "POS-700")
NO_WAIT = DeliveryPolicy(lease_seconds=60, backoff_base=0.0, backoff_max=0.0)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def accepted(clean_db: Engine, signer: XadesSigner) -> tuple[SqlDocumentStore, dict[str, bytes]]:
    """A sale document ended SUCCESS with DIAN's files and a copy to deliver to BUYER."""
    store = SqlDocumentStore(clean_db)
    data = order("POS-700")
    data["adquirente"] = {**NIT_BUYER["adquirente"], "email": BUYER}
    plan = DocumentPlan(DocumentKind.INVOICE, "1", numbered=False)
    store.accept(KEY, parse_order(data), "dian", plan)
    claim = store.claim(KEY, 60)
    assert claim is not None
    document, answer = _pair(signer, NIT_BUYER)
    files = {"document": document, "application_response": answer}
    copy = CopyRequest(Channel.SMTP, BUYER)
    store.finish(claim, State.SUCCESS, {"cufe": "c"}, StepNote("SUCCESS"), None, files, copy)
    return store, files


def _courier(port: int, signer: XadesSigner, deliveries: SqlDeliveryStore) -> SmtpCourier:
    config = SmtpConfig("127.0.0.1", port, "facturacion@example.co", security="none", timeout=5)
    return SmtpCourier(config, ParcelMaker(signer, render_pdf), deliveries.files)


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with MailSink(refuse={"nadie@example.net"}) as running:
        yield running


def _trail(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT status, CAST(payload_in AS TEXT) || ' ' || "
                "COALESCE(CAST(response_out AS TEXT), '') FROM invoice_log "
                "WHERE status LIKE 'ENTREGA%' ORDER BY id"
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def test_the_copy_is_delivered_once_with_its_zip(
    accepted: tuple[SqlDocumentStore, dict[str, bytes]],
    clean_db: Engine,
    sink: MailSink,
    signer: XadesSigner,
    xsd_dir: Path,
    tmp_path: Path,
) -> None:
    deliveries = SqlDeliveryStore(clean_db, lambda: datetime.now(UTC))
    deliver = DeliverCopy(deliveries, _courier(sink.port, signer, deliveries), NO_WAIT, Clock())
    assert deliver(KEY).step is Delivered.DELIVERED
    assert deliver(KEY).step is Delivered.SKIPPED  # final: never sent again
    assert len(sink.received) == 1
    got = sink.received[0]
    assert got.recipients == [BUYER]
    message = got.message()
    name = "Cervecería & Cocina <La 10> S.A.S."
    assert message["Subject"] == f"{ISSUER.nit};{name};SETP990000007;01;{name}"
    assert message["Message-ID"] == message_id(KEY, 1, "example.co")
    subject_line = next(line for line in got.data.split(b"\r\n") if line.startswith(b"Subject:"))
    assert b"SETP990000007" in subject_line  # one line: never folded
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1
    assert attachments[0].get_content_type() == "application/zip"
    payload = attachments[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    archive = zipfile.ZipFile(io.BytesIO(payload))
    names = sorted(archive.namelist())
    assert [n.rsplit(".", 1)[1] for n in names] == ["pdf", "xml"]
    assert all(n.startswith("ad0900373076000") for n in names)
    attached = archive.read(names[1])
    schema_path = xsd_dir / "maindoc" / "UBL-AttachedDocument-2.1.xsd"
    schema = etree.XMLSchema(etree.parse(str(schema_path)))
    assert schema.validate(etree.fromstring(attached)), schema.error_log  # type: ignore[attr-defined]
    verified = xmlsec1_verify(attached, signer.certificate_pem(), tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert accepted[1]["document"] in attached
    assert archive.read(names[0]).startswith(b"%PDF-")
    state = deliveries.get_delivery(KEY)
    assert state is not None and state.state is DeliveryState.ENTREGADO
    trail = _trail(clean_db)
    assert [status for status, _ in trail] == ["ENTREGA", "ENTREGADO"]
    assert all(BUYER not in row for _, row in trail)


def test_a_server_down_then_up_delivers_once(
    accepted: tuple[SqlDocumentStore, dict[str, bytes]],
    clean_db: Engine,
    signer: XadesSigner,
) -> None:
    port = free_port()
    clock = Clock()
    deliveries = SqlDeliveryStore(clean_db, clock)
    deliver = DeliverCopy(deliveries, _courier(port, signer, deliveries), NO_WAIT, clock)
    first = deliver(KEY)
    assert first.step is Delivered.RETRYING
    pending = deliveries.get_delivery(KEY)
    assert pending is not None and pending.state is DeliveryState.PENDIENTE
    assert pending.reason is not None and pending.reason["error"] == "unavailable"
    assert deliver(KEY).step is Delivered.SKIPPED  # not due yet
    clock.now += timedelta(seconds=first.retry_in or 0)
    with MailSink(port=port) as sink:
        assert deliver(KEY).step is Delivered.DELIVERED
        assert deliver(KEY).step is Delivered.SKIPPED
        assert len(sink.received) == 1
    statuses = [status for status, _ in _trail(clean_db)]
    assert statuses == ["ENTREGA", "ENTREGA_REINTENTO", "ENTREGA", "ENTREGADO"]
    assert deliveries.due_for_publish(clock.now, 60, 10) == []


def test_a_refused_address_is_final_and_shown(
    accepted: tuple[SqlDocumentStore, dict[str, bytes]],
    clean_db: Engine,
    sink: MailSink,
    signer: XadesSigner,
) -> None:
    deliveries = SqlDeliveryStore(clean_db, lambda: datetime.now(UTC))
    with clean_db.begin() as conn:
        conn.execute(text("UPDATE deliveries SET recipient = 'nadie@example.net'"))
    deliver = DeliverCopy(deliveries, _courier(sink.port, signer, deliveries), NO_WAIT, Clock())
    assert deliver(KEY).step is Delivered.REFUSED
    assert deliver(KEY).step is Delivered.SKIPPED
    assert sink.received == []
    refused = deliveries.get_delivery(KEY)
    assert refused is not None and refused.state is DeliveryState.RECHAZADO
    assert refused.reason is not None and refused.reason["error"] == "address_refused"
    assert "550" in refused.reason["detail"]
    assert "nadie" not in json.dumps(refused.reason)
    # an operator sends it again to another address: a new round, a new Message-ID
    resent = deliveries.resend(KEY, BUYER)
    assert resent.delivery is not None and resent.delivery.round == 2
    assert deliver(KEY).step is Delivered.DELIVERED
    assert sink.received[0].recipients == [BUYER]
    assert sink.received[0].message()["Message-ID"] == message_id(KEY, 2, "example.co")


def test_a_document_without_an_email_has_no_delivery(clean_db: Engine) -> None:
    store = SqlDocumentStore(clean_db)
    key = OrderKey(ISSUER.nit, "POS-701")
    plan = DocumentPlan(DocumentKind.INVOICE, "1", numbered=False)
    store.accept(key, parse_order(order("POS-701")), "dian", plan)
    claim = store.claim(key, 60)
    assert claim is not None
    store.finish(claim, State.SUCCESS, {}, StepNote("SUCCESS"), None, {"document": b"<x/>"})
    deliveries = SqlDeliveryStore(clean_db, lambda: datetime.now(UTC))
    assert deliveries.get_delivery(key) is None
    assert deliveries.files(key) == {"document": b"<x/>"}


def _cli(database_url: str, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BROKER_URL": redis_url,
        "QUEUE": "resend-test",
        "GATEWAY": "dian",
        "ISSUER__NIT": ISSUER.nit,
    }
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_resend_from_the_command_line(
    accepted: tuple[SqlDocumentStore, dict[str, bytes]],
    clean_db: Engine,
    database_url: str,
    redis_url: str,
) -> None:
    done = _cli(database_url, redis_url, "resend", "POS-700", "--to", "otra@example.net", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["round"] == 2
    deliveries = SqlDeliveryStore(clean_db, lambda: datetime.now(UTC))
    resent = deliveries.get_delivery(KEY)
    assert resent is not None and resent.recipient == "otra@example.net"
    assert resent.state is DeliveryState.PENDIENTE
    bad = _cli(database_url, redis_url, "resend", "POS-700", "--to", "no-es-correo")
    assert bad.returncode == 2 and "--to" in bad.stderr
    unknown = _cli(database_url, redis_url, "resend", "POS-404")
    assert unknown.returncode == 1 and "no buyer's copy" in unknown.stderr
    trail = [status for status, _ in _trail(clean_db)]
    assert trail == ["ENTREGA_REINTENTO"]  # the resend, on the trail
    assert all("otra@example.net" not in row for _, row in _trail(clean_db))
