"""Segment-spec calls in: ``group`` updates accounts, ``identify`` contacts, ``track`` daily usage and signals.

Idempotent by ``messageId`` (or, without one, a fingerprint of the call): a call already applied
is skipped, so Segment's retries and re-posted batches change nothing. A call is recorded as
applied only when it landed, so one rejected for an unknown account lands on a later retry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from app.bulk import bulk_insert
from app.models import DATED_FIELDS, Account, DailyActiveUser, DailyUsage, SegmentMessage, UsageSignal
from app.records.schemas import FUTURE_SLACK
from app.records.segment import GroupTraitsSchema, SegmentCallSchema
from app.services.ingest.history import record_account_history, state_of
from app.services.ingest.records import Rejected, ingest_records, lookup_account_ids

SOURCE = "segment"
#: Track events that count as a login.
LOGIN_EVENTS = frozenset({"signed_in", "logged_in", "login", "log_in", "sign_in", "user_signed_in"})
_NOT_NAME = re.compile(r"[^a-z0-9]+")
#: Group traits that update the account, and the column each goes to.
GROUP_TRAITS = {
    "name": "name",
    "plan": "segment",
    "seats": "seats_purchased",
    "arr": "arr",
    "renewal_date": "renewal_date",
    "contract_start": "contract_start",
    "owner": "owner",
}


def signal_name(event: str) -> str:
    """A product-signal name for a tracked event: ``"Data Export"`` becomes ``data_export``."""
    name = _NOT_NAME.sub("_", event.lower()).strip("_")[:60] or "event"
    return name if name[0].isalpha() else f"e_{name}"


def message_id(call: dict[str, Any]) -> str:
    if isinstance(call.get("messageId"), str) and call["messageId"]:
        return str(call["messageId"])
    text = json.dumps(call, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class SegmentResult:
    received: int
    landed: int = 0
    ignored: int = 0  # valid calls the service has no use for (page, screen, alias, no groupId)
    duplicates: int = 0  # already applied (same messageId)
    rejected: list[Rejected] = field(default_factory=list)


def _group(session: Session, call: dict[str, Any], traits: dict[str, Any]) -> None:
    """Update the account named by ``groupId`` with the traits given (create it if new)."""
    values = {column: traits[trait] for trait, column in GROUP_TRAITS.items() if trait in traits}
    now = dt.datetime.now(dt.UTC)
    existing = session.scalar(sa.select(Account.id).where(Account.external_id == call["groupId"]))
    day = (call.get("timestamp") or now).date()
    if existing is not None:
        if values:
            session.execute(sa.update(Account).where(Account.id == existing).values(**values, updated_at=now))
            _record_history(session, existing, day)
        return
    account_id = session.execute(
        sa.insert(Account)
        .values(
            external_id=call["groupId"],
            name=values.pop("name", call["groupId"]),
            contract_start=values.pop("contract_start", day),
            created_at=now,
            updated_at=now,
            **values,
        )
        .returning(Account.id)
    ).scalar_one()
    _record_history(session, account_id, day)


def _record_history(session: Session, account_id: int, day: dt.date) -> None:
    """The account's dated fields as the call left them, in force from the call's day."""
    row = session.execute(sa.select(*(getattr(Account, f) for f in DATED_FIELDS)).where(Account.id == account_id)).one()
    record_account_history(session, [state_of(account_id, day, dict(zip(DATED_FIELDS, row, strict=True)))])


#: A call that passed validation: its index in the batch, its message id, the loaded call.
_Call = tuple[int, str, dict[str, Any]]


def ingest_segment(session: Session, *, calls: list[Any], now: dt.datetime) -> SegmentResult:
    """Apply a batch of Segment calls; never commits. Invalid calls are returned with their index."""
    result = SegmentResult(received=len(calls))
    valid = _new_calls(session, _loaded_calls(calls, result, now), result)
    landed_keys: list[str] = []
    contacts: list[_Call] = []
    tracks: list[_Call] = []
    traits_schema = GroupTraitsSchema()
    for index, key, call in valid:
        group_id = call["context"].get("groupId")
        if call["type"] == "group":
            try:
                traits = traits_schema.load(call["traits"])
            except ValidationError as exc:
                result.rejected.append(Rejected(index, {"traits": exc.normalized_messages()}))
                continue
            _group(session, call, traits)
            landed_keys.append(key)
        elif call["type"] == "identify" and group_id:
            contacts.append((index, key, call))
        elif call["type"] == "track" and group_id:
            tracks.append((index, key, call))
        else:
            result.ignored += 1
            landed_keys.append(key)  # nothing to do, ever: remember it so a retry is a duplicate
    if contacts:
        landed_keys += _land_contacts(session, contacts, result, now)
    if tracks:
        landed_keys += _land_tracks(session, tracks, result, now)
    if landed_keys:
        bulk_insert(
            session,
            SegmentMessage.__table__,  # type: ignore[arg-type]
            ("message_id", "received_at"),
            [(key, now) for key in landed_keys],
            conflict_key=("message_id",),
        )
    result.landed = len(landed_keys) - result.ignored
    result.rejected.sort(key=lambda r: r.index)
    return result


def _loaded_calls(calls: list[Any], result: SegmentResult, now: dt.datetime) -> list[_Call]:
    """The calls that pass ``SegmentCallSchema`` and are not in the future, each message once
    (a repeat within the batch counts as a duplicate); the others go to ``result.rejected``."""
    schema = SegmentCallSchema()
    latest = now.date() + FUTURE_SLACK
    valid: list[_Call] = []
    seen: set[str] = set()
    for index, raw in enumerate(calls):
        if not isinstance(raw, dict):
            result.rejected.append(Rejected(index, {"_schema": ["Each call must be a JSON object."]}))
            continue
        try:
            call = schema.load(raw)
        except ValidationError as exc:
            result.rejected.append(Rejected(index, exc.normalized_messages()))
            continue
        if call.get("timestamp") and call["timestamp"].date() > latest:
            result.rejected.append(Rejected(index, {"timestamp": ["Must not be in the future."]}))
            continue
        key = message_id(raw)
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        valid.append((index, key, call))
    return valid


def _new_calls(session: Session, valid: list[_Call], result: SegmentResult) -> list[_Call]:
    """The calls not applied by an earlier batch (those count as duplicates)."""
    keys = [key for _, key, _ in valid]
    applied = set(
        session.scalars(sa.select(SegmentMessage.message_id).where(SegmentMessage.message_id.in_(keys)))
    ) if keys else set()  # fmt: skip
    result.duplicates += sum(1 for _, key, _ in valid if key in applied)
    return [item for item in valid if item[1] not in applied]


def _land_contacts(session: Session, contacts: list[_Call], result: SegmentResult, now: dt.datetime) -> list[str]:
    """Identify calls as contact records of their group's account; the message ids that landed."""
    records = []
    for _, _, call in contacts:
        traits = call["traits"]
        role = traits.get("role") if traits.get("role") in {"admin", "champion", "user"} else "user"
        record = {"account": call["context"]["groupId"], "external_id": call.get("userId") or call["anonymousId"],
                  "role": role, "added_on": (call.get("timestamp") or now).date().isoformat()}  # fmt: skip
        for trait in ("email", "name"):
            if isinstance(traits.get(trait), str):
                record[trait] = traits[trait]
        records.append(record)
    outcome = ingest_records(session, kind="contacts", records=records, source=SOURCE)
    failed = {r.index: r.errors for r in outcome.rejected}
    landed = []
    for position, (index, key, _) in enumerate(contacts):
        if position in failed:
            result.rejected.append(Rejected(index, failed[position]))
        else:
            landed.append(key)
    return landed


