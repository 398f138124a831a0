"""What the demo starts for each gateway: nothing for the simulated one, a local simulator
for DIAN and Factus (the demo never talks to a real authority)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path


def prepare_gateway(stack: ExitStack, gateway: str, workdir: Path) -> dict[str, str]:
    del stack, workdir
    if gateway == "simulated":
        return {}
    raise SystemExit(f"the demo cannot run gateway {gateway!r} yet")
