"""The scheduler process: ``flask scheduler run`` starts a UTC ``BlockingScheduler`` in its own
process (never in web workers) with every job of the registry (``registry.py``).

Several may run against one database: each renews a lease in the database (``leases.py``) and
only the lease holder runs jobs, so every trigger runs once; when the holder dies its lease
expires and a standby takes over. Jobs marked ``leader_only=False`` run on every process.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from app.db import session_factory, utcnow
from app.services.ingest.pull import PullSummary
from app.services.jobs.leases import acquire_lease, release_lease
from app.services.jobs.registry import job_specs, process_identity, run_job
from app.services.jobs.runs import fail_orphaned_runs

logger = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
HEARTBEAT_JOB_ID = "scheduler-heartbeat"


class SchedulerProcess:
    """One ``flask scheduler run`` process: its identity, its lease, and the jobs it runs when leading."""

    def __init__(self, app: Flask):
        self.app = app
        self.holder = process_identity()
        self.lease_ttl = dt.timedelta(seconds=int(app.config["SCHEDULER_LEASE_SECONDS"]))
        self.heartbeat_seconds = int(app.config["SCHEDULER_HEARTBEAT_SECONDS"])
        self.leading = False
        # Heartbeats run in APScheduler's worker threads, and one may still be in flight when
        # SIGTERM stops the scheduler: without this, it could take the lease again just after
        # ``release`` gave it up, and the process would exit holding it (a standby then waits for
        # it to expire). ``release`` and each heartbeat hold the lock; after ``release`` no
        # heartbeat takes the lease.
        self._lease_lock = threading.Lock()
        self._stopped = False
        # Built once: each source holds its connections (an engine, an HTTP session) for the
        # life of the process rather than one set per run.
        self.specs = {spec.id: spec for spec in job_specs(app.config)}

    def heartbeat(self) -> bool:
        """Take or renew the lease; returns whether this process leads now (never once stopped)."""
        with self._lease_lock:
            if self._stopped:
                self.leading = False
                return False
            return self._heartbeat_locked()

    def _heartbeat_locked(self) -> bool:
        try:
            with self.app.app_context(), session_factory().begin() as session:
                leading = acquire_lease(session, name=LEASE_NAME, holder=self.holder, ttl=self.lease_ttl, now=utcnow())
                if leading and not self.leading:  # just took over: close what a dead leader left running
                    fail_orphaned_runs(session, leader=self.holder, now=utcnow())
        except Exception:
            # The database is unreachable: stop leading; the lease runs out for the others too.
            logger.exception("scheduler heartbeat failed", extra={"job_id": HEARTBEAT_JOB_ID})
            leading = False
        if leading != self.leading:
            logger.info("scheduler %s %s", self.holder, "leads" if leading else "stands by")
        self.leading = leading
        return leading

    def run_scheduled(self, job_id: str) -> None:
        """A trigger fired: run the job if this process (still) holds the lease (or the job runs
        on every process)."""
        if self.specs[job_id].leader_only and not self.heartbeat():
            logger.info("skipping %s: another scheduler leads", job_id, extra={"job_id": job_id})
            return
        # A failure is recorded in job_runs by run_recorded; APScheduler logs it and keeps going.
        result = run_job(self.app, self.specs[job_id], runner=self.holder)
        if isinstance(result, PullSummary) and result.total_landed:
            # New data: score now rather than at the next daily run.
            run_job(self.app, self.specs["score-daily"], runner=self.holder)

    def release(self) -> None:
        """Give the lease up for good: no later heartbeat of this process takes it again."""
        with self._lease_lock:
            self._stopped = True
            self.leading = False
            with self.app.app_context(), session_factory().begin() as session:
                release_lease(session, name=LEASE_NAME, holder=self.holder)

    def build(self) -> BlockingScheduler:
        """The scheduler with the heartbeat and every registered job (not started)."""
        scheduler = BlockingScheduler(timezone=dt.UTC)
        scheduler.add_job(
            _heartbeat,
            IntervalTrigger(seconds=self.heartbeat_seconds, timezone=dt.UTC),
            args=[self],
            id=HEARTBEAT_JOB_ID,
            name="Take or renew the scheduler lease",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=self.heartbeat_seconds,
            next_run_time=utcnow(),
        )
        for spec in self.specs.values():
            scheduler.add_job(
                _run_scheduled,
                spec.trigger,
                args=[self, spec.id],
                id=spec.id,
                name=spec.description,
                replace_existing=True,
                misfire_grace_time=spec.misfire_grace_time,
                **({"next_run_time": utcnow()} if spec.run_at_start else {}),
                **spec.options,
            )
        return scheduler

    def run_forever(self) -> None:
        """Start the scheduler; returns on SIGTERM or Ctrl-C, giving the lease up."""
        scheduler = self.build()
        signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
        logger.info("scheduler %s starting", self.holder)
        try:
            scheduler.start()
        except KeyboardInterrupt:
            pass
        finally:
            self.release()
            logger.info("scheduler %s stopped", self.holder)


# Module-level job functions (APScheduler references them; closures and lambdas cannot be).
def _heartbeat(process: SchedulerProcess) -> None:
    process.heartbeat()


def _run_scheduled(process: SchedulerProcess, job_id: str) -> None:
    process.run_scheduled(job_id)
