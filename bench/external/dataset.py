"""The generated product read back from the cache: accounts (from their subscriptions) and a
dense (account, day, event type) cube of daily event counts."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True)
class Subscription:
    start: dt.date
    end: dt.date
    mrr: float
    bill_period_months: int


@dataclass(frozen=True, slots=True)
class Dataset:
    """Accounts are rows 0..n-1 of every per-account array, in source id order."""

    source_id: np.ndarray  # int64: ChurnSim's account id
    start: np.ndarray  # datetime64[D]: the first subscription's start (the contract start)
    churn: np.ndarray  # datetime64[D]: the last subscription's end when that is on or before the
    # simulated end (the account left then); NaT for an account still subscribed at the end
    subscriptions: list[list[Subscription]]  # per account, by start date
    event_types: list[str]
    first_day: dt.date  # day 0 of the cube
    events: np.ndarray  # int32 (accounts, days, event types): events per day
    simulated_end: dt.date
    meta: dict

    @property
    def days(self) -> int:
        return int(self.events.shape[1])

    def subscription_on(self, row: int, day: dt.date) -> Subscription | None:
        """The subscription covering ``day`` (start <= day < end), if any."""
        for sub in self.subscriptions[row]:
            if sub.start <= day < sub.end:
                return sub
        return None


def _rows(path: Path) -> csv.DictReader:
    return csv.DictReader(gzip.open(path, "rt", newline=""))


def load_dataset(cache: Path) -> Dataset:
    meta = json.loads((cache / "meta.json").read_text())
    simulated_end = dt.date.fromisoformat(meta["simulated_end"])
    by_account: dict[int, list[Subscription]] = {}
    for row in _rows(cache / "subscriptions.csv.gz"):
        sub = Subscription(
            dt.date.fromisoformat(row["start_date"]),
            dt.date.fromisoformat(row["end_date"]),
            float(row["mrr"]),
            int(row["bill_period_months"]),
        )
        by_account.setdefault(int(row["account_id"]), []).append(sub)
    ids = np.array(sorted(by_account), dtype=np.int64)
    subscriptions = [sorted(by_account[int(i)], key=lambda s: s.start) for i in ids]
    start = np.array([subs[0].start for subs in subscriptions], dtype="datetime64[D]")
    last_end = np.array([max(s.end for s in subs) for subs in subscriptions], dtype="datetime64[D]")
    churn = np.where(last_end <= np.datetime64(simulated_end, "D"), last_end, np.datetime64("NaT"))
    event_types = list(meta["event_types"])
    first_day = dt.date.fromisoformat(meta["simulated_start"])
    row_of = {int(i): k for k, i in enumerate(ids)}
    type_of = {name: k for k, name in enumerate(event_types)}
    account_col, day_col, type_col, count_col = [], [], [], []
    for row in _rows(cache / "events_daily.csv.gz"):
        account_col.append(row_of[int(row["account_id"])])
        day_col.append(row["day"])
        type_col.append(type_of[row["event"]])
        count_col.append(int(row["n"]))
    offsets = (np.array(day_col, dtype="datetime64[D]") - np.datetime64(first_day, "D")).astype(np.int64)
    days = int(offsets.max()) + 1 if offsets.size else 1
    events = np.zeros((ids.size, days, len(event_types)), dtype=np.int32)
    np.add.at(events, (np.array(account_col), offsets, np.array(type_col)), np.array(count_col, dtype=np.int32))
    return Dataset(ids, start, churn, subscriptions, event_types, first_day, events, simulated_end, meta)
