"""`einvoice` / `python -m worker`: run the worker, feed it orders, and see what happened."""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from domain.errors import InvalidOrder, OrderConflict
from domain.order import ORDER_ID
from domain.ports import OrderKey
from domain.usecases.enqueue import Answer
from worker.cli_exits import BadInput, run_command
from worker.cli_files import read_input
from worker.settings import Settings


def _settings() -> Settings:
    return Settings()


def _big_int(text: str) -> int | str:
    """Integers beyond any amount stay text, so validation names the field that holds them."""
    return text if len(text) > 30 else int(text)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _json(text: str) -> Any:
    return json.loads(text, parse_float=str, parse_int=_big_int)


def read_orders(stream: TextIO) -> Iterator[Any]:
    """One JSON order, a JSON array of orders, or JSON lines."""
    text = stream.read()
    stripped = text.strip()
    if not stripped:
        return
    try:
        data = _json(stripped)
    except RecursionError:
        raise BadInput("input: not JSON this tool accepts (nested too deeply)") from None
    except ValueError:  # JSONDecodeError included: try JSON lines
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    yield _json(line)
                except RecursionError:
                    raise BadInput(f"input line {number}: nested too deeply") from None
                except ValueError as exc:
                    message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                    raise BadInput(f"input line {number}: not JSON ({message})") from None
        return
    if isinstance(data, list):
        yield from data
    else:
        yield data


def cmd_migrate(args: argparse.Namespace) -> int:
    from adapters.db.engine import make_engine
    from adapters.db.grants import APP_ROLE, grant_app_role
    from worker.bootstrap import sync_configured_ranges
    from worker.migrations import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        granted = grant_app_role(engine)
        synced = sync_configured_ranges(settings, engine)
    finally:
        engine.dispose()
    print("database migrated to head")
    if engine.dialect.name == "postgresql":
        print(
            f"role {APP_ROLE}: rights granted"
            if granted
            else f"role {APP_ROLE} does not exist: create it, then migrate again to grant it"
        )
    for numbering in synced:
        print(f"numbering range from the settings: {numbering.kind.word} {numbering.prefix}")
    return 0


def cmd_enqueue(args: argparse.Namespace) -> int:
    from worker.producer import Producer

    raw = read_input(args.file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"input: not UTF-8 (byte {exc.start} cannot be read as text)") from None
    orders = list(read_orders(io.StringIO(text)))
    settings = _settings()
    tally: Counter[str] = Counter()
    started = time.perf_counter()
    with Producer(settings, issuer=args.issuer) as producer:
        answers = producer.enqueue_many(orders, batch=args.batch)
        for position, (data, answer) in enumerate(zip(orders, answers, strict=True), 1):
            tally[_report(args, _about(data, position, producer.issuer), answer)] += 1
    seconds = time.perf_counter() - started
    print(
        f"{len(orders)} orders in {seconds:.2f} s ({len(orders) / max(seconds, 1e-9):,.0f}/s, "
        f"batches of {args.batch}): {tally['accepted']} accepted, {tally['existing']} "
        f"already accepted, {tally['invalid']} invalid, {tally['conflict']} conflicting",
        file=sys.stderr,
    )
    return 1 if tally["invalid"] or tally["conflict"] else 0


def _report(args: argparse.Namespace, about: dict[str, Any], answer: Answer) -> str:
    """Print one order's answer; what it was (accepted, existing, invalid, conflict)."""
    if isinstance(answer, InvalidOrder):
        _emit(
            args,
            {"ok": False, **about, "error": "invalid_order", "errors": answer.as_dicts()},
            f"INVALID {_name(about)}: "
            + "; ".join(f"{e.field}: {e.message} [{e.rule}]" for e in answer.errors),
        )
        return "invalid"
    if isinstance(answer, OrderConflict):
        _emit(
            args,
            {"ok": False, **about, "error": type(answer).__name__, "message": str(answer)},
            f"REFUSED {_name(about)}: {answer}",
        )
        return "conflict"
    verb = "ACCEPTED" if answer.created else "EXISTING"
    text = f"{verb} {answer.key} state={answer.state}"
    if answer.number:
        text += f" number={answer.number}"
    _emit(args, {"ok": True, **about, **answer.as_dict()}, text)
    for warning in answer.warnings:
        print(f"WARNING {warning}", file=sys.stderr)
    return "accepted" if answer.created else "existing"


