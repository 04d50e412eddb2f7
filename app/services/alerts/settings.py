"""What every alert room shares: the alert settings, the stored routing, and who the people are.

The scoring run's alerts step (``app/pipeline/alerts.py``), the dispatcher, the digests and the
``/api/v1/alerts`` use cases all read these.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from alerts.email import SmtpSettings
from alerts.routing import (
    CHANNEL_PREFIX,  # noqa: F401 (re-exported: a channel recipient is ``channel:<name>``)
    Routing,
    default_routing_data,
    load_routing,
)
from app.models import AlertRoutingVersion, User
from scoring.rules import Severity

#: An event's severity as a number to compare: ``Severity`` lists them lowest first, from 1.
SEVERITY_RANK = {severity.value: rank for rank, severity in enumerate(Severity, start=1)}


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """What the alert services need from the app's configuration (read once, passed in)."""

    public_base_url: str = "http://127.0.0.1:5000"
    secret_key: str = ""  # signing refuses an empty key (alerts.signing)
    smtp: SmtpSettings | None = None
    webhook_hosts: tuple[str, ...] = ("hooks.slack.com",)
    allow_insecure_webhooks: bool = False
    lease_seconds: int = 60
    batch_size: int = 100
    ack_link_days: int = 7
    http_timeout: float = 5.0
    #: values for a channel's ``url_env`` / ``secret_env`` (the app config's SLACK_WEBHOOK_URL,
    #: then the process environment)
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AlertSettings:
        env = dict(os.environ if environ is None else environ)
        if config.get("SLACK_WEBHOOK_URL"):
            env["SLACK_WEBHOOK_URL"] = str(config["SLACK_WEBHOOK_URL"])
        smtp = None
        if config.get("SMTP_HOST"):
            smtp = SmtpSettings(
                host=str(config["SMTP_HOST"]),
                port=int(config.get("SMTP_PORT") or 587),
                username=config.get("SMTP_USERNAME") or None,
                password=config.get("SMTP_PASSWORD") or None,
                security=cast(Any, str(config.get("SMTP_SECURITY") or "starttls")),
                sender=str(config.get("ALERT_EMAIL_FROM") or f"healthscore@{config['SMTP_HOST']}"),
                ca_file=config.get("SMTP_CA_FILE") or None,
            )
        hosts = tuple(h.strip() for h in str(config.get("ALERT_WEBHOOK_HOSTS") or "").split(",") if h.strip())
        return cls(
            public_base_url=str(config.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
            secret_key=str(config.get("SECRET_KEY") or ""),
            smtp=smtp,
            webhook_hosts=hosts,
            allow_insecure_webhooks=bool(config.get("ALERT_ALLOW_INSECURE_WEBHOOKS", False)),
            lease_seconds=int(config.get("ALERT_LEASE_SECONDS") or 60),
            batch_size=int(config.get("ALERT_BATCH_SIZE") or 100),
            ack_link_days=int(config.get("ALERT_ACK_LINK_DAYS") or 7),
            env=env,
        )

    def account_url(self, account_id: int) -> str:
        """The account page (app/web) that an alert's "Open account" link opens."""
        return f"{self.public_base_url}/accounts/{account_id}"


# --- routing storage ---------------------------------------------------------------------------


def active_routing(session: Session) -> tuple[int, Routing]:
    """The newest routing version (version 0: the defaults file, never edited yet)."""
    row = session.execute(
        sa.select(AlertRoutingVersion.version, AlertRoutingVersion.document)
        .order_by(AlertRoutingVersion.version.desc())
        .limit(1)
    ).first()
    if row is None:
        return 0, load_routing(default_routing_data())
    # Its webhook URLs passed the deployment's SSRF checks when it was saved, and the channels
    # check them again before every send; loading it must not fail on a test's http URL.
    return int(row[0]), load_routing(row[1], allow_insecure=True)


# --- recipients ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str | None
    manager: str | None  # the manager's user name


class Directory:
    """Users by every identity an account's ``owner`` may use (user name or email)."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(sa.select(User.id, User.name, User.email, User.manager_id).where(~User.disabled)).all()
        by_id = {r.id: r for r in rows}
        self.people: dict[str, Person] = {}
        for r in rows:
            manager = by_id.get(r.manager_id) if r.manager_id is not None else None
            person = Person(r.name, r.email, manager.name if manager is not None else None)
            self.people[r.name] = person
            if r.email:
                self.people[r.email] = person

    def csm(self, owner: str | None) -> tuple[str | None, str | None]:
        """(email, user name) of an account's CSM; an owner that is an address but no user still
        gets mail."""
        if not owner:
            return None, None
        person = self.people.get(owner)
        if person is not None:
            return person.email or _address(person.name), person.name
        return _address(owner), None

    def manager(self, owner: str | None) -> tuple[str | None, str | None]:
        person = self.people.get(owner) if owner else None
        if person is None or person.manager is None:
            return None, None
        boss = self.people.get(person.manager)
        return (boss.email or _address(boss.name), boss.name) if boss is not None else (None, None)


def alert_group(dedupe_key: str) -> str:
    """The key prefix shared by the copies of one account alert (to the CSM, the manager, a
    channel): ``acct:<account>:<first event or play run>|``."""
    return dedupe_key.split("|", 1)[0] + "|"


def _address(identity: str) -> str | None:
    """A user name or owner that is itself an email address (the demo's CSMs are)."""
    return identity if "@" in identity else None
