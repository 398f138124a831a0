"""The buyer's copy over SMTP: one message, one ZIP attachment, a Message-ID per round.

    connect, EHLO, STARTTLS/TLS, AUTH, MAIL, RCPT fail   nothing taken
        4xx, refused connection, timeout                 CourierUnavailable (retry)
        5xx to RCPT                                      AddressRefused (final)
        5xx to MAIL, AUTH                                CourierUnavailable (our setup: shown)
    DATA answered 5xx                                    AddressRefused (the message refused)
    DATA answered 4xx                                    CourierUnavailable
    connection lost during or after DATA                 CourierOutcomeUnknown (same Message-ID)

Error texts carry the SMTP codes only: a server's words may quote the address.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any, Literal

from adapters.mail.parcel import ParcelMaker
from domain.delivery import (
    AddressRefused,
    CourierOutcomeUnknown,
    CourierUnavailable,
    Delivery,
    message_id,
)
from domain.ports import OrderKey

Security = Literal["starttls", "tls", "none"]
# CRLF line ends (smtplib sends bytes as they are); headers folded only past RFC 5322's 998,
# so the subject's `;`-separated fields reach the reader as one line, without a leading space.
SMTP_POLICY = SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str = ""
    password: str = ""
    security: Security = "starttls"
    timeout: float = 30.0
    tls_context: ssl.SSLContext | None = None  # None: the system's trusted authorities


class SmtpCourier:
    """`Courier` over SMTP. `files(key)` gives the files kept with a document."""

    def __init__(
        self,
        config: SmtpConfig,
        parcels: ParcelMaker,
        files: Callable[[OrderKey], Mapping[str, bytes]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._parcels = parcels
        self._files = files
        self._clock = clock
        self._domain = config.sender.rpartition("@")[2] or "localhost"
        # Loading the trusted authorities takes tens of milliseconds: once per courier.
        self._tls: ssl.SSLContext | None = None
        if config.security != "none":
            self._tls = config.tls_context or ssl.create_default_context()

    def message(self, delivery: Delivery) -> EmailMessage:
        """The message of this delivery's round (the same Message-ID on every attempt)."""
        now = self._clock()
        parcel = self._parcels.make(self._files(delivery.key), now)
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = delivery.recipient or ""
        message["Subject"] = parcel.subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id(delivery.key, delivery.round, self._domain)
        message.set_content(
            "Adjuntamos la representación gráfica y el AttachedDocument de su documento "
            f"electrónico {parcel.subject.split(';')[2]}.\n"
        )
        message.add_attachment(
            parcel.zip_bytes, maintype="application", subtype="zip", filename=parcel.zip_name
        )
        return message

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        if not delivery.recipient:
            raise AddressRefused("the delivery has no address")
        message = self.message(delivery)
        c = self._config
        try:
            client = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise CourierUnavailable(f"cannot reach the mail server: {type(exc).__name__}") from exc
        with _closing(client):
            self._envelope(client, delivery.recipient)
            try:
                code, _ = client.data(message.as_bytes(policy=SMTP_POLICY))
            except smtplib.SMTPDataError as exc:
                code = exc.smtp_code  # DATA itself refused: nothing was sent
            except (OSError, smtplib.SMTPException) as exc:
                raise CourierOutcomeUnknown(
                    f"the connection ended while the message was sent: {type(exc).__name__}"
                ) from exc
        if code >= 500:
            raise AddressRefused(f"the server refused the message ({code})")
        if code >= 400 or code < 200:
            raise CourierUnavailable(f"the server deferred the message ({code})")
        return {"message_id": message["Message-ID"], "smtp_code": code, "server": c.host}

    def _connect(self) -> smtplib.SMTP:
        c = self._config
        client: smtplib.SMTP
        # The EHLO name given, so smtplib does not look up this host's FQDN on every message.
        if c.security == "tls":
            client = smtplib.SMTP_SSL(
                c.host, c.port, local_hostname=self._domain, timeout=c.timeout, context=self._tls
            )
        else:
            client = smtplib.SMTP(c.host, c.port, local_hostname=self._domain, timeout=c.timeout)
        try:
            client.ehlo()
            if c.security == "starttls":
                client.starttls(context=self._tls)
                client.ehlo()
            if c.username:
                client.login(c.username, c.password)
        except BaseException:
            _quit(client)
            raise
        return client

    def _envelope(self, client: smtplib.SMTP, recipient: str) -> None:
        try:
            code, _ = client.mail(self._config.sender)
            if code >= 400:
                raise CourierUnavailable(f"the server refused the sender ({code})")
            code, _ = client.rcpt(recipient)
        except (OSError, smtplib.SMTPException) as exc:
            raise CourierUnavailable(f"the mail server failed: {type(exc).__name__}") from exc
        if code >= 500:
            raise AddressRefused(f"the server refused the recipient ({code})")
        if code >= 400:
            raise CourierUnavailable(f"the server deferred the recipient ({code})")


class _closing:
    def __init__(self, client: smtplib.SMTP) -> None:
        self._client = client

    def __enter__(self) -> smtplib.SMTP:
        return self._client

    def __exit__(self, *_: object) -> None:
        _quit(self._client)


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()
