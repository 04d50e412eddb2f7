"""``flask analysis``: learning from outcomes (train the churn model, print the validation figures)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click
from flask.cli import AppGroup

from app.cli.common import DATE, exit_cleanly_on_domain_error
from app.db import session_factory
from app.services.churn_state import TRAIN_JOB
from app.services.jobs.runs import run_recorded
from app.services.predictions import evaluate_predictions

P = ParamSpec("P")
R = TypeVar("R")

analysis_cli = AppGroup("analysis", help="Learning from outcomes: the churn model and the validation figures.")


def _learning_options(command: Callable[P, R]) -> Callable[P, R]:
    options = (
        click.option(
            "--as-of", "as_of", type=DATE, default=None, help="Outcomes up to this day (default: today, UTC)."
        ),
        click.option("--horizon-days", type=click.IntRange(7, 730), default=90, show_default=True),
        click.option(
            "--periodic-months",
            type=click.IntRange(0, 60),
            default=12,
            show_default=True,
            help="Monthly observations of every customer besides the outcomes (0: outcomes only).",
        ),
        click.option("--min-per-class", type=click.IntRange(1, 100_000), default=30, show_default=True),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _figure(value: float | None, digits: int = 3, *, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.1f}%" if percent else f"{value:.{digits}f}"


@analysis_cli.command("train")
@_learning_options
@exit_cleanly_on_domain_error
def analysis_train(as_of: dt.date | None, horizon_days: int, periodic_months: int, min_per_class: int) -> None:
    """Train a churn model now and store it as the newest version (recorded in job_runs)."""
    from app.db import learning_cache_dir
    from app.services.analysis import TrainSummary, train_churn_model  # scikit-learn, on demand

    as_of = as_of or dt.datetime.now(dt.UTC).date()
    summary = run_recorded(
        session_factory(),
        TRAIN_JOB,
        {"as_of": as_of.isoformat(), "horizon_days": horizon_days, "periodic_months": periodic_months, "runner": "cli"},
        lambda session: TrainSummary(
            train_churn_model(
                session,
                as_of=as_of,
                actor="cli",
                horizon_days=horizon_days,
                periodic_months=periodic_months,
                min_per_class=min_per_class,
                cache_dir=learning_cache_dir(),
            )
        ),
        TrainSummary.counts,
    )
    click.echo(summary.one_line())


@analysis_cli.command("suggest")
@_learning_options
@click.option(
    "--write",
    "write_to",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the proposed version (the body for POST /api/v1/scoring/config/versions) to this file.",
)
@exit_cleanly_on_domain_error
def analysis_suggest(
    as_of: dt.date | None, horizon_days: int, periodic_months: int, min_per_class: int, write_to: str | None
) -> None:
    """Propose a config from outcomes (measure discovery) and print its walk-forward validation next
    to the active config, the best single candidate and a logistic-regression reference, with the
    measures it chose and why. Stores nothing (--write saves the proposal to a file)."""
    from app.db import learning_cache_dir
    from app.services.suggestions import suggest_config

    as_of = as_of or dt.datetime.now(dt.UTC).date()
    with session_factory().begin() as session:
        answer = suggest_config(
            session, as_of=as_of, horizon_days=horizon_days, periodic_months=periodic_months,
            min_per_class=min_per_class, cache_dir=learning_cache_dir(),
        )  # fmt: skip
    _echo_suggestion(answer)
    if write_to:
        with open(write_to, "w", encoding="utf-8") as out:
            json.dump(answer["new_version"], out, indent=2, default=str)
        click.echo(f"Proposed version written to {write_to}.")


@analysis_cli.command("evaluate")
@_learning_options
@exit_cleanly_on_domain_error
def analysis_evaluate(as_of: dt.date | None, horizon_days: int, periodic_months: int, min_per_class: int) -> None:
    """Print the validation figures: a suggested config against the active config (walk-forward
    ROC AUC with intervals, beside the best single candidate and a logistic-regression reference)
    and a churn model (ROC AUC, Brier score). Stores nothing."""
    from app.services.analysis import evaluate_learning  # scikit-learn, on demand

    as_of = as_of or dt.datetime.now(dt.UTC).date()
    with session_factory().begin() as session:
        report = evaluate_learning(
            session, as_of=as_of, horizon_days=horizon_days, periodic_months=periodic_months,
            min_per_class=min_per_class,
        )  # fmt: skip
    churn = report["churn_model"]
    _echo_suggestion(report["suggestions"])
    click.echo(
        f"  churn model ({churn['winner']}, walk-forward): ROC AUC {_figure(churn['auc'])}, Brier "
        f"{_figure(churn['brier'], 4)} (always the base rate: {_figure(churn['base_rate_brier'], 4)}) on "
        f"{churn['observations']} observations, {churn['churned']} churned"
    )
    click.echo(f"  {churn['reason']}")


_METHOD_NAMES = {
    "proposal": "suggested config",
    "active": "active config",
    "best_single": "best single candidate",
    "reference_lr": "logistic regression (reference)",
}


def _echo_suggestion(s: dict[str, Any]) -> None:
    """A suggestion's data, its walk-forward comparison (or why there is none) and its measures."""
    data, validation = s["data"], s["validation"]
    click.echo(
        f"Suggestion as of {s['as_of']} (horizon {s['horizon_days']} days, {s['periodic_months']} monthly dates): "
        f"{data['observations']} observations ({data['churned']} churned) of {data['accounts']} accounts, "
        f"{data['candidates']} candidate measures{' (observations from the day cache)' if data.get('cached') else ''}"
    )
    comparison = validation["comparison"]
    if comparison is None:
        for message in validation["messages"]:
            click.echo(f"  {message}")
    else:
        click.echo(
            f"Walk-forward validation: {comparison['observations']} test observations ({comparison['churned']} "
            f"churned) of {comparison['accounts']} accounts; 95% intervals from {comparison['draws']} draws of accounts"
        )
        click.echo(f"  {'method':<34}{'ROC AUC':>9}{'interval':>17}{'vs active':>11}{'lift@10%':>10}")
        for method, name in _METHOD_NAMES.items():
            auc = comparison["auc"][method]
            diff = comparison["difference_vs_reference"].get(method)
            span = f"{_figure(auc['low'])}-{_figure(auc['high'])}"
            vs = "" if diff is None else f"{diff['value']:+.3f}"
            lift = validation["top_decile_lift"].get(method)
            click.echo(f"  {name:<34}{_figure(auc['value']):>9}{span:>17}{vs:>11}{_figure(lift, 2):>10}")
        click.echo(f"  {validation['verdict']['message']}")
    click.echo("Measures of the suggested config:")
    for m in s["measures"]:
        weights = ", ".join(f"{stage} {w:g}" for stage, w in m["weights"].items())
        click.echo(f"  {m['measure']['name']} ({m['measure']['direction']}; weights {weights})")
        click.echo(f"    {m['reason']}")
    for message in s["messages"]:
        click.echo(f"  note: {message}")


