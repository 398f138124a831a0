"""Keep a process running: restart it with backoff when it dies, stop it when told to.

The beat scheduler exits when it loses its Redis lock (Redis restarted, FLUSHALL, failover).
Reconciliation must not stop with it, whether or not a container runtime restarts processes.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from types import FrameType

log = logging.getLogger(__name__)


def supervise(command: list[str], name: str, max_backoff: float = 30.0) -> int:
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = 1.0
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)
        code = child.wait()
        if stopping:
            return 0
        if time.monotonic() - started > 60:
            backoff = 1.0  # it ran for a while: this is a new failure, not a crash loop
        log.error("%s exited with %s; starting it again in %.0f s", name, code, backoff)
        deadline = time.monotonic() + backoff
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)
        if stopping:
            return 0
        backoff = min(max_backoff, backoff * 2)
