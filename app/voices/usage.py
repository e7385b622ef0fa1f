"""Usage events and the analytics built on them.

Every produced unit (a TTS job, a synchronous speech, a preview, a transcription or a
translation) leaves one `UsageEvent`. Analytics only ever look at the caller's own events.

Report windows (UTC, by calendar day): a period of N days covers today and the N-1 days
before it, from midnight UTC of the first day up to the end of today. So `7d` has exactly
7 daily buckets, `30d` 30, `90d` 90, `1y` 365. Weekly buckets are ISO weeks dated by their
Monday, monthly buckets are dated by the 1st; the first weekly/monthly bucket is the one
holding the window's first day (its date may be before that day, but only events inside
the window are counted). Buckets are zero-filled and oldest first.

Generations are tts and speech events; their characters and seconds make up the totals.
`avg_rating` is the mean rating of the caller's speech jobs created in the window (0.0: none).
Previews are free samples and are not counted. Bucketing runs in Python over one bounded
query so it behaves the same on SQLite and Postgres.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import ScalarSelect, Select, bindparam, func, select
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.jobs.models import Job
from app.voices.models import UsageEvent, Voice

Period = Literal["7d", "30d", "90d", "1y"]
Breakdown = Literal["daily", "weekly", "monthly"]

KINDS = frozenset({"tts", "preview", "speech", "transcription", "translation"})
GENERATION_KINDS = ("tts", "speech")
PERIOD_DAYS: dict[str, int] = {"7d": 7, "30d": 30, "90d": 90, "1y": 365}


def record_usage(
    session: Session,
    *,
    user_id: int,
    kind: str,
    voice_id: int | None = None,
    job_id: int | None = None,
    characters: int = 0,
    seconds: float = 0.0,
) -> None:
    """Append one usage event in the caller's transaction (flushed, never committed here)."""
    if kind not in KINDS:
        raise ValueError(f"unknown usage kind: {kind!r}")
    session.add(
        UsageEvent(
            user_id=user_id,
            kind=kind,
            voice_id=voice_id,
            job_id=job_id,
            characters=max(0, int(characters)),
            seconds=max(0.0, float(seconds)),
        )
    )
    session.flush()


@dataclass(frozen=True)
class VoiceStats:
    """What a voice listing shows of each voice's use across all users."""

    generations: int = 0
    avg_rating: float = 0.0  # mean rating of its rated speech jobs; 0.0 when never rated
    clone_job_id: str | None = None  # the job that last (re)built it


def voice_generations() -> ScalarSelect[int]:
    """A voice's generations across all users, as a subquery on `Voice.id` (a listing shows it
    as usage stats and sorts by it as popularity)."""
    return (
        select(func.count())
        .where(UsageEvent.voice_id == Voice.id, UsageEvent.kind.in_(GENERATION_KINDS))
        .correlate(Voice)
        .scalar_subquery()
    )


def _voice_stats_statement() -> Select[tuple[int, int, Any, str | None]]:
    generations = voice_generations()
    rating = (
        select(func.avg(Job.rating))
        .where(Job.voice_id == Voice.id, Job.kind == "speech", Job.rating.is_not(None))
        .scalar_subquery()
    )
    clone_job = (
        select(Job.public_id)
        .where(Job.voice_id == Voice.id, Job.kind == "clone")
        .order_by(Job.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(Voice.id, generations, rating, clone_job).where(
        Voice.id.in_(bindparam("voice_ids", expanding=True))
    )


# Built once: putting this statement together took longer than running it.
_VOICE_STATS = _voice_stats_statement()


def voice_stats(session: Session, voice_ids: list[int]) -> dict[int, VoiceStats]:
    """Every requested id's stats in one round trip (a listing page asked for three queries of
    its own before: a third of a list request's time went to their overhead)."""
    if not voice_ids:
        return {}
    stats = dict.fromkeys(voice_ids, VoiceStats())
    for voice_id, count, mean, job_id in session.execute(_VOICE_STATS, {"voice_ids": voice_ids}):
        rating = round(float(mean), 2) if mean is not None else 0.0
        stats[voice_id] = VoiceStats(int(count or 0), rating, job_id)
    return stats


def _bucket_start(day: date, breakdown: str) -> date:
    if breakdown == "weekly":
        return day - timedelta(days=day.weekday())
    if breakdown == "monthly":
        return day.replace(day=1)
    return day


def _next_bucket(start: date, breakdown: str) -> date:
    if breakdown == "weekly":
        return start + timedelta(days=7)
    if breakdown == "monthly":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=1)


def report_window(period: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) in UTC for a period: midnight of the first day to midnight after today."""
    if period not in PERIOD_DAYS:
        raise ValueError(f"unknown period: {period!r}")
    now = now or utcnow()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=PERIOD_DAYS[period] - 1)
    return (
        datetime.combine(first, time.min, tzinfo=UTC),
        datetime.combine(today + timedelta(days=1), time.min, tzinfo=UTC),
    )


def usage_report(
    session: Session,
    user_id: int,
    *,
    voice_id: int | None = None,
    period: Period = "30d",
    breakdown: Breakdown = "daily",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Totals and zero-filled buckets over the caller's own generation events in the window."""
    if breakdown not in ("daily", "weekly", "monthly"):
        raise ValueError(f"unknown breakdown: {breakdown!r}")
    start, end = report_window(period, now)
    query = select(UsageEvent.created_at, UsageEvent.characters, UsageEvent.seconds).where(
        UsageEvent.user_id == user_id,
        UsageEvent.kind.in_(GENERATION_KINDS),
        UsageEvent.created_at >= start,
        UsageEvent.created_at < end,
    )
    if voice_id is not None:
        query = query.where(UsageEvent.voice_id == voice_id)

    buckets: dict[date, dict[str, Any]] = {}
    day = _bucket_start(start.date(), breakdown)
    last_day = (end - timedelta(days=1)).date()
    while day <= last_day:
        buckets[day] = {"date": day.isoformat(), "generations": 0, "characters": 0, "duration": 0.0}
        day = _next_bucket(day, breakdown)

    total_generations, total_characters, total_duration = 0, 0, 0.0
    for created_at, characters, seconds in session.execute(query):
        stamp = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        bucket = buckets[_bucket_start(stamp.astimezone(UTC).date(), breakdown)]
        bucket["generations"] += 1
        bucket["characters"] += int(characters or 0)
        bucket["duration"] += float(seconds or 0.0)
        total_generations += 1
        total_characters += int(characters or 0)
        total_duration += float(seconds or 0.0)

    rows = [buckets[key] for key in sorted(buckets)]
    for row in rows:
        row["duration"] = round(row["duration"], 3)
    rated = select(func.avg(Job.rating)).where(
        Job.owner_id == user_id,
        Job.kind == "speech",
        Job.rating.is_not(None),
        Job.created_at >= start,
        Job.created_at < end,
    )
    if voice_id is not None:
        rated = rated.where(Job.voice_id == voice_id)
    mean_rating = session.scalar(rated)
    return {
        "period": period,
        "breakdown": breakdown,
        "start": start,
        "end": end,
        "total_generations": total_generations,
        "total_characters": total_characters,
        "total_duration": round(total_duration, 3),
        "avg_rating": round(float(mean_rating), 2) if mean_rating is not None else 0.0,
        "buckets": rows,
    }