def _about(data: Any, position: int, issuer: str) -> dict[str, Any]:
    """Which order a result line is about: its place in the input, its id as given, and its
    key when the id is one (an object without a usable id, or no object at all, says so)."""
    if not isinstance(data, dict):
        return {
            "position": position,
            "id_pedido_origen": None,
            "order_key": None,
            "input": "not a JSON object",
        }
    order_id = data.get("id_pedido_origen")
    key = None
    if isinstance(order_id, str) and ORDER_ID.fullmatch(order_id):
        key = str(OrderKey(issuer, order_id))
    return {"position": position, "id_pedido_origen": order_id, "order_key": key}


def _name(about: dict[str, Any]) -> str:
    if "input" in about:
        return f"order {about['position']} ({about['input']})"
    order_id = about["id_pedido_origen"]
    return str(order_id) if order_id is not None else f"order {about['position']} (no id)"


def _emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str) if args.json else text)


def cmd_status(args: argparse.Namespace) -> int:
    from domain.store import State
    from domain.usecases.notes import creditable
    from worker.bootstrap import container

    settings = _settings()
    key = (
        OrderKey.parse(args.order)
        if ":" in args.order
        else OrderKey(args.issuer or settings.issuer.nit, args.order)
    )
    store = container(settings).store
    record = store.get(key)
    refused = store.refusals(key, REFUSALS_SHOWN)
    if record is None and not refused.count:
        print(f"no order {key}", file=sys.stderr)
        return 2
    timeline = store.timeline(key) if record is not None else []
    hidden = max(0, len(timeline) - args.limit) if args.limit else 0
    timeline = timeline[hidden:]
    documents = store.documents_of(key) if record is not None and not key.note else []
    notes = [d for d in documents if d.kind.is_note]
    issued = record is not None and record.state is not State.FAILED
    left = creditable(documents) if documents and issued else None
    if args.json:
        print(
            json.dumps(
                {
                    "order_key": str(key),
                    "document_type": record.kind.value if record else None,
                    "register": record.register if record else None,
                    "state": str(record.state) if record else None,
                    "number": str(record.number) if record and record.number else None,
                    "attempts": record.attempts if record else 0,
                    "references": record.references if record else {},
                    "reason": record.reason if record else None,
                    "timeline": [_entry(e) for e in timeline],
                    "timeline_hidden": hidden,
                    "refusals": {
                        "count": refused.count,
                        "latest": [_entry(e) for e in refused.latest],
                    },
                    "corrects": (
                        {"number": record.corrects.number, "cufe": record.corrects.key}
                        if record and record.corrects
                        else None
                    ),
                    "note": record.note["figures"] if record and record.note else None,
                    "notes": [_document(d) for d in notes],
                    "creditable": left.as_dict() if left else None,
                },
                ensure_ascii=False,
                indent=2,
                default=str,
            )
        )
        return 0
    from worker.render_status import print_status

    print_status(key, record, timeline, refused, hidden, notes, left)
    return 0


REFUSALS_SHOWN = 10


def _document(record: Any) -> dict[str, Any]:
    return {
        "key": str(record.key),
        "document_type": record.kind.value,
        "state": str(record.state),
        "number": str(record.number) if record.number else None,
        "cude": record.references.get("cufe"),
        "total": record.note["figures"]["total"] if record.note else None,
    }


def _entry(entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id,
        "status": entry.status,
        "at": entry.created_at.isoformat(),
        "response": entry.response_out,
    }


def _queues(settings: Settings, which: str | None) -> str:
    """`issue`: documents only (every issuer lane); `delivery`: buyers' copies only; both by
    default."""
    if which == "issue":
        return ",".join(settings.queues)
    if which == "delivery":
        return settings.delivery_queue
    return ",".join([*settings.queues, settings.delivery_queue])


def cmd_worker(args: argparse.Namespace) -> int:
    from worker import bootstrap
    from worker.celery_app import app
    from worker.logs import configure_logging

    settings = _settings()
    # before Celery starts: its first warnings come before its own logging set-up
    configure_logging(settings, capture=True)
    quiet = ["--quiet"] if settings.log_format == "json" else []  # the banner is one event
    argv = [
        *quiet,
        "worker",
        "-Q",
        _queues(settings, args.queues),
        "-P",
        args.pool or settings.worker.pool,
        "-c",
        str(args.concurrency or settings.worker.concurrency),
        "--without-mingle",
        "--without-gossip",
        *(["-E"] if settings.worker.task_events else []),
        "-l",
        settings.log_level,
    ]
    if args.name:
        argv += ["-n", args.name]
    if args.beat:
        argv.append("-B")
    bootstrap.preload(settings)
    return run_worker(app, argv)


