"""Settings → DIAN and Factus gateways (the adapters take plain values, never settings)."""

from __future__ import annotations

from domain.ports import Gateway
from worker.settings import Settings


def build_dian_gateway(settings: Settings) -> Gateway:
    raise NotImplementedError("the DIAN gateway is being wired")


def build_factus_gateway(settings: Settings) -> Gateway:
    raise NotImplementedError("the Factus gateway is being wired")
