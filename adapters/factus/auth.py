"""Factus OAuth: the token endpoint, and token providers that cache and renew the token.

`RedisTokenProvider` shares one token per Factus account (client_id + username) between every
worker process: it is renewed before `expires_in` runs out (refresh grant, then a full login
if the refresh fails), under a Redis lock so a fleet of workers logs in once, not once each.
`InMemoryTokenProvider` does the same within one process (the embedded demo, no Redis).
Tokens live in the cache only; they never reach logs, results or exception messages.
"""

from __future__ import annotations

import hashlib
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import redis
from redis.exceptions import LockError, RedisError

from domain.errors import GatewayMisconfigured, GatewayUnavailable

Clock = Callable[[], float]


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    obtained_at: float  # wall-clock seconds: shared between processes and machines
    expires_at: float

    def spent(self) -> Token:
        """This token once Factus refused its access token: only the refresh token is left."""
        return Token("", self.refresh_token, self.obtained_at, self.obtained_at)

    def is_fresh(self, now: float) -> bool:
        """Usable without renewal: more than the margin (10% of its life, at most 60 s) left."""
        margin = min(60.0, 0.1 * (self.expires_at - self.obtained_at))
        return now < self.expires_at - margin


class RefreshRejected(Exception):
    """The refresh token was refused; the caller falls back to a full login."""


class OAuthEndpoint:
    """`POST {base}/oauth/token`, password and refresh grants (form-encoded)."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        *,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
        clock: Clock = time.time,
    ) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/oauth/token"
        self.client_id = client_id
        self._client_secret = client_secret
        self.username = username
        self._password = password
        self._clock = clock

    def login(self) -> Token:
        form = {
            "grant_type": "password",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "username": self.username,
            "password": self._password,
        }
        response = self._post(form)
        if response.status_code in (400, 401, 403):
            error = _oauth_error(response)
            if error in CREDENTIAL_ERRORS:
                raise GatewayMisconfigured(
                    f"Factus refused the OAuth credentials ({error}, HTTP {response.status_code})"
                )
            # Not a verdict on the credentials (a proxy, a hiccup): try again later.
            raise GatewayUnavailable(
                f"Factus token endpoint refused the login without naming the credentials "
                f"(HTTP {response.status_code})"
            )
        return self._token(response)

    def refresh(self, refresh_token: str) -> Token:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "refresh_token": refresh_token,
        }
        response = self._post(form)
        if response.status_code in (400, 401, 403):
            raise RefreshRejected(f"refresh grant refused (HTTP {response.status_code})")
        return self._token(response)

    def _post(self, form: dict[str, str]) -> httpx.Response:
        try:
            response = self._http.post(self._url, data=form, headers={"Accept": "application/json"})
        except httpx.RequestError as exc:
            # Asking for a token twice is harmless: every transport failure is "try later".
            raise GatewayUnavailable(
                f"Factus token endpoint unreachable ({type(exc).__name__})"
            ) from exc
        if response.status_code == 429:
            raise GatewayUnavailable(
                "Factus token endpoint rate-limited (HTTP 429)",
                retry_after=_retry_after(response),
            )
        if response.status_code == 402:
            raise GatewayMisconfigured("Factus refused the account: payment required (HTTP 402)")
        if response.status_code >= 500:
            raise GatewayUnavailable(f"Factus token endpoint failed (HTTP {response.status_code})")
        return response

    def _token(self, response: httpx.Response) -> Token:
        if response.status_code != 200:
            raise GatewayMisconfigured(
                f"unexpected answer from the Factus token endpoint (HTTP {response.status_code})"
            )
        try:
            body: Any = response.json()
            access = str(body["access_token"])
            refresh = body.get("refresh_token")
            expires_in = float(body["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise GatewayUnavailable("malformed answer from the Factus token endpoint") from exc
        now = self._clock()
        return Token(access, str(refresh) if refresh else None, now, now + expires_in)


# The only answers that say the configured credentials are wrong (RFC 6749 §5.2).
CREDENTIAL_ERRORS = frozenset({"invalid_grant", "invalid_client"})


def _oauth_error(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class TokenProvider(Protocol):
    """Hands out a valid Factus access token; forgets one Factus answered 401 to."""

    def get(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class _RenewingProvider(ABC):
    """Read the cached token; when stale, renew it under a lock, re-reading first."""

    def __init__(self, oauth: OAuthEndpoint, clock: Clock) -> None:
        self._oauth = oauth
        self._clock = clock

    def get(self) -> str:
        cached = self._load()
        if cached is not None and cached.is_fresh(self._clock()):
            return cached.access_token
        with self._locked():
            cached = self._load()  # another process may have renewed it while we waited
            if cached is not None and cached.is_fresh(self._clock()):
                return cached.access_token
            token = self._renew(cached)
            self._store(token)
            return token.access_token

    def _renew(self, stale: Token | None) -> Token:
        if stale is not None and stale.refresh_token:
            try:
                return self._oauth.refresh(stale.refresh_token)
            except RefreshRejected:
                pass
        return self._oauth.login()

    @abstractmethod
    def _load(self) -> Token | None: ...

    @abstractmethod
    def _store(self, token: Token) -> None: ...

    @abstractmethod
    def _locked(self) -> AbstractContextManager[None]:
        """Held while renewing, so only one renewal runs at a time."""


class InMemoryTokenProvider(_RenewingProvider):
    """One token per process (no Redis)."""

    def __init__(self, oauth: OAuthEndpoint, clock: Clock = time.time) -> None:
        super().__init__(oauth, clock)
        self._lock = threading.Lock()
        self._token: Token | None = None

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._token is not None and self._token.access_token == token:
                self._token = self._token.spent()

    def _load(self) -> Token | None:
        return self._token

    def _store(self, token: Token) -> None:
        self._token = token

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            yield


# Forget the access token Factus refused, keeping the refresh token for the renewal.
_SPEND_IF_SAME = """
if redis.call('HGET', KEYS[1], 'access_token') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'access_token', '', 'expires_at', '0')
  return 1
