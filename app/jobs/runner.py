"""Runs one job: claim, work under a heartbeat-extended lease, then record the outcome.

Entry point for RQ workers and the in-process thread pool alike.
"""

from __future__ import annotations

import logging
import threading

import app.models  # noqa: F401  (a worker process needs every table mapped, e.g. for foreign keys)
from app.core.config import Settings, get_settings
from app.core.db import session_scope
from app.core.periodic import PeriodicThread
from app.jobs import service
from app.jobs.models import Job
from app.jobs.tasks import JobContext, JobFailed, JobOutcome, get_task

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """This attempt no longer owns its job (its lease ran out and another worker took it, or the
    job was cancelled): the work stops at its next progress report instead of running twice."""


class WorkerStopping(Exception):
    """The process running the job is shutting down (the embedded server stops): the work stops
    at its next progress report and the job goes back to pending, this attempt not counted, for
    the next start to run again, instead of holding the process open until the job is done."""


class _Heartbeat(PeriodicThread):
    """Extends the job's lease while the work runs, so only a dead worker's lease expires; notes
    when the lease could not be extended because the job is no longer this attempt's."""

    def __init__(self, job_id: int, attempt: int, settings: Settings) -> None:
        super().__init__(f"lease-{job_id}", max(0.5, settings.job_lease_seconds / 3), self._extend)
        self.job_id, self.attempt, self.settings = job_id, attempt, settings
        self.lost = threading.Event()

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(f"job {self.job_id} attempt {self.attempt} lost its lease")

    def _extend(self) -> None:
        with session_scope(self.settings) as session:
            kept = service.extend_lease(session, self.job_id, self.attempt, self.settings.job_lease_seconds)
        if not kept:
            self.lost.set()
            self.stop()


def run_job(job_id: int, settings: Settings | None = None, stopping: threading.Event | None = None) -> None:
    """`stopping`: set when this process shuts down (the in-process queue's; RQ workers finish
    their job on a warm shutdown, as RQ does)."""
    settings = settings or get_settings()
    with session_scope(settings) as session:
        if not service.claim(session, job_id, settings.job_lease_seconds):
            log.info("job %s not pending; another worker has it or it is final", job_id)
            return
        job = session.get(Job, job_id)
        assert job is not None
        spec = get_task(job.kind)
        if spec.run is None:
            raise RuntimeError(f"job kind {job.kind} has no worker task")
        run = spec.run
        if spec.on_started:
            spec.on_started(session, job)
        attempt, max_attempts = job.attempts, job.max_attempts
        heartbeat = _Heartbeat(job_id, attempt, settings)

        def report_progress(pct: int) -> None:
            heartbeat.check()
            if stopping is not None and stopping.is_set():
                raise WorkerStopping(f"job {job_id} attempt {attempt}: the worker is shutting down")
            _report_progress(job_id, attempt, pct, settings)

        ctx = JobContext(
            job_id=job.id,
            owner_id=job.owner_id,
            voice_id=job.voice_id,
            params=dict(job.params or {}),
            attempt=attempt,
            settings=settings,
            report_progress=report_progress,
        )

    try:
        with heartbeat:
            outcome = run(ctx)
    except LeaseLost as exc:
        log.warning("%s; stopping (another attempt or a cancel owns the job now)", exc)
    except WorkerStopping as exc:
        with session_scope(settings) as session:
            released = service.release(session, job_id, attempt)
        log.info("%s; %s", exc, "back to pending for the next start" if released else "no longer ours")
    except JobFailed as exc:
        _fail(job_id, attempt, str(exc), settings)
    except Exception as exc:
        log.exception("job %s attempt %s failed", job_id, attempt)
        if attempt < max_attempts:
            with session_scope(settings) as session:
                service.requeue(
                    session, job_id, attempt, settings.job_retry_base_seconds * 2 ** (attempt - 1), settings
                )
        else:
            _fail(job_id, attempt, f"Processing failed after {attempt} attempts: {_describe(exc)}", settings)
    else:
        _complete(job_id, attempt, outcome, settings)


def _report_progress(job_id: int, attempt: int, pct: int, settings: Settings) -> None:
    with session_scope(settings) as session:
        service.set_progress(session, job_id, attempt, pct)


def _complete(job_id: int, attempt: int, outcome: JobOutcome, settings: Settings) -> None:
    with session_scope(settings) as session:
        job = service.mark_completed(
            session,
            job_id,
            attempt,
            result_key=outcome.result_key,
            duration=outcome.duration,
            credits_spent=outcome.credits_spent,
        )
        if job is not None:
            spec = get_task(job.kind)
            if spec.on_completed:
                spec.on_completed(session, job, outcome)


def _fail(job_id: int, attempt: int | None, message: str, settings: Settings) -> None:
    with session_scope(settings) as session:
        service.fail_job(session, job_id, message, attempt=attempt)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:300]
