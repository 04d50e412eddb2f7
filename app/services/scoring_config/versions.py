"""Tuning the health model: scoring-config versions, their diff, activation (queueing a rescore), and the
preview of a proposed config against the latest scores and against real outcomes (the backtest).

The preview reads two result sets, whatever the portfolio size: the latest score of every account,
and for every outcome the stored score at the horizon. Both keep the raw measure values of their
own config version, so ``scoring.backtest`` rescores them with any config, grouped by version, in
numpy. Nothing here loops over accounts.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, DomainValidationError, NotFound
from app.field_errors import nest_error_paths
from app.models import Account, HealthScore, JobKind, LatestScore, Outcome, ScoringConfigVersion, UsageSignal
from app.models.enums import AccountStatus, OutcomeKind
from app.pipeline.arrays import align
from app.pipeline.measures import compute_measures
from app.services.audit import record
from app.services.jobs.requests import is_rescore_pending, request_job
from app.services.scoring_config.active import ensure_default_config, load_models
from scoring.backtest import (
    BAND_LABELS,
    BacktestMetrics,
    Rescored,
    ValueBlock,
    backtest_metrics,
    band_moves,
    largest_changes,
    rescore,
)
from scoring.bands import BANDS, NO_BAND
from scoring.measures import MIN_PERCENTILE_ACCOUNTS, SIGNAL_PREFIX, Mapping01, Measure, stale_measures
from scoring.model import ScoringConfigError, ScoringModel, default_config_dict, model_from_dict
from scoring.stage import STAGES

_OUTCOME_LABEL = {OutcomeKind.CHURNED: 1, OutcomeKind.RENEWED: 0, OutcomeKind.EXPANDED: 0}
_STAGE_NAMES = np.array([stage.value for stage in STAGES], dtype=object)


# --- versions -------------------------------------------------------------------------------------


def _fields(row: ScoringConfigVersion, *, config: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": row.version,
        "author": row.author,
        "comment": row.comment,
        "created_at": row.created_at,
        "active": row.active,
    }
    if config:
        out["config"] = row.config
    return out


def _seed_if_empty(session: Session) -> None:
    """Version 1 (the shipped default) on a fresh database, as the scoring run would store it."""
    if not session.scalar(sa.select(sa.func.count()).select_from(ScoringConfigVersion)):
        ensure_default_config(session)


def _row(session: Session, version: int, *, for_update: bool = False) -> ScoringConfigVersion:
    query = sa.select(ScoringConfigVersion).where(ScoringConfigVersion.version == version)
    row = session.scalar(query.with_for_update() if for_update else query)
    if row is None:
        raise NotFound(f"No scoring config version {version}.")
    return row


def active_version(session: Session) -> dict[str, Any]:
    """The active version with its config, and whether a rescore is still to come (queued or
    running: the latest scores may still be from the version active before)."""
    return {**_fields(ensure_default_config(session)), "rescore_pending": is_rescore_pending(session)}


def list_versions(session: Session, *, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
    """Versions newest first (without their configs) and the total."""
    _seed_if_empty(session)
    total = session.scalar(sa.select(sa.func.count()).select_from(ScoringConfigVersion)) or 0
    rows = session.scalars(
        sa.select(ScoringConfigVersion)
        .order_by(ScoringConfigVersion.version.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return [_fields(row, config=False) for row in rows], total


def get_version(session: Session, version: int) -> dict[str, Any]:
    _seed_if_empty(session)
    return _fields(_row(session, version))


def _as_model(config: ScoringModel | Mapping[str, Any], message: str) -> ScoringModel:
    if isinstance(config, ScoringModel):
        return config
    try:
        return model_from_dict(dict(config))
    except ScoringConfigError as exc:
        raise DomainValidationError(message, errors={"json": {"config": nest_error_paths(exc.errors)}}) from None


def next_version_number(session: Session) -> int:
    """One more than the highest version (a concurrent request may take it too: the insert then fails)."""
    return (session.scalar(sa.select(sa.func.max(ScoringConfigVersion.version))) or 0) + 1


def create_version(session: Session, new: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    """Store a config as a new, inactive version, audited. ``new``: ``config`` (a ``ScoringModel``,
    or its JSON form, read with the core's ``model_from_dict``) and ``comment``. ``Conflict`` when a
    concurrent request took the same version number (nothing is stored; the caller may retry)."""
    model = _as_model(new["config"], "The scoring config is invalid; nothing was stored.")
    warnings = check_against_portfolio(session, model)
    comment = new["comment"]
    _seed_if_empty(session)
    number = next_version_number(session)
    row = ScoringConfigVersion(version=number, config=model.to_dict(), author=actor, comment=comment, active=False)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"Version {number} was created by a concurrent request; send the config again.") from None
    record(
        session,
        actor=actor,
        action="scoring_config.create",
        target=f"scoring_config:{number}",
        details={"version": number, "comment": comment},
    )
    return {**_fields(row), "warnings": warnings}


def active_config(session: Session) -> dict[str, Any]:
    """The active config's JSON form, spelled out in full (what a merge patch applies to)."""
    return model_from_dict(ensure_default_config(session).config).to_dict()


def check_against_portfolio(session: Session, model: ScoringModel) -> list[str]:
    """What the data says of a config: a 422 for percentile mapping on a portfolio too small for
    percentiles to mean anything; warnings (the config is stored) for product signals with no
    data yet, since data may arrive later."""
    errors: dict[str, list[str]] = {}
    percentile = [i for i, m in enumerate(model.measures) if m.mapping is Mapping01.PERCENTILE]
    if percentile:
        accounts = (
            session.scalar(
                sa.select(sa.func.count()).select_from(Account).where(Account.status != AccountStatus.CHURNED)
            )
            or 0
        )
        if accounts < MIN_PERCENTILE_ACCOUNTS:
            message = (
                f"Percentile mapping needs at least {MIN_PERCENTILE_ACCOUNTS} accounts; the portfolio has "
                f"{accounts}. Use thresholds until it grows."
            )
            errors.update({f"measures.{i}.mapping": [message] for i in percentile})
    if errors:
        raise DomainValidationError(
            "The scoring config does not fit the portfolio; nothing was stored.",
            errors={"json": {"config": nest_error_paths(errors)}},
        )
    signals = sorted({m.source[len(SIGNAL_PREFIX) :] for m in model.measures if m.source.startswith(SIGNAL_PREFIX)})
    if not signals:
        return []
    seen = set(session.scalars(sa.select(UsageSignal.signal).where(UsageSignal.signal.in_(signals)).distinct()))
    return [
        f"No data yet for product signal {name!r}: measures on it have no data until it arrives."
        for name in signals
        if name not in seen
    ]


def activate_version(session: Session, version: int, *, actor: str) -> dict[str, Any]:
    """Make ``version`` the active one (a rollback is the same move to an older version), audited,
    and queue the rescore of the portfolio (``app/services/jobs/requests.py``), all in the
    caller's transaction: the activation and its rescore request land together or not at all.
    Returns the version's fields with ``version_from``, ``version_to`` and ``rescore`` (the
    request, queued or one already queued that now covers this activation too). ``Conflict``
    when it is already active, or when a concurrent activation won."""
    _seed_if_empty(session)
    target = _row(session, version, for_update=True)
    if target.active:
        raise Conflict(f"Version {version} is already active.")
    previous = session.scalar(
        sa.select(ScoringConfigVersion.version).where(ScoringConfigVersion.active).with_for_update()
    )
    try:
        # Deactivate first: the partial unique index allows one active row at any moment.
        session.execute(sa.update(ScoringConfigVersion).where(ScoringConfigVersion.active).values(active=False))
        session.execute(
            sa.update(ScoringConfigVersion).where(ScoringConfigVersion.version == version).values(active=True)
        )
        session.flush()
    except IntegrityError:
        raise Conflict("Another version was activated at the same moment; nothing changed.") from None
    record(
        session,
        actor=actor,
        action="scoring_config.activate",
        target=f"scoring_config:{version}",
        details={"from": previous, "to": version},
    )
    rescore = request_job(session, JobKind.RESCORE, {"activations": [{"version": version, "by": actor}]}, actor)
    session.refresh(target)
    return {**_fields(target), "version_from": previous, "version_to": version, "rescore": rescore}


# --- the diff -------------------------------------------------------------------------------------


def _change(old: Any, new: Any) -> dict[str, Any]:
    return {"from": old, "to": new}


def _field_changes(old: Mapping[str, Any], new: Mapping[str, Any], keys: Sequence[str] | None = None) -> dict[str, Any]:
    names = keys if keys is not None else sorted(set(old) | set(new))
    return {k: _change(old.get(k), new.get(k)) for k in names if old.get(k) != new.get(k)}


def _weight_changes(old: Mapping[str, float], new: Mapping[str, float]) -> list[dict[str, Any]]:
    old_total = sum(old.values()) or 1.0
    new_total = sum(new.values()) or 1.0
    rows = []
    for name in sorted(set(old) | set(new)):
        w_old, w_new = old.get(name), new.get(name)
        share_old, share_new = (w_old or 0.0) / old_total, (w_new or 0.0) / new_total
        if w_old != w_new or abs(share_new - share_old) > 1e-9:
            rows.append(
                {
                    "measure": name,
                    "weight_from": w_old,
                    "weight_to": w_new,
                    "share_from": round(share_old, 6),
                    "share_to": round(share_new, 6),
                    "share_change": round(share_new - share_old, 6),
                }
            )
    return sorted(rows, key=lambda r: (-abs(r["share_change"]), r["measure"]))


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What changed from config ``old`` to ``new`` (both in ``ScoringModel.to_dict()`` form)."""
    old_measures = {m["name"]: m for m in old["measures"]}
    new_measures = {m["name"]: m for m in new["measures"]}
    measure_changes = []
    for name in (n for n in new_measures if n in old_measures):
        changes = _field_changes(old_measures[name], new_measures[name])
        if changes:
            measure_changes.append({"name": name, "changes": changes})
    old_rules = {r["id"]: r for r in old.get("rules", [])}
    new_rules = {r["id"]: r for r in new.get("rules", [])}
    rule_changes = []
    for rule_id in (r for r in new_rules if r in old_rules):
        changes = _field_changes(old_rules[rule_id], new_rules[rule_id])
        if changes:
            rule_changes.append({"id": rule_id, "changes": changes})
    weights = {
        stage.value: weight_changes
        for stage in STAGES
        if (weight_changes := _weight_changes(old["weights"].get(stage.value, {}), new["weights"].get(stage.value, {})))
    }
    neutral = (
        None if old["neutral_score"] == new["neutral_score"] else _change(old["neutral_score"], new["neutral_score"])
    )
    bands = _field_changes(old["bands"], new["bands"])
    stages = _field_changes(old["stages"], new["stages"])
    measures = {
        "added": [n for n in new_measures if n not in old_measures],
        "removed": [n for n in old_measures if n not in new_measures],
        "changed": measure_changes,
    }
    rules = {
        "added": [r for r in new_rules if r not in old_rules],
        "removed": [r for r in old_rules if r not in new_rules],
        "changed": rule_changes,
    }
    identical = not (bands or neutral or stages or weights or any(measures.values()) or any(rules.values()))
    diff: dict[str, Any] = {
        "identical": identical,
        "bands": bands,
        "neutral_score": neutral,
        "stages": stages,
        "measures": measures,
        "weights": weights,
        "rules": rules,
    }
    return diff


def diff_versions(session: Session, version_from: int, version_to: int) -> dict[str, Any]:
    """The structured diff of two stored versions (each normalized through the model first, so a
    config stored before rules existed compares with the default rule catalog it runs with)."""
    _seed_if_empty(session)
    old, new = _row(session, version_from), _row(session, version_to)
    diff = config_diff(model_from_dict(old.config).to_dict(), model_from_dict(new.config).to_dict())
    return {"version_from": version_from, "version_to": version_to, **diff}


# --- the preview ----------------------------------------------------------------------------------


def _active_model(session: Session) -> tuple[int | None, ScoringModel]:
    """The active version and model without writing anything (the default before any version exists)."""
    row = session.scalar(sa.select(ScoringConfigVersion).where(ScoringConfigVersion.active))
    if row is not None:
        return row.version, model_from_dict(row.config)
    if session.scalar(sa.select(sa.func.count()).select_from(ScoringConfigVersion)):
        raise NotFound("No scoring config version is active; activate one.")
    return None, model_from_dict(default_config_dict())


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[tuple[Any, ...]]:
    """The columns of a result (empty tuples when there are no rows)."""
    return list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]


def _blocks(
    session: Session, versions: np.ndarray, stage: np.ndarray, values: np.ndarray
) -> tuple[list[ValueBlock], dict[int, ScoringModel]]:
    """Rows grouped by config version into (m, k) value matrices; ``versions`` -1 rows are left out."""
    order = np.argsort(versions, kind="stable")
    keys, starts = np.unique(versions[order], return_index=True)
    bounds = [*starts.tolist(), order.size]
    models = load_models(session, {int(v) for v in keys if v >= 0})
    blocks = []
    for i, version in enumerate(keys.tolist()):
        if version < 0:
            continue
        rows = order[bounds[i] : bounds[i + 1]]
        names = models[version].measure_names
        matrix = np.array(values[rows].tolist(), dtype=np.float64).reshape(rows.size, len(names)).T
        blocks.append(ValueBlock(names, matrix, stage[rows].astype(np.int8), rows))
    return blocks, models


def _values_text(column: Any) -> Any:
    """The stored measure values as JSON text ("null" when the row is missing from an outer join)."""
    return sa.func.coalesce(sa.cast(column, sa.Text), "null")


def _parse_values(texts: Sequence[str]) -> np.ndarray:
    """Stored measure-value arrays, parsed by one ``json.loads`` over all rows (a decode per row
    was half the preview's time at 100k accounts), as an object array of lists (None: no row)."""
    parsed = json.loads("[" + ",".join(texts) + "]")
    return np.fromiter(parsed, object, len(parsed))


def _stage_code(column: Any) -> Any:
    """The stage's code (index into ``STAGES``) computed by the database, so no row is mapped in Python."""
    return sa.case({stage: code for code, stage in enumerate(STAGES)}, value=column, else_=-1)


def _latest(session: Session) -> _Rows:
    """Every latest score: account ids, days, stage codes, stored band codes, value blocks by version."""
    band_code = sa.case({band: code for code, band in enumerate(BANDS)}, value=LatestScore.band, else_=NO_BAND)
    rows = session.execute(
        sa.select(
            LatestScore.account_id,
            LatestScore.day,
            LatestScore.config_version,
            _stage_code(LatestScore.stage),
            band_code,
            _values_text(LatestScore.measure_values),
        )
    ).all()
    ids, days, versions, stages, bands, values = _columns(rows, 6)
    stage = np.asarray(stages, dtype=np.int8)
    blocks, models = _blocks(session, np.asarray(versions, dtype=np.int64), stage, _parse_values(values))
    return _Rows(np.asarray(ids, dtype=np.int64), list(days), stage, np.asarray(bands, dtype=np.int8), blocks, models)


@dataclass(frozen=True, slots=True)
class _Rows:
    """Stored score rows to rescore: per row its account, day, stage and stored band, and the values
    in blocks by config version (with those versions' models)."""

    ids: np.ndarray
    days: list[Any]
    stage: np.ndarray
    band: np.ndarray
    blocks: list[ValueBlock]
    models: dict[int, ScoringModel]

    def for_model(self, session: Session, model: ScoringModel) -> list[ValueBlock]:
        """The blocks with the values ``model`` computes differently from the stored versions
        (new or changed measures) computed from the raw tables as of each row's day."""
        return _refresh_blocks(session, self, model)


def _refresh_blocks(session: Session, rows: _Rows, model: ScoringModel) -> list[ValueBlock]:
    stale_by_version = {
        version: {m.name for m in stale_measures(model.measures, stored.measures)}
        for version, stored in rows.models.items()
    }
    stale = set().union(*stale_by_version.values()) if stale_by_version else set()
    if not stale:
        return rows.blocks
    fresh = _fresh_values(session, rows, model, stale)
    out = []
    versions = sorted(rows.models)
    for block, version in zip(rows.blocks, versions, strict=True):
        names = stale_by_version[version]
        keep = [i for i, name in enumerate(block.names) if name not in names]
        added = sorted(names)
        values = np.vstack([block.values[keep], *(fresh[name][block.rows][None, :] for name in added)])
        out.append(ValueBlock((*(block.names[i] for i in keep), *added), values, block.stage, block.rows))
    return out


def _fresh_values(session: Session, rows: _Rows, model: ScoringModel, names: set[str]) -> dict[str, np.ndarray]:
    """``names``' raw values per stored row, computed as of each row's day (one measure pass per
    distinct day; a ratio's parts are computed with it)."""
    needed = _with_parts(model.measures, names)
    sub = ScoringModel(
        measures=needed,
        weights={stage: {needed[0].name: 1.0} for stage in STAGES},
        stage_rules=model.stage_rules,
        rules=(),
    )
    out = {name: np.full(rows.ids.size, np.nan) for name in names}
    days = np.array([("NaT" if d is None else str(d)) for d in rows.days], dtype="datetime64[D]").reshape(-1)
    for day in np.unique(days[~np.isnat(days)]):
        at = np.flatnonzero(days == day)
        portfolio = compute_measures(session, as_of=day.astype(dt.date), model=sub, include_churned=True)
        pos, ok = align(portfolio.account_id, rows.ids[at])
        for name in names:
            values = np.full(at.size, np.nan)
            values[ok] = portfolio.raw[name][pos[ok]]
            out[name][at] = values
    return out


def _with_parts(measures: tuple[Measure, ...], names: set[str]) -> tuple[Measure, ...]:
    by_name = {m.name: m for m in measures}
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].ratio or ())
    return tuple(m for m in measures if m.name in wanted)


