"""The credits ledger on SQLite and Postgres: holds, captures, releases, idempotency, races."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.auth import service as auth
from app.billing import service as billing
from app.core.db import dispose_engines, session_scope
from app.core.errors import InsufficientCredits
from app.core.migrate import upgrade
from app.jobs.models import Job
from tests.plugins.services import make_settings


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        settings = make_settings(tmp_path, database_url=url)
    else:
        settings = make_settings(tmp_path)
    upgrade(settings)
    yield settings
    dispose_engines()


def _user_with_job(
    settings: object, credits: int = 0, permanent: int = 0, jobs: int = 1
) -> tuple[int, list[int]]:
    with session_scope(settings) as session:  # type: ignore[arg-type]
        user = auth.create_user(session, "u")
        if credits:
            billing.grant(session, user.id, credits)
        if permanent:
            billing.grant(session, user.id, permanent, permanent=True)
        ids = []
        for n in range(jobs):
            job = Job(public_id=f"job_{n}", kind="diagnostic", owner_id=user.id)
            session.add(job)
            session.flush()
            ids.append(job.id)
        return user.id, ids


def _assert_invariant(session: Session, user_id: int) -> None:
    bal = billing.balance(session, user_id)
    assert billing.ledger_totals(session, user_id) == (bal.total, bal.held)


def test_hold_capture_spends_regular_before_permanent(ledger_settings: object) -> None:
    user_id, (job,) = _user_with_job(ledger_settings, credits=100, permanent=50)
    with session_scope(ledger_settings) as s:  # type: ignore[arg-type]
        billing.hold(s, user_id, job, 120)
        bal = billing.balance(s, user_id)
        assert (bal.available, bal.held) == (30, 120)
        assert billing.capture(s, job) == 120
        bal = billing.balance(s, user_id)
        assert (bal.regular, bal.permanent, bal.held) == (0, 30, 0)
        _assert_invariant(s, user_id)


def test_each_step_is_idempotent_per_job(ledger_settings: object) -> None:
    user_id, (job,) = _user_with_job(ledger_settings, credits=100)
    with session_scope(ledger_settings) as s:  # type: ignore[arg-type]
        billing.hold(s, user_id, job, 40)
        billing.hold(s, user_id, job, 40)
        assert billing.balance(s, user_id).held == 40
        assert billing.capture(s, job, 25) == 25  # the unspent 15 comes back
        assert billing.capture(s, job) == 0
        assert billing.release(s, job) == 0  # already settled: a release cannot undo a capture
        bal = billing.balance(s, user_id)
        assert (bal.regular, bal.held, bal.available) == (75, 0, 75)
        _assert_invariant(s, user_id)


def test_release_returns_the_hold_and_blocks_a_later_capture(ledger_settings: object) -> None:
    user_id, (job,) = _user_with_job(ledger_settings, credits=100)
    with session_scope(ledger_settings) as s:  # type: ignore[arg-type]
        billing.hold(s, user_id, job, 60)
        assert billing.release(s, job) == 60
        assert billing.release(s, job) == 0
        assert billing.capture(s, job) == 0
        bal = billing.balance(s, user_id)
        assert (bal.total, bal.held) == (100, 0)
        _assert_invariant(s, user_id)


def test_insufficient_credits_says_required_and_available(ledger_settings: object) -> None:
    user_id, (job,) = _user_with_job(ledger_settings, credits=10)
    with session_scope(ledger_settings) as s:  # type: ignore[arg-type]
        with pytest.raises(InsufficientCredits) as info:
            billing.hold(s, user_id, job, 11)
        assert (info.value.required, info.value.available) == (11, 10)
        assert billing.balance(s, user_id).held == 0
        _assert_invariant(s, user_id)


def test_concurrent_holds_never_overspend(ledger_settings: object) -> None:
    """Eight requests race for credits that cover five: exactly five win."""
    user_id, jobs = _user_with_job(ledger_settings, credits=50, jobs=8)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(jobs))

    def attempt(job_id: int) -> None:
        barrier.wait()
        try:
            with session_scope(ledger_settings) as s:  # type: ignore[arg-type]
                billing.hold(s, user_id, job_id, 10)
            outcomes.append("held")
        except InsufficientCredits:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("held") == 5
    with session_scope(ledger_settings) as s:  # type: ignore[arg-type]
        bal = billing.balance(s, user_id)
        assert (bal.held, bal.available) == (50, 0)
        _assert_invariant(s, user_id)
