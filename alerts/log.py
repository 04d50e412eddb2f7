"""Log channel: what the demo uses when no Slack or SMTP is configured (one INFO line per alert)."""

from __future__ import annotations

import logging

from alerts.base import ChannelType, Digest, Message


class LogChannel:
    """Writes one INFO line per message (kind, account, recipient, key) and never fails.

    The full message stays readable through the outbox (``GET /api/v1/alerts``); the log only
    says that it went out.
    """

    type = ChannelType.LOG

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(__name__)

    def send(self, message: Message, *, key: str, to: str | None = None) -> None:
        """Log ``message``; ``to`` is the recipient shown."""
        if isinstance(message, Digest):
            account = "-"
            account_id = None
            recipient = to or message.recipient_name
        else:
            account = f"{message.account_id} ({message.account_name})"
            account_id = message.account_id
            recipient = to or message.owner or "-"
        self._logger.info(
            "alert %s account=%s recipient=%s key=%s",
            message.kind.value,
            account,
            recipient,
            key,
            extra={"account_id": account_id, "alert_key": key},
        )

    def close(self) -> None:
        """Nothing to release."""
