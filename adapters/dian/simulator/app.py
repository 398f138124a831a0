"""HTTP front of the DIAN simulator: SOAP 1.2 on POST, plus /_control and /_stats.

POST /<any path>   SOAP 1.2 request (application/soap+xml), as DIAN's service takes it
POST /_control     JSON object of `Options` fields to change; {"reset": true} forgets all
GET  /_stats       JSON counts: submissions per document number, accepted, duplicates...
GET  /_last_request  the raw bytes of the last SOAP request (for independent checks)
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from adapters.dian.simulator import responses
from adapters.dian.simulator.service import DianService, SecurityRefused
from adapters.dian.simulator.state import Options, State

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 20 * 1024 * 1024


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: State) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.service = DianService(state)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, every answer after the first
    # on a keep-alive connection waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._send(413, b"request too large", "text/plain")
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def do_GET(self) -> None:
        state = self.server.state
        if self.path == "/_stats":
            self._json(200, state.stats())
        elif self.path == "/_control":
            self._json(200, state.options.as_dict())
        elif self.path == "/_last_request":
            with state.lock:
                body = state.last_envelope
            self._send(200, body, "application/soap+xml")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        if self.path == "/_control":
            self._control(body)
            return
        try:
            self._soap(body)
        except (BrokenPipeError, ConnectionResetError):
            log.info("client went away before the answer was written")

    def _control(self, body: bytes) -> None:
        state = self.server.state
        try:
            changes = json.loads(body or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object")
            if changes.pop("reset", False):
                state.reset()
            with state.lock:
                state.options.update(changes)
        except ValueError as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(200, state.options.as_dict())

    def _soap(self, body: bytes) -> None:
        state = self.server.state
        options = state.options
        with state.lock:
            state.last_envelope = body
        if options.latency:
            time.sleep(options.latency)
        with state.lock:
            failing = options.take("http_errors") or (
                options.http_error_rate > 0 and random.random() < options.http_error_rate
            )
            if failing:
                state.counters["http_errors"] += 1
        if failing:
            self._send(options.http_error_status, b"<html>Service Unavailable</html>", "text/html")
            return
        with state.lock:
            slow = options.take("timeouts")
            broken = options.take("server_faults")
        if broken:
            fault = responses.receiver_fault("The server was unable to process the request.")
            self._send(500, fault, "application/soap+xml; charset=utf-8")
            return
        if slow:
            time.sleep(options.timeout_seconds)
        try:
            _, answer = self.server.service.handle(body)
        except SecurityRefused as exc:
            log.info("WS-Security refused: %s", exc)
            with state.lock:
                state.counters["security_faults"] += 1
            self._send(500, responses.security_fault(), "application/soap+xml; charset=utf-8")
            return
        with state.lock:
            drop = options.take("drops")
            malformed = options.take("malformed")
            xxe = options.take("xxe")
            laughs = options.take("billion_laughs")
        if drop:
            self.close_connection = True
            return
        if malformed:
            answer = answer[: len(answer) // 2]
        elif xxe:
            answer = responses.hostile(answer, "xxe")
        elif laughs:
            answer = responses.hostile(answer, "laughs")
        self._send(200, answer, "application/soap+xml; charset=utf-8")


def start_simulator(
    port: int = 0, host: str = "127.0.0.1", **options: Any
) -> tuple[SimulatorServer, str]:
    """Start a simulator in a daemon thread; returns (server, base_url).

    `options` are `Options` fields (checks, technical_keys, ubl_xsd_dir, batch_polls, ...).
    Stop it with `server.shutdown(); server.server_close()`.
    """
    settings = Options()
    settings.update(options)
    server = SimulatorServer((host, port), State(options=settings))
    thread = threading.Thread(target=server.serve_forever, name="dian-simulator", daemon=True)
    thread.start()
    return server, server.base_url
