"""Repairs what crashes leave behind: expired leases (killed workers) and pending jobs the
queue lost (Redis restarted). No job stays processing forever; no hold dangles."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from app.core.config import Settings, get_settings
from app.core.db import session_scope, utcnow
from app.core.periodic import PeriodicThread
from app.jobs import service
from app.jobs.models import JOB_PENDING, JOB_PROCESSING, Job
from app.jobs.queue import JobQueue, get_queue
from app.jobs.service import fail_job
from app.jobs.tasks import queue_for

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    requeued_expired: int = 0
    failed_expired: int = 0
    reenqueued_pending: int = 0


def reconcile(
    settings: Settings | None = None, queue: JobQueue | None = None, *, pending_grace_seconds: float = 30.0
) -> ReconcileReport:
    settings = settings or get_settings()
    queue = queue or get_queue(settings)
    report = ReconcileReport()
    now = utcnow()
    with session_scope(settings) as session:
        expired = session.execute(
            select(Job.id, Job.attempts, Job.max_attempts).where(
                Job.status == JOB_PROCESSING, Job.lease_expires_at < now
            )
        ).all()
        for job_id, attempts, max_attempts in expired:
            if attempts < max_attempts:
                if service.requeue(session, job_id, attempts, 0.0, settings):
                    report.requeued_expired += 1
            else:
                fail_job(
                    session,
                    job_id,
                    f"The worker processing this job stopped responding ({attempts} attempts)",
                    attempt=attempts,
                )
                report.failed_expired += 1

    queued = queue.queued_ids()
    cutoff = now - timedelta(seconds=pending_grace_seconds)
    with session_scope(settings) as session:
        pending = session.execute(
            select(Job.id, Job.kind).where(Job.status == JOB_PENDING, Job.updated_at <= cutoff)
        ).all()
    for job_id, kind in pending:
        if job_id not in queued:
            queue.enqueue(job_id, queue=queue_for(kind))
            report.reenqueued_pending += 1
    if report.requeued_expired or report.failed_expired or report.reenqueued_pending:
        log.info("reconciler: %s", report)
    return report


def housekeeping(settings: Settings) -> None:
    """Periodic chores beside the jobs: monthly credit resets, expired idempotency keys,
    webhook attempts whose timer died with a process."""
    from app.api.idempotency import purge_expired_keys
    from app.billing.service import apply_due_resets
    from app.jobs import webhooks

    with session_scope(settings) as session:
        apply_due_resets(session)
        purge_expired_keys(session)
    webhooks.redeliver_due(settings)


class ReconcilerThread(PeriodicThread):
    """Runs reconcile() and the housekeeping every interval until stopped."""

    def __init__(self, settings: Settings, interval: float) -> None:
        super().__init__("chorus-reconciler", interval, lambda: _pass(settings))


def _pass(settings: Settings) -> None:
    reconcile(settings)
    housekeeping(settings)
