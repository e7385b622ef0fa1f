"""`/api/v1/credits` (balance), `/usage` (the ledger) and `/multipliers` (the costs table).

Shared by the native and clone families; errors take the clone family's shape.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.billing import service as billing

router = APIRouter(prefix="/api/v1/credits", tags=["credits"])

# What each entry of the costs table is charged per.
COST_UNITS = {
    "clone": "voice",
    "native_clone": "voice",
    "voiceai_clone": "voice",
    "envelope_clone": "voice",
    "openai_clone": "voice",
    "tts_per_byte": "UTF-8 byte of text",
    "preview": "preview",
    "transcription_per_second": "second of audio",
}


# Seed 003's best-practice snippet reads the balance at /api/user/credits.
user_credits_router = APIRouter(tags=["credits"])


@router.get("")
@user_credits_router.get("/api/user/credits")
def get_credits(principal: CurrentUser, session: SessionDep) -> dict[str, Any]:
    bal = billing.balance(session, principal.user_id)
    return {
        "success": True,
        "credits": bal.available,
        "breakdown": {
            "regular": bal.regular,
            "permanent": bal.permanent,
            "held": bal.held,
            "resetAt": bal.reset_at.isoformat() if bal.reset_at else None,
        },
    }


@router.get("/usage")
def get_usage(
    principal: CurrentUser,
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """The caller's ledger entries, newest first (grant, hold, capture, release, reset)."""
    billing.balance(session, principal.user_id)  # applies a reset that has fallen due
    entries, total = billing.usage_entries(session, principal.user_id, skip=skip, limit=limit)
    return {
        "success": True,
        "usage": [
            {
                "id": e.id,
                "type": e.kind,
                "amount": e.amount,
                "regularDelta": e.regular_delta,
                "permanentDelta": e.permanent_delta,
                "heldDelta": e.held_delta,
                "jobId": e.job_public_id,
                "note": e.note,
                "createdAt": e.created_at.isoformat(),
            }
            for e in entries
        ],
        "total": total,
        "skip": skip,
        "limit": limit,
        "hasMore": skip + len(entries) < total,
    }


@router.get("/multipliers")
def get_multipliers(principal: CurrentUser, settings: SettingsDep) -> dict[str, Any]:
    """The costs table: credits charged per unit of work."""
    costs = settings.costs.effective()
    return {
        "success": True,
        "multipliers": costs,
        "units": {name: COST_UNITS.get(name, "unit") for name in costs},
    }
