"""Credits in full: monthly resets (lazy and periodic, once per period), the usage ledger and
the costs table over HTTP, the `chorus credits usage` command, and the ledger invariant.

Also home of the light `harness` fixture the family tests share: the real app on the
embedded database, with a queue that only records job ids, so tests finish jobs by hand
(no engines are loaded) and every credit movement is deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.auth import service as auth
from app.billing import service as billing
from app.billing.models import CreditEntry
from app.core.config import Settings, get_settings
from app.core.db import dispose_engines, session_scope, utcnow
from app.core.errors import InsufficientCredits
from app.core.migrate import upgrade
from app.jobs import queue as job_queue
from app.jobs import service as jobs
from app.jobs import webhooks
from app.jobs.models import Job
from app.jobs.service import fail_job
from app.jobs.tasks import JobOutcome, find_task
from app.storage import reset_store_cache
from app.voices.models import Voice, VoiceSample
from tests.plugins.services import Account, AppHarness, make_settings

# -- the shared light harness -----------------------------------------------------------------


class ManualQueue:
    """A JobQueue that records ids; tests run the outcome themselves with `finish_job`."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def enqueue(self, job_id: int, delay_seconds: float = 0.0, *, queue: str = "chorus") -> None:
        self.ids.append(job_id)

    def queued_ids(self) -> set[int]:
        return set(self.ids)

    def depth(self) -> int:
        return len(self.ids)

    def check(self) -> None:
        return None

    def shutdown(self) -> None:
        return None


@dataclass
class Harness(AppHarness):
    queue: ManualQueue = field(default_factory=ManualQueue)


def build_harness(tmp_path: Path, **overrides: Any) -> Iterator[Harness]:
    from app.main import create_app

    values: dict[str, Any] = {
        "warm_models": False,
        "fetch_allow_hosts": ["127.0.0.1"],
        "fetch_timeout_seconds": 5,
    }
    values.update(overrides)
    settings = make_settings(tmp_path / "data", **values)
    reset_store_cache()
    upgrade(settings)
    manual = ManualQueue()
    with job_queue._queues_lock:
        job_queue._queues[("local", settings.resolved_database_url)] = manual
    with TestClient(create_app(settings, run_background=False)) as client:
        yield Harness(settings, client, manual)
    webhooks.shutdown()
    webhooks.install(None)
    job_queue.reset_queues()
    reset_store_cache()
    dispose_engines()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    yield from build_harness(tmp_path)


def finish_job(
    settings: Settings,
    job_id: int,
    *,
    ok: bool = True,
    result_key: str | None = None,
    duration: float | None = None,
    error: str = "engine exploded",
) -> None:
    """What a worker does, minus the work: claim, then complete (with the kind's hooks) or fail."""
    with session_scope(settings) as session:
        assert jobs.claim(session, job_id, 60)
        job = session.get(Job, job_id)
        assert job is not None
        spec = find_task(job.kind)
        if spec is not None and spec.on_started:
            spec.on_started(session, job)
    with session_scope(settings) as session:
        if not ok:
            fail_job(session, job_id, error, attempt=1)
            return
        outcome = JobOutcome(result_key=result_key, duration=duration)
        done = jobs.mark_completed(
            session, job_id, 1, result_key=result_key, duration=duration, credits_spent=None
        )
        assert done is not None
        spec = find_task(done.kind)
        if spec is not None and spec.on_completed:
            spec.on_completed(session, done, outcome)


def job_id_of(settings: Settings, public_id: str) -> int:
    with session_scope(settings) as session:
        return int(session.scalar(select(Job.id).where(Job.public_id == public_id)))


def clone_job_of(settings: Settings, voice_id: str) -> int:
    with session_scope(settings) as session:
        voice = session.scalar(select(Voice).where(Voice.voice_id == voice_id))
        assert voice is not None
        return int(session.scalar(select(Job.id).where(Job.voice_id == voice.id, Job.kind == "clone")))


def add_voice(settings: Settings, owner: int | None, **fields: Any) -> Voice:
    """A voice row straight in the database (COMPLETED and private unless told otherwise)."""
    values: dict[str, Any] = {
        "kind": "custom" if owner else "builtin",
        "status": "completed",
        "name": "v",
        "artifact_key": "voices/none/artifact.json",
    }
    values.update(fields)
    with session_scope(settings) as session:
        voice = Voice(owner_id=owner, **values)
        session.add(voice)
        session.flush()
        session.expunge(voice)
        return voice


def available(h: AppHarness, account: Account) -> int:
    return int(h.client.get("/api/v1/credits", headers=account.headers).json()["credits"])


def assert_ledger_invariant(settings: Settings, user_id: int) -> None:
    with session_scope(settings) as session:
        bal = billing.balance(session, user_id)
        assert billing.ledger_totals(session, user_id) == (bal.total, bal.held)


