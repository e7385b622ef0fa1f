"""`/api/v1/credits` (balance), `/usage` (the ledger) and `/multipliers` (the costs table).

Shared by the native and clone families; errors take the clone family's shape.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel

from app.api.common import CamelModel
from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.api.families import CLONE, FamilyRouter
from app.billing import service as billing

router = FamilyRouter(family=CLONE, prefix="/api/v1/credits", tags=["credits"])

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


class Breakdown(CamelModel):
    regular: int
    permanent: int
    held: int
    reset_at: str | None


class Balance(BaseModel):
    success: bool
    credits: int
    breakdown: Breakdown


class LedgerEntry(CamelModel):
    id: int
    type: str
    amount: int
    regular_delta: int
    permanent_delta: int
    held_delta: int
    job_id: str | None
    note: str | None
    created_at: str


class Usage(CamelModel):
    success: bool
    usage: list[LedgerEntry]
    total: int
    skip: int
    limit: int
    has_more: bool


class Multipliers(BaseModel):
    success: bool
    multipliers: dict[str, int]
    units: dict[str, str]


# Seed 003's best-practice snippet reads the balance at /api/user/credits.
user_credits_router = FamilyRouter(family=CLONE, tags=["credits"])


@router.get("", response_model=Balance)
@user_credits_router.get("/api/user/credits", response_model=Balance)
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


@router.get("/usage", response_model=Usage)
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


@router.get("/multipliers", response_model=Multipliers)
def get_multipliers(principal: CurrentUser, settings: SettingsDep) -> dict[str, Any]:
    """The costs table: credits charged per unit of work."""
    costs = settings.costs.effective()
    return {
        "success": True,
        "multipliers": costs,
        "units": {name: COST_UNITS.get(name, "unit") for name in costs},
    }
