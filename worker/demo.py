"""The main job, end to end on one machine: a worker, beat, and a batch of sample orders.

With no DATABASE_URL / BROKER_URL set it runs on embedded defaults (SQLite for the store, a
SQLite-backed Celery transport) in `var/demo/`, fresh on every run. With them set it uses
PostgreSQL and Redis, tagging the sample order ids with the run so reruns do not collide.

Exit status 0 when every accepted order ended SUCCESS (the invalid sample order is refused on
purpose), 1 when one did not within the timeout or a valid order was refused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Any

from domain.documents import DocumentKind
from domain.errors import InvalidOrder, NumberingError, OrderConflict
from domain.ports import OrderKey
from domain.store import DocumentRecord, State

DEMO_DIR = Path("var/demo")


def _sample_orders(path: str | None) -> list[Any]:
    if path:
        from worker.cli_files import read_input

        data = json.loads(read_input(path).decode("utf-8"), parse_float=str)
    else:
        text = resources.files("worker.samples").joinpath("orders.json").read_text(encoding="utf-8")
        data = json.loads(text, parse_float=str)
    return data if isinstance(data, list) else [data]


def _demo_environment(stack: ExitStack, gateway: str) -> dict[str, str]:
    env: dict[str, str] = {}
    if "DATABASE_URL" not in os.environ:
        shutil.rmtree(DEMO_DIR, ignore_errors=True)
        DEMO_DIR.mkdir(parents=True)
        env["DATABASE_URL"] = f"sqlite:///{DEMO_DIR}/einvoice.sqlite"
    if "BROKER_URL" not in os.environ:
        DEMO_DIR.mkdir(parents=True, exist_ok=True)
        env["BROKER_URL"] = f"sqla+sqlite:///{DEMO_DIR}/broker.sqlite"
    env.setdefault("WORKER__RECONCILE_INTERVAL", os.environ.get("WORKER__RECONCILE_INTERVAL", "3"))
    env.setdefault("WORKER__REPUBLISH_AFTER", os.environ.get("WORKER__REPUBLISH_AFTER", "20"))
    env["GATEWAY"] = gateway
    # A register issues the POS equivalent document; a buyer who asks gets an invoice.
    env["DOCUMENTS__MODE"] = os.environ.get("DOCUMENTS__MODE", "pos")
    env["SIMULATED__STATE_PATH"] = os.environ.get(
        "SIMULATED__STATE_PATH", str(DEMO_DIR / "simulated-authority.sqlite")
    )
    from worker.demo_gateways import prepare_gateway

    env.update(prepare_gateway(stack, gateway, DEMO_DIR))
    return env


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = log_path.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_demo(
    orders_file: str | None = None, timeout: float = 120.0, gateway: str | None = None
) -> int:
    gateway = gateway or os.environ.get("GATEWAY") or "dian"
    with ExitStack() as stack:
        env_overrides = _demo_environment(stack, gateway)
        os.environ.update(env_overrides)
        from worker.migrations import upgrade
        from worker.producer import Producer
        from worker.settings import Settings

        settings = Settings()
        upgrade(settings.database_url)
        tag = "" if "DATABASE_URL" in env_overrides else f"-{int(time.time())}"
        env = {**os.environ}
        logs = DEMO_DIR / "logs"
        print(
            f"gateway: {settings.gateway}   store: {_safe_url(settings.database_url)}   "
            f"broker: {_safe_url(settings.broker_url)}"
        )
        worker = _spawn(["worker", "--name", "demo@%h"], env, logs / "worker.log")
        stack.callback(_stop, worker)
        beat = _spawn(["beat"], env, logs / "beat.log")
        stack.callback(_stop, beat)

        keys: list[OrderKey] = []
        refused = 0
        print("\nenqueue")
        with Producer(settings) as producer:
            for data in _sample_orders(orders_file):
                if tag and isinstance(data, dict) and "id_pedido_origen" in data:
                    data = {**data, "id_pedido_origen": f"{data['id_pedido_origen']}{tag}"}
                accepted, unexpected = _enqueue_one(producer.enqueue, data)
                keys += accepted
                refused += unexpected
            store = producer._container.store
            issued = _wait_and_report(store, list(dict.fromkeys(keys)), timeout, worker)
            delivered = True
            if settings.copy_channel == "smtp":
                deliveries = producer._container.deliveries
                delivered = _wait_for_copies(deliveries, list(dict.fromkeys(keys)), timeout)
        print(f"\nlogs: {logs}/worker.log, {logs}/beat.log")
        return 0 if issued and delivered and not refused else 1


def _enqueue_one(enqueue: Callable[[Any], Any], data: Any) -> tuple[list[OrderKey], int]:
    """The key of the order if it was accepted, and 1 if it was refused for anything but its
    content (an invalid sample order is part of the show; a conflict or numbering error is not).
    """
    order_id = data.get("id_pedido_origen") if isinstance(data, dict) else None
    try:
        result = enqueue(data)
    except InvalidOrder as exc:
        print(
            f"  {order_id:<28} refused: invalid order "
            f"({len(exc.errors)} errors, recorded as refused input)"
        )
        for error in exc.errors:
            print(f"      {error.field}: {error.message} [{error.rule}]")
        return [], 0
    except (OrderConflict, NumberingError) as exc:
        print(f"  {order_id:<28} refused: {exc}")
        return [], 1
    what = "POS document" if result.kind is DocumentKind.POS else "invoice"
    verb = f"accepted, {what}" if result.created else "already known, no second document"
    number = f" number {result.number}" if result.number else ""
    print(f"  {order_id:<28} {verb}{number}")
    return [result.key], 0


def _wait_and_report(
    store: Any, keys: list[OrderKey], timeout: float, worker: subprocess.Popen[bytes]
) -> bool:
    deadline = time.monotonic() + timeout
    records: dict[OrderKey, DocumentRecord | None] = {}
    print("\nprocessing", end="", flush=True)
    while time.monotonic() < deadline:
        records = {key: store.get(key) for key in keys}
        if all(r is not None and r.state.is_final for r in records.values()):
            break
        if worker.poll() is not None:
            print(" worker exited!", end="")
            break
        print(".", end="", flush=True)
        time.sleep(1)
    print("\n\noutcome")
    print(f"  {'order':<28} {'state':<10} {'document':<16} detail")
    for key, record in records.items():
        if record is None:
            print(f"  {key.order_id:<28} {'?':<10}")
            continue
        document = record.references.get("number", "")
        print(f"  {key.order_id:<28} {record.state!s:<10} {document:<16} {_detail(record)}")
    issued = sum(1 for r in records.values() if r is not None and r.state is State.SUCCESS)
    print(f"\n{issued} of {len(keys)} accepted orders SUCCESS")
    return issued == len(keys)


def _wait_for_copies(deliveries: Any, keys: list[OrderKey], timeout: float) -> bool:
    """Wait for the buyers' copies of the orders that have one; show each delivered
    message as the local mail sink received it."""
    deadline = time.monotonic() + timeout
    copies = {key: deliveries.get_delivery(key) for key in keys}
    copies = {key: c for key, c in copies.items() if c is not None}
    while time.monotonic() < deadline:
        copies = {key: deliveries.get_delivery(key) for key in copies}
        if all(c is not None and c.state.is_final for c in copies.values()):
            break
        time.sleep(0.5)
    print("\nbuyers' copies (e-mail: one ZIP with the PDF and the AttachedDocument)")
    for key, copy in copies.items():
        print(f"  {key.order_id:<28} {copy.state.value if copy else '?':<10}")
    for path in sorted((DEMO_DIR / "mail").glob("*.eml")):
        _show_message(path)
    return all(c is not None and c.state.value == "ENTREGADO" for c in copies.values())


def _show_message(path: Path) -> None:
    import io
    import zipfile
    from email import message_from_bytes, policy

    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    print(f"  {path}")
    print(f"      Subject: {message['Subject']}")
    print(f"      Message-ID: {message['Message-ID']}")
    for part in message.iter_attachments():
        content = part.get_payload(decode=True)
        if isinstance(content, bytes) and part.get_content_type() == "application/zip":
            names = zipfile.ZipFile(io.BytesIO(content)).namelist()
            print(f"      {part.get_filename()}: {', '.join(names)}")


def _detail(record: DocumentRecord) -> str:
    refs = record.references
    if record.state.value == "SUCCESS":
        cufe = refs.get("cufe", "")
        name = "CUDE" if record.kind.uses_cude else "CUFE"
        return f"{record.kind.value} {name} {cufe[:16]}…" if cufe else "validated"
    if record.reason:
        rules = record.reason.get("rules") or []
        if rules:
            return "; ".join(f"{r['code']}: {r['text']}" for r in rules)[:90]
        return str(record.reason.get("message") or record.reason.get("error") or record.reason)[:90]
    return f"attempt {record.attempts}, waiting"


def _safe_url(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