def _days_before(session: Session, day: Any, days: int) -> Any:
    """``day - days`` as a date expression both databases understand (dates are ISO text in SQLite)."""
    if session.get_bind().dialect.name == "sqlite":
        return sa.func.date(day, f"-{int(days)} days")
    return day - sa.literal(int(days), sa.Integer)


def _horizon_rows(session: Session, horizon_days: int, window_days: int) -> list[Any]:
    """Every outcome with the stored score of its account on, or nearest before, ``horizon_days``
    before it (at most ``window_days`` earlier); the score columns are null when there is none."""
    used = list(_OUTCOME_LABEL)
    pick = (
        sa.select(Outcome.id.label("outcome_id"), sa.func.max(HealthScore.day).label("day"))
        .join(
            HealthScore,
            sa.and_(
                HealthScore.account_id == Outcome.account_id,
                HealthScore.day <= _days_before(session, Outcome.day, horizon_days),
                HealthScore.day >= _days_before(session, Outcome.day, horizon_days + window_days),
            ),
        )
        .where(Outcome.kind.in_(used))
        .group_by(Outcome.id)
        .subquery()
    )
    label = sa.case({kind: code for kind, code in _OUTCOME_LABEL.items()}, value=Outcome.kind, else_=-1)
    stage_code = _stage_code(HealthScore.stage)
    query = (
        sa.select(
            label,
            sa.func.coalesce(HealthScore.config_version, -1),
            sa.func.coalesce(stage_code, -1),
            _values_text(HealthScore.measure_values),
            Outcome.account_id,
            HealthScore.day,
        )
        .select_from(Outcome)
        .outerjoin(pick, pick.c.outcome_id == Outcome.id)
        .outerjoin(HealthScore, sa.and_(HealthScore.account_id == Outcome.account_id, HealthScore.day == pick.c.day))
    )
    return list(session.execute(query).all())


