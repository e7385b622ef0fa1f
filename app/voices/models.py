from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, public_id, utcnow


def _voice_public_id() -> str:
    return public_id("voice")


def _collection_public_id() -> str:
    return public_id("collection")


class Voice(Base):
    """A built-in (owner NULL) or cloned voice; soft-deleted by `deleted_at`."""

    __tablename__ = "voices"
    __table_args__ = (Index("ix_voices_owner_deleted", "owner_id", "deleted_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    voice_id: Mapped[str] = mapped_column(String(64), unique=True, default=_voice_public_id)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="custom")  # builtin | custom
    builtin_key: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    category: Mapped[str | None] = mapped_column(String(64), default=None)
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    gender: Mapped[str | None] = mapped_column(String(16), default=None)
    age_range: Mapped[str | None] = mapped_column(String(32), default=None)
    style: Mapped[str | None] = mapped_column(String(64), default=None)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    engine: Mapped[str | None] = mapped_column(String(32), default=None)
    artifact_key: Mapped[str | None] = mapped_column(String(300), default=None)
    # Loaded only when read: 256 floats of JSON that no listing shows.
    embedding: Mapped[list[Any] | None] = mapped_column(default=None, deferred=True)
    quality_similarity: Mapped[float | None] = mapped_column(Float, default=None)
    sample_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    # Family-specific extras kept verbatim (e.g. the clone family's coverImage).
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class VoiceSample(Base):
    __tablename__ = "voice_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    voice_id: Mapped[int] = mapped_column(ForeignKey("voices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    storage_key: Mapped[str] = mapped_column(String(300))
    original_filename: Mapped[str | None] = mapped_column(String(255), default=None)
    container: Mapped[str | None] = mapped_column(String(16), default=None)
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    sample_rate: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Collection(Base):
    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[str] = mapped_column(String(64), unique=True, default=_collection_public_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CollectionVoice(Base):
    __tablename__ = "collection_voices"

    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    voice_id: Mapped[int] = mapped_column(ForeignKey("voices.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageEvent(Base):
    """One unit of produced audio or text; feeds analytics and usage_stats."""

    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    voice_id: Mapped[int | None] = mapped_column(
        ForeignKey("voices.id", ondelete="SET NULL"), index=True, default=None
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    kind: Mapped[str] = mapped_column(String(32))  # tts | preview | transcription | translation
    characters: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
