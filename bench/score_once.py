"""One scoring run in a process of its own: ``python -m bench.score_once URL YYYY-MM-DD [--naive]``.

Prints one JSON line: wall seconds for the run (and for the whole process, imports included),
and the process's peak resident memory.
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


def main() -> None:
    from sqlalchemy.orm import sessionmaker

    from app.db import make_engine
    from app.pipeline.run import run_scoring
    from bench.naive import run_scoring_naive

    url, day = sys.argv[1], dt.date.fromisoformat(sys.argv[2])
    naive = "--naive" in sys.argv[3:]
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    start = time.perf_counter()
    if naive:
        scored = run_scoring_naive(factory, as_of=day)
        steps: dict[str, float] = {}
    else:
        with factory.begin() as session:
            summary = run_scoring(session, as_of=day)
        scored, steps = summary.accounts_scored, summary.seconds
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
            }
        )
    )


if __name__ == "__main__":
    main()
