"""Factus settings as plain values, and the factory that wires the gateway from them."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import redis

from adapters.factus.auth import (
    InMemoryTokenProvider,
    OAuthEndpoint,
    RedisTokenProvider,
    TokenProvider,
)
from adapters.factus.breaker import CircuitBreaker, InMemoryCircuitBreaker, RedisCircuitBreaker
from adapters.factus.client import FactusClient
from adapters.factus.gateway import FactusGateway
from adapters.factus.notes import FactusNoteGateway
from adapters.factus.ratelimit import InMemoryRateLimiter, RateLimiter, RedisRateLimiter, user_key


@dataclass(frozen=True)
class FactusConfig:
    """One Factus account. Secrets are plain strings kept out of `repr`."""

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    username: str
    password: str = field(repr=False)
    numbering_range_id: int
    # The Factus ranges of notes (document 22 credit, 23 debit); None: Factus uses the one
    # active range of that kind.
    credit_note_range_id: int | None = None
    debit_note_range_id: int | None = None
    rate_limit_per_minute: int = 80
    send_email: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    # Below the documented 80/min so clock skew and in-flight requests never reach a 429.
    rate_limit_safety: int = 5
    rate_limit_window_seconds: float = 60.0
    # How long a request may wait in the worker for a slot; a longer wait sends the order
    # back to the queue, due when its reserved slot opens (GatewayBusy).
    rate_limit_max_wait: float = 1.0
    # Factus blocks further bills while a rejected one exists; delete it once it is recorded.
    delete_rejected: bool = True

    @property
    def effective_rate_limit(self) -> int:
        return max(1, self.rate_limit_per_minute - self.rate_limit_safety)

    def http_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            self.read_timeout,
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.read_timeout,
            pool=self.connect_timeout,
        )


def build_factus_gateway(
    config: FactusConfig, redis_url: str | None, *, key_prefix: str = "factus"
) -> FactusGateway:
    """Wire the Factus gateway: one httpx.Client, a token provider and a rate limiter, shared
    through Redis by every worker process when `redis_url` is given, in memory otherwise."""
    http = httpx.Client(timeout=config.http_timeout(), headers={"Accept": "application/json"})
    oauth = OAuthEndpoint(
        http,
        config.base_url,
        client_id=config.client_id,
        client_secret=config.client_secret,
        username=config.username,
        password=config.password,
    )
    tokens: TokenProvider
    limiter: RateLimiter
    breaker: CircuitBreaker
    if redis_url:
        store = redis.Redis.from_url(redis_url)
        tokens = RedisTokenProvider(store, oauth, key_prefix=key_prefix)
        breaker = RedisCircuitBreaker(
            store, f"{key_prefix}:breaker:{user_key(config.base_url, config.username)}"
        )
        limiter = RedisRateLimiter(
            store,
            f"{key_prefix}:ratelimit:{user_key(config.base_url, config.username)}",
            limit=config.effective_rate_limit,
            window_seconds=config.rate_limit_window_seconds,
        )
    else:
        tokens = InMemoryTokenProvider(oauth)
        breaker = InMemoryCircuitBreaker()
        limiter = InMemoryRateLimiter(
            limit=config.effective_rate_limit, window_seconds=config.rate_limit_window_seconds
        )
    client = FactusClient(
        http,
        config.base_url,
        tokens,
        limiter,
        max_wait=config.rate_limit_max_wait,
        breaker=breaker,
    )
    return FactusGateway(client, config, notes=FactusNoteGateway(client, config))