def _metrics(version: int | None, metrics: BacktestMetrics) -> dict[str, Any]:
    return {
        "config_version": version,
        "auc": metrics.auc,
        "auc_note": metrics.auc_note,
        "churned_in_poor_share": metrics.churned_in_poor_share,
        "renewed_in_poor_share": metrics.renewed_in_poor_share,
        "mean_score_churned": metrics.mean_score_churned,
        "mean_score_renewed": metrics.mean_score_renewed,
    }


def _backtest(
    session: Session,
    active_version: int | None,
    active: ScoringModel,
    proposed: ScoringModel,
    *,
    horizon_days: int,
    window_days: int,
) -> dict[str, Any]:
    rows = _horizon_rows(session, horizon_days, window_days)
    labels, versions, stages, values, accounts, days = _columns(rows, 6)
    label = np.asarray(labels, dtype=np.int8)
    version = np.asarray(versions, dtype=np.int64)
    stage = np.asarray(stages, dtype=np.int8)
    blocks, models = _blocks(session, version, stage, _parse_values(values))
    stored = _Rows(np.asarray(accounts, dtype=np.int64), list(days), stage, np.zeros(0, np.int8), blocks, models)
    by_active = rescore(stored.for_model(session, active), label.size, active)
    by_proposed = rescore(stored.for_model(session, proposed), label.size, proposed)
    considered = label >= 0
    has_row = considered & (version >= 0)
    scored = has_row & ~np.isnan(by_active.score) & ~np.isnan(by_proposed.score)
    churned = label[scored] == 1

    def metrics(result: Rescored) -> BacktestMetrics:
        return backtest_metrics(result.score[scored], result.band[scored], churned)

    return {
        "horizon_days": horizon_days,
        "window_days": window_days,
        "outcomes": {
            "considered": int(label.size),
            "used": int(np.count_nonzero(scored)),
            "churned": int(np.count_nonzero(churned)),
            "renewed": int(np.count_nonzero(~churned)),
            "skipped": {
                "downgraded": int(np.count_nonzero(~considered)),
                "no_score_at_horizon": int(np.count_nonzero(considered & ~has_row)),
                "no_measure_data": int(np.count_nonzero(has_row & ~scored)),
            },
        },
        "active": _metrics(active_version, metrics(by_active)),
        "proposed": _metrics(None, metrics(by_proposed)),
    }


