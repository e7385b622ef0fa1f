"""Queue abstraction: RQ on Redis, or a thread pool inside the API process (embedded default).

The queue carries only job ids; the jobs table is the truth. Losing the queue (Redis
restarted) loses nothing: the reconciler re-enqueues pending rows it cannot find.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Protocol

from app.core.config import Settings, get_settings
from app.core.errors import Unavailable
from app.core.priority import lower_current_thread

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>

# RQ queues, one per kind of heavy work, so workers can be dedicated (`chorus worker --queues stt,tts`:
# a GPU host takes the heavy kinds). A worker takes its queues in turn, so no kind starves another.
STT_QUEUE = "stt"  # transcriptions and translations, decoded for a waiting request
TTS_QUEUE = "tts"  # speech jobs
CLONE_QUEUE = "clone"  # clone jobs
GENERAL_QUEUE = "chorus"  # webhooks, diagnostics, and jobs queued before the queues were split
WORKER_QUEUES = (STT_QUEUE, TTS_QUEUE, CLONE_QUEUE, GENERAL_QUEUE)
JOB_QUEUES = (TTS_QUEUE, CLONE_QUEUE, GENERAL_QUEUE)  # queues that carry jobs-table ids
# A queue carries a job id to the function named here, as RQ does across processes; the
# in-process pool resolves the same name, so queues never import what runs on them.
JOB_FUNCTION = "app.jobs.runner.run_job"


JobFunction = Callable[[int, Settings, threading.Event], None]  # (job id, settings, stopping)


def _job_function() -> JobFunction:
    module, _, name = JOB_FUNCTION.rpartition(".")
    function: JobFunction = getattr(importlib.import_module(module), name)
    return function


RQ_JOB_PREFIX = "chorus-"


def tie_children_to_this_process() -> None:
    """Forked children (RQ's scheduler) are killed when this process dies, however it dies.

    RQ forks a scheduler process next to each worker. When the worker was SIGKILLed (the OOM
    killer, `kill -9`) the scheduler lived on as an orphan, and it still held a copy of the dead
    worker's Redis socket: Redis kept the worker's blocking dequeue open and handed it the next
    job, which vanished into RQ's intermediate queue (found by tests/test_jobs.py). Linux signals
    a child whose parent thread dies if the child asks for it (PR_SET_PDEATHSIG); every child
    forked after this call asks for SIGKILL, which closes that socket at once (SIGTERM left it
    open for up to the scheduler's sleep). Linux only; a no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def in_child() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(0)

    os.register_at_fork(after_in_child=in_child)


class JobQueue(Protocol):
    def enqueue(self, job_id: int, delay_seconds: float = 0.0, *, queue: str = GENERAL_QUEUE) -> None: ...
    def queued_ids(self) -> set[int]: ...
    def depth(self) -> int: ...
    def check(self) -> None: ...
    def shutdown(self) -> None:
        """Let go of the queue. In-process: running jobs stop at their next progress report and
        go back to pending (the next start runs them); this returns when they have."""
        ...


class InProcessQueue:
    """Runs jobs on worker threads of this process (the embedded default)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        threads = settings.worker_threads
        # Job threads run at the compute priority, so they do not slow the requests of this process.
        self._pool = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="chorus-job",
            initializer=lower_current_thread,
            initargs=(settings.compute_nice,),
        )
        self._lock = threading.Lock()
        self._queued: dict[int, int] = {}
        self._stopping = threading.Event()

    def enqueue(self, job_id: int, delay_seconds: float = 0.0, *, queue: str = GENERAL_QUEUE) -> None:
        """`queue` routes work between worker processes; one pool runs every kind."""
        with self._lock:
            self._queued[job_id] = self._queued.get(job_id, 0) + 1
        if delay_seconds > 0:
            timer = threading.Timer(delay_seconds, self._submit, args=(job_id,))
            timer.daemon = True
            timer.start()
        else:
            self._submit(job_id)

    def _submit(self, job_id: int) -> None:
        try:
            self._pool.submit(self._run, job_id)
        except RuntimeError:  # pool shut down: the reconciler picks it up at next start
            self._done(job_id)

    def _run(self, job_id: int) -> None:
        try:
            _job_function()(job_id, self.settings, self._stopping)
        except Exception:
            log.exception("job %s crashed", job_id)
        finally:
            self._done(job_id)

    def _done(self, job_id: int) -> None:
        with self._lock:
            left = self._queued.get(job_id, 1) - 1
            if left <= 0:
                self._queued.pop(job_id, None)
            else:
                self._queued[job_id] = left

    def queued_ids(self) -> set[int]:
        with self._lock:
            return set(self._queued)

    def depth(self) -> int:
        with self._lock:
            return sum(self._queued.values())

    def check(self) -> None:
        return None

    def shutdown(self) -> None:
        # Without the wait, a clone job kept the process (or the next test) busy for up to a
        # minute; jobs not started yet stay pending in the table for the next start as well.
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


class RQQueue:
    def __init__(self, redis_url: str, job_timeout: int) -> None:
        from redis import Redis
        from rq import Queue

        self.redis = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)
        self.queues = {name: Queue(name, connection=self.redis) for name in JOB_QUEUES}
        self.job_timeout = job_timeout

    def enqueue(self, job_id: int, delay_seconds: float = 0.0, *, queue: str = GENERAL_QUEUE) -> None:
        rq_queue = self.queues[queue]
        rq_id = f"{RQ_JOB_PREFIX}{job_id}-{uuid.uuid4().hex[:8]}"
        kwargs = {"job_id": rq_id, "job_timeout": self.job_timeout, "result_ttl": 3600, "failure_ttl": 86400}
        if delay_seconds > 0:
            rq_queue.enqueue_in(timedelta(seconds=delay_seconds), JOB_FUNCTION, job_id, **kwargs)
        else:
            rq_queue.enqueue(JOB_FUNCTION, job_id, **kwargs)

    def queued_ids(self) -> set[int]:
        from rq.registry import ScheduledJobRegistry, StartedJobRegistry

        rq_ids: list[str] = []
        for rq_queue in self.queues.values():
            rq_ids += rq_queue.get_job_ids()
            rq_ids += StartedJobRegistry(queue=rq_queue).get_job_ids()
            rq_ids += ScheduledJobRegistry(queue=rq_queue).get_job_ids()
        ids: set[int] = set()
        for rq_id in rq_ids:
            if rq_id.startswith(RQ_JOB_PREFIX):
                try:
                    ids.add(int(rq_id[len(RQ_JOB_PREFIX) :].split("-")[0]))
                except ValueError:
                    continue
        return ids

    def depth(self) -> int:
        return sum(len(rq_queue) for rq_queue in self.queues.values())

    def check(self) -> None:
        from redis.exceptions import RedisError

        try:
            self.redis.ping()
        except RedisError as exc:
            raise Unavailable(f"Job queue (Redis) is unreachable: {exc}") from exc

    def shutdown(self) -> None:
        self.redis.close()


_queues: dict[tuple[str, ...], JobQueue] = {}
_queues_lock = threading.Lock()


def _queue_key(settings: Settings) -> tuple[str, ...]:
    # In-process pools run jobs against their own database, so one pool per database.
    return ("rq", settings.redis_url) if settings.redis_url else ("local", settings.resolved_database_url)


def get_queue(settings: Settings | None = None) -> JobQueue:
    """The process's queue for these settings (created once)."""
    settings = settings or get_settings()
    key = _queue_key(settings)
    with _queues_lock:
        queue = _queues.get(key)
        if queue is None:
            if settings.redis_url:
                queue = RQQueue(settings.redis_url, job_timeout=settings.job_timeout_seconds)
            else:
                queue = InProcessQueue(settings)
            _queues[key] = queue
        return queue


def stop_queue(settings: Settings) -> None:
    """Shut down this database's queue (the app's lifespan ends); the next get_queue makes a new one."""
    key = _queue_key(settings)
    with _queues_lock:
        queue = _queues.pop(key, None)
    if queue is not None:
        queue.shutdown()


def reset_queues() -> None:
    """Shut every queue down (tests, process exit)."""
    with _queues_lock:  # shut down outside the lock: a job that is finishing may ask for a queue
        queues = list(_queues.values())
        _queues.clear()
    for queue in queues:
        queue.shutdown()
