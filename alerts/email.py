"""Email channel over SMTP (plain, STARTTLS or implicit SSL), multipart text and HTML.

One SMTP connection is kept open across sends (a dispatcher pass sends many mails; a handshake
with TLS and login per mail would be slow and is what providers rate-limit), and reopened once
when the server has dropped it in between.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import smtplib
import ssl
from dataclasses import KW_ONLY, dataclass, field
from email.message import EmailMessage
from typing import Literal

from alerts.base import AlertDeliveryFailed, ChannelType, Message
from alerts.render import email_content

Security = Literal["starttls", "ssl", "none"]
SECURITY_MODES: tuple[Security, ...] = ("starttls", "ssl", "none")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to send mail. ``security``: ``starttls`` (upgrade a plain connection, port
    587), ``ssl`` (TLS from the start, port 465) or ``none`` (a local relay only). ``ca_file``
    verifies a server whose certificate a private CA signed; otherwise the system's CAs."""

    host: str
    _: KW_ONLY
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Security = "starttls"
    sender: str
    timeout: float = 10.0
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        if not self.host:
            raise ValueError("an SMTP host is required")
        if not self.sender:
            raise ValueError("a sender address is required")

    def __repr__(self) -> str:
        # the password must never reach a log line or a traceback
        password = "'***'" if self.password else "None"
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"password={password}, security={self.security!r}, sender={self.sender!r}, "
            f"timeout={self.timeout}, ca_file={self.ca_file!r})"
        )


def message_id(key: str) -> str:
    """``<sha256(key)[:32]@healthscore>``: the same alert resent has the same Message-ID, so mail
    systems and people can tell a duplicate from a new alert."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@healthscore>"


def build_email(message: Message, *, key: str, sender: str, to: str) -> EmailMessage:
    """The MIME message: multipart/alternative with the text part first (the fallback) and HTML."""
    content = email_content(message)
    mail = EmailMessage()
    mail["Subject"] = content.subject
    mail["From"] = sender
    mail["To"] = to
    mail["Date"] = email.utils.formatdate(usegmt=True)
    mail["Message-ID"] = message_id(key)
    # tells auto-responders and mail rules that no person wrote this (RFC 3834)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(content.text)
    mail.add_alternative(content.html, subtype="html")
    return mail


def _is_retryable_code(code: int) -> bool:
    """SMTP 4xx is a temporary failure (greylisting, a full mailbox, 451 local error); 5xx is
    permanent (550 no such user)."""
    return code < 500


class EmailChannel:
    """Sends ``email_content(message)`` to ``to`` through the SMTP server in ``settings``.

    ``AlertDeliveryFailed``: retryable for SMTP 4xx, connection errors and timeouts; not
    retryable for 5xx (a refused recipient, a rejected message, failed login) or a missing ``to``.
    """

    type = ChannelType.EMAIL

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._smtp: smtplib.SMTP | None = None

    def __repr__(self) -> str:
        return f"EmailChannel({self._settings!r})"

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        context = ssl.create_default_context(cafile=s.ca_file) if s.security != "none" else None
        smtp: smtplib.SMTP
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.security == "starttls":
                smtp.starttls(context=context)
            if s.username:
                smtp.login(s.username, s.password or "")
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            _close_quietly(self._smtp)
            self._smtp = None

    def send(self, message: Message, *, key: str, to: str | None = None) -> None:
        """Deliver ``message`` to ``to`` with a Message-ID derived from ``key``."""
        if not to:
            raise AlertDeliveryFailed("no email address for the recipient", retryable=False)
        mail = build_email(message, key=key, sender=self._settings.sender, to=to)
        try:
            self._send(mail, to)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b""))
            raise AlertDeliveryFailed(
                f"SMTP refused the recipient: {code} {_text(reply)}", retryable=_is_retryable_code(code)
            ) from exc
        except smtplib.SMTPResponseException as exc:
            self._drop_unless_ready(exc.smtp_code)
            raise AlertDeliveryFailed(
                f"SMTP error {exc.smtp_code} {_text(exc.smtp_error)}", retryable=_is_retryable_code(exc.smtp_code)
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # disconnected, timed out, refused, TLS failure: the connection is unusable
            self._drop()
            raise AlertDeliveryFailed(f"SMTP {type(exc).__name__}: {exc}", retryable=True) from exc

    def _send(self, mail: EmailMessage, to: str) -> None:
        reused = self._smtp is not None
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(mail, from_addr=self._settings.sender, to_addrs=[to])
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            # an idle connection the server closed (its timeout, a restart): reopen once
            self._drop()
            if not reused:
                raise
            self._smtp = self._connect()
            self._smtp.send_message(mail, from_addr=self._settings.sender, to_addrs=[to])

    def _drop_unless_ready(self, code: int) -> None:
        # after a refused MAIL/RCPT/DATA smtplib has reset the transaction and the connection is
        # fine; 421 means the server is closing it
        if code == 421:
            self._drop()

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._drop()


def _close_quietly(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:200]