def _band_changes(session: Session, active: ScoringModel, proposed: ScoringModel, list_limit: int) -> dict[str, Any]:
    latest = _latest(session)
    ids, stage, stored_band = latest.ids, latest.stage, latest.band
    n = ids.size
    before = rescore(latest.for_model(session, active), n, active)
    after = rescore(latest.for_model(session, proposed), n, proposed)
    changed = before.band != after.band
    moves = band_moves(stage, before.band, after.band)
    stage_counts = np.bincount(stage[stage >= 0], minlength=len(STAGES))
    changed_counts = np.bincount(stage[changed & (stage >= 0)], minlength=len(STAGES))
    delta = np.abs(after.score - before.score)
    delta = delta[~np.isnan(delta)]
    top = largest_changes(before.score, after.score, changed, list_limit)
    names: dict[int, str] = {}
    if top.size:
        found = session.execute(sa.select(Account.id, Account.name).where(Account.id.in_(ids[top].tolist())))
        names = {account_id: name for account_id, name in found}

    def score(values: np.ndarray) -> list[float | None]:
        return [None if np.isnan(v) else round(float(v), 2) for v in values]

    labels = np.asarray(BAND_LABELS, dtype=object)
    listed = [
        {
            "account_id": account_id,
            "name": names.get(account_id),
            "stage": stage_name,
            "score_active": a,
            "score_proposed": p,
            "band_active": band_a,
            "band_proposed": band_p,
            "band_stored": band_s,
        }
        for account_id, stage_name, a, p, band_a, band_p, band_s in zip(
            ids[top].tolist(),
            _STAGE_NAMES[stage[top]].tolist(),
            score(before.score[top]),
            score(after.score[top]),
            labels[before.band[top]].tolist(),
            labels[after.band[top]].tolist(),
            labels[stored_band[top]].tolist(),
            strict=True,
        )
    ]
    return {
        "accounts": int(n),
        "band_shares": {"active": _band_shares(before.band), "proposed": _band_shares(after.band)},
        "changed": int(np.count_nonzero(changed)),
        "mean_abs_score_change": round(float(delta.mean()), 4) if delta.size else None,
        "by_stage": [
            {
                "stage": s.value,
                "accounts": int(stage_counts[code]),
                "changed": int(changed_counts[code]),
                "moves": [
                    {"band_from": m.band_from, "band_to": m.band_to, "accounts": m.accounts}
                    for m in moves
                    if m.stage == s.value
                ],
            }
            for code, s in enumerate(STAGES)
        ],
        "accounts_changed": listed,
        "list_limit": list_limit,
        "list_capped": bool(np.count_nonzero(changed) > top.size),
    }


