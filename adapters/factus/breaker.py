"""A circuit breaker per Factus account, shared by every worker process through Redis.

    closed ──(3 outage answers in a row, or the account blocked)──▶ open until T
    open ──(T passes)──▶ half-open: the first caller is the probe; the others wait for it
    probe answered ──▶ closed (every waiting order goes at its next look, within a second)
    probe failed   ──▶ open again, the pause doubled (2 s, 4 s, ... at most 15 s; the pause
                       is remembered for 30 s after a close, so a blocked account whose
                       lookups answer is probed every 15 s, not every 2 s)

While it is open no request leaves for Factus: `before()` raises `GatewayBusy` with the wait
until the next probe, so orders go back to the queue due then, without a backoff of their
own and without being counted as failed attempts. An outage costs one probe per pause, not
one request per order, and recovery is seen within one pause of it.
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from typing import Protocol

import redis
from redis.exceptions import RedisError

from domain.errors import GatewayBusy, GatewayUnavailable

FAILURES_TO_OPEN = 3
FIRST_PAUSE = 2.0
MAX_PAUSE = 15.0
PROBE_WAIT = 1.0  # how long others wait while the probe is out
PROBE_TIMEOUT = 40.0  # a probe lost with its worker frees the turn after this


class CircuitBreaker(Protocol):
    def before(self) -> None:
        """Raise `GatewayBusy` while Factus is believed down and this caller is not the probe."""
        ...

    def succeeded(self) -> None:
        """Factus answered (anything but an outage)."""
        ...

    def failed(self) -> None:
        """Factus did not answer, or answered 5xx."""
        ...

    def trip(self) -> None:
        """The account is blocked (a bill pending at DIAN holds every other): open at once."""
        ...


def _busy(wait: float) -> GatewayBusy:
    return GatewayBusy(f"Factus is down or blocked; next probe in {wait:.1f}s", retry_after=wait)


class InMemoryCircuitBreaker:
    """The breaker for one process (no Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._pause = 0.0
        self._pause_kept_until = 0.0
        self._probe_until = 0.0

    def before(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self._open_until == 0.0:
                return
            if now < self._open_until:
                raise _busy(self._open_until - now)
            if now < self._probe_until:
                raise _busy(min(PROBE_WAIT, self._probe_until - now))
            self._probe_until = now + PROBE_TIMEOUT

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._open_until, self._probe_until = 0, 0.0, 0.0

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= FAILURES_TO_OPEN:
                self._open()

    def trip(self) -> None:
        with self._lock:
            self._open()

    def _open(self) -> None:
        if time.monotonic() < self._open_until:
            return  # already open: requests that were out when it opened change nothing
        now = time.monotonic()
        if now > self._pause_kept_until:
            self._pause = 0.0
        self._pause = min(MAX_PAUSE, self._pause * 2 if self._pause else FIRST_PAUSE)
        self._pause_kept_until = now + self._pause + 2 * MAX_PAUSE
        self._open_until = now + self._pause
        self._probe_until = 0.0


# KEYS[1]: the breaker hash (failures, open_until, probe_until; times in µs). KEYS[2]: the
# last pause, remembered across a close so a probe that gets through once (a blocked account
# answers its lookups) does not start the pauses over; forgotten after two longest pauses.
# ARGV[1]: probe wait, ARGV[2]: probe timeout (µs). Returns 0 to go, else µs to wait.
_BEFORE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return 0 end
if now < open_until then return open_until - now end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < probe_until then return math.min(tonumber(ARGV[1]), probe_until - now) end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[2]))
return 0
"""

# ARGV[1]: 1 to open at once (trip), ARGV[2]: failures to open, ARGV[3]: first pause,
# ARGV[4]: longest pause (µs).
_FAILED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if now < open_until then
  -- already open: requests that were out when it opened change nothing
elseif ARGV[1] == '1' or failures >= tonumber(ARGV[2]) then
  local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
  if pause == 0 then
    pause = tonumber(ARGV[3])
  else
    pause = math.min(tonumber(ARGV[4]), pause * 2)
  end
  redis.call('SET', KEYS[2], pause, 'PX', math.floor((pause + 2 * tonumber(ARGV[4])) / 1000))
  redis.call('HSET', KEYS[1], 'open_until', now + pause, 'probe_until', 0)
end
redis.call('PEXPIRE', KEYS[1], 3600000)
return failures
"""


class RedisCircuitBreaker:
    """The breaker shared by every process through Redis, one per Factus account."""

    def __init__(self, store: redis.Redis[bytes], key: str) -> None:
        self.key = key
        self._redis = store
        self._before = store.register_script(_BEFORE)
        self._failed = store.register_script(_FAILED)

    def before(self) -> None:
        try:
            wait_us = int(self._before(keys=[self.key], args=[_us(PROBE_WAIT), _us(PROBE_TIMEOUT)]))
        except RedisError as exc:
            raise GatewayUnavailable("shared circuit breaker (Redis) unavailable") from exc
        if wait_us > 0:
            raise _busy(wait_us / 1_000_000)

    def succeeded(self) -> None:
        # The answer in hand matters more than the breaker; the next success closes it.
        with suppress(RedisError):
            # Only a write when there is something to forget: the common case is one read.
            if self._redis.exists(self.key):
                self._redis.delete(self.key)

    def failed(self) -> None:
        self._record(trip=False)

    def trip(self) -> None:
        self._record(trip=True)

    def _record(self, *, trip: bool) -> None:
        args = ["1" if trip else "0", FAILURES_TO_OPEN, _us(FIRST_PAUSE), _us(MAX_PAUSE)]
        # The outage itself is already being reported to the caller.
        with suppress(RedisError):
            self._failed(keys=[self.key, self.key + ":pause"], args=args)


def _us(seconds: float) -> int:
    return int(seconds * 1_000_000)
