"""Who hears about what: routes from events and play starts to the CSM, the manager and channels.

A routing document (``default_routing.json``, or an admin's version through the API) lists named
channels, routes and the noise limits. Every route whose ``match`` fits an item counts (not only
the first), so "high risks also go to the manager" is one more route rather than a copy of the
CSM's. ``route`` runs once per alerting account in a scoring run, so ``Route`` precomputes its
match sets and ``route`` does only set lookups.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.base import ChannelType
from alerts.safety import check_webhook_url
from playbooks.plays import AlertMode
from scoring.bands import Band
from scoring.rules import RuleKind, Severity
from scoring.stage import LifecycleStage

#: How a route's recipients hear: a play's alert modes but ``none`` (a route always says something).
MODES: tuple[AlertMode, ...] = (AlertMode.IMMEDIATE, AlertMode.DIGEST)

CSM = "csm"
MANAGER = "manager"
CHANNEL_PREFIX = "channel:"
#: The channel types a routing document may name (email and log are not routed to by name).
CHANNEL_TYPES: tuple[ChannelType, ...] = (ChannelType.SLACK, ChannelType.WEBHOOK)
ANY_PLAY = "*"

#: The match keys, and the values each may take (None: any non-empty string).
MATCH_VALUES: dict[str, frozenset[str] | None] = {
    "kinds": frozenset(RuleKind),
    "severities": frozenset(Severity),
    "rules": None,
    "stages": frozenset(LifecycleStage),
    "segments": None,
    "bands": frozenset(Band),
    "plays": None,
}
#: Keys that select events; a route matching play starts (``plays``) cannot use them.
EVENT_KEYS = ("kinds", "severities", "rules")

#: (minimum, maximum, integer only) for the numbers of the document.
LIMITS: dict[str, tuple[float, float, bool]] = {
    "budget_per_day": (1, 10000, True),
    "cooldown_hours": (0, 720, False),
    "escalate_after_hours": (1, 168, False),
    "max_attempts": (1, 50, True),
}
DIGEST_MAX_ACCOUNTS = (1, 100)

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class RoutingError(Exception):
    """A routing document failed validation; ``errors`` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid routing: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(errors.items())))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A named Slack or webhook destination. ``url`` is stored in the document; ``url_env`` names
    an environment variable the app reads it from (so a secret URL is never stored), and
    ``secret_env`` names the variable holding a webhook's signing secret."""

    name: str
    type: str  # slack | webhook
    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for key in ("url", "url_env", "secret_env"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Route:
    """Items matching every non-empty list of ``match`` notify ``notify`` in ``mode``.

    A route with ``plays`` matches play starts only, one without matches events only.
    """

    id: str
    notify: tuple[str, ...]
    mode: AlertMode  # one of MODES
    kinds: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()
    plays: tuple[str, ...] = ()
    #: (Item attribute, allowed values) for each constraint that is set: the fast path of ``matches``
    _checks: tuple[tuple[str, frozenset[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        attribute = {
            "kinds": "kind",
            "severities": "severity",
            "rules": "rule_id",
            "stages": "stage",
            "segments": "segment",
            "bands": "band",
        }
        checks = [(attribute[key], frozenset(getattr(self, key))) for key in attribute if getattr(self, key)]
        if self.plays and ANY_PLAY not in self.plays:
            checks.append(("play_id", frozenset(self.plays)))
        # frozen: the one place this derived field is set
        object.__setattr__(self, "_checks", tuple(checks))

    @property
    def is_play_route(self) -> bool:
        return bool(self.plays)

    def match_dict(self) -> dict[str, list[str]]:
        return {key: list(getattr(self, key)) for key in MATCH_VALUES if getattr(self, key)}

    def matches(self, item: Item) -> bool:
        """Whether ``item`` fits: an event for an event route, a play start (not announced
        ``none``) for a play route, and every set constraint contains the item's value."""
        if self.plays:
            if item.play_id is None or item.play_alert == AlertMode.NONE:
                return False
        elif item.play_id is not None:
            return False
        return all(getattr(item, name) in allowed for name, allowed in self._checks)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "match": self.match_dict(), "notify": list(self.notify), "mode": self.mode}


@dataclass(frozen=True, slots=True)
class DigestSettings:
    """When the daily digest goes out (``at`` local time in ``timezone``), to whom (managers,
    CSMs), and how many at-risk accounts it lists."""

    at: str = "08:00"
    timezone: str = "UTC"
    managers: bool = True
    csms: bool = True
    max_accounts: int = 25

    @property
    def hour(self) -> int:
        return int(self.at[:2])

    @property
    def minute(self) -> int:
        return int(self.at[3:])

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "timezone": self.timezone,
            "managers": self.managers,
            "csms": self.csms,
            "max_accounts": self.max_accounts,
        }


@dataclass(frozen=True, slots=True)
class Routing:
    """A validated routing document (``load_routing``)."""

    channels: tuple[ChannelSpec, ...]
    routes: tuple[Route, ...]
    budget_per_day: int = 20
    cooldown_hours: float = 72
    escalate_after_hours: float = 4
    max_attempts: int = 8
    digest: DigestSettings = field(default_factory=DigestSettings)
    #: Who gets a play's manager and support tasks (escalations) when the account's CSM has no
    #: manager (a user name or email); the CSM when this is unset too.
    default_assignee: str | None = None

    def channel(self, name: str) -> ChannelSpec | None:
        """The channel called ``name`` (``"team"``, not ``"channel:team"``)."""
        return next((c for c in self.channels if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The document again: ``load_routing(r.to_dict()) == r``."""
        return {
            "channels": {c.name: c.to_dict() for c in self.channels},
            "routes": [r.to_dict() for r in self.routes],
            "budget_per_day": self.budget_per_day,
            "cooldown_hours": self.cooldown_hours,
            "escalate_after_hours": self.escalate_after_hours,
            "max_attempts": self.max_attempts,
            "digest": self.digest.to_dict(),
            **({"default_assignee": self.default_assignee} if self.default_assignee else {}),
        }


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to route. An event has ``kind``, ``severity`` and ``rule_id``; a play start has
    ``play_id`` and ``play_alert`` (the play's own alert mode: immediate | digest | none)."""

    stage: str
    segment: str | None
    band: str | None
    kind: str | None = None
    severity: str | None = None
    rule_id: str | None = None
    play_id: str | None = None
    play_alert: str | None = None


def route(routing: Routing, items: Sequence[Item]) -> dict[str, AlertMode]:
    """Each recipient (``"csm"``, ``"manager"``, ``"channel:<name>"``) that hears about ``items``
    and how: ``"immediate"`` or ``"digest"``.

    Every matching route counts; immediate beats digest for one recipient. A play start whose
    play announces itself in the digest gets at most digest; one announced ``none`` matches no
    route. Recipients that hear nothing are absent.
    """
    out: dict[str, AlertMode] = {}
    for item in items:
        capped = item.play_id is not None and item.play_alert == AlertMode.DIGEST
        for candidate in routing.routes:
            if not candidate.matches(item):
                continue
            mode = AlertMode.DIGEST if capped else candidate.mode
            for recipient in candidate.notify:
                if out.get(recipient) != AlertMode.IMMEDIATE:
                    out[recipient] = mode
    return out


# --- loading and validation -----------------------------------------------------------------


def default_routing_data() -> dict[str, Any]:
    """The shipped default document (``alerts/default_routing.json``)."""
    text = resources.files("alerts").joinpath("default_routing.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def default_routing() -> Routing:
    return load_routing(default_routing_data())


class _Errors:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)


def _unknown_keys(data: Mapping[str, Any], allowed: Sequence[str], path: str, errors: _Errors) -> None:
    for key in data:
        if key not in allowed:
            errors.add(_join(path, str(key)), "unknown field")


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


TOP_KEYS = (
    "channels", "routes", "budget_per_day", "cooldown_hours", "escalate_after_hours", "max_attempts", "digest",
    "default_assignee",
)  # fmt: skip
MAX_ASSIGNEE_CHARS = 255
ROUTE_KEYS = ("id", "match", "notify", "mode")
CHANNEL_KEYS = ("type", "url", "url_env", "secret_env")
DIGEST_KEYS = ("at", "timezone", "managers", "csms", "max_accounts")


def check_routing(
    data: object, *, allowed_hosts: Sequence[str] = (), allow_insecure: bool = False
) -> dict[str, list[str]]:
    """Every problem of the routing document ``data``, keyed by field path (``routes.2.notify.1``,
    ``digest.timezone``); empty when it is valid. ``allowed_hosts``/``allow_insecure`` check a
    channel's literal ``url`` as ``alerts.safety.check_webhook_url`` does."""
    errors = _Errors()
    if not isinstance(data, Mapping):
        errors.add("_schema", "must be an object")
        return errors.errors
    _unknown_keys(data, TOP_KEYS, "", errors)
    channels = data.get("channels", {})
    names = _check_channels(channels, errors, allowed_hosts, allow_insecure)
    if "routes" not in data:
        errors.add("routes", "required")
    elif not isinstance(data["routes"], list):
        errors.add("routes", "must be a list")
    else:
        seen: set[str] = set()
        for index, entry in enumerate(data["routes"]):
            _check_route(entry, f"routes.{index}", names, seen, errors)
    for key, (low, high, integer) in LIMITS.items():
        if key not in data:
            continue
        value = data[key]
        if not _is_number(value) or (integer and not isinstance(value, int)):
            errors.add(key, "must be an integer" if integer else "must be a number")
        elif not low <= value <= high:
            errors.add(key, f"must be between {low:g} and {high:g}")
    if "digest" in data:
        _check_digest(data["digest"], errors)
    if "default_assignee" in data:
        _check_assignee(data["default_assignee"], errors)
    return errors.errors


def _check_assignee(value: object, errors: _Errors) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ASSIGNEE_CHARS:
        errors.add("default_assignee", f"must be a user name or email of 1-{MAX_ASSIGNEE_CHARS} characters, or null")
    elif any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        errors.add("default_assignee", "must not contain control characters")


def _check_channels(channels: object, errors: _Errors, allowed_hosts: Sequence[str], allow_insecure: bool) -> set[str]:
    if not isinstance(channels, Mapping):
        errors.add("channels", "must be an object")
        return set()
    for name, spec in channels.items():
        path = f"channels.{name}"
        if not isinstance(name, str) or not _ID.match(name):
            errors.add(path, "channel names are lower-case letters, digits, '-' and '_'")
        if not isinstance(spec, Mapping):
            errors.add(path, "must be an object")
            continue
        _unknown_keys(spec, CHANNEL_KEYS, path, errors)
        kind = spec.get("type")
        if kind not in CHANNEL_TYPES:
            errors.add(f"{path}.type", f"must be one of {', '.join(CHANNEL_TYPES)}")
        has_url, has_env = "url" in spec, "url_env" in spec
        if has_url == has_env:
            errors.add(f"{path}.url", "give exactly one of url and url_env")
        if has_url:
            url = spec["url"]
            reason = (
                check_webhook_url(url, allowed_hosts=allowed_hosts, allow_insecure=allow_insecure)
                if isinstance(url, str)
                else "must be a URL"
            )
            if reason:
                errors.add(f"{path}.url", reason)
        for key in ("url_env", "secret_env"):
            if key in spec and not (isinstance(spec[key], str) and _ENV.match(spec[key])):
                errors.add(f"{path}.{key}", "must be an environment variable name (A-Z, 0-9, _)")
        if kind == ChannelType.WEBHOOK and "secret_env" not in spec:
            errors.add(f"{path}.secret_env", "required for a webhook (the variable holding its signing secret)")
        if kind == ChannelType.SLACK and "secret_env" in spec:
            errors.add(f"{path}.secret_env", "only a webhook is signed")
    return {name for name in channels if isinstance(name, str)}


def _check_route(entry: object, path: str, channels: set[str], seen: set[str], errors: _Errors) -> None:
    if not isinstance(entry, Mapping):
        errors.add(path, "must be an object")
        return
    _unknown_keys(entry, ROUTE_KEYS, path, errors)
    route_id = entry.get("id")
    if not isinstance(route_id, str) or not _ID.match(route_id):
        errors.add(f"{path}.id", "required: lower-case letters, digits, '-' and '_'")
    elif route_id in seen:
        errors.add(f"{path}.id", f"duplicate route id {route_id!r}")
    else:
        seen.add(route_id)
    if entry.get("mode") not in MODES:
        errors.add(f"{path}.mode", f"must be one of {', '.join(MODES)}")
    _check_match(entry.get("match", {}), f"{path}.match", errors)
    notify = entry.get("notify")
    if not isinstance(notify, list) or not notify:
        errors.add(f"{path}.notify", "must be a non-empty list")
        return
    for index, recipient in enumerate(notify):
        where = f"{path}.notify.{index}"
        if not isinstance(recipient, str):
            errors.add(where, "must be a string")
        elif recipient.startswith(CHANNEL_PREFIX):
            if recipient[len(CHANNEL_PREFIX) :] not in channels:
                errors.add(where, f"no channel named {recipient[len(CHANNEL_PREFIX) :]!r}")
        elif recipient not in (CSM, MANAGER):
            errors.add(where, "must be csm, manager or channel:<name>")
        if isinstance(recipient, str) and notify.index(recipient) != index:
            errors.add(where, "listed twice")


def _check_match(match: object, path: str, errors: _Errors) -> None:
    if not isinstance(match, Mapping):
        errors.add(path, "must be an object")
        return
    _unknown_keys(match, tuple(MATCH_VALUES), path, errors)
    for key, allowed in MATCH_VALUES.items():
        if key not in match:
            continue
        values = match[key]
        if not isinstance(values, list):
            errors.add(f"{path}.{key}", "must be a list")
            continue
        for index, value in enumerate(values):
            if not isinstance(value, str) or not value:
                errors.add(f"{path}.{key}.{index}", "must be a non-empty string")
            elif allowed is not None and value not in allowed:
                errors.add(f"{path}.{key}.{index}", f"must be one of {', '.join(sorted(allowed))}")
    if match.get("plays"):
        for key in EVENT_KEYS:
            if match.get(key):
                errors.add(f"{path}.plays", f"a route for play starts cannot also match {key}")


def _check_digest(digest: object, errors: _Errors) -> None:
    if not isinstance(digest, Mapping):
        errors.add("digest", "must be an object")
        return
    _unknown_keys(digest, DIGEST_KEYS, "digest", errors)
    at = digest.get("at", "08:00")
    if not isinstance(at, str) or not _TIME.match(at):
        errors.add("digest.at", "must be a time HH:MM (24-hour)")
    zone = digest.get("timezone", "UTC")
    if not isinstance(zone, str) or not _is_timezone(zone):
        errors.add("digest.timezone", "must be an IANA time zone such as Europe/Berlin")
    for key in ("managers", "csms"):
        if key in digest and not isinstance(digest[key], bool):
            errors.add(f"digest.{key}", "must be true or false")
    if "max_accounts" in digest:
        value = digest["max_accounts"]
        low, high = DIGEST_MAX_ACCOUNTS
        if not isinstance(value, int) or isinstance(value, bool):
            errors.add("digest.max_accounts", "must be an integer")
        elif not low <= value <= high:
            errors.add("digest.max_accounts", f"must be between {low} and {high}")


def _is_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def load_routing(data: object, *, allowed_hosts: Sequence[str] = (), allow_insecure: bool = False) -> Routing:
    """The ``Routing`` of a document; raises ``RoutingError`` with every problem
    (``check_routing``) when it is invalid."""
    errors = check_routing(data, allowed_hosts=allowed_hosts, allow_insecure=allow_insecure)
    if errors:
        raise RoutingError(errors)
    assert isinstance(data, Mapping)
    channels = tuple(
        ChannelSpec(
            name=name,
            type=spec["type"],
            url=spec.get("url"),
            url_env=spec.get("url_env"),
            secret_env=spec.get("secret_env"),
        )
        for name, spec in data.get("channels", {}).items()
    )
    routes = tuple(
        Route(
            id=entry["id"],
            notify=tuple(entry["notify"]),
            mode=AlertMode(entry["mode"]),
            **{key: tuple(values) for key, values in entry.get("match", {}).items()},
        )
        for entry in data["routes"]
    )
    digest = DigestSettings(**data.get("digest", {}))
    numbers = {key: data[key] for key in LIMITS if key in data}
    assignee = data.get("default_assignee")
    assignee = assignee.strip() if assignee else None
    return Routing(channels=channels, routes=routes, digest=digest, default_assignee=assignee, **numbers)


def recipients(routing: Routing) -> Iterator[str]:
    """Every recipient some route may notify, each once, in the order they first appear."""
    seen: set[str] = set()
    for entry in routing.routes:
        for recipient in entry.notify:
            if recipient not in seen:
                seen.add(recipient)
                yield recipient
