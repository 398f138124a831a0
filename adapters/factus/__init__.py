"""Factus (provider of DIAN electronic invoicing), REST API v2 over httpx."""

from adapters.factus.config import FactusConfig, build_factus_gateway
from adapters.factus.gateway import FactusGateway

__all__ = ["FactusConfig", "FactusGateway", "build_factus_gateway"]
