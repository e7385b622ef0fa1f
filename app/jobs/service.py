"""Creating jobs and moving them between states. The row is the truth; credits follow it."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.billing import service as billing
from app.core.config import Settings
from app.core.db import affected_rows, after_commit, is_digits, public_id, row_id, utcnow
from app.core.errors import InvalidInput, NotFound
from app.jobs.models import JOB_COMPLETED, JOB_FAILED, JOB_PENDING, JOB_PROCESSING, Job
from app.jobs.queue import get_queue
from app.jobs.tasks import find_task, get_task, public_id_prefix, queue_for

log = logging.getLogger(__name__)

# Called after a job reaches a final state and that state is committed (webhooks hook in here).
final_state_listeners: list[Callable[[int], None]] = []


def create_job(
    session: Session,
    settings: Settings,
    *,
    owner_id: int,
    kind: str,
    params: dict[str, Any],
    credits: int = 0,
    voice_id: int | None = None,
    callback_url: str | None = None,
) -> Job:
    """Insert a pending job, hold its credits, and enqueue it once the request commits."""
    job = Job(
        public_id=public_id(public_id_prefix(kind)),
        kind=kind,
        owner_id=owner_id,
        voice_id=voice_id,
        params=params,
        credits_held=credits,
        callback_url=callback_url,
        max_attempts=settings.job_max_attempts,
    )
    session.add(job)
    session.flush()
    if credits:
        billing.hold(session, owner_id, job.id, credits)
    job_id, queue = job.id, queue_for(kind)
    after_commit(session, lambda: get_queue(settings).enqueue(job_id, queue=queue))
    return job


def get_owned_job(session: Session, owner_id: int, ref: str | int, kind: str | None = None) -> Job:
    """A job of this owner by integer id or public id; another user's job is NotFound."""
    query = select(Job).where(Job.owner_id == owner_id)
    if kind:
        query = query.where(Job.kind == kind)
    if is_digits(str(ref).strip()):
        query = query.where(Job.id == (row_id(ref) or 0))
    else:
        query = query.where(Job.public_id == str(ref))
    job = session.scalar(query)
    if job is None:
        raise NotFound("Job not found")
    return job


def claim(session: Session, job_id: int, lease_seconds: int) -> bool:
    """pending → processing with a lease; False when another worker has it or it is final."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JOB_PENDING)
        .values(
            status=JOB_PROCESSING,
            attempts=Job.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(Job.started_at, now),
            updated_at=now,
        )
    )
    return affected_rows(result) == 1


def extend_lease(session: Session, job_id: int, attempt: int, lease_seconds: int) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JOB_PROCESSING, Job.attempts == attempt)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    return affected_rows(result) == 1


def set_progress(session: Session, job_id: int, attempt: int, progress: int) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JOB_PROCESSING, Job.attempts == attempt)
        .values(progress=max(0, min(100, progress)), updated_at=utcnow())
    )


def requeue(
    session: Session, job_id: int, attempt: int | None, delay_seconds: float, settings: Settings
) -> bool:
    """processing → pending for another attempt (only the attempt that holds the job may)."""
    conditions = [Job.id == job_id, Job.status == JOB_PROCESSING]
    if attempt is not None:
        conditions.append(Job.attempts == attempt)
    result = session.execute(
        update(Job).where(*conditions).values(status=JOB_PENDING, lease_expires_at=None, updated_at=utcnow())
    )
    if affected_rows(result) != 1:
        return False
    queue = queue_for(session.scalars(select(Job.kind).where(Job.id == job_id)).one())
    after_commit(session, lambda: get_queue(settings).enqueue(job_id, delay_seconds, queue=queue))
    return True


def release(session: Session, job_id: int, attempt: int) -> bool:
    """processing → pending without counting the attempt and without enqueueing: the worker is
    shutting down, and the reconciler of the next start enqueues it (only the holder may)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JOB_PROCESSING, Job.attempts == attempt)
        .values(
            status=JOB_PENDING,
            attempts=Job.attempts - 1,
            progress=0,
            lease_expires_at=None,
            updated_at=utcnow(),
        )
    )
    return affected_rows(result) == 1