@analysis_cli.command("predictions")
@click.option("--from", "start", type=DATE, default=None, help="First scored day (default: the first stored).")
@click.option("--to", "end", type=DATE, default=None, help="Last scored day (default: the last stored).")
@click.option("--horizon-days", type=click.IntRange(1, 730), default=90, show_default=True)
@click.option("--as-of", "as_of", type=DATE, default=None, help="Outcomes known up to this day (default: today, UTC).")
@click.option("--out-of-sample", is_flag=True, help="Only predictions made on or after their model's training day.")
@exit_cleanly_on_domain_error
def analysis_predictions(
    start: dt.date | None, end: dt.date | None, horizon_days: int, as_of: dt.date | None, out_of_sample: bool
) -> None:
    """Judge the stored daily churn predictions against the outcomes: ROC AUC, Brier score and
    calibration by decile, with counts. Stores nothing."""
    if start and end and end < start:
        raise click.BadParameter("must not be before --from.", param_hint="--to")
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    with session_factory().begin() as session:
        r = evaluate_predictions(
            session, start=start, end=end, horizon_days=horizon_days, as_of=as_of, out_of_sample=out_of_sample
        )
    span = f"{start or 'the first day'} to {end or 'the last day'}"
    click.echo(
        f"Stored predictions from {span}, churn within {horizon_days} days, outcomes as of {as_of}: "
        f"{r['predictions']} predictions ({r['churned']} churned, {r['censored']} left out with the horizon open)"
    )
    if r["note"]:
        click.echo(f"  note: {r['note']}")
        return
    click.echo(
        f"  ROC AUC {_figure(r['auc'])}, Brier {_figure(r['brier'], 4)}, "
        f"base rate {_figure(r['base_rate'], percent=True)}, "
        f"mean prediction {_figure(r['mean_probability'], percent=True)}"
    )
    click.echo(f"  {'decile':>6}{'count':>10}{'churned':>9}{'predicted':>11}{'observed':>10}{'range':>17}")
    for d in r["deciles"]:
        click.echo(
            f"  {d['decile']:>6}{d['count']:>10}{d['churned']:>9}{_figure(d['mean_probability'], percent=True):>11}"
            f"{_figure(d['observed_rate'], percent=True):>10}   {d['min_probability']:.4f}-{d['max_probability']:.4f}"
        )
    for m in r["models"]:
        click.echo(
            f"  model v{m['version']} (trained as of {m['trained_as_of']}): {m['predictions']} predictions, "
            f"{m['out_of_sample']} made on or after its training day"
        )
