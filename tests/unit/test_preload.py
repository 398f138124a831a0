"""A worker's main process imports its gateway's modules before the pool forks, so every
child (replaced after `worker_max_tasks_per_child` tasks) inherits them."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from worker.bootstrap import preload
from worker.settings import Settings
before = {name: name in sys.modules for name in ("zeep", "adapters.dian.client")}
preload(Settings(gateway=sys.argv[1]))
after = {name: name in sys.modules for name in ("zeep", "adapters.dian.client")}
print(before, after)
"""


@pytest.mark.parametrize(
    ("gateway", "dian_loaded"), [("dian", True), ("factus", False), ("simulated", False)]
)
def test_the_dian_adapters_are_imported_only_for_dian(gateway: str, dian_loaded: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, gateway], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = {"zeep": dian_loaded, "adapters.dian.client": dian_loaded}
    absent = {"zeep": False, "adapters.dian.client": False}
    assert done.stdout.strip() == f"{absent} {loaded}"
