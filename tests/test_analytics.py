"""Usage analytics: windows, zero-filled buckets, totals, and only the caller's own events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.core.db import session_scope, utcnow
from app.voices.models import UsageEvent, Voice
from app.voices.usage import record_usage, usage_report, voice_stats
from tests.plugins.services import Account, AppHarness, _build_harness, make_settings

URL = "/api/v1/voice/analytics/usage"


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppHarness]:
    """The bucketing must behave the same on both databases: run those tests on each."""
    if request.param == "sqlite":
        yield request.getfixturevalue("embedded")
        return
    url = request.getfixturevalue("postgres_url")
    yield from _build_harness(make_settings(tmp_path / "data", database_url=url))


def make_voice(harness: AppHarness, owner: Account, name: str, *, is_public: bool = False) -> dict[str, Any]:
    with session_scope(harness.settings) as session:
        voice = Voice(
            name=name, owner_id=owner.user_id, kind="custom", status="completed", is_public=is_public
        )
        session.add(voice)
        session.flush()
        return {"id": voice.id, "uuid": voice.uuid, "voice_id": voice.voice_id}


def add_events(harness: AppHarness, *events: dict[str, Any]) -> None:
    with session_scope(harness.settings) as session:
        for event in events:
            session.add(UsageEvent(**{"kind": "tts", "characters": 0, "seconds": 0.0, **event}))


def test_daily_7d_has_seven_zero_filled_buckets_of_own_generations(any_db: AppHarness) -> None:
    alice, bob = any_db.make_user(), any_db.make_user()
    now = utcnow()
    today = now.date()
    add_events(
        any_db,
        {"user_id": alice.user_id, "created_at": now, "characters": 10, "seconds": 1.5},
        {"user_id": alice.user_id, "created_at": now, "kind": "speech", "characters": 5, "seconds": 0.25},
        {"user_id": alice.user_id, "created_at": now - timedelta(days=2), "characters": 20, "seconds": 2.0},
        {"user_id": alice.user_id, "created_at": now - timedelta(days=6), "characters": 30, "seconds": 3.0},
        # Outside the window (the 8th day back), not generations, or someone else's: not counted.
        {"user_id": alice.user_id, "created_at": now - timedelta(days=7), "characters": 99, "seconds": 9.0},
        {"user_id": alice.user_id, "created_at": now, "kind": "preview", "characters": 99, "seconds": 9.0},
        {"user_id": alice.user_id, "created_at": now, "kind": "transcription", "seconds": 60.0},
        {"user_id": bob.user_id, "created_at": now, "characters": 1000, "seconds": 100.0},
    )
    r = any_db.client.get(URL, params={"period": "7d"}, headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "voice_id",
        "period",
        "total_generations",
        "total_characters",
        "total_duration",
        "avg_rating",
        "daily_breakdown",
    }
    assert body["voice_id"] is None and body["period"] == "7d" and body["avg_rating"] == 0.0
    assert body["total_generations"] == 4
    assert body["total_characters"] == 65
    assert body["total_duration"] == pytest.approx(6.75)

    buckets = body["daily_breakdown"]
    assert [b["date"] for b in buckets] == [(today - timedelta(days=6 - i)).isoformat() for i in range(7)]
    by_date = {b["date"]: b for b in buckets}
    assert by_date[today.isoformat()] == {
        "date": today.isoformat(),
        "generations": 2,
        "characters": 15,
        "duration": 1.75,
    }
    assert by_date[(today - timedelta(days=2)).isoformat()]["generations"] == 1
    assert by_date[(today - timedelta(days=6)).isoformat()]["characters"] == 30
    assert sum(b["generations"] for b in buckets) == 4
    assert [b["generations"] for b in buckets].count(0) == 4

    # Bob sees only his own.
    theirs = any_db.client.get(URL, params={"period": "7d"}, headers=bob.headers).json()
    assert theirs["total_generations"] == 1 and theirs["total_characters"] == 1000


def test_defaults_are_30d_daily(embedded: AppHarness) -> None:
    alice = embedded.make_user()
    r = embedded.client.get(URL, headers=alice.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["period"] == "30d" and len(body["daily_breakdown"]) == 30
    assert body["total_generations"] == 0 and body["total_duration"] == 0
    assert all(b["generations"] == 0 and b["duration"] == 0 for b in body["daily_breakdown"])
    assert body["daily_breakdown"][-1]["date"] == utcnow().date().isoformat()


def test_voice_filter_counts_only_the_callers_events_on_that_voice(embedded: AppHarness) -> None:
    alice, bob = embedded.make_user(), embedded.make_user()
    shared = make_voice(embedded, alice, "shared", is_public=True)
    other = make_voice(embedded, alice, "other")
    now = utcnow()
    add_events(
        embedded,
        {"user_id": alice.user_id, "voice_id": shared["id"], "created_at": now, "characters": 7},
        {"user_id": alice.user_id, "voice_id": other["id"], "created_at": now, "characters": 100},
        {"user_id": bob.user_id, "voice_id": shared["id"], "created_at": now, "characters": 3},
        {"user_id": bob.user_id, "voice_id": shared["id"], "created_at": now, "characters": 4},
    )
    for ref in (shared["voice_id"], shared["uuid"], str(shared["id"])):
        body = embedded.client.get(URL, params={"voice_id": ref}, headers=alice.headers).json()
        assert body["voice_id"] == shared["voice_id"]
        assert body["total_generations"] == 1 and body["total_characters"] == 7
    # Bob may read the public voice and sees his own usage of it, not Alice's.
    body = embedded.client.get(URL, params={"voice_id": shared["voice_id"]}, headers=bob.headers).json()
    assert body["total_generations"] == 2 and body["total_characters"] == 7


def test_unknown_or_private_voice_is_404(embedded: AppHarness) -> None:
    alice, bob = embedded.make_user(), embedded.make_user()
    private = make_voice(embedded, alice, "private")
    for ref in ("voice_nope", "999999", private["voice_id"]):
        r = embedded.client.get(URL, params={"voice_id": ref}, headers=bob.headers)
        assert r.status_code == 404 and r.json() == {"detail": "Voice not found"}, ref


@pytest.mark.parametrize(
    "params", [{"period": "2w"}, {"period": "1d"}, {"breakdown": "hourly"}, {"period": ""}]
)
def test_bad_parameters_are_400(embedded: AppHarness, params: dict[str, str]) -> None:
    alice = embedded.make_user()
    r = embedded.client.get(URL, params=params, headers=alice.headers)
    assert r.status_code == 400
    assert set(r.json()) == {"detail"} and next(iter(params)) in r.json()["detail"]


def test_requires_authentication(embedded: AppHarness) -> None:
    assert embedded.client.get(URL).status_code == 401


# A fixed clock for the bucketing rules: Wednesday 4 March 2026, 10:00 UTC.
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_weekly_buckets_are_iso_weeks_starting_monday(any_db: AppHarness) -> None:
    alice = any_db.make_user()
    add_events(
        any_db,
        # 30d window with NOW: 2026-02-03 (a Tuesday) through 2026-03-04.
        {"user_id": alice.user_id, "created_at": at(2026, 2, 2, 23, 59), "characters": 1000},  # before window
        {"user_id": alice.user_id, "created_at": at(2026, 2, 3, 0, 0), "characters": 1},
        {"user_id": alice.user_id, "created_at": at(2026, 3, 1, 12, 0), "characters": 2},  # Sunday
        {"user_id": alice.user_id, "created_at": at(2026, 3, 2, 0, 0), "characters": 4},  # Monday
        {"user_id": alice.user_id, "created_at": at(2026, 3, 4, 23, 59), "characters": 8},  # later today
        {"user_id": alice.user_id, "created_at": at(2026, 3, 5, 0, 0), "characters": 1000},  # tomorrow
    )
    with session_scope(any_db.settings) as session:
        report = usage_report(session, alice.user_id, period="30d", breakdown="weekly", now=NOW)
    assert [(b["date"], b["generations"], b["characters"]) for b in report["buckets"]] == [
        ("2026-02-02", 1, 1),
        ("2026-02-09", 0, 0),
        ("2026-02-16", 0, 0),
        ("2026-02-23", 1, 2),
        ("2026-03-02", 2, 12),
    ]
    assert report["total_generations"] == 4 and report["total_characters"] == 15
    assert report["start"] == at(2026, 2, 3) and report["end"] == at(2026, 3, 5)
    for b in report["buckets"]:
        assert date.fromisoformat(b["date"]).weekday() == 0

    with session_scope(any_db.settings) as session:
        daily = usage_report(session, alice.user_id, period="7d", breakdown="daily", now=NOW)
        weekly = usage_report(session, alice.user_id, period="7d", breakdown="weekly", now=NOW)
    assert [b["date"] for b in daily["buckets"]] == [f"2026-02-{d:02d}" for d in (26, 27, 28)] + [
        f"2026-03-{d:02d}" for d in (1, 2, 3, 4)
    ]
    weeks = [(b["date"], b["generations"]) for b in weekly["buckets"]]
    assert weeks == [("2026-02-23", 1), ("2026-03-02", 2)]


def test_monthly_buckets_cross_the_year(any_db: AppHarness) -> None:
    alice = any_db.make_user()
    add_events(
        any_db,
        {"user_id": alice.user_id, "created_at": at(2025, 12, 5, 0, 0), "seconds": 1.0},  # first day of 90d
        {"user_id": alice.user_id, "created_at": at(2025, 12, 31, 23, 0), "seconds": 2.0},
        {"user_id": alice.user_id, "created_at": at(2026, 1, 1, 0, 0), "seconds": 4.0},
        {"user_id": alice.user_id, "created_at": at(2026, 3, 4, 9, 0), "kind": "speech", "seconds": 0.5},
        {"user_id": alice.user_id, "created_at": at(2025, 3, 5, 0, 0), "seconds": 16.0},  # first day of 1y
        {"user_id": alice.user_id, "created_at": at(2025, 3, 4, 23, 59), "seconds": 64.0},  # before 1y
    )
    with session_scope(any_db.settings) as session:
        quarter = usage_report(session, alice.user_id, period="90d", breakdown="monthly", now=NOW)
        year = usage_report(session, alice.user_id, period="1y", breakdown="monthly", now=NOW)
        year_daily = usage_report(session, alice.user_id, period="1y", breakdown="daily", now=NOW)
    assert [(b["date"], b["generations"], b["duration"]) for b in quarter["buckets"]] == [
        ("2025-12-01", 2, 3.0),
        ("2026-01-01", 1, 4.0),
        ("2026-02-01", 0, 0.0),
        ("2026-03-01", 1, 0.5),
    ]
    assert quarter["total_duration"] == 7.5
    assert len(year["buckets"]) == 13
    assert year["buckets"][0]["date"] == "2025-03-01" and year["buckets"][-1]["date"] == "2026-03-01"
    assert year["buckets"][0]["duration"] == 16.0 and year["total_duration"] == 23.5
    assert len(year_daily["buckets"]) == 365 and year_daily["buckets"][0]["date"] == "2025-03-05"


def test_record_usage_and_generations_per_voice(embedded: AppHarness) -> None:
    alice, bob = embedded.make_user(), embedded.make_user()
    v1, v2 = make_voice(embedded, alice, "one", is_public=True), make_voice(embedded, alice, "two")
    with session_scope(embedded.settings) as session:
        record_usage(
            session, user_id=alice.user_id, kind="tts", voice_id=v1["id"], characters=12, seconds=1.0
        )
        record_usage(session, user_id=bob.user_id, kind="speech", voice_id=v1["id"], characters=3)
        record_usage(session, user_id=alice.user_id, kind="preview", voice_id=v1["id"])
        record_usage(session, user_id=alice.user_id, kind="transcription", seconds=30.0)
        with pytest.raises(ValueError):
            record_usage(session, user_id=alice.user_id, kind="bogus")
    with session_scope(embedded.settings) as session:
        # Across every user: it feeds the voice's public usage_stats.
        stats = voice_stats(session, [v1["id"], v2["id"]])
        assert (stats[v1["id"]].generations, stats[v2["id"]].generations) == (2, 0)
        assert voice_stats(session, []) == {}
    body = embedded.client.get(
        URL, params={"voice_id": v1["voice_id"], "period": "7d"}, headers=alice.headers
    ).json()
    assert body["total_generations"] == 1 and body["total_characters"] == 12 and body["total_duration"] == 1.0
