"""The live feed: today's usage per active account written to a file inbox, as a tracker's export would."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Account, DailyUsage


def write_demo_feed(session: Session, *, inbox: Path, now: dt.datetime, seed: int | None = None) -> int:
    """Write today's usage for every active account to ``inbox/usage.jsonl``, as a tracker's export would.

    Each account's numbers follow its own last week (average active users) with some noise, so
    a file source pulling the inbox sees data arrive and the scores move during the day. The
    file is replaced atomically. Returns the number of records written.
    """
    week_ago = now.date() - dt.timedelta(days=7)
    rows = session.execute(
        sa.select(Account.external_id, Account.seats_purchased, sa.func.avg(DailyUsage.active_users))
        .outerjoin(DailyUsage, sa.and_(DailyUsage.account_id == Account.id, DailyUsage.day > week_ago))
        .where(Account.status != "churned")
        .group_by(Account.id, Account.external_id, Account.seats_purchased)
        .order_by(Account.id)
    ).all()
    if not rows:
        return 0
    rng = np.random.default_rng(seed)
    seats = np.array([row[1] for row in rows], dtype=np.float64)
    recent = np.array([row[2] if row[2] is not None else 0.0 for row in rows], dtype=np.float64)
    active = np.minimum(np.rint(recent * rng.uniform(0.6, 1.4, len(rows))), seats).astype(np.int64)
    logins = np.rint(active * rng.uniform(1.0, 2.0, len(rows))).astype(np.int64)
    key_uses = np.rint(logins * rng.uniform(0.1, 0.6, len(rows))).astype(np.int64)
    day = now.date().isoformat()
    inbox.mkdir(parents=True, exist_ok=True)
    partial = inbox / ".usage.jsonl.partial"
    with partial.open("w", encoding="utf-8") as out:
        for external_id, users, count, keys in zip(
            [row[0] for row in rows], active.tolist(), logins.tolist(), key_uses.tolist(), strict=True
        ):
            if users > 0:
                out.write(
                    json.dumps(
                        {"account": external_id, "day": day, "active_users": users, "logins": count,
                         "key_feature_uses": keys}
                    ) + "\n"
                )  # fmt: skip
    partial.replace(inbox / "usage.jsonl")
    return int(np.count_nonzero(active))