def _land_tracks(session: Session, tracks: list[_Call], result: SegmentResult, now: dt.datetime) -> list[str]:
    """Track calls as active users, signals and daily usage of their group's account; the
    message ids that landed."""
    ids = lookup_account_ids(session, {call["context"]["groupId"] for _, _, call in tracks})
    users: set[tuple[int, dt.date, str]] = set()
    signals: Counter[tuple[int, dt.date, str]] = Counter()
    usage: dict[tuple[int, dt.date], list[int]] = {}
    landed = []
    for index, key, call in tracks:
        account_id = ids.get(call["context"]["groupId"])
        if account_id is None:
            result.rejected.append(
                Rejected(index, {"context": {"groupId": [f"Unknown account {call['context']['groupId']!r}."]}})
            )
            continue
        day = (call.get("timestamp") or now).date()
        users.add((account_id, day, call.get("userId") or call["anonymousId"]))
        name = signal_name(call["event"])
        signals[(account_id, day, name)] += 1
        counts = usage.setdefault((account_id, day), [0, 0])
        counts[0] += name in LOGIN_EVENTS
        counts[1] += call["properties"].get("key_feature") is True
        landed.append(key)
    _apply_tracks(session, users, signals, usage)
    return landed


def _apply_tracks(
    session: Session,
    users: set[tuple[int, dt.date, str]],
    signals: Counter[tuple[int, dt.date, str]],
    usage: dict[tuple[int, dt.date], list[int]],
) -> None:
    """Active users into the per-day set, event counts onto signals, logins and key-feature uses
    onto daily usage, then each touched day's active users recounted from the set."""
    if not usage:
        return
    bulk_insert(session, DailyActiveUser.__table__, ("account_id", "day", "user_id"), list(users),  # type: ignore[arg-type]
                conflict_key=("account_id", "day", "user_id"))  # fmt: skip
    bulk_insert(
        session,
        UsageSignal.__table__,  # type: ignore[arg-type]
        ("account_id", "day", "signal", "count"),
        [(*k, n) for k, n in signals.items()],
        conflict_key=("account_id", "day", "signal"),
        increment=("count",),
    )
    bulk_insert(
        session,
        DailyUsage.__table__,  # type: ignore[arg-type]
        ("account_id", "day", "active_users", "logins", "key_feature_uses"),
        [(account_id, day, 0, logins, keys) for (account_id, day), (logins, keys) in usage.items()],
        conflict_key=("account_id", "day"),
        increment=("active_users", "logins", "key_feature_uses"),
    )
    active = (
        sa.select(sa.func.count())
        .where(DailyActiveUser.account_id == DailyUsage.account_id, DailyActiveUser.day == DailyUsage.day)
        .scalar_subquery()
    )
    touched = list(usage)
    for start in range(0, len(touched), 500):
        chunk = touched[start : start + 500]
        session.execute(
            sa.update(DailyUsage)
            .where(sa.tuple_(DailyUsage.account_id, DailyUsage.day).in_(chunk))
            .values(active_users=active)
            .execution_options(synchronize_session=False)
        )
