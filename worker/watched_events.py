"""Task events while someone watches, and only then.

A worker starts without task events (`WORKER__TASK_EVENTS=false`): unwatched, the three events
of every order cost three broker round trips. Flower asks for them (`enable_events`) every few
seconds while it runs; the worker notes when it was last asked and, once nobody has asked for
`WORKER__EVENTS_WATCH_TIMEOUT` seconds, stops sending them again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery, bootsteps
from celery.worker import control

log = logging.getLogger(__name__)
TASK_GROUP = "task"
_asked = {"at": float("-inf")}  # when a watcher last asked this worker for task events
_flowers_request = control.Panel.data["enable_events"]


@control.control_command(name="enable_events")  # type: ignore[untyped-decorator]
def _enable_events(state: Any) -> Any:
    """Tell worker(s) to send task-related events (noted: they stop when nobody asks)."""
    _asked["at"] = time.monotonic()
    return _flowers_request(state)


class StopWhenUnwatched(bootsteps.StartStopStep):  # type: ignore[misc]
    """Checks now and then whether anyone still asks for task events."""

    requires = ("celery.worker.consumer.events:Events",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        self._timer: Any = None
        super().__init__(c, **kwargs)

    def start(self, c: Any) -> None:
        timeout = float(c.app.conf.einvoice_settings.worker.events_watch_timeout)
        self._timer = c.timer.call_repeatedly(
            max(0.5, timeout / 4), stop_if_unwatched, (c, timeout)
        )

    def stop(self, c: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def stop_if_unwatched(consumer: Any, timeout: float) -> None:
    dispatcher = consumer.event_dispatcher
    groups = getattr(dispatcher, "groups", None)
    if not groups or TASK_GROUP not in groups:
        return
    if time.monotonic() - _asked["at"] > timeout:
        groups.discard(TASK_GROUP)
        log.info("nobody asked for task events for %.0f s: not sending them", timeout)


def install(app: Celery, task_events: bool) -> None:
    """Workers of `app` stop task events nobody watches (unless they are always on)."""
    if not task_events:
        app.steps["consumer"].add(StopWhenUnwatched)
