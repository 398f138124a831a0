"""Logging: one JSON object per line (or plain text), with the order key and task id.

Level and format come from the settings (LOG_LEVEL, LOG_FORMAT=json|text). Inside a Celery
task every line carries the task's id and name, and for `einvoice.process_order` its order
key: `task_prerun` binds them and `task_postrun` clears them, so a line never carries the
previous task's context. Messages at INFO name orders by key only; payloads and secrets are
never logged. `extra={"fields": {...}}` adds named values to a JSON line (the API's access
log: method, path, status, duration_ms).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from celery.signals import beat_init, celeryd_after_setup, task_postrun, task_prerun

from worker.log_capture import capture_output, captured_stream
from worker.publisher import TASK_PROCESS
from worker.settings import Settings

log = logging.getLogger(__name__)

_order_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("order_key", default=None)
_task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)
_task_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_name", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(order_key)s] %(message)s"


def bind_order(order_key: str | None, task_id: str | None) -> None:
    _order_key.set(order_key)
    _task_id.set(task_id)


def bind_task(task_name: str | None, task_id: str | None, order_key: str | None) -> None:
    _task_name.set(task_name)
    bind_order(order_key, task_id)


def _on_task_start(
    task_id: str | None = None, task: Any = None, args: Any = None, **_: Any
) -> None:
    name = getattr(task, "name", None)
    key = args[0] if name == TASK_PROCESS and args and isinstance(args[0], str) else None
    bind_task(name, task_id, key)


def _on_task_end(**_: Any) -> None:
    bind_task(None, None, None)


task_prerun.connect(_on_task_start, weak=False)
task_postrun.connect(_on_task_end, weak=False)


def _on_worker_setup(sender: str | None = None, instance: Any = None, **_: Any) -> None:
    """What Celery's banner says, as one event (the banner is not printed with JSON logs)."""
    app = instance.app
    queues = sorted(app.amqp.queues.consume_from or app.amqp.queues)
    fields = {
        "node": sender,
        "queues": queues,
        "pool": getattr(instance.pool_cls, "__module__", str(instance.pool_cls)).rsplit(".")[-1],
        "concurrency": instance.concurrency,
        "broker": app.connection_for_write().as_uri(),  # the password masked
        "task_events": bool(instance.task_events),
    }
    log.info(
        "worker %s starting: queues %s, %s pool of %s",
        sender,
        ", ".join(queues),
        fields["pool"],
        fields["concurrency"],
        extra={"fields": fields},
    )


def _on_beat_start(sender: Any = None, **_: Any) -> None:
    scheduler = type(sender.scheduler).__name__ if sender is not None else None
    log.info("beat starting: %s", scheduler, extra={"fields": {"scheduler": scheduler}})


celeryd_after_setup.connect(_on_worker_setup, weak=False)
beat_init.connect(_on_beat_start, weak=False)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.order_key = _order_key.get()
        record.task_id = _task_id.get()
        record.task_name = _task_name.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field, attribute in (
            ("order_key", "order_key"),
            ("task_id", "task_id"),
            ("task", "task_name"),
        ):
            value = getattr(record, attribute, None)
            if value:
                event[field] = value
        fields = getattr(record, "fields", None)  # `extra={"fields": {...}}`: named values
        if isinstance(fields, dict):
            event.update((k, v) for k, v in fields.items() if k not in event)
        if record.processName and record.processName != "MainProcess":
            event["process"] = record.processName
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False, default=str)


def configure_logging(settings: Settings, *, capture: bool = False) -> None:
    """The root handler on stderr, in LOG_FORMAT. `capture=True` is for long-running processes
    (worker, beat, API server, metrics exporter): with JSON logs, whatever else the process
    and its children write to stdout or stderr becomes JSON lines too (worker.log_capture)."""
    formatter: logging.Formatter
    formatter = JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    stream = captured_stream()
    if stream is None and capture and settings.log_format == "json":
        stream = capture_output(formatter)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(formatter)
    logging.captureWarnings(True)  # warnings become events in the same format, not raw text
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("httpx", "httpcore", "zeep", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
