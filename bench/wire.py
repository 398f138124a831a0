"""Round trips counted on the wire: a TCP relay between a process and its server.

A round trip is a request the client sends after it has heard from the server: every time data
goes from client to server after data went the other way (or first on a connection), one turn.
Pipelined requests sent before any answer count once, as they cost one wait. The count does not
depend on the protocol, so it is the same for PostgreSQL and Redis, whatever client library
(and however many statements per message) the process uses.

    with TurnCounter(5432) as pg:
        run_worker(database_url=pg.through("postgresql+psycopg2://postgres@127.0.0.1:5432/db"))
        print(pg.turns)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from urllib.parse import urlsplit


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, f"{url} names no port"
    return port


class TurnCounter:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._lock = threading.Lock()
        self._turns = 0
        self.connections = 0
        self.port = 0

    def __enter__(self) -> TurnCounter:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = future.result(timeout=10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def through(self, url: str) -> str:
        """`url` (of the upstream server) sent through this relay instead."""
        upstream = f":{self._upstream[1]}/"
        assert upstream in url, f"{url} is not on port {self._upstream[1]}"
        return url.replace(upstream, f":{self.port}/", 1)

    @property
    def turns(self) -> int:
        with self._lock:
            return self._turns

    def reset(self) -> None:
        with self._lock:
            self._turns = 0

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    async def _relay(self, client_in: asyncio.StreamReader, client_out: Any) -> None:
        try:
            server_in, server_out = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_out.close()
            return
        self.connections += 1
        last = ["server"]  # who sent last on this connection: the first request is a turn

        async def pump(source: asyncio.StreamReader, sink: Any, from_client: bool) -> None:
            try:
                while data := await source.read(65536):
                    if from_client and last[0] == "server":
                        with self._lock:
                            self._turns += 1
                    last[0] = "client" if from_client else "server"
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError, asyncio.CancelledError):
                pass  # a side closed, or the relay is stopping
            finally:
                sink.close()

        await asyncio.gather(pump(client_in, server_out, True), pump(server_in, client_out, False))