end
return 0
"""


def account_key(client_id: str, username: str) -> str:
    """A stable, opaque key for one Factus account (no e-mail address in Redis key names)."""
    return hashlib.sha256(f"{client_id}\x00{username}".encode()).hexdigest()[:24]


class RedisTokenProvider(_RenewingProvider):
    """One token per Factus account, shared by every process through Redis."""

    # Keep the hash after the access token expires so its refresh token can still be used.
    REFRESH_GRACE_SECONDS = 3600

    def __init__(
        self,
        store: redis.Redis[bytes],
        oauth: OAuthEndpoint,
        *,
        key_prefix: str = "factus",
        lock_timeout: float = 75.0,  # above one OAuth call (connect + read) with a margin
        wait_timeout: float = 90.0,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(oauth, clock)
        self._redis = store
        self._key = f"{key_prefix}:token:{account_key(oauth.client_id, oauth.username)}"
        self._lock_timeout = lock_timeout
        self._wait_timeout = wait_timeout
        self._spend_if_same = store.register_script(_SPEND_IF_SAME)

    def invalidate(self, token: str) -> None:
        try:
            self._spend_if_same(keys=[self._key], args=[token])
        except RedisError as exc:
            raise GatewayUnavailable("shared token cache (Redis) unavailable") from exc

    def _load(self) -> Token | None:
        try:
            raw: dict[bytes, bytes] = self._redis.hgetall(self._key)
        except RedisError as exc:
            raise GatewayUnavailable("shared token cache (Redis) unavailable") from exc
        if not raw or b"access_token" not in raw:
            return None
        try:
            refresh = raw.get(b"refresh_token", b"").decode() or None
            return Token(
                raw[b"access_token"].decode(),
                refresh,
                float(raw[b"obtained_at"]),
                float(raw[b"expires_at"]),
            )
        except (KeyError, ValueError):
            return None

    def _store(self, token: Token) -> None:
        ttl = int(token.expires_at - token.obtained_at) + self.REFRESH_GRACE_SECONDS
        mapping: dict[str | bytes, bytes | float | int | str] = {
            "access_token": token.access_token,
            "refresh_token": token.refresh_token or "",
            "obtained_at": repr(token.obtained_at),
            "expires_at": repr(token.expires_at),
        }
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key)
                pipe.hset(self._key, mapping=mapping)
                pipe.expire(self._key, max(1, ttl))
                pipe.execute()
        except RedisError as exc:
            raise GatewayUnavailable("shared token cache (Redis) unavailable") from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self._redis.lock(
            self._key + ":lock", timeout=self._lock_timeout, sleep=0.05, thread_local=False
        )
        try:
            acquired = lock.acquire(blocking=True, blocking_timeout=self._wait_timeout)
        except RedisError as exc:
            raise GatewayUnavailable("shared token cache (Redis) unavailable") from exc
        if not acquired:
            raise GatewayUnavailable("another worker is renewing the Factus token; try later")
        try:
            yield
        finally:
            # If the lock expired on its own, the token was stored anyway.
            with suppress(LockError, RedisError):
                lock.release()