def run_worker(app: Any, argv: list[str]) -> int:
    """Run the Celery worker and return the exit status it stopped with.

    Celery stops the worker on an unrecoverable error with status 1, and then `worker_main`
    (and `app.start`, through click) drops it; a supervisor that restarts only failures
    (systemd's `Restart=on-failure`) must see it.
    """
    from celery.signals import worker_shutdown

    statuses: list[object] = []

    def record(sender: Any = None, **_: Any) -> None:
        statuses.append(getattr(sender, "exitcode", None))

    worker_shutdown.connect(record, weak=False)
    try:
        app.worker_main(argv)
    finally:
        worker_shutdown.disconnect(record)
    status = statuses[-1] if statuses else None
    if status is None or isinstance(status, int):
        return status or 0
    return 1  # SystemExit with a message


def cmd_beat(args: argparse.Namespace) -> int:
    from worker.logs import configure_logging
    from worker.supervise import supervise

    settings = _settings()
    configure_logging(settings, capture=True)
    quiet = ["--quiet"] if settings.log_format == "json" else []
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        *quiet,
        "beat",
        "-l",
        settings.log_level,
    ]
    return supervise(command, name="beat")


def cmd_reconcile(args: argparse.Namespace) -> int:
    from domain.usecases.reconcile import reconcile
    from worker.bootstrap import container
    from worker.celery_app import app

    settings = _settings()
    c = container(settings, app)
    assert c.publisher is not None
    from adapters.db.store import utc_now

    result = reconcile(
        c.store,
        c.publisher,
        utc_now,
        settings.worker.republish_after,
        settings.worker.reconcile_batch,
    )
    print(f"published {result.published} due orders ({result.failed_to_publish} failed)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from worker.demo import run_demo

    return run_demo(orders_file=args.orders, timeout=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="einvoice",
        description="POS orders in, DIAN electronic invoices out, every step on the audit trail. "
        "Settings come from the environment (DATABASE_URL, BROKER_URL, GATEWAY, ...).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "migrate", help="create or upgrade the database schema (alembic upgrade head)"
    )
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "enqueue", help="accept orders from a file or stdin (one, an array, or JSON lines)"
    )
    p.add_argument("file", help="path to a JSON file, or - for standard input")
    p.add_argument("--json", action="store_true", help="one JSON result per order")
    p.add_argument("--issuer", help="issuer NIT (defaults to ISSUER__NIT; see `issuer list`)")
    p.add_argument(
        "--batch",
        type=_positive,
        default=500,
        help="orders stored per transaction (default 500); each batch is durable and "
        "numbered before its wake-ups are published",
    )
    p.set_defaults(func=cmd_enqueue)

    p = sub.add_parser(
        "status", help="an order's document, its state and audit timeline, and refused input"
    )
    p.add_argument("order", help="the POS order id (id_pedido_origen) or ISSUER:ORDER_ID")
    p.add_argument("--issuer", help="issuer NIT (defaults to ISSUER__NIT)")
    p.add_argument(
        "--limit",
        type=int,
        default=200,
        help="show the latest LIMIT timeline rows (default 200; 0 shows every row)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("worker", help="run a Celery worker")
    p.add_argument("--pool", choices=["prefork", "threads", "solo"])
    p.add_argument("--concurrency", "-c", type=int)
    p.add_argument("--name", "-n", help="worker node name")
    p.add_argument(
        "--queues",
        choices=["issue", "delivery"],
        help="consume only documents to issue, or only buyers' copies to deliver (default: both)",
    )
    p.add_argument(
        "--beat", action="store_true", help="embed the beat scheduler (development only)"
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("beat", help="run the beat scheduler (one per deployment)")
    p.set_defaults(func=cmd_beat)

    p = sub.add_parser("reconcile", help="run one reconciliation pass now")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser(
        "demo",
        help="worker + beat + sample orders end to end, with each outcome; exit status 0 "
        "only when every accepted order ends SUCCESS",
    )
    p.add_argument("--orders", help="orders file (default: the bundled samples)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.set_defaults(func=cmd_demo)

    from worker.cli_api import add_api_commands
    from worker.cli_delivery import add_delivery_commands
    from worker.cli_documents import add_document_commands
    from worker.cli_extra import add_commands
    from worker.cli_issuers import add_issuer_commands
    from worker.cli_notes import add_note_commands
    from worker.cli_ranges import add_range_commands

    add_document_commands(sub)
    add_range_commands(sub)
    add_issuer_commands(sub)
    add_note_commands(sub)
    add_delivery_commands(sub)
    add_api_commands(sub)
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and dispatch; what a command raises becomes one line on stderr and an exit status
    (the table is in worker.cli_exits)."""

    def dispatch() -> int:
        args = build_parser().parse_args(argv)
        return int(args.func(args))

    return run_command(dispatch)


if __name__ == "__main__":
    raise SystemExit(main())
