"""The broker seen from outside: queue depth on Redis, reachability on any transport."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis
from kombu.connection import Connection

# kombu's Redis transport keeps one list per priority step: `queue`, `queue\x06\x163`, ...
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    ready: int  # messages waiting in the queue (and its issuer lanes)
    unacked: int  # delivered to a worker, not acknowledged yet (all queues of this Redis db)


def is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://"))


def queue_depth(
    broker_url: str, queue: str, timeout: float = 3.0, lanes: Sequence[str] = ()
) -> QueueDepth | None:
    """LLEN of the queue's lists (and of its issuer `lanes`, counted with it) and HLEN of
    `unacked`; None when the broker is not Redis.

    Raises redis.RedisError when Redis cannot be reached."""
    if not is_redis(broker_url):
        return None
    client = redis.Redis.from_url(
        broker_url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        names = [
            name if not step else f"{name}{_PRIORITY_SEPARATOR}{step}"
            for name in (queue, *lanes)
            for step in _PRIORITY_STEPS
        ]
        pipe = client.pipeline()
        for name in names:
            pipe.llen(name)
        pipe.hlen("unacked")
        *lengths, unacked = pipe.execute()
        return QueueDepth(queue, sum(int(n) for n in lengths), int(unacked))
    finally:
        client.close()


def check_reachable(broker_url: str, timeout: float = 3.0) -> None:
    """Open and close one broker connection; raises what the transport raises."""
    if is_redis(broker_url):
        client = redis.Redis.from_url(
            broker_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            client.ping()
        finally:
            client.close()
        return
    with Connection(broker_url, connect_timeout=timeout) as conn:  # type: ignore[no-untyped-call]
        conn.ensure_connection(max_retries=1)
