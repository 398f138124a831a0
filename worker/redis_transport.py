"""kombu's Redis transport, with a channel that outlives its closed connection quietly.

When the broker goes away while messages are unacknowledged, Celery collects the connection
(which drops the transport's link to it) and closes the channel later; the channel then tries
to restore those messages through a connection that no longer exists and raises
`AttributeError: 'NoneType' object has no attribute 'hostname'` (kombu 5.5 to 5.7). Celery
treats that as an unrecoverable error and the worker ends. Here the same situation raises the
transport's own connection error, which kombu and Celery already handle: the worker reconnects.
Nothing is lost by not restoring: a restarted Redis is empty anyway, a Redis that stayed up
gives the messages back after the visibility timeout, and the database is the record of pending
work (the reconciler publishes again whatever is not final).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

TRANSPORT = "worker.redis_transport:Transport"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection of this channel is already closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel
