"""The buyer's copy end to end: real worker and beat processes on Redis and PostgreSQL, the
DIAN simulator (full checks) and a real SMTP server started here.

An order with the buyer's e-mail ends SUCCESS and its copy reaches the mail server once; an
order without one gets none. With the mail server down the document is issued all the same
and its copy waits (`stuck` shows it apart from issuing); once the server is up the
reconciler's wake-up delivers it, once.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from lxml import etree

from adapters.db.deliveries import SqlDeliveryStore
from adapters.dian.signer import XadesSigner
from adapters.factus.simulator.app import SimulatorOptions
from adapters.mail.sink import MailSink, free_port
from domain.delivery import DeliveryState
from tests.e2e.harness import Pipeline, wait_until
from tests.e2e.test_gateways_e2e import dian, dian_pipeline, factus
from tests.factories import order
from tests.integration.test_dian_document import xsd_dir
from tests.integration.test_representation import _pages, _qr_codes, _text
from tests.xmlsec import xmlsec1_verify
from worker.producer import Producer

__all__ = ["dian", "factus", "xsd_dir"]
pytestmark = pytest.mark.e2e
Factory = Callable[..., Pipeline]
BUYER = {
    "tipo_documento": "31",
    "numero_documento": "900373076",
    "nombre": "Ferretería Ñandú S.A.S.",
    "email": "compras@example.net",
}


def _mail_pipeline(factory: Factory, url: str, tmp_path: Path, port: int) -> Pipeline:
    return dian_pipeline(
        factory,
        url,
        tmp_path,
        SMTP__HOST="127.0.0.1",
        SMTP__PORT=str(port),
        SMTP__SECURITY="none",
        SMTP__FROM="facturacion@example.co",
        SMTP__TIMEOUT="3",
        DELIVERY__BACKOFF_BASE="1",
        DELIVERY__BACKOFF_MAX="2",
    )


def _copy_state(p: Pipeline, key: object) -> DeliveryState | None:
    found = SqlDeliveryStore(p.engine, lambda: None).get_delivery(key)  # type: ignore[arg-type]
    return found.state if found is not None else None


def test_the_copy_of_an_issued_invoice_reaches_the_buyer_once(
    pipeline_factory: Factory, dian: str, tmp_path: Path, xsd_dir: Path
) -> None:
    with MailSink() as sink:
        p = _mail_pipeline(pipeline_factory, dian, tmp_path, sink.port)
        p.start_worker()
        p.start_beat()
        with Producer(p.settings()) as producer:
            with_email = producer.enqueue(order("MAIL-1", buyer=BUYER)).key
            without = producer.enqueue(order("MAIL-2")).key
        wait_until(lambda: p.states().get("SUCCESS") == 2, 60, "2 documents accepted", p)
        wait_until(
            lambda: _copy_state(p, with_email) is DeliveryState.ENTREGADO, 60, "copy delivered", p
        )
        assert _copy_state(p, without) is None
        assert len(sink.received) == 1
        message = sink.received[0].message()
        assert message["Subject"].split(";")[2:4] == ["SETP990000000", "01"]
        [attachment] = list(message.iter_attachments())
        payload = attachment.get_payload(decode=True)
        assert isinstance(payload, bytes)
        archive = zipfile.ZipFile(io.BytesIO(payload))
        files = {name[-3:]: archive.read(name) for name in archive.namelist()}
        assert sorted(files) == ["pdf", "xml"]
        record = p.store.get(with_email)
        assert record is not None
        cufe = record.references["cufe"]
        # the AttachedDocument: schema-valid, signed by the issuer (xmlsec1), carrying the invoice
        attached = etree.fromstring(files["xml"])
        schema = xsd_dir / "maindoc" / "UBL-AttachedDocument-2.1.xsd"
        etree.XMLSchema(etree.parse(str(schema))).assertValid(attached)
        certificate = XadesSigner.from_pkcs12(
            (tmp_path / "issuer.p12").read_bytes(), "s3cret"
        ).certificate_pem()
        verified = xmlsec1_verify(files["xml"], certificate, tmp_path)
        assert verified.returncode == 0, verified.stderr
        assert cufe.encode() in files["xml"]
        # the printed copy: its text names the number, the CUFE and the total; its QR reads
        # back as DIAN's catalogue URL of that CUFE
        text = "".join(_text(files["pdf"], tmp_path).split())
        assert "SETP990000000" in text and cufe in text
        total = str(int(Decimal(str(record.payload["total_factura"]))))
        assert total in text.replace(".", "").replace(",", ""), "the order's total"
        [page, *_] = _pages(files["pdf"], tmp_path)
        codes = [code for code, _size in _qr_codes(page)]
        assert len(codes) == 1 and codes[0].endswith(cufe), codes
        statuses = [e.status for e in p.store.timeline(with_email)]
        assert statuses[-2:] == ["ENTREGA", "ENTREGADO"]
        assert "compras@example.net" not in p.logs()


def test_mail_server_down_then_up_delivers_once_and_stuck_shows_the_copy_apart(
    pipeline_factory: Factory, dian: str, tmp_path: Path
) -> None:
    port = free_port()
    p = _mail_pipeline(pipeline_factory, dian, tmp_path, port)
    p.start_worker()
    p.start_beat()
    with Producer(p.settings()) as producer:
        key = producer.enqueue(order("MAIL-3", buyer=BUYER)).key
    wait_until(lambda: p.states().get("SUCCESS") == 1, 60, "document accepted", p)
    wait_until(
        lambda: "ENTREGA_REINTENTO" in [e.status for e in p.store.timeline(key)],
        60,
        "a failed attempt",
        p,
    )
    stuck = subprocess.run(
        [sys.executable, "-m", "worker", "stuck", "--older-than", "0s", "--json"],
        env=p.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stuck.returncode == 1, stuck.stderr
    rows = json.loads(stuck.stdout)
    copies = [r for r in rows if "delivery_state" in r]
    assert [c["order_key"] for c in copies] == [str(key)]
    assert not [r for r in rows if "delivery_state" not in r]  # the document itself is issued
    with MailSink(port=port) as sink:
        wait_until(lambda: _copy_state(p, key) is DeliveryState.ENTREGADO, 60, "copy delivered", p)
        p.stop_all()
        assert len(sink.received) == 1


def test_with_factus_the_copy_is_factus_own_email_asked_once(
    pipeline_factory: Factory, factus: tuple[str, SimulatorOptions], redis_url: str
) -> None:
    url, options = factus
    p = pipeline_factory(
        GATEWAY="factus",
        FACTUS__BASE_URL=url,
        FACTUS__CLIENT_ID=options.client_id,
        FACTUS__CLIENT_SECRET=options.client_secret,
        FACTUS__USERNAME=options.username,
        FACTUS__PASSWORD=options.password,
        FACTUS__NUMBERING_RANGE_ID="8",
        FACTUS__CONNECT_TIMEOUT="1",
        FACTUS__READ_TIMEOUT="4",
        REDIS_URL=redis_url,
    )
    p.start_worker()
    p.start_beat()
    with Producer(p.settings()) as producer:
        key = producer.enqueue(order("FAC-MAIL", buyer=BUYER)).key
        plain = producer.enqueue(order("FAC-PLAIN")).key
    wait_until(lambda: p.states().get("SUCCESS") == 2, 60, "2 Factus bills validated", p)
    wait_until(lambda: _copy_state(p, key) is DeliveryState.ENTREGADO, 60, "Factus e-mail", p)
    assert _copy_state(p, plain) is None
    record = p.store.get(key)
    assert record is not None
    sent = httpx.get(f"{url}/_stats").json()["emails_sent"]
    assert sent == {record.references["number"]: 1}
