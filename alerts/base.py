"""What an alert says, and the port every channel implements.

The outbox stores a message as JSON (``to_dict``) when the scoring run queues it, so a retry
sends exactly what was queued and ``GET /api/v1/alerts`` shows it. Channels render a message
(``alerts/render.py``) into their own format: Slack Block Kit, email text and HTML, a JSON body.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Protocol


class AlertKind(StrEnum):
    """``immediate``: events for one account; ``escalation``: an unacknowledged poor-health alert,
    to the manager; ``digest``: the daily summary for one person."""

    IMMEDIATE = "immediate"
    ESCALATION = "escalation"
    DIGEST = "digest"


class ChannelType(StrEnum):
    EMAIL = "email"
    SLACK = "slack"
    WEBHOOK = "webhook"
    LOG = "log"


@dataclass(frozen=True, slots=True)
class EventLine:
    """One event: ``detail`` is the event's trigger values (what made the rule fire)."""

    rule_id: str
    rule_name: str
    kind: str  # a scoring.rules.RuleKind value
    severity: str  # a scoring.rules.Severity value
    day: str  # ISO date
    detail: dict[str, Any] = field(default_factory=dict)
    account_id: int | None = None  # set in a digest's list of changes
    account_name: str | None = None


@dataclass(frozen=True, slots=True)
class TaskLine:
    title: str
    type: str  # a playbooks.plays.TaskType value
    due_on: str  # ISO date
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class PlayLine:
    play_id: str
    name: str
    tasks: tuple[TaskLine, ...] = ()


@dataclass(frozen=True, slots=True)
class DriverLine:
    """A measure pulling the score down: ``contribution`` in points (negative)."""

    label: str
    contribution: float
    score: float | None = None


@dataclass(frozen=True, slots=True)
class AccountAlert:
    """Everything one message about one account says (immediate or escalation)."""

    kind: AlertKind
    account_id: int
    account_name: str
    stage: str
    band: str | None
    score: float | None
    change_7d: float | None
    arr: float
    owner: str | None
    segment: str | None
    renewal_date: str | None  # ISO date
    account_url: str
    events: tuple[EventLine, ...] = ()
    plays: tuple[PlayLine, ...] = ()
    drivers: tuple[DriverLine, ...] = ()
    ack_url: str | None = None  # a signed link; set when the alert needs acknowledging
    #: escalation only: the alert that was not acknowledged, and for how long
    escalated_alert_id: int | None = None
    unacknowledged_hours: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "account", **_plain(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AccountAlert:
        data = {k: v for k, v in data.items() if k != "type"}
        return cls(
            **{
                **data,
                "kind": AlertKind(data["kind"]),
                "events": tuple(EventLine(**e) for e in data.get("events", ())),
                "plays": tuple(
                    PlayLine(p["play_id"], p["name"], tuple(TaskLine(**t) for t in p.get("tasks", ())))
                    for p in data.get("plays", ())
                ),
                "drivers": tuple(DriverLine(**d) for d in data.get("drivers", ())),
            }
        )


@dataclass(frozen=True, slots=True)
class DigestAccount:
    """One at-risk account in a digest; ``reasons`` says why it is at risk."""

    account_id: int
    account_name: str
    band: str | None
    score: float | None
    change_7d: float | None
    change_30d: float | None
    arr: float
    owner: str | None
    renewal_date: str | None
    account_url: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Digest:
    """The daily summary for one person: their at-risk accounts, what changed since the last
    digest (events), and the alerts held back by the daily budget since then."""

    recipient_name: str
    since: str  # ISO timestamp (UTC) of the previous digest, or of the start of the window
    until: str  # ISO timestamp (UTC)
    at_risk: tuple[DigestAccount, ...] = ()
    changes: tuple[EventLine, ...] = ()
    held: tuple[AccountAlert, ...] = ()
    at_risk_total: int = 0  # before truncation to the listed ones
    changes_total: int = 0
    dashboard_url: str = ""
    held_total: int = 0  # held alerts carried, of which ``held`` lists the first few
    held_url: str = ""  # the full list of the held alerts carried
    time_zone: str = "UTC"  # the recipient's (an IANA name): ``since`` and ``until`` are shown in it

    kind: AlertKind = AlertKind.DIGEST

    def to_dict(self) -> dict[str, Any]:
        out = _plain(self)
        out["held"] = [h.to_dict() for h in self.held]
        return {"type": "digest", **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Digest:
        data = {k: v for k, v in data.items() if k != "type"}
        return cls(
            **{
                **data,
                "kind": AlertKind.DIGEST,
                "at_risk": tuple(
                    DigestAccount(**{**a, "reasons": tuple(a.get("reasons", ()))}) for a in data["at_risk"]
                ),
                "changes": tuple(EventLine(**e) for e in data["changes"]),
                "held": tuple(AccountAlert.from_dict(h) for h in data["held"]),
            }
        )


Message = AccountAlert | Digest


def _plain(value: Any) -> Any:
    """A message as JSON-ready data: what ``dataclasses.asdict`` gives, without its deep copies
    (ten times faster; the scoring run builds one per alerting account)."""
    kind = type(value)
    if kind in _LEAVES or value is None:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None and hasattr(value, "__dataclass_fields__"):
        names = _FIELD_NAMES[type(value)] = tuple(f.name for f in fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_LEAVES = frozenset({str, int, float, bool})


def message_from_dict(data: dict[str, Any]) -> Message:
    """The message stored by ``to_dict``."""
    if data.get("type") == "digest":
        return Digest.from_dict(data)
    return AccountAlert.from_dict(data)


class AlertDeliveryFailed(Exception):
    """A channel could not deliver. ``retryable``: try again later (connection refused, timeout,
    5xx, 429, SMTP 4xx); otherwise the message can never go through as it is (4xx, SMTP 5xx,
    a refused address). ``retry_after``: seconds the receiver asked us to wait (Slack's 429)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class AlertChannel(Protocol):
    """A way to deliver a message. ``send`` returns on success and raises ``AlertDeliveryFailed``
    otherwise. ``key`` is the alert's dedupe key: channels pass it on where the receiver can use
    it to drop a duplicate (a webhook's ``Idempotency-Key``, an email's ``Message-ID``).
    ``to`` is the email address for the email channel, ignored by the others."""

    type: ChannelType

    def send(self, message: Message, *, key: str, to: str | None = None) -> None: ...

    def close(self) -> None: ...
