"""Celery task events as Flower sees them: a receiver on the broker's event exchange, and the
same state machine Flower builds its task list from (`celery.events.state.State`)."""

from __future__ import annotations

import threading
import time
from typing import Any

from celery import Celery
from celery.events.state import State


class EventLog:
    def __init__(self, broker_url: str) -> None:
        self._app = Celery("event-log", broker=broker_url, set_as_current=False)
        self._receiver: Any = None
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.state = State()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> EventLog:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with self._app.connection_for_read() as conn:
            self._receiver = self._app.events.Receiver(conn, handlers={"*": self._on_event})
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def _on_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)
            self.state.event(event)

    def watch_tasks(self, timeout: float = 60) -> None:
        """Wait for a worker online, then ask it for task events as Flower does (workers send
        them only while someone watches): `enable_events`, answered by the worker."""
        self.wait_for(lambda: self.of_type("worker-online"), timeout, "the worker online")
        replies = self._app.control.enable_events(reply=True, timeout=5)
        answers = [answer for reply in replies or [] for answer in reply.values()]
        assert any("ok" in answer for answer in answers), f"enable_events answered {replies}"

    def of_type(self, prefix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["type"].startswith(prefix)]

    def for_task(self, task_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("uuid") == task_id]

    def task_state(self, task_id: str) -> str | None:
        with self._lock:
            task = self.state.tasks.get(task_id)
            return None if task is None else str(task.state)

    def wait_for(self, predicate: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        with self._lock:
            seen = [(e["type"], e.get("uuid"), e.get("name")) for e in self.events][-30:]
        raise AssertionError(f"timed out waiting for {what}; last events: {seen}")
