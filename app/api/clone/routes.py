"""Clone family ("Voice Clone & Text-to-Speech API"): /api/v1/voice-clone, /api/v1/voices, /api/v1/tts.

Success bodies carry `"success": true`; errors are `{"code", "error"}` (rendered by
app.api.errors for every path of this family, USAGE_LIMIT_EXCEEDED with `credits` and
`needCredits`). `GET /api/v1/tts/{speechId}` is declared after the voice.ai router, so
`/api/v1/tts/voices` and `/api/v1/tts/voice/{id}` stay voice.ai's.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from app.api.native.schemas import iso
from app.audio import SNIFF_BYTES, read_limited_sync, sniff_container
from app.cloning import service as cloning
from app.core.config import Settings
from app.core.db import utcnow
from app.core.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMedia, VoiceNotReady
from app.jobs import service as jobs
from app.jobs import webhooks
from app.jobs.models import JOB_COMPLETED, JOB_FAILED, Job
from app.speech import service as speech
from app.storage import BlobStore
from app.voices import service as voices
from app.voices.models import UsageEvent, Voice, VoiceSample
from app.voices.usage import GENERATION_KINDS, generation_counts

router = APIRouter(prefix="/api/v1", tags=["clone"])

CLONE_MAX_BYTES = 20 * 1024 * 1024
TTS_MAX_BYTES = 5000
CLONE_CONTAINERS = frozenset({"mp3", "wav", "webm", "mp4", "ogg", "flac"})
INVALID_FILE_TYPE = "Invalid file type. Supported formats: MP3, WAV, WebM, M4A, OGG, FLAC"

_STATUS = {"pending": "PROCESSING", "processing": "PROCESSING", "completed": "COMPLETED", "failed": "FAILED"}
_STATUS_FILTER = {"PROCESSING": ("pending", "processing"), "COMPLETED": ("completed",), "FAILED": ("failed",)}

# Generations of a voice across all users: its popularity and usageCount.
_generations = (
    select(func.count(UsageEvent.id))
    .where(UsageEvent.voice_id == Voice.id, UsageEvent.kind.in_(GENERATION_KINDS))
    .correlate(Voice)
    .scalar_subquery()
)
_SORT: dict[str, Any] = {
    "createdAt": Voice.created_at,
    "updatedAt": Voice.updated_at,
    "title": Voice.name,
    "duration": Voice.sample_seconds,
    "popularity": _generations,
}


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _sample_urls(session: Session, store: BlobStore, settings: Settings, request: Request,
                 voice_ids: list[int]) -> dict[int, str]:
    """A signed download URL of each voice's first uploaded sample (the seed's `audioUrl`)."""
    if not voice_ids:
        return {}
    rows = session.execute(
        select(VoiceSample.voice_id, VoiceSample.storage_key)
        .where(VoiceSample.voice_id.in_(voice_ids), VoiceSample.position == 0)
    ).all()
    return {
        voice_id: store.url(key, expires_in=settings.signed_url_ttl_seconds, base_url=_base_url(request))
        for voice_id, key in rows
    }


def clone_voice(voice: Voice, *, audio_url: str | None = None, usage_count: int = 0) -> dict[str, Any]:
    return {
        "id": voice.voice_id,
        "title": voice.name,
        "description": voice.description,
        "coverImage": (voice.extra or {}).get("coverImage"),
        "audioUrl": audio_url,
        "duration": voice.sample_seconds,
        "status": _STATUS.get(voice.status, voice.status.upper()),
        "type": "SYSTEM" if voice.kind == voices.BUILTIN else "USER",
        "isPublic": voice.is_public,
        "popularity": usage_count,
        "tags": list(voice.tags or []),
        "usageCount": usage_count,
        "createdAt": iso(voice.created_at),
        "updatedAt": iso(voice.updated_at),
    }


# -- voice clone -----------------------------------------------------------------------------


def parse_tags(raw: str | None) -> list[str]:
    """Tags as a JSON array or a comma-separated list (at most 20, 64 characters each)."""
    if not raw or not raw.strip():
        return []
    raw = raw.strip()
    if raw.startswith("["):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput("tags must be a JSON array or a comma-separated list", param="tags") from exc
        if not isinstance(parsed, list) or not all(isinstance(t, str | int | float) for t in parsed):
            raise InvalidInput("tags must be a JSON array of strings or a comma-separated list", param="tags")
        items = [str(t).strip() for t in parsed]
    else:
        items = [t.strip() for t in raw.split(",")]
    tags = [t for t in items if t]
    if len(tags) > 20 or any(len(t) > 64 for t in tags):
        raise InvalidInput("At most 20 tags of up to 64 characters each", param="tags")
    return tags


def _cover_image(url: str | None) -> str | None:
    """Kept verbatim for display, never fetched; it must still look like an http(s) URL."""
    if url is None or not url.strip():
        return None
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidInput("coverImage must be an http or https URL", param="coverImage") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput("coverImage must be an http or https URL", param="coverImage")
    return url.strip()


def _read_voice_file(upload: UploadFile) -> bytes:
    try:
        data = read_limited_sync(upload.file, CLONE_MAX_BYTES)
    except PayloadTooLarge as exc:
        # Seed 003 answers an oversized file as a parameter error, not a 413.
        raise InvalidInput("File size exceeds 20MB limit", param="voice") from exc
    if not data:
        raise InvalidInput("The voice file is empty", param="voice")
    try:
        container = sniff_container(data[:SNIFF_BYTES])
    except UnsupportedMedia as exc:
        raise InvalidInput(INVALID_FILE_TYPE, param="voice") from exc
    if container not in CLONE_CONTAINERS:
        raise InvalidInput(INVALID_FILE_TYPE, param="voice")
    return data


def _default_title(filename: str | None) -> str:
    stem = PurePosixPath((filename or "").replace("\\", "/")).stem.strip()[:100]
    return stem or f"Voice clone {utcnow():%Y-%m-%d %H:%M}"


@router.post("/voice-clone")
def create_voice_clone(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    voice: Annotated[UploadFile, File(description="MP3, WAV, WebM, M4A, OGG or FLAC, at most 20 MB")],
    title: Annotated[str | None, Form(max_length=200)] = None,
    description: Annotated[str | None, Form(max_length=500)] = None,
    coverImage: Annotated[str | None, Form(max_length=2048)] = None,  # noqa: N803
    tags: Annotated[str | None, Form(max_length=2000)] = None,
    callbackUrl: Annotated[str | None, Form(max_length=2048)] = None,  # noqa: N803
) -> dict[str, Any]:
    """Clone a voice from one audio file; costs settings.costs.clone credits, held until the clone ends."""
    cover = _cover_image(coverImage)
    tag_list = parse_tags(tags)
    callback = webhooks.check_callback_url(callbackUrl, settings, what="callbackUrl")
    data = _read_voice_file(voice)
    draft = cloning.VoiceDraft(
        name=(title or "").strip() or _default_title(voice.filename),
        description=description, tags=tag_list, extra={"coverImage": cover} if cover else {},
    )
    row, _job = cloning.create_cloned_voice(
        session, settings, store, owner_id=principal.user_id, draft=draft,
        uploads=[cloning.Upload(data, voice.filename)], callback_url=callback,
        cost=settings.costs.clone_cost("clone"),
    )
    audio_url = _sample_urls(session, store, settings, request, [row.id]).get(row.id)
    body = clone_voice(row, audio_url=audio_url)
    keys = ("id", "title", "description", "coverImage", "audioUrl", "duration", "tags", "status", "createdAt")
    return {"success": True, "voiceId": row.voice_id, "voice": {k: body[k] for k in keys}}


# -- voice list ------------------------------------------------------------------------------


@router.get("/voices")
def list_voices(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Literal["PROCESSING", "COMPLETED", "FAILED"] | None = None,
    type: Literal["USER", "SYSTEM"] | None = None,
    sortBy: Literal["createdAt", "updatedAt", "title", "duration", "popularity"] = "createdAt",  # noqa: N803
    sortOrder: Literal["asc", "desc"] = "desc",  # noqa: N803
) -> dict[str, Any]:
    filters = voices.VoiceFilters(
        voice_type={"USER": voices.CUSTOM, "SYSTEM": voices.BUILTIN}.get(type or ""),
        statuses=_STATUS_FILTER.get(status or ""),
    )
    column = _SORT[sortBy]
    order = (column.asc() if sortOrder == "asc" else column.desc(), Voice.id.asc())
    rows, total = voices.list_voices(
        session, principal.user_id, filters, skip=(page - 1) * limit, limit=limit, order=order
    )
    ids = [v.id for v in rows]
    counts = generation_counts(session, ids)
    urls = _sample_urls(session, store, settings, request, ids)
    pages = max(1, math.ceil(total / limit))
    return {
        "success": True,
        "voices": [clone_voice(v, audio_url=urls.get(v.id), usage_count=counts.get(v.id, 0)) for v in rows],
        "pagination": {
            "page": page, "limit": limit, "total": total, "totalPages": pages,
            "hasNext": page < pages, "hasPrev": page > 1,
        },
    }


# -- text to speech --------------------------------------------------------------------------


class TTSBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    voiceId: str | int  # noqa: N815
    format: Literal["mp3", "wav", "opus", "pcm"] = "mp3"
    callbackUrl: str | None = Field(None, max_length=2048)  # noqa: N815


def _speech_status(job: Job) -> str:
    return _STATUS.get(job.status, job.status.upper())


def _credits_used(job: Job) -> int:
    return 0 if job.status == JOB_FAILED else job.credits_held


@router.post("/tts")
def create_speech(
    body: TTSBody, principal: CurrentUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """An asynchronous TTS job; 1 credit per UTF-8 byte, held now, captured when the audio is ready."""
    size = len(body.text.encode("utf-8"))
    if size > TTS_MAX_BYTES:
        raise InvalidInput(f"Text exceeds maximum length of {TTS_MAX_BYTES} bytes", param="text")
    callback = webhooks.check_callback_url(body.callbackUrl, settings, what="callbackUrl")
    try:
        job = speech.create_tts_job(
            session, settings, user_id=principal.user_id, voice_ref=body.voiceId,
            request=speech.SpeechRequest(body.text, format=body.format), callback_url=callback,
            # The family's limit is bytes, not the server's character limit for other routes.
            max_chars=TTS_MAX_BYTES, max_bytes=TTS_MAX_BYTES,
        )
    except (NotFound, VoiceNotReady) as exc:
        # Seed 003: a voice that exists but is not ready is "not available", not a bad request.
        raise NotFound("Voice not found or not available", param="voiceId") from exc
    return {
        "success": True,
        "speechId": job.public_id,
        "creditsUsed": job.credits_held,
        "speech": {
            "id": job.public_id,
            "text": body.text,
            "format": body.format,
            "status": "PROCESSING",
            "creditsUsed": job.credits_held,
            "createdAt": iso(job.created_at),
        },
    }


@router.get("/tts/{speechId}")
def get_speech(
    speechId: str,  # noqa: N803
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
) -> dict[str, Any]:
    try:
        job = jobs.get_owned_job(session, principal.user_id, speechId, kind="speech")
    except NotFound as exc:
        raise NotFound("Speech not found or access denied") from exc
    audio_url = None
    if job.status == JOB_COMPLETED and job.result_key:
        audio_url = store.url(job.result_key, expires_in=settings.signed_url_ttl_seconds,
                              base_url=_base_url(request))
    voice = session.get(Voice, job.voice_id) if job.voice_id else None
    speech_body: dict[str, Any] = {
        "id": job.public_id,
        "text": job.params.get("text"),
        "audioUrl": audio_url,
        "format": job.params.get("format", "mp3"),
        "duration": job.duration,
        "status": _speech_status(job),
        "creditsUsed": _credits_used(job),
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
        "voice": None if voice is None else {
            "id": voice.voice_id,
            "title": voice.name,
            "coverImage": (voice.extra or {}).get("coverImage"),
            "type": "SYSTEM" if voice.kind == voices.BUILTIN else "USER",
        },
    }
    if job.status == JOB_FAILED:
        speech_body["error"] = job.error
    return {"success": True, "speech": speech_body}
