"""Sending mail through any SMTP server (plain, STARTTLS or SSL; with or without auth).

Configured from the environment (so passwords stay out of files and command lines):

=============================  ==========================================================
``PAPERFEED_SMTP_HOST``        server host (required to send)
``PAPERFEED_SMTP_PORT``        default 587 for starttls, 465 for ssl, 25 for none
``PAPERFEED_SMTP_SECURITY``    ``starttls`` (default), ``ssl`` or ``none``
``PAPERFEED_SMTP_USER``        login, if the server wants one
``PAPERFEED_SMTP_PASSWORD``    its password
``PAPERFEED_SMTP_FROM``        the sender, e.g. ``paperfeed <digest@example.org>``
``PAPERFEED_SMTP_TIMEOUT``     seconds per SMTP operation (default 30)
=============================  ==========================================================

Errors are sorted into *temporary* (connection trouble, 4xx replies: worth retrying) and
*permanent* (5xx replies such as an unknown mailbox: retrying will not help).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from types import TracebackType
from typing import Self

from paperfeed.errors import PaperfeedError

SECURITY_MODES = ("starttls", "ssl", "none")
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class MailError(PaperfeedError):
    """A message the SMTP server did not accept."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = "paperfeed <paperfeed@localhost>"
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise PaperfeedError(
                f"SMTP security must be one of {', '.join(SECURITY_MODES)}, not {self.security!r}"
            )
        if not 0 < self.port < 65536:
            raise PaperfeedError(f"SMTP port must be between 1 and 65535, not {self.port}")
        if "@" not in parseaddr(self.sender)[1]:
            raise PaperfeedError(f"the sender {self.sender!r} has no e-mail address")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SmtpSettings | None:
        """The settings from ``PAPERFEED_SMTP_*``; None when no host is configured."""
        e = os.environ if env is None else env
        host = e.get("PAPERFEED_SMTP_HOST", "").strip()
        if not host:
            return None
        security = e.get("PAPERFEED_SMTP_SECURITY", "starttls").strip().lower() or "starttls"
        port_text = e.get("PAPERFEED_SMTP_PORT", "").strip()
        try:
            port = int(port_text) if port_text else _DEFAULT_PORTS.get(security, 587)
            timeout = float(e.get("PAPERFEED_SMTP_TIMEOUT", "30") or 30)
        except ValueError:
            raise PaperfeedError(
                "PAPERFEED_SMTP_PORT must be a number and PAPERFEED_SMTP_TIMEOUT seconds"
            ) from None
        return cls(
            host=host,
            port=port,
            security=security,
            username=e.get("PAPERFEED_SMTP_USER") or None,
            password=e.get("PAPERFEED_SMTP_PASSWORD") or None,
            sender=e.get("PAPERFEED_SMTP_FROM") or f"paperfeed <paperfeed@{host}>",
            timeout=timeout,
        )


class SmtpMailer:
    """One SMTP connection, opened on first send and reused; reconnects when dropped."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            conn: smtplib.SMTP
            if s.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if s.username:
                conn.login(s.username, s.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(
                f"the SMTP server {s.host}:{s.port} refused the login: {exc.smtp_code}",
                temporary=False,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise MailError(
                f"the SMTP server {s.host}:{s.port} does not offer STARTTLS; "
                "set PAPERFEED_SMTP_SECURITY=none or ssl",
                temporary=False,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(
                f"cannot reach the SMTP server {s.host}:{s.port}: {exc}", temporary=True
            ) from None
        return conn

    def send(self, msg: EmailMessage) -> None:
        """Hand one message to the server; MailError (temporary or not) when it refuses."""
        if self._conn is None:
            self._conn = self._connect()
        to = msg["To"]
        try:
            self._conn.send_message(msg, from_addr=parseaddr(self.settings.sender)[1])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            raise MailError(
                f"{to} refused by the server: {code} {_text(reason)}", temporary=400 <= code < 500
            ) from None
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            raise MailError(
                f"message to {to} refused: {exc.smtp_code} {_text(exc.smtp_error)}",
                temporary=400 <= exc.smtp_code < 500,
            ) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            raise MailError(
                f"connection lost while sending to {to}: {exc}", temporary=True
            ) from None
        except smtplib.SMTPException as exc:
            self.close()
            raise MailError(f"sending to {to} failed: {exc}", temporary=True) from None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