def _band_shares(band: np.ndarray) -> dict[str, float | None]:
    """Each band's share of the scored accounts (None for all when nothing has a score)."""
    scored = band[band != NO_BAND]
    counts = np.bincount(scored, minlength=len(BANDS))
    return {
        b.value: (round(float(c) / scored.size, 4) if scored.size else None) for b, c in zip(BANDS, counts, strict=True)
    }


def preview(
    session: Session, proposed: ScoringModel, *, horizon_days: int, window_days: int, list_limit: int
) -> dict[str, Any]:
    """How a proposed config would move the latest scores' bands, and how its scores at the horizon
    before real outcomes would have foretold churn, next to the active config's. Writes nothing."""
    start = time.perf_counter()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET TRANSACTION READ ONLY"))  # any write would fail loudly
    active_version, active = _active_model(session)
    notes = []
    if proposed.stage_rules != active.stage_rules:
        notes.append(
            "The stage rules differ from the active config's: the preview rescores each stored score "
            "in its stored stage, so stage changes are not shown."
        )
    if proposed.rules != active.rules:
        notes.append("The event rules differ from the active config's: events are not previewed.")
    band_changes = _band_changes(session, active, proposed, list_limit)
    if not band_changes["accounts"]:
        notes.append("No account has a score yet: run a scoring run first.")
    backtest = _backtest(
        session,
        active_version,
        active,
        proposed,
        horizon_days=horizon_days,
        window_days=window_days,
    )
    return {
        "active_version": active_version,
        "notes": notes,
        "band_changes": band_changes,
        "backtest": backtest,
        "seconds": round(time.perf_counter() - start, 3),
    }
