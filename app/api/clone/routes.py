"""Clone family ("Voice Clone & Text-to-Speech API"): /api/v1/voice-clone, /api/v1/voices, /api/v1/tts.

Success bodies carry `"success": true`; errors are `{"code", "error"}` (rendered by
app.api.errors for every path of this family, USAGE_LIMIT_EXCEEDED with `credits` and
`needCredits`). `GET /api/v1/tts/{speechId}` is declared after the voice.ai router, so
`/api/v1/tts/voices` and `/api/v1/tts/voice/{id}` stay voice.ai's.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import httpx
from fastapi import File, Form, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from app.api.common import CamelModel, base_url, download_url, iso
from app.api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from app.api.families import CLONE, IDEMPOTENT, FamilyRouter
from app.api.intake import default_title, take_audio
from app.cloning import service as cloning
from app.core.config import Settings
from app.core.db import utcnow
from app.core.errors import InvalidInput, NotFound, VoiceNotReady
from app.jobs import service as jobs
from app.jobs import webhooks
from app.jobs.models import JOB_COMPLETED, JOB_FAILED, Job
from app.speech import service as speech
from app.storage import BlobStore
from app.voices import service as voices
from app.voices.models import Voice
from app.voices.usage import voice_stats

router = FamilyRouter(family=CLONE, prefix="/api/v1", tags=["clone"])

CLONE_MAX_BYTES = 20 * 1024 * 1024
TTS_MAX_BYTES = 5000
CLONE_CONTAINERS = frozenset({"mp3", "wav", "webm", "mp4", "ogg", "flac"})
INVALID_FILE_TYPE = "Invalid file type. Supported formats: MP3, WAV, WebM, M4A, OGG, FLAC"

_STATUS = {"pending": "PROCESSING", "processing": "PROCESSING", "completed": "COMPLETED", "failed": "FAILED"}
_STATUS_FILTER = {"PROCESSING": ("pending", "processing"), "COMPLETED": ("completed",), "FAILED": ("failed",)}
# sortBy -> the voices service's sort keys (popularity: generations across all users).
_SORT = {
    "createdAt": "created",
    "updatedAt": "updated",
    "title": "name",
    "duration": "duration",
    "popularity": "popularity",
}


# -- response shapes -------------------------------------------------------------------------


class CloneCreatedVoice(CamelModel):
    id: str
    title: str
    description: str | None
    cover_image: str | None
    audio_url: str | None
    duration: float | None
    tags: list[str]
    status: str
    created_at: str | None


class VoiceCloneCreated(CamelModel):
    success: bool
    voice_id: str
    voice: CloneCreatedVoice


class CloneVoice(CamelModel):
    id: str
    title: str
    description: str | None
    cover_image: str | None
    audio_url: str | None
    duration: float | None
    status: str = Field(description="PROCESSING, COMPLETED or FAILED")
    type: str = Field(description="USER or SYSTEM")
    is_public: bool
    popularity: int
    tags: list[str]
    usage_count: int
    created_at: str | None
    updated_at: str | None


class Pagination(CamelModel):
    page: int
    limit: int
    total: int
    total_pages: int
    has_next: bool
    has_prev: bool


class VoiceListing(CamelModel):
    success: bool
    voices: list[CloneVoice]
    pagination: Pagination


class CloneQueuedSpeech(CamelModel):
    id: str
    text: str
    format: str
    status: str
    credits_used: int
    created_at: str | None


class SpeechCreated(CamelModel):
    success: bool
    speech_id: str
    credits_used: int
    speech: CloneQueuedSpeech


class CloneSpeechVoice(CamelModel):
    id: str
    title: str
    cover_image: str | None
    type: str


class CloneSpeech(CamelModel):
    id: str
    text: str | None
    audio_url: str | None
    captions_url: str | None = Field(
        None, description="WebVTT captions of the audio (same key); srt or json by its format parameter"
    )
    format: str
    duration: float | None
    status: str
    credits_used: int
    created_at: str | None
    updated_at: str | None
    voice: CloneSpeechVoice | None
    error: str | None = Field(None, description="only when the status is FAILED")


class SpeechResult(BaseModel):
    success: bool
    speech: CloneSpeech


def _sample_urls(
    session: SessionDep, store: BlobStore, settings: Settings, request: Request, voice_ids: list[int]
) -> dict[int, str]:
    """A signed download URL of each voice's first uploaded sample (the seed's `audioUrl`)."""
    keys = cloning.first_sample_keys(session, voice_ids)
    return {voice_id: download_url(request, settings, store, key) for voice_id, key in keys.items()}


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
    # Seed 003 answers an oversized file as a parameter error, not a 413.
    return take_audio(
        upload,
        CLONE_MAX_BYTES,
        param="voice",
        allowed=CLONE_CONTAINERS,
        empty="The voice file is empty",
        unsupported=INVALID_FILE_TYPE,
        unsupported_error=InvalidInput,
        too_large="File size exceeds 20MB limit",
    )


@router.post("/voice-clone", response_model=VoiceCloneCreated, openapi_extra=IDEMPOTENT)
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
    tags: Annotated[str | None, Form(max_length=2000, description=voices.TAGS_RULE)] = None,
    callbackUrl: Annotated[str | None, Form(max_length=2048)] = None,  # noqa: N803
) -> dict[str, Any]:
    """Clone a voice from one audio file; costs settings.costs.clone credits, held until the clone ends."""
    cover = _cover_image(coverImage)
    tag_list = voices.parse_tags(tags)
    callback = webhooks.check_callback_url(callbackUrl, settings, what="callbackUrl")
    data = _read_voice_file(voice)
    draft = cloning.VoiceDraft(
        name=default_title(title, voice.filename, f"Voice clone {utcnow():%Y-%m-%d %H:%M}"),
        description=description,
        tags=tag_list,
        extra={"coverImage": cover} if cover else {},
    )
    row, _job = cloning.create_cloned_voice(
        session,
        settings,
        store,
        owner_id=principal.user_id,
        draft=draft,
        uploads=[cloning.Upload(data, voice.filename)],
        callback_url=callback,
        cost=settings.costs.clone_cost("clone"),
    )
    audio_url = _sample_urls(session, store, settings, request, [row.id]).get(row.id)
    body = clone_voice(row, audio_url=audio_url)
    keys = ("id", "title", "description", "coverImage", "audioUrl", "duration", "tags", "status", "createdAt")
    return {"success": True, "voiceId": row.voice_id, "voice": {k: body[k] for k in keys}}


# -- voice list ------------------------------------------------------------------------------


@router.get("/voices", response_model=VoiceListing)
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
    order = voices.voice_ordering(_SORT[sortBy], descending=sortOrder == "desc")
    rows, total = voices.list_voices(
        session, principal.user_id, filters, skip=(page - 1) * limit, limit=limit, order=order
    )
    ids = [v.id for v in rows]
    stats = voice_stats(session, ids)
    urls = _sample_urls(session, store, settings, request, ids)
    pages = max(1, math.ceil(total / limit))
    return {
        "success": True,
        "voices": [
            clone_voice(v, audio_url=urls.get(v.id), usage_count=stats[v.id].generations) for v in rows
        ],
        "pagination": {
            "page": page,
            "limit": limit,
            "total": total,
            "totalPages": pages,
            "hasNext": page < pages,
            "hasPrev": page > 1,
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


@router.post("/tts", response_model=SpeechCreated, openapi_extra=IDEMPOTENT)
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
            session,
            settings,
            user_id=principal.user_id,
            voice_ref=body.voiceId,
            request=speech.SpeechRequest(body.text, format=body.format),
            callback_url=callback,
            # The family's limit is bytes, not the server's character limit for other routes.
            max_chars=TTS_MAX_BYTES,
            max_bytes=TTS_MAX_BYTES,
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


@router.get("/tts/{speechId}", response_model=SpeechResult, response_model_exclude_unset=True)
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
    audio_url = captions_url = None
    if job.status == JOB_COMPLETED and job.result_key:
        audio_url = download_url(request, settings, store, job.result_key)
        captions_url = f"{base_url(request)}/api/v1/voice/tts-jobs/{job.public_id}/captions?format=vtt"
    voice = speech.job_voice(session, job)
    speech_body: dict[str, Any] = {
        "id": job.public_id,
        "text": job.params.get("text"),
        "audioUrl": audio_url,
        "captionsUrl": captions_url,
        "format": job.params.get("format", "mp3"),
        "duration": job.duration,
        "status": _speech_status(job),
        "creditsUsed": _credits_used(job),
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
        "voice": None
        if voice is None
        else {
            "id": voice.voice_id,
            "title": voice.name,
            "coverImage": (voice.extra or {}).get("coverImage"),
            "type": "SYSTEM" if voice.kind == voices.BUILTIN else "USER",
        },
    }
    if job.status == JOB_FAILED:
        speech_body["error"] = job.error
    return {"success": True, "speech": speech_body}