def stored_things(settings: Settings, user_id: int) -> tuple[int, int, int]:
    """(voices, jobs, samples) the user owns, deleted voices included."""
    with session_scope(settings) as session:
        voices = session.scalars(select(Voice.id).where(Voice.owner_id == user_id)).all()
        job_count = len(session.scalars(select(Job.id).where(Job.owner_id == user_id)).all())
        samples = len(session.scalars(select(VoiceSample.id).where(VoiceSample.voice_id.in_(voices))).all())
        return len(voices), job_count, samples


# -- monthly reset (service level, SQLite and Postgres) -------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "postgres":
        settings = make_settings(tmp_path, database_url=request.getfixturevalue("postgres_url"))
    else:
        settings = make_settings(tmp_path)
    upgrade(settings)
    yield settings
    dispose_engines()


def _user(
    settings: Settings,
    *,
    regular: int = 0,
    permanent: int = 0,
    allowance: int = 0,
    reset_at: datetime | None = None,
    name: str = "u",
) -> int:
    with session_scope(settings) as session:
        user = auth.create_user(session, name)
        if regular:
            billing.grant(session, user.id, regular)
        if permanent:
            billing.grant(session, user.id, permanent, permanent=True)
        if allowance or reset_at:
            billing.set_monthly_allowance(session, user.id, allowance, reset_at=reset_at)
        return user.id


def _entries(session: Session, user_id: int, kind: str) -> list[CreditEntry]:
    query = select(CreditEntry).where(CreditEntry.user_id == user_id, CreditEntry.kind == kind)
    return list(session.scalars(query))


