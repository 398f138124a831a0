"""Commands for the gateways and operators, registered beside the core ones."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: Any) -> None:
    """Hook for gateway- and operator-specific commands."""
    del sub


def _unused(args: argparse.Namespace) -> int:  # pragma: no cover
    return 0
