"""Client-side rate limit for Factus (documented: 80 requests per minute per user).

A sliding window: at most `limit` requests in any `window_seconds`, counted the way Factus
counts them. Two rules make our count never lower than Factus' own:
- a request is entered when it takes its slot and moved to the moment its answer came back
  (`release`), so a request slowed on its way to Factus still counts when it lands there;
- a request that must wait is handed a *reservation*, the first moment the window will have
  room after everything already in it and reserved, so waiters are served in order.

`acquire(timeout, owner)` takes a slot now, or waits up to `timeout` for one; a longer wait
raises `GatewayBusy(retry_after)` and, when an `owner` (a reference_code) is given, keeps the
reservation for that owner: the order goes back to the queue, due when its slot opens, and
its next request takes the reserved slot. `RedisRateLimiter` keeps the window in one sorted
set per Factus user, changed by atomic Lua scripts reading the Redis server clock, so every
process on every machine counts against the same window.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

import redis
from redis.exceptions import RedisError

from domain.errors import GatewayBusy, GatewayUnavailable

MAX_SLEEP = 0.25
RESERVED = "r:"


class RateLimiter(Protocol):
    def acquire(self, timeout: float, owner: str | None = None) -> str:
        """Take one request slot, waiting at most `timeout` seconds for it; returns its id."""
        ...

    def release(self, slot: str) -> None:
        """The request that took `slot` was answered (or failed): it counts from now on."""
        ...


def user_key(base_url: str, username: str) -> str:
    """An opaque key for one Factus user on one Factus environment."""
    return hashlib.sha256(f"{base_url.rstrip('/')}\x00{username}".encode()).hexdigest()[:24]


Take = Callable[[str, str], tuple[float, bool]]


def _acquire(take: Take, timeout: float, owner: str | None) -> str:
    """`take(slot, owner)` enters `slot` and answers (0, True), or answers (wait, reserved)."""
    deadline = time.monotonic() + timeout
    slot = uuid.uuid4().hex
    while True:
        wait, _ = take(slot, owner or "")
        if wait <= 0:
            return slot
        remaining = deadline - time.monotonic()
        if wait > remaining:
            raise GatewayBusy(
                f"Factus request budget spent; next slot in {wait:.1f}s", retry_after=wait
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
        self._at: dict[str, float] = {}  # member → time
        self._lock = threading.Lock()

    def acquire(self, timeout: float, owner: str | None = None) -> str:
        return _acquire(self._take, timeout, owner)

    def release(self, slot: str) -> None:
        with self._lock:
            if slot in self._at:
                self._at[slot] = time.monotonic()

    def _take(self, slot: str, owner: str) -> tuple[float, bool]:
        with self._lock:
            now = time.monotonic()
            for member in [m for m, at in self._at.items() if at <= now - self.window]:
                del self._at[member]
            if owner:
                reserved = self._at.get(RESERVED + owner)
                if reserved is not None and reserved > now:
                    return reserved - now, True
                if reserved is not None:  # its turn, unless the last window is full
                    del self._at[RESERVED + owner]
                    if sum(1 for at in self._at.values() if at <= now) < self.limit:
                        self._at[slot] = now
                        return 0.0, False
            times = sorted(self._at.values())
            opens = now
            if len(times) >= self.limit:
                opens = max(now, times[len(times) - self.limit] + self.window)
            if opens <= now:
                self._at[slot] = now
                return 0.0, False
            if owner:
                self._at[RESERVED + owner] = opens
            return opens - now, bool(owner)


# KEYS[1]: the window. ARGV: limit, window (µs), the slot's member, the owner ('' for none).
# Returns {0, 0} when the slot was entered, else {µs until a slot opens, 1 if reserved}.
_TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local owner = ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if owner ~= '' then
  local reserved = redis.call('ZSCORE', KEYS[1], 'r:' .. owner)
  if reserved and tonumber(reserved) > now then
    return {math.max(1, tonumber(reserved) - now), 1}
  end
  if reserved then
    -- its turn: the slot was planned for it; it takes it unless the last window is full
    redis.call('ZREM', KEYS[1], 'r:' .. owner)
    if redis.call('ZCOUNT', KEYS[1], '(' .. (now - window), now) < limit then
      redis.call('ZADD', KEYS[1], now, ARGV[3])
      return {0, 0}
    end
  end
end
local opens = now
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local nth = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  opens = math.max(now, tonumber(nth[2]) + window)
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) * 2 + 60000)
if opens <= now then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  return {0, 0}
end
if owner ~= '' then
  redis.call('ZADD', KEYS[1], opens, 'r:' .. owner)
  return {opens - now, 1}
end
return {opens - now, 0}
"""

# KEYS[1]: the window. ARGV[1]: a slot's member, moved to now if it is still there.
_RELEASE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
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
        self._take_script = store.register_script(_TAKE_SLOT)
        self._release_script = store.register_script(_RELEASE_SLOT)

    def acquire(self, timeout: float, owner: str | None = None) -> str:
        return _acquire(self._take, timeout, owner)

    def release(self, slot: str) -> None:
        # Never raised: the answer already in hand matters more; the slot then counts from
        # when it was taken, as if the request had been instant.
        with suppress(RedisError):
            self._release_script(keys=[self.key], args=[slot])

    def _take(self, slot: str, owner: str) -> tuple[float, bool]:
        try:
            wait_us, reserved = self._take_script(
                keys=[self.key],
                args=[self.limit, int(self.window * 1_000_000), slot, owner],
            )
        except RedisError as exc:
            raise GatewayUnavailable("shared rate limiter (Redis) unavailable") from exc
        return int(wait_us) / 1_000_000, bool(reserved)
