"""Commands for the gateways and operators, registered beside the core ones."""

from __future__ import annotations

from typing import Any

from worker.ops import audit, export, flower, health, listing, metrics, retry, stats, stuck


def add_commands(sub: Any) -> None:
    """Operator commands: list, stuck, retry, stats, export, metrics, health, flower, audit."""
    for module in (listing, stuck, retry, stats, export, metrics, health, flower, audit):
        module.add_parser(sub)