def mark_completed(
    session: Session,
    job_id: int,
    attempt: int,
    *,
    result_key: str | None,
    duration: float | None,
    credits_spent: int | None,
) -> Job | None:
    """processing → completed and capture the hold, in the caller's transaction. None if not ours."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JOB_PROCESSING, Job.attempts == attempt)
        .values(
            status=JOB_COMPLETED,
            progress=100,
            result_key=result_key,
            duration=duration,
            completed_at=now,
            updated_at=now,
            lease_expires_at=None,
            error=None,
        )
    )
    if affected_rows(result) != 1:
        return None
    billing.capture(session, job_id, credits_spent)
    _notify_final(session, job_id)
    return session.get(Job, job_id, populate_existing=True)


def mark_failed(session: Session, job_id: int, message: str, *, attempt: int | None = None) -> Job | None:
    """→ failed with a human-readable error, releasing the hold. None if already final."""
    now = utcnow()
    conditions = [Job.id == job_id, Job.status.in_((JOB_PENDING, JOB_PROCESSING))]
    if attempt is not None:
        conditions.append(Job.attempts == attempt)
    result = session.execute(
        update(Job)
        .where(*conditions)
        .values(status=JOB_FAILED, error=message, completed_at=now, updated_at=now, lease_expires_at=None)
    )
    if affected_rows(result) != 1:
        return None
    billing.release(session, job_id)
    _notify_final(session, job_id)
    return session.get(Job, job_id, populate_existing=True)


def _notify_final(session: Session, job_id: int) -> None:
    for listener in final_state_listeners:
        after_commit(session, functools.partial(listener, job_id))


INLINE_LEASE_SECONDS = 600


def start_inline_job(
    session: Session,
    settings: Settings,
    *,
    owner_id: int,
    kind: str,
    params: dict[str, Any],
    credits: int = 0,
    voice_id: int | None = None,
) -> Job:
    """A job done inside the request (streamed speech, transcription): born processing, with
    credits held. Finish it with mark_completed / mark_failed (attempt 1). If the process
    dies first, its lease expires and the reconciler fails it and releases the hold."""
    now = utcnow()
    job = Job(
        public_id=public_id(public_id_prefix(kind)),
        kind=kind,
        owner_id=owner_id,
        voice_id=voice_id,
        params=params,
        status=JOB_PROCESSING,
        attempts=1,
        max_attempts=1,
        lease_expires_at=now + timedelta(seconds=INLINE_LEASE_SECONDS),
        started_at=now,
        credits_held=credits,
    )
    session.add(job)
    session.flush()
    if credits:
        billing.hold(session, owner_id, job.id, credits)
    return job


def cancel_job(session: Session, job_id: int, reason: str = "Cancelled by the operator") -> Job:
    """Stop a job that has not finished: it ends failed and its hold is released. A worker
    still running it cannot complete it afterwards (completion requires status processing)."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"No job {job_id}")
    if job.status in (JOB_COMPLETED, JOB_FAILED):
        raise InvalidInput(f"Job {job_id} is already {job.status}")
    fail_job(session, job_id, reason)
    return session.get(Job, job_id, populate_existing=True)  # type: ignore[return-value]


def retry_job(session: Session, settings: Settings, job_id: int) -> Job:
    """Run a failed job again as a new job with the same parameters (and a new hold)."""
    old = session.get(Job, job_id)
    if old is None:
        raise NotFound(f"No job {job_id}")
    if old.status != JOB_FAILED:
        raise InvalidInput(f"Only failed jobs can be retried; job {job_id} is {old.status}")
    spec = get_task(old.kind)
    if spec.before_retry is not None:
        spec.before_retry(session, old)
    return create_job(
        session,
        settings,
        owner_id=old.owner_id,
        kind=old.kind,
        params=dict(old.params or {}),
        credits=old.credits_held,
        voice_id=old.voice_id,
        callback_url=old.callback_url,
    )


def fail_job(session: Session, job_id: int, message: str, *, attempt: int | None = None) -> None:
    """Mark failed (releasing credits) and let the task kind record it on its domain rows."""
    job = mark_failed(session, job_id, message, attempt=attempt)
    if job is not None:
        spec = find_task(job.kind)
        if spec is not None and spec.on_failed:
            spec.on_failed(session, job, message)


def count_jobs_by_kind_and_status(session: Session) -> dict[tuple[str, str], int]:
    """How many jobs there are of each (kind, status): the /metrics gauge."""
    rows = session.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))
    return {(str(kind), str(status)): int(count) for kind, status, count in rows}
