"""A local SMTP server that keeps what it receives: the demo's mail sink and the tests'.

It speaks real SMTP (aiosmtpd) on a local port, refuses the recipients it is told to with
550 5.1.1, and keeps every message it took, in memory and, when given a folder, as `.eml`
files (so another process can read them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Handler:
    refuse: set[str]
    folder: Path | None
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 Recipient address rejected: user unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        got = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        with self.lock:
            self.received.append(got)
            count = len(self.received)
        if self.folder is not None:
            (self.folder / f"{count:06d}.eml").write_bytes(got.data)
        return "250 Message accepted for delivery"


class MailSink:
    """`with MailSink(port=0) as sink:` … `sink.port`, `sink.received`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        refuse: set[str] | None = None,
        folder: Path | None = None,
    ) -> None:
        self._handler = _Handler({a.lower() for a in refuse or set()}, folder)
        if port == 0:
            port = free_port(host)
        self.host, self.port = host, port
        self._controller = Controller(self._handler, hostname=host, port=port)

    @property
    def received(self) -> list[Received]:
        with self._handler.lock:
            return list(self._handler.received)

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
