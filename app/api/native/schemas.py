"""Native family response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.voices.models import Voice


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# API.md's status words: a queued clone already reads as PROCESSING to this family's clients.
_STATUS = {"pending": "processing"}


def native_voice(
    voice: Voice,
    *,
    clone_job_id: str | None = None,
    total_generations: int = 0,
    avg_rating: float = 0.0,
    preview_url: str | None = None,
) -> dict[str, Any]:
    is_custom = voice.kind != "builtin"
    status = _STATUS.get(voice.status, voice.status)
    return {
        "id": voice.id,
        "uuid": voice.uuid,
        "voice_id": voice.voice_id,
        "name": voice.name,
        "description": voice.description,
        "category": voice.category,
        "language": voice.language,
        "gender": voice.gender,
        "age_range": voice.age_range,
        "style": voice.style,
        "tags": list(voice.tags or []),
        "preview_url": preview_url,
        "is_custom": is_custom,
        "voice_type": "CUSTOM" if is_custom else "STANDARD",
        "is_public": voice.is_public,
        "created_by": voice.owner_id,
        "created_at": iso(voice.created_at),
        "updated_at": iso(voice.updated_at),
        "processed_at": iso(voice.processed_at),
        "status": status.upper(),
        "training_status": status,
        "clone_job_id": clone_job_id,
        "error_message": voice.error_message,
        "usage_stats": {"total_generations": total_generations, "avg_rating": avg_rating},
        "supported_features": {"speed_control": True, "pitch_control": True},
        "quality": {"similarity": voice.quality_similarity},
    }
