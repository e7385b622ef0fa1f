"""voice.ai family: /api/v1/tts/clone-voice, /api/v1/tts/voice/{id}, /api/v1/tts/voices.

Errors are `{"detail": "message"}`. Status words: PENDING, PROCESSING, AVAILABLE, FAILED.
This router is included before the clone family's, whose `GET /api/v1/tts/{speechId}`
would otherwise take `/api/v1/tts/voices`.
"""

from __future__ import annotations

import io
import wave
from typing import Annotated, Any, Literal

from fastapi import File, Form, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from app.api.common import iso
from app.api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from app.api.families import IDEMPOTENT, VOICEAI, FamilyRouter
from app.api.intake import default_title, take_audio
from app.cloning import service as cloning
from app.jobs import webhooks
from app.voices import service as voices
from app.voices.models import Voice

router = FamilyRouter(family=VOICEAI, prefix="/api/v1/tts", tags=["voice.ai"])

CLONE_MAX_BYTES = 7_864_320  # 7.5 MiB
VOICEAI_CONTAINERS = frozenset({"mp3", "wav", "ogg"})
# Raw PCM (no header) is read as signed 16-bit little-endian mono at this rate.
RAW_PCM_RATE = 24_000
_RAW_PCM_TYPES = ("audio/pcm", "audio/l16", "audio/x-raw", "audio/raw")
UNSUPPORTED = "Unsupported audio format; send MP3, WAV, OGG or raw PCM (16-bit mono, 24 kHz)"

_STATUS = {"pending": "PENDING", "processing": "PROCESSING", "completed": "AVAILABLE", "failed": "FAILED"}
Visibility = Literal["PUBLIC", "PRIVATE"]


class VoiceAICreatedVoice(BaseModel):
    voice_id: str
    name: str
    status: str = Field(description="PENDING, PROCESSING, AVAILABLE or FAILED")
    voice_visibility: str = Field(description="PUBLIC or PRIVATE")


class VoiceAIVoice(VoiceAICreatedVoice):
    created_at: str | None


class VoiceAIDeletedVoice(BaseModel):
    voice_id: str


def voiceai_voice(voice: Voice) -> dict[str, Any]:
    return {
        "voice_id": voice.voice_id,
        "name": voice.name,
        "status": _STATUS.get(voice.status, voice.status.upper()),
        "voice_visibility": "PUBLIC" if voice.is_public else "PRIVATE",
        "created_at": iso(voice.created_at),
    }


@router.get("/voices", response_model=list[VoiceAIVoice])
def list_my_voices(principal: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    filters = voices.VoiceFilters(owned_only=True, voice_type=voices.CUSTOM)
    rows, _ = voices.list_voices(session, principal.user_id, filters, skip=0, limit=1000)
    return [voiceai_voice(v) for v in rows]


def _is_raw_pcm(upload: UploadFile) -> bool:
    name = (upload.filename or "").lower()
    content_type = (upload.content_type or "").lower()
    return name.endswith((".pcm", ".raw")) or content_type.startswith(_RAW_PCM_TYPES)


def _pcm_to_wav(data: bytes) -> bytes:
    if len(data) % 2:
        data = data[:-1]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RAW_PCM_RATE)
        w.writeframes(data)
    return buf.getvalue()


def _read_sample(upload: UploadFile) -> bytes:
    """MP3, WAV or OGG as sent; headerless PCM (by name or type) wrapped into a WAV."""
    return take_audio(
        upload,
        CLONE_MAX_BYTES,
        param="file",
        allowed=VOICEAI_CONTAINERS,
        empty="The audio file is empty",
        unsupported=UNSUPPORTED,
        unrecognised=lambda data: _pcm_to_wav(data) if _is_raw_pcm(upload) else None,
    )


@router.post("/clone-voice", response_model=VoiceAICreatedVoice, openapi_extra=IDEMPOTENT)
def clone_voice(
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    file: Annotated[UploadFile, File(description="MP3, WAV, OGG or PCM, at most 7.5 MB")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    voice_visibility: Annotated[Visibility, Form()] = "PUBLIC",
    callback_url: Annotated[str | None, Form(max_length=2048)] = None,
) -> dict[str, Any]:
    """Clone a voice from one sample; poll GET /voice/{voice_id} until AVAILABLE or FAILED."""
    callback = webhooks.check_callback_url(callback_url, settings)
    data = _read_sample(file)
    draft = cloning.VoiceDraft(
        name=default_title(name, file.filename, "My voice"), is_public=voice_visibility == "PUBLIC"
    )
    voice, _job = cloning.create_cloned_voice(
        session,
        settings,
        store,
        owner_id=principal.user_id,
        draft=draft,
        uploads=[cloning.Upload(data, file.filename)],
        callback_url=callback,
        cost=settings.costs.clone_cost("voiceai"),
    )
    body = voiceai_voice(voice)
    return {k: body[k] for k in ("voice_id", "name", "status", "voice_visibility")}


@router.get("/voice/{voice_id}", response_model=VoiceAIVoice)
def get_voice(voice_id: str, principal: CurrentUser, session: SessionDep) -> dict[str, Any]:
    return voiceai_voice(voices.get_readable_voice(session, principal.user_id, voice_id))


class VoiceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    voice_visibility: Visibility | None = None


@router.patch("/voice/{voice_id}", response_model=VoiceAIVoice)
def update_voice(
    voice_id: str, body: VoiceUpdate, principal: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.voice_visibility is not None:
        changes["is_public"] = body.voice_visibility == "PUBLIC"
    return voiceai_voice(voices.update_voice(session, principal.user_id, voice_id, changes))


@router.delete("/voice/{voice_id}", response_model=VoiceAIDeletedVoice)
def delete_voice(
    voice_id: str, principal: CurrentUser, session: SessionDep, store: StoreDep
) -> dict[str, Any]:
    """Owner only: someone else's public voice is 403, a private one 404."""
    voice = voices.delete_voice(session, store, principal.user_id, voice_id)
    return {"voice_id": voice.voice_id}