def test_add_month_clamps_the_day() -> None:
    assert billing.add_month(datetime(2026, 1, 31, 12, tzinfo=UTC)) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert billing.add_month(datetime(2028, 1, 31, tzinfo=UTC)) == datetime(2028, 2, 29, tzinfo=UTC)
    assert billing.add_month(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(2027, 1, 15, tzinfo=UTC)


def test_periodic_reset_once_per_period_keeps_permanent(ledger: Settings) -> None:
    due = utcnow() - timedelta(hours=1)
    user_id = _user(ledger, regular=300, permanent=200, allowance=1000, reset_at=due)
    later = _user(ledger, regular=50, allowance=500, reset_at=utcnow() + timedelta(days=3), name="later")
    with session_scope(ledger) as s:
        assert billing.apply_due_resets(s, utcnow()) == 1
    with session_scope(ledger) as s:
        assert billing.apply_due_resets(s, utcnow()) == 0  # the period is done
        bal = billing.balance(s, user_id)
        assert (bal.regular, bal.permanent) == (1000, 200)
        assert bal.reset_at is not None and bal.reset_at == billing.add_month(due)
        (entry,) = _entries(s, user_id, "reset")
        assert entry.amount == entry.regular_delta == 700 and entry.permanent_delta == 0
        assert billing.balance(s, later).regular == 50 and not _entries(s, later, "reset")
    assert_ledger_invariant(ledger, user_id)


def test_missed_months_collapse_into_one_reset_and_regular_can_shrink(ledger: Settings) -> None:
    due = utcnow() - timedelta(days=75)  # three periods behind
    user_id = _user(ledger, regular=5000, permanent=10, allowance=1000, reset_at=due)
    with session_scope(ledger) as s:
        bal = billing.balance(s, user_id)  # lazy: reading the balance applies it
        assert (bal.regular, bal.permanent) == (1000, 10)
        assert bal.reset_at is not None and utcnow() < bal.reset_at <= utcnow() + timedelta(days=31)
        (entry,) = _entries(s, user_id, "reset")
        assert entry.amount == -4000
    assert_ledger_invariant(ledger, user_id)


def test_concurrent_resets_apply_once(ledger: Settings) -> None:
    user_id = _user(ledger, regular=10, allowance=800, reset_at=utcnow() - timedelta(minutes=1))
    results: list[int] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        with session_scope(ledger) as s:
            results.append(billing.apply_due_resets(s, utcnow()))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 1
    with session_scope(ledger) as s:
        assert billing.balance(s, user_id).regular == 800
        assert len(_entries(s, user_id, "reset")) == 1
    assert_ledger_invariant(ledger, user_id)


def test_hold_applies_a_due_reset_and_in_flight_holds_stay_covered(ledger: Settings) -> None:
    user_id = _user(ledger, regular=1000, permanent=0)
    with session_scope(ledger) as s:
        job = Job(public_id="job_a", kind="diagnostic", owner_id=user_id)
        s.add(job)
        s.flush()
        billing.hold(s, user_id, job.id, 800)
        billing.set_monthly_allowance(s, user_id, 100, reset_at=utcnow() - timedelta(seconds=1))
        job_a = job.id
    with session_scope(ledger) as s:  # a new hold triggers the reset; the 800 held stays spendable
        job = Job(public_id="job_b", kind="diagnostic", owner_id=user_id)
        s.add(job)
        s.flush()
        with pytest.raises(InsufficientCredits):
            billing.hold(s, user_id, job.id, 1)
    with session_scope(ledger) as s:
        bal = billing.balance(s, user_id)
        assert (bal.regular, bal.held, bal.available) == (800, 800, 0)
        assert billing.capture(s, job_a) == 800
        assert billing.balance(s, user_id).regular == 0
    assert_ledger_invariant(ledger, user_id)


# -- HTTP: balance, usage, multipliers ---------------------------------------------------------


def test_usage_ledger_newest_first_with_paging(harness: Harness) -> None:
    alice, bob = harness.make_user("alice", credits=5000), harness.make_user("bob", credits=777)
    voice = add_voice(harness.settings, alice.user_id)
    created = harness.client.post(
        "/api/v1/tts", headers=alice.headers, json={"text": "Hello there", "voiceId": voice.voice_id}
    )
    assert created.status_code == 200, created.text
    finish_job(harness.settings, job_id_of(harness.settings, created.json()["speechId"]), ok=False)

    r = harness.client.get("/api/v1/credits/usage", headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["total"] == 3 and body["hasMore"] is False
    assert [e["type"] for e in body["usage"]] == ["release", "hold", "grant"]
    release, hold, grant = body["usage"]
    assert hold["heldDelta"] == 11 and hold["amount"] == 0 and hold["jobId"] == created.json()["speechId"]
    assert release["heldDelta"] == -11 and grant["amount"] == 5000 and grant["regularDelta"] == 5000
    assert available(harness, alice) == 5000  # nothing charged for the failed job

    page = harness.client.get(
        "/api/v1/credits/usage", params={"skip": 1, "limit": 1}, headers=alice.headers
    ).json()
    assert [e["type"] for e in page["usage"]] == ["hold"] and page["hasMore"] is True
    others = harness.client.get("/api/v1/credits/usage", headers=bob.headers).json()
    assert [e["amount"] for e in others["usage"]] == [777]  # only the caller's own entries

    for params in ({"limit": 0}, {"limit": 101}, {"skip": -1}, {"limit": "x"}):
        bad = harness.client.get("/api/v1/credits/usage", params=params, headers=alice.headers)
        assert bad.status_code == 400 and bad.json()["code"] == "INVALID_PARAMETERS", params
    assert harness.client.get("/api/v1/credits/usage").status_code == 401


def test_lazy_reset_on_balance_read_over_http(harness: Harness) -> None:
    account = harness.make_user(credits=250)
    due = utcnow() - timedelta(days=1)
    with session_scope(harness.settings) as s:
        billing.grant(s, account.user_id, 40, permanent=True)
        billing.set_monthly_allowance(s, account.user_id, 1000, reset_at=due)
    body = harness.client.get("/api/v1/credits", headers=account.headers).json()
    assert body["credits"] == 1040
    assert body["breakdown"]["regular"] == 1000 and body["breakdown"]["permanent"] == 40
    assert datetime.fromisoformat(body["breakdown"]["resetAt"]) == billing.add_month(due)
    again = harness.client.get("/api/v1/credits", headers=account.headers).json()
    assert again["credits"] == 1040
    usage = harness.client.get("/api/v1/credits/usage", headers=account.headers).json()["usage"]
    assert [(e["type"], e["amount"]) for e in usage if e["type"] == "reset"] == [("reset", 750)]
    assert_ledger_invariant(harness.settings, account.user_id)


def test_multipliers_are_the_costs_table(harness: Harness) -> None:
    account = harness.make_user()
    r = harness.client.get("/api/v1/credits/multipliers", headers=account.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True
    assert body["multipliers"] == harness.settings.costs.effective()
    assert body["multipliers"]["clone"] == 1000 and body["multipliers"]["tts_per_byte"] == 1
    # Per family: AudioPod's routes clone for free, the others default to the clone cost.
    assert body["multipliers"]["native_clone"] == 0
    assert body["multipliers"]["voiceai_clone"] == body["multipliers"]["envelope_clone"] == 1000
    assert body["units"]["tts_per_byte"] == "UTF-8 byte of text"
    assert harness.client.get("/api/v1/credits/multipliers").json()["code"] == "UNAUTHORIZED"


# -- CLI -----------------------------------------------------------------------------------


def test_cli_credits_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import cli

    monkeypatch.setenv("CHORUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHORUS_ENV", "test")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(cli, ["migrate"]).exit_code == 0
        assert runner.invoke(cli, ["users", "create", "carol"]).exit_code == 0
        assert runner.invoke(cli, ["credits", "grant", "carol", "500"]).exit_code == 0
        assert runner.invoke(cli, ["credits", "grant", "carol", "25", "--permanent"]).exit_code == 0
        shown = runner.invoke(cli, ["credits", "usage", "carol"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, shown.output
        assert "grant" in shown.output and "+500" in shown.output and "+25" in shown.output
        assert "2 of 2 entries" in shown.output and "available 525" in shown.output
        assert shown.output.index("+25") < shown.output.index("+500")  # newest first
        missing = runner.invoke(cli, ["credits", "usage", "nobody"])
        assert missing.exit_code == 1 and "No user named" in missing.output
    finally:
        get_settings.cache_clear()
        dispose_engines()
