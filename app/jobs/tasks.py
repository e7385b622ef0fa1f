"""Task kinds a worker can run. Domains register theirs; the job machinery looks them up by
`Job.kind` and never names a kind itself: whatever differs by kind is in its `TaskSpec`."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.models import Job
from app.jobs.queue import GENERAL_QUEUE


class JobFailed(Exception):
    """A failure that retrying cannot fix; the message is shown to the user."""


@dataclass
class JobOutcome:
    result_key: str | None = None
    duration: float | None = None
    credits_spent: int | None = None  # None: capture the whole hold
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobContext:
    job_id: int
    owner_id: int
    voice_id: int | None
    params: dict[str, Any]
    attempt: int
    settings: Settings
    report_progress: Callable[[int], None]


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    # The work, outside any transaction: engines, storage. Returns or raises. None for inline
    # kinds, done inside a request (streamed speech, transcription) and only recorded as jobs.
    run: Callable[[JobContext], JobOutcome] | None = None
    # Public ids look like f"{public_id_prefix}_…"; webhook events like f"{event_prefix}.completed".
    public_id_prefix: str = "job"
    event_prefix: str = "job"
    # The RQ queue its jobs wait on (app.jobs.queue): workers can be dedicated to kinds by queue.
    queue: str = GENERAL_QUEUE
    # Whether `result_key` is audio for the owner (a webhook then carries its download link).
    result_is_output: bool = True
    # Extra fields of the kind's webhook payload, read in the delivering transaction.
    event_data: Callable[[Session, Job], dict[str, Any]] | None = None
    # Before a failed job runs again as a new job (e.g. the clone's voice back to pending).
    before_retry: Callable[[Session, Job], None] | None = None
    # In the transaction that records the final state (e.g. the voice's status).
    on_completed: Callable[[Session, Job, JobOutcome], None] | None = None
    on_failed: Callable[[Session, Job, str], None] | None = None
    # In the transaction that moves the job to processing.
    on_started: Callable[[Session, Job], None] | None = None


_TASKS: dict[str, TaskSpec] = {}

# Modules that register task kinds, imported by name on first lookup, so a worker process (and
# the job machinery) needs no import of the domains above it.
TASK_MODULES = ["app.speech.tasks", "app.cloning.tasks"]


def register(spec: TaskSpec) -> TaskSpec:
    _TASKS[spec.kind] = spec
    return spec


def find_task(kind: str) -> TaskSpec | None:
    """The spec for a queued kind, or None for inline kinds that have no worker task."""
    try:
        return get_task(kind)
    except KeyError:
        return None


def get_task(kind: str) -> TaskSpec:
    if kind not in _TASKS:
        for module in TASK_MODULES:
            importlib.import_module(module)
    return _TASKS[kind]


def queue_for(kind: str) -> str:
    spec = find_task(kind)
    return spec.queue if spec else GENERAL_QUEUE


def public_id_prefix(kind: str) -> str:
    spec = find_task(kind)
    return spec.public_id_prefix if spec else "job"


def _run_diagnostic(ctx: JobContext) -> JobOutcome:
    """A harmless task proving the job machinery: sleeps in steps, optionally fails."""
    seconds = float(ctx.params.get("seconds", 0.0))
    steps = max(1, int(seconds * 10))
    for step in range(steps):
        time.sleep(seconds / steps)
        ctx.report_progress(int(100 * (step + 1) / steps))
    if ctx.params.get("fail"):
        if ctx.params.get("retryable"):
            raise RuntimeError("diagnostic task failed (retryable)")
        raise JobFailed("diagnostic task was asked to fail")
    return JobOutcome(data={"attempt": ctx.attempt})


register(TaskSpec(kind="diagnostic", run=_run_diagnostic))  # operator's self-test (`chorus jobs`)
