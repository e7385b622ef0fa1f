"""The job machinery with a placeholder task: completion, failure, retries, killed workers,
lost queues. Credits follow the job; sum(entries) == balance after each."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.auth import service as auth
from app.billing import service as billing
from app.core.config import Settings
from app.core.db import dispose_engines, session_scope
from app.core.migrate import upgrade
from app.jobs import service as jobs
from app.jobs.models import Job
from app.jobs.queue import get_queue, reset_queues
from app.jobs.reconciler import reconcile
from tests.plugins import procfs
from tests.plugins.services import make_settings, start_worker, stop_worker
from tests.plugins.waiting import JOB_WAIT_S, wait_until


def _new_user(settings: Settings, credits: int = 1000) -> int:
    with session_scope(settings) as session:
        user = auth.create_user(session, f"u{time.monotonic_ns()}")
        billing.grant(session, user.id, credits)
        return user.id


def _create(settings: Settings, user_id: int, credits: int = 100, **params: object) -> int:
    with session_scope(settings) as session:
        job = jobs.create_job(
            session, settings, owner_id=user_id, kind="diagnostic", params=params, credits=credits
        )
        return job.id


def _wait_for(
    settings: Settings, job_id: int, predicate: Callable[[Job], bool], timeout: float = JOB_WAIT_S
) -> Job:
    def read() -> Job:
        with session_scope(settings) as session:
            job = session.get(Job, job_id)
            assert job is not None
            session.expunge(job)
            return job

    return wait_until(read, predicate, timeout, interval=0.1)


def _final(job: Job) -> bool:
    return job.status in ("completed", "failed")


def _check_ledger(settings: Settings, user_id: int, expected_total: int) -> None:
    with session_scope(settings) as session:
        bal = billing.balance(session, user_id)
        assert (bal.total, bal.held) == (expected_total, 0)
        assert billing.ledger_totals(session, user_id) == (bal.total, bal.held)


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Iterator[Settings]:
    settings = make_settings(tmp_path, job_retry_base_seconds=0.05)
    upgrade(settings)
    yield settings
    reset_queues()
    dispose_engines()


def test_job_completes_and_captures_its_hold(embedded_settings: Settings) -> None:
    user = _new_user(embedded_settings)
    job_id = _create(embedded_settings, user, credits=100, seconds=0.3)
    job = _wait_for(embedded_settings, job_id, _final)
    assert (job.status, job.progress, job.attempts) == ("completed", 100, 1)
    _check_ledger(embedded_settings, user, 900)


def test_job_that_always_fails_ends_failed_with_hold_released(embedded_settings: Settings) -> None:
    user = _new_user(embedded_settings)
    job_id = _create(embedded_settings, user, credits=100, fail=True)
    job = _wait_for(embedded_settings, job_id, _final)
    assert job.status == "failed" and job.error == "diagnostic task was asked to fail"
    assert job.attempts == 1  # a JobFailed is not retried
    _check_ledger(embedded_settings, user, 1000)


def test_retryable_failure_is_retried_then_fails(embedded_settings: Settings) -> None:
    user = _new_user(embedded_settings)
    job_id = _create(embedded_settings, user, credits=100, fail=True, retryable=True)
    job = _wait_for(embedded_settings, job_id, _final)
    assert job.status == "failed" and job.attempts == embedded_settings.job_max_attempts
    assert job.error is not None and "after 3 attempts" in job.error
    _check_ledger(embedded_settings, user, 1000)


def test_insufficient_credits_create_no_job(embedded_settings: Settings) -> None:
    from app.core.errors import InsufficientCredits

    user = _new_user(embedded_settings, credits=50)
    with pytest.raises(InsufficientCredits):
        _create(embedded_settings, user, credits=100)
    with session_scope(embedded_settings) as session:
        assert session.query(Job).count() == 0
    _check_ledger(embedded_settings, user, 50)


# --- real Postgres + Redis + RQ workers in subprocesses ---------------------------------------


@pytest.fixture
def served_settings(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    settings = make_settings(
        tmp_path,
        database_url=postgres_url,
        redis_url=redis_url,
        job_lease_seconds=2,
        reconcile_interval_seconds=3600,
    )
    upgrade(settings)
    yield settings
    reset_queues()
    dispose_engines()


def _start_worker(
    settings: Settings, *, burst: bool = False, defaults: bool = False
) -> subprocess.Popen[bytes]:
    """A `chorus worker` process; `defaults`: with the shipped lease and reconciler interval
    (otherwise the test's short lease and no reconciler of its own)."""
    env = (
        {}
        if defaults
        else {
            "CHORUS_JOB_LEASE_SECONDS": str(settings.job_lease_seconds),
            "CHORUS_RECONCILE_INTERVAL_SECONDS": "3600",
        }
    )
    return start_worker(settings, *(["--burst"] if burst else []), env=env)


def _assert_nothing_outlives_the_worker(data_dir: Path) -> None:
    """RQ forks a scheduler next to each worker; a SIGKILLed worker must not leave it orphaned."""
    if not procfs.HAS_PROC:
        return
    deadline = time.monotonic() + 10
    mine = ("CHORUS_DATA_DIR", str(data_dir))
    while (left := procfs.processes_with_env(*mine)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes outlived their killed worker: {left}"


def _wait_until_no_blocked_dequeue(settings: Settings) -> None:
    from redis import Redis

    assert settings.redis_url
    client = Redis.from_url(settings.redis_url)
    db = client.connection_pool.connection_kwargs.get("db", 0)

    def blocked() -> list[dict[str, object]]:
        clients = client.client_list()
        return [c for c in clients if "b" in str(c.get("flags", "")) and str(c.get("db")) == str(db)]

    try:
        wait_until(blocked, lambda clients: not clients, interval=0.1)
    finally:
        client.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop_worker(proc, kill=True)


def test_worker_killed_mid_job_is_requeued_and_completes(served_settings: Settings) -> None:
    user = _new_user(served_settings)
    job_id = _create(served_settings, user, credits=100, seconds=4)
    worker = _start_worker(served_settings)
    try:
        _wait_for(served_settings, job_id, lambda j: j.status == "processing" and j.progress >= 10)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        _stop(worker)
    _assert_nothing_outlives_the_worker(served_settings.data_dir)
    assert _wait_for(served_settings, job_id, lambda j: True).status == "processing"
    time.sleep(served_settings.job_lease_seconds + 0.5)  # the dead worker's lease runs out
    report = reconcile(served_settings, pending_grace_seconds=0)
    assert report.requeued_expired == 1
    survivor = _start_worker(served_settings, burst=True)
    try:
        job = _wait_for(served_settings, job_id, _final)
    finally:
        _stop(survivor)
    assert (job.status, job.attempts) == ("completed", 2)
    _check_ledger(served_settings, user, 900)


@pytest.fixture
def shipped_settings(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Postgres + Redis with the lease and reconciler interval a deployment gets by default."""
    settings = make_settings(tmp_path, database_url=postgres_url, redis_url=redis_url)
    upgrade(settings)
    yield settings
    reset_queues()
    dispose_engines()


def test_a_killed_workers_job_moves_to_another_worker_by_itself(shipped_settings: Settings) -> None:
    """kill -9 mid-job with a second worker idle: with the shipped settings (20 s lease renewed
    by the heartbeat, a reconciler pass every 5 s in every worker) the job runs again on the
    second worker within about 25 s, nobody calling the reconciler by hand (was 336 s with a
    300 s lease); it completes once and the credits are captured once."""
    settings = shipped_settings
    assert settings.job_lease_seconds <= 20 and settings.reconcile_interval_seconds <= 5
    user = _new_user(settings)
    job_id = _create(settings, user, credits=100, seconds=4)
    first = _start_worker(settings, defaults=True)
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait_for(settings, job_id, lambda j: j.status == "processing" and j.progress >= 10)
        second = _start_worker(settings, defaults=True)
        killed = time.monotonic()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        _wait_for(settings, job_id, lambda j: j.attempts == 2, timeout=90)
        resumed_after = time.monotonic() - killed
        job = _wait_for(settings, job_id, _final)
    finally:
        _stop(first)
        if second is not None:
            _stop(second)
    # How long it took is a figure, not a pass mark (23.5 s measured; the goal is 30 s):
    # what fails here is a job nobody takes up again (with a 300 s lease it waited past 90 s).
    print(f"killed worker's job running again after {resumed_after:.1f} s")
    assert (job.status, job.attempts) == ("completed", 2)
    _check_ledger(settings, user, 900)


def test_an_attempt_that_lost_its_lease_stops_instead_of_running_twice(served_settings: Settings) -> None:
    """A worker whose lease was taken over (its heartbeat stalled, the job went to another
    worker) stops at its next progress report: the work does not run twice, and it neither
    completes nor fails the job that the other attempt now owns."""
    import threading

    from sqlalchemy import update

    from app.jobs.runner import run_job

    user = _new_user(served_settings)
    job_id = _create(served_settings, user, credits=100, seconds=8)  # no worker runs: we do
    first = threading.Thread(target=run_job, args=(job_id, served_settings))
    first.start()
    _wait_for(served_settings, job_id, lambda j: j.status == "processing" and j.progress >= 5)
    with session_scope(served_settings) as session:  # another worker's attempt owns it now
        session.execute(update(Job).where(Job.id == job_id).values(attempts=Job.attempts + 1))
    first.join(timeout=6)  # the heartbeat (every lease/3) notices, the next progress report stops it
    assert not first.is_alive(), "the first attempt kept working on a job it no longer owns"
    job = _wait_for(served_settings, job_id, lambda j: True)
    assert (job.status, job.attempts) == ("processing", 2) and job.progress < 100
    with session_scope(served_settings) as session:
        assert billing.balance(session, user).held == 100  # still held for attempt 2


def test_killed_on_the_last_attempt_fails_and_releases(served_settings: Settings) -> None:
    user = _new_user(served_settings)
    with session_scope(served_settings) as session:
        job = jobs.create_job(
            session, served_settings, owner_id=user, kind="diagnostic", params={"seconds": 4}, credits=100
        )
        job.max_attempts = 1
        job_id = job.id
    worker = _start_worker(served_settings)
    try:
        _wait_for(served_settings, job_id, lambda j: j.status == "processing")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        _stop(worker)
    time.sleep(served_settings.job_lease_seconds + 0.5)
    assert reconcile(served_settings, pending_grace_seconds=0).failed_expired == 1
    job = _wait_for(served_settings, job_id, _final)
    assert job.status == "failed" and "stopped responding" in (job.error or "")
    _check_ledger(served_settings, user, 1000)


def test_a_killed_idle_worker_does_not_swallow_the_next_job(served_settings: Settings) -> None:
    """kill -9 of a worker waiting for work: nothing it forked lives on, and the next job stays
    queued for the next worker (an orphaned RQ scheduler kept the dead worker's Redis socket,
    so Redis handed it the job, which vanished into RQ's intermediate queue)."""
    user = _new_user(served_settings)
    first = _create(served_settings, user, credits=100, seconds=0.1)
    worker = _start_worker(served_settings)
    try:
        assert _wait_for(served_settings, first, _final).status == "completed"
        time.sleep(1.0)  # back in its blocking dequeue
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        _stop(worker)
    _assert_nothing_outlives_the_worker(served_settings.data_dir)
    # Redis must see the dead worker's blocking dequeue gone (an orphan holding its socket would
    # keep it forever); only then is "the next job stays queued" a fair question on a busy machine.
    _wait_until_no_blocked_dequeue(served_settings)
    second = _create(served_settings, user, credits=100, seconds=0.1)
    assert second in get_queue(served_settings).queued_ids()
    survivor = _start_worker(served_settings, burst=True)
    try:
        assert _wait_for(served_settings, second, _final).status == "completed"
    finally:
        _stop(survivor)
    _check_ledger(served_settings, user, 800)


@pytest.mark.skipif(not procfs.HAS_PROC, reason="per-thread nice values are Linux's")
def test_worker_runs_at_the_compute_priority(served_settings: Settings) -> None:
    """CHORUS_COMPUTE_NICE (10): every thread of a worker, the job's included, yields the CPU to
    API processes on the same cores."""
    user = _new_user(served_settings)
    job_id = _create(served_settings, user, credits=100, seconds=2)
    worker = _start_worker(served_settings)
    try:
        _wait_for(served_settings, job_id, lambda j: j.status == "processing")
        nices = [nice for nice, _ in procfs.threads(worker.pid).values()]
        assert len(nices) >= 2 and set(nices) == {10}, nices  # main (runs the job) + reconciler
        assert _wait_for(served_settings, job_id, _final).status == "completed"
    finally:
        _stop(worker)


def test_embedded_job_threads_run_at_the_compute_priority(embedded_settings: Settings) -> None:
    from app.core.priority import thread_nice

    queue = get_queue(embedded_settings)
    caller_nice = thread_nice()
    if caller_nice is None:
        pytest.skip("per-thread nice values are Linux's")
    assert queue._pool.submit(thread_nice).result(timeout=10) == max(caller_nice, 10)  # type: ignore[attr-defined]
    assert thread_nice() == caller_nice  # the submitting (request) thread is untouched


def test_stopping_the_embedded_server_mid_job_hands_the_job_to_the_next_start(tmp_path: Path) -> None:
    """The embedded server stops (its lifespan ends) while a job runs: the stop does not wait
    for the job to finish, the job goes back to pending with the interrupted attempt not
    counted, nothing is charged; the next start runs it to the end and charges it once."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = make_settings(tmp_path, job_retry_base_seconds=0.05)
    upgrade(settings)
    user = _new_user(settings)
    try:
        with TestClient(create_app(settings)):
            job_id = _create(settings, user, credits=100, seconds=8)  # reports every 0.1 s
            _wait_for(settings, job_id, lambda j: j.status == "processing" and j.progress >= 2)
        stopped = _wait_for(settings, job_id, lambda j: True)  # the stop has returned
        assert (stopped.status, stopped.attempts, stopped.progress) == ("pending", 0, 0)
        with session_scope(settings) as session:
            assert billing.balance(session, user).held == 100  # held, not spent
        with TestClient(create_app(settings)):
            job = _wait_for(settings, job_id, _final)
        assert (job.status, job.attempts) == ("completed", 1)
        _check_ledger(settings, user, 900)
    finally:
        reset_queues()
        dispose_engines()


def test_pending_jobs_lost_with_redis_are_reenqueued(served_settings: Settings) -> None:
    user = _new_user(served_settings)
    job_id = _create(served_settings, user, credits=100, seconds=0.2)
    queue = get_queue(served_settings)
    assert job_id in queue.queued_ids()
    queue.redis.flushdb()  # type: ignore[attr-defined]  # Redis restarted without persistence
    assert job_id not in queue.queued_ids()
    assert reconcile(served_settings, pending_grace_seconds=0).reenqueued_pending == 1
    worker = _start_worker(served_settings, burst=True)
    try:
        job = _wait_for(served_settings, job_id, _final)
    finally:
        _stop(worker)
    assert job.status == "completed"
    _check_ledger(served_settings, user, 900)


def test_housekeeping_runs_resets_and_purges(embedded_settings: Settings) -> None:
    """The reconciler's periodic chores run against the real schema without error and apply
    a due monthly reset."""
    from datetime import timedelta

    from app.billing.models import CreditAccount
    from app.core.db import utcnow
    from app.jobs.reconciler import housekeeping

    user = _new_user(embedded_settings, credits=10)
    with session_scope(embedded_settings) as session:
        account = session.get(CreditAccount, user)
        assert account is not None
        account.monthly_allowance = 500
        account.reset_at = utcnow() - timedelta(minutes=1)
    housekeeping(embedded_settings)
    with session_scope(embedded_settings) as session:
        bal = billing.balance(session, user)
        assert bal.regular == 500 and bal.reset_at is not None and bal.reset_at > utcnow()
        assert billing.ledger_totals(session, user) == (bal.total, bal.held)
