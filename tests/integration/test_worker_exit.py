"""`python -m worker worker` ends with a failure status when Celery gives up on the worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A real Celery worker (solo pool, in-memory broker) with a bootstep that fails at start:
# Celery logs "Unrecoverable error" and stops the worker with status 1.
SCRIPT = """
import sys
from celery import Celery, bootsteps
from worker.cli import run_worker

class Broken(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Pool"}
    def start(self, worker):
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

app = Celery("exit-status", broker="memory://")
app.steps["worker"].add(Broken)
sys.exit(run_worker(app, ["worker", "-P", "solo", "--without-mingle", "--without-gossip"]))
"""


def test_an_unrecoverable_error_ends_the_worker_with_a_failure_status() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "Unrecoverable error" in run.stderr + run.stdout, run.stderr[-2000:]
    assert run.returncode == 1, run.stderr[-2000:]
