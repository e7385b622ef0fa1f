"""Native family: usage analytics (/api/v1/voice/analytics/usage). Only the caller's own
usage is reported; the window and bucketing rules are documented in app.voices.usage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from app.api.deps import CurrentUser, SessionDep
from app.api.families import NATIVE, FamilyRouter
from app.api.native.schemas import UsageAnalytics
from app.voices import usage
from app.voices.service import get_readable_voice

router = FamilyRouter(family=NATIVE, prefix="/api/v1/voice", tags=["native"])


@router.get("/analytics/usage", response_model=UsageAnalytics)
def usage_analytics(
    principal: CurrentUser,
    session: SessionDep,
    voice_id: Annotated[str | None, Query(max_length=100)] = None,
    period: usage.Period = "30d",
    breakdown: usage.Breakdown = "daily",
) -> dict[str, Any]:
    voice = get_readable_voice(session, principal.user_id, voice_id) if voice_id else None
    report = usage.usage_report(
        session, principal.user_id, voice_id=voice.id if voice else None, period=period, breakdown=breakdown
    )
    return {
        "voice_id": voice.voice_id if voice else None,
        "period": report["period"],
        "total_generations": report["total_generations"],
        "total_characters": report["total_characters"],
        "total_duration": report["total_duration"],
        "avg_rating": report["avg_rating"],
        "daily_breakdown": report["buckets"],
    }
