"""Client-side rate limit for Factus (documented: 80 requests per minute per user).

A sliding window: at most `limit` requests in any `window_seconds`. `RedisRateLimiter` keeps
the window in one sorted set per Factus user, updated by an atomic Lua script that reads the
Redis server clock, so every process on every machine counts against the same window.
`acquire(timeout)` waits in short sleeps for a slot, or raises `GatewayUnavailable` with the
wait Factus would impose (`retry_after`) when that wait exceeds the timeout.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Protocol

import redis
from redis.exceptions import RedisError

from domain.errors import GatewayUnavailable

MAX_SLEEP = 0.25


class RateLimiter(Protocol):
    def acquire(self, timeout: float) -> None:
        """Take one request slot, waiting at most `timeout` seconds for it."""
        ...


def user_key(base_url: str, username: str) -> str:
    """An opaque key for one Factus user on one Factus environment."""
    return hashlib.sha256(f"{base_url.rstrip('/')}\x00{username}".encode()).hexdigest()[:24]


def _acquire(try_take: Callable[[], float], timeout: float) -> None:
    """`try_take()` takes a slot and returns 0, or returns the seconds until one frees up."""
    deadline = time.monotonic() + timeout
    while True:
        wait = try_take()
        if wait <= 0:
            return
        remaining = deadline - time.monotonic()
        if wait > remaining:
            raise GatewayUnavailable(
                f"Factus rate limit reached; next slot in {wait:.1f}s", retry_after=wait
            )
        # Short sleeps with jitter so waiting workers do not wake in lockstep.
        time.sleep(min(wait, MAX_SLEEP) + random.uniform(0, 0.02))


class InMemoryRateLimiter:
    """The window for one process (no Redis)."""

    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be >= 1 and window_seconds > 0")
        self.limit = limit
        self.window = window_seconds
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, timeout: float) -> None:
        _acquire(self._try_take, timeout)

    def _try_take(self) -> float:
        with self._lock:
            now = time.monotonic()
            while self._sent and self._sent[0] <= now - self.window:
                self._sent.popleft()
            if len(self._sent) < self.limit:
                self._sent.append(now)
                return 0.0
            return max(0.001, self._sent[0] + self.window - now)


# KEYS[1]: the window; ARGV: limit, window in microseconds, a unique member.
# Returns 0 when a slot was taken, else the microseconds until the oldest entry leaves.
_TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
"""


class RedisRateLimiter:
    """The window shared by every process through Redis, keyed per Factus user."""

    def __init__(
        self, store: redis.Redis[bytes], key: str, limit: int, window_seconds: float = 60.0
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be >= 1 and window_seconds > 0")
        self.key = key
        self.limit = limit
        self.window = window_seconds
        self._script = store.register_script(_TAKE_SLOT)

    def acquire(self, timeout: float) -> None:
        _acquire(self._try_take, timeout)

    def _try_take(self) -> float:
        try:
            wait_us = self._script(
                keys=[self.key],
                args=[self.limit, int(self.window * 1_000_000), uuid.uuid4().hex],
            )
        except RedisError as exc:
            raise GatewayUnavailable("shared rate limiter (Redis) unavailable") from exc
        return int(wait_us) / 1_000_000
