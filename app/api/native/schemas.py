"""Native family response shapes: the models /docs shows, and the renderers that fill them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.api.common import iso
from app.voices.models import Voice

__all__ = ["iso"]

# API.md's status words: a queued clone already reads as PROCESSING to this family's clients.
_STATUS = {"pending": "processing"}


class UsageStats(BaseModel):
    total_generations: int
    avg_rating: float = Field(description="mean rating of the voice's rated jobs; 0.0 when none")


class SupportedFeatures(BaseModel):
    speed_control: bool
    pitch_control: bool


class Quality(BaseModel):
    similarity: float | None


class NativeVoice(BaseModel):
    id: int
    uuid: str
    voice_id: str
    name: str
    description: str | None
    category: str | None
    language: str | None
    accent: str | None = Field(None, description="Built-ins: e.g. american, british, mandarin")
    locale: str | None = Field(None, description="Built-ins: e.g. en-US, en-GB, pt-BR")
    gender: str | None
    age_range: str | None
    style: str | None
    tags: list[str]
    preview_url: str | None
    is_custom: bool
    voice_type: str = Field(description="CUSTOM or STANDARD")
    is_public: bool
    created_by: int | None
    created_at: str | None
    updated_at: str | None
    processed_at: str | None
    status: str = Field(description="PROCESSING, COMPLETED or FAILED")
    training_status: str = Field(description="processing, completed or failed")
    clone_job_id: str | None
    error_message: str | None
    usage_stats: UsageStats
    supported_features: SupportedFeatures
    quality: Quality


class NativeCreatedVoice(NativeVoice):
    file_path: str = Field(description="the stored sample's storage key, e.g. voices/<uuid>/samples/0.wav")


class VoiceList(BaseModel):
    voices: list[NativeVoice]
    total: int
    hasMore: bool  # noqa: N815
    filters_applied: dict[str, str | bool]


class VoicePreview(BaseModel):
    voice_id: str
    audio_url: str
    duration: float
    format: str
    text: str


class BatchPreviewItem(BaseModel):
    voice_id: str
    voice_name: str
    audio_url: str
    duration: float


class BatchPreviews(BaseModel):
    previews: list[BatchPreviewItem]


class NativeQueuedSpeech(BaseModel):
    id: int
    job_id: str
    status: str
    voice_id: str | None
    credits_reserved: int


class TTSJob(BaseModel):
    id: int
    job_id: str
    status: str
    progress: int = Field(description="0-100")
    output_url: str | None
    duration: float | None
    audio_format: str
    error_message: str | None
    created_at: str | None
    completed_at: str | None


class TTSJobList(BaseModel):
    jobs: list[TTSJob]
    total: int
    hasMore: bool  # noqa: N815


class Rating(BaseModel):
    job_id: str
    rating: int


class Collection(BaseModel):
    collection_id: str
    name: str
    description: str | None
    voice_ids: list[str]
    tags: list[str]
    is_public: bool
    created_at: str | None
    updated_at: str | None


class CollectionList(BaseModel):
    collections: list[Collection]
    total: int
    hasMore: bool  # noqa: N815


class UsageBucket(BaseModel):
    date: str
    generations: int
    characters: int
    duration: float


class UsageAnalytics(BaseModel):
    voice_id: str | None
    period: str
    total_generations: int
    total_characters: int
    total_duration: float
    avg_rating: float
    daily_breakdown: list[UsageBucket]


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
        "accent": (voice.extra or {}).get("accent") if not is_custom else None,
        "locale": (voice.extra or {}).get("locale") if not is_custom else None,
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
