"""E-mails delivered per second: the buyer's copy through a real worker to a local SMTP server.

    python -m bench.delivery [--copies 500] [--json]

N invoices accepted by DIAN (the same signed document and ApplicationResponse kept with each)
are stored SUCCESS with a copy to deliver, as the pipeline leaves them; one wake-up per copy is
published on the delivery queue; then one worker with the default settings (`python -m worker
worker --queues delivery`: prefork, 2 processes) builds each copy (the AttachedDocument signed
with XAdES, the PDF, one ZIP) and sends it to a local aiosmtpd server. The rate is taken from
the database's own `delivered_at` timestamps of the first and last copy (start-up excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import (
    REDIS_URL,
    Processes,
    flush_redis,
    order,
    queue_name,
    scratch_database,
    span_rate,
    wait_count,
    wait_for_log,
)

ISSUER = "900123456"
PASSWORD = "bench"
DELIVERED_SQL = "SELECT count(*) FROM deliveries WHERE state = 'ENTREGADO'"
RATE_SQL = (
    "SELECT count(*), min(delivered_at), max(delivered_at) FROM deliveries "
    "WHERE state = 'ENTREGADO'"
)


def _files(cert: bytes) -> dict[str, bytes]:
    """One signed invoice and the simulated DIAN's signed ApplicationResponse for it."""
    from lxml import etree

    from adapters.dian.document import DianDocumentFactory
    from adapters.dian.signer import XadesSigner
    from adapters.dian.simulator.application_response import signed_application_response
    from adapters.dian.simulator.checks import Document
    from domain.order import parse_order
    from domain.ports import DocumentNumber, OrderKey, Submission
    from worker.settings import Settings
    from worker.wiring import dian_setup

    signer = XadesSigner.from_pkcs12(cert, PASSWORD)
    data = order("BENCH-COPY")
    data["adquirente"] = {
        "tipo_documento": "31",
        "numero_documento": "900373076",
        "nombre": "Comprador S.A.S.",
        "email": "compras@example.net",
    }
    submission = Submission(
        key=OrderKey(ISSUER, "BENCH-COPY"),
        order=parse_order(data),
        issued_at=datetime.now(UTC),
        number=DocumentNumber("SETP", 990000001),
    )
    signed = DianDocumentFactory(dian_setup(Settings()), signer).build(submission)
    tree = etree.fromstring(signed.xml)
    document = Document(signed.xml, signed.xml_name, signed.number, signed.cufe, ISSUER, tree, "01")
    return {
        "document": signed.xml,
        "application_response": signed_application_response(document, []),
    }


def _accepted(database_url: str, copies: int, files: dict[str, bytes]) -> list[Any]:
    """`copies` documents ended SUCCESS with their files and a copy to deliver."""
    from adapters.db.engine import make_engine
    from adapters.db.store import SqlDocumentStore
    from domain.delivery import Channel, CopyRequest
    from domain.documents import DocumentKind, DocumentPlan
    from domain.order import parse_order
    from domain.ports import OrderKey
    from domain.store import State, StepNote

    engine = make_engine(database_url)
    store = SqlDocumentStore(engine)
    plan = DocumentPlan(DocumentKind.INVOICE, "1", numbered=False)
    keys = []
    for n in range(copies):
        key = OrderKey(ISSUER, f"COPY-{n}")
        data = order(key.order_id)
        data["adquirente"] = {
            "nombre": "Ana",
            "numero_documento": "1018419008",
            "tipo_documento": "13",
            "email": f"buyer{n}@example.net",
        }
        store.accept(key, parse_order(data), "dian", plan)
        claim = store.claim(key, 60)
        assert claim is not None
        copy = CopyRequest(Channel.SMTP, f"buyer{n}@example.net")
        store.finish(claim, State.SUCCESS, {}, StepNote("SUCCESS"), None, files, copy)
        keys.append(key)
    engine.dispose()
    return keys


def run(copies: int, pool: str | None = None, concurrency: int | None = None) -> dict[str, Any]:
    """Deliver `copies` with the default worker settings, or with `pool` × `concurrency`."""
    from adapters.dian.devcert import make_test_pkcs12
    from adapters.mail.sink import MailSink

    workdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    cert_path = workdir / "issuer.p12"
    cert = make_test_pkcs12(ISSUER, PASSWORD)
    cert_path.write_bytes(cert)
    queue = queue_name("delivery")
    with scratch_database() as url, MailSink() as sink:
        env = {
            "DATABASE_URL": url,
            "BROKER_URL": REDIS_URL,
            "QUEUE": queue,
            "GATEWAY": "dian",
            "ISSUER__NIT": ISSUER,
            "DIAN__CERT_PATH": str(cert_path),
            "DIAN__CERT_PASSWORD": PASSWORD,
            "SMTP__HOST": sink.host,
            "SMTP__PORT": str(sink.port),
            "SMTP__SECURITY": "none",
            "SMTP__FROM": "facturacion@example.co",
            "LOG_LEVEL": "WARNING",
        }
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            keys = _accepted(url, copies, _files(cert))
            from worker.celery_app import create_app
            from worker.publisher import DeliveryPublisher
            from worker.settings import Settings

            settings = Settings()
            app = create_app(settings)
            publisher = DeliveryPublisher(app, settings.delivery_queue)
            for key in keys:
                publisher.publish(key)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        procs = Processes(workdir)
        try:
            argv = [
                sys.executable,
                "-m",
                "worker",
                "worker",
                "--queues",
                "delivery",
                "--name",
                f"bench@{queue}",
            ]
            if pool:
                argv += ["--pool", pool]
            if concurrency:
                argv += ["--concurrency", str(concurrency)]
            procs.start(argv, {**env, "LOG_LEVEL": "INFO"}, "worker")
            wait_for_log(procs, "worker", "ready.", timeout=120)
            from adapters.db.engine import make_engine

            engine = make_engine(url)
            done, _ = wait_count(engine, DELIVERED_SQL, copies, timeout=max(120.0, copies / 2))
            rate = span_rate(engine, RATE_SQL)
            with engine.connect() as conn:
                refused = int(
                    conn.execute(
                        text("SELECT count(*) FROM deliveries WHERE state <> 'ENTREGADO'")
                    ).scalar_one()
                )
            engine.dispose()
        finally:
            procs.stop()
            flush_redis()
        received = len(sink.received)
    return {
        "copies": copies,
        "delivered": done,
        "not_delivered": refused,
        "messages_received": received,
        "per_second": rate["per_second"],
        "span_s": rate["span_s"],
        "worker": f"{pool}, {concurrency}" if pool else "prefork, 2 processes (defaults)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=500)
    parser.add_argument("--pool", choices=["prefork", "threads", "solo"])
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.copies, args.pool, args.concurrency)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['delivered']} of {result['copies']} copies delivered "
            f"({result['messages_received']} messages received): "
            f"{result['per_second']} e-mails/s over {result['span_s']} s ({result['worker']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
