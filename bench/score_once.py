"""One scoring run in a process of its own: ``python -m bench.score_once URL YYYY-MM-DD [options]``.

Prints one JSON line: seconds for the run and for the whole process (interpreter start and
imports included), the process's peak resident memory, the run's steps and what it wrote.

Options:

- ``--naive``: the naive run (``bench/naive.py``), which does no events, plays or alerts;
- ``--alone``: the run without rules and plays (so no events, play runs or alerts either): the
  real run doing the same work as the naive one, and the baseline of the events ratio;
- ``--fire-on-first-day``: every rule of the active config fires on an account's first scored
  day (``fire_on_first_day``): a first evaluation that fires on purpose, the burst of a new
  installation whose rules all opt in;
- ``--rollback``: roll the run back instead of committing, so rounds start from one state.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time

PROCESS_START = time.perf_counter()


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss over exec from the parent (the benchmark driver, after seeding), VmHWM starts afresh."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _patch(mode: str) -> None:
    """Switch the run's model (and plays) for ``--alone`` and ``--fire-on-first-day``."""
    import dataclasses

    from app.pipeline import run as scoring

    real = scoring.get_active_model
    if mode == "alone":

        def without_rules(session):  # type: ignore[no-untyped-def]
            version, model = real(session)
            return version, dataclasses.replace(model, rules=())

        scoring.get_active_model = without_rules  # type: ignore[assignment]
        scoring.load_plays = lambda s: []  # type: ignore[assignment]
    elif mode == "burst":

        def every_rule_fires(session):  # type: ignore[no-untyped-def]
            version, model = real(session)
            rules = tuple(dataclasses.replace(rule, fire_on_first_day=True) for rule in model.rules)
            return version, dataclasses.replace(model, rules=rules)

        scoring.get_active_model = every_rule_fires  # type: ignore[assignment]


def main() -> None:
    from sqlalchemy.orm import sessionmaker

    from app.db import make_engine

    url, day = sys.argv[1], dt.date.fromisoformat(sys.argv[2])
    options = set(sys.argv[3:])
    naive, rollback = "--naive" in options, "--rollback" in options
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    wrote: dict[str, int] = {}
    start = time.perf_counter()
    if naive:
        from bench.naive import run_scoring_naive

        scored = run_scoring_naive(factory, as_of=day)
        steps: dict[str, float] = {}
    else:
        from app.pipeline.run import run_scoring

        _patch("alone" if "--alone" in options else "burst" if "--fire-on-first-day" in options else "full")
        with factory() as session:
            summary = run_scoring(session, as_of=day)
            if rollback:
                session.rollback()
            else:
                session.commit()
        scored, steps = summary.accounts_scored, summary.seconds
        wrote = {
            "events": summary.events,
            "play_runs": summary.play_runs,
            "tasks": summary.tasks,
            "alerts": summary.alerts.queued + summary.alerts.held,
        }
    run_seconds = time.perf_counter() - start
    engine.dispose()
    print(
        json.dumps(
            {
                "accounts": scored,
                "run_seconds": round(run_seconds, 3),
                "process_seconds": round(time.perf_counter() - PROCESS_START, 3),
                "peak_rss_mib": peak_rss_mib(),
                "steps": steps,
                **wrote,
            }
        )
    )


if __name__ == "__main__":
    main()
