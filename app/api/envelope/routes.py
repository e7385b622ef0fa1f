"""Envelope family: /voices with every body in {"code", "message", "data"}.

Success is `{"code": 0, "message": "success", "data": ...}`; errors carry the HTTP status
as a non-zero `code` (rendered by app.api.errors). `voice_url` is downloaded with the
SSRF rules of app.core.fetch.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any, Generic, Literal, TypeVar

import httpx
from fastapi import File, Form, Query, UploadFile
from pydantic import BaseModel, Field

from app.api.common import iso
from app.api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from app.api.families import ENVELOPE, IDEMPOTENT, FamilyRouter
from app.api.intake import check_audio, default_title, read_upload
from app.cloning import service as cloning
from app.core.config import Settings
from app.core.errors import InvalidInput
from app.core.fetch import fetch
from app.jobs import webhooks
from app.voices import service as voices
from app.voices.models import Voice

router = FamilyRouter(family=ENVELOPE, tags=["envelope"])

ENVELOPE_CONTAINERS = frozenset({"wav", "mp3", "mp4"})
UNSUPPORTED = "Only WAV, MP3 and M4A audio is supported"

Data = TypeVar("Data")


class Envelope(BaseModel, Generic[Data]):
    code: int = Field(description="0 on success")
    message: str
    data: Data


class EnvelopeVoice(BaseModel):
    voice_id: str
    display_name: str
    description: str | None
    language: str | None
    gender: str | None
    tags: list[str]
    voice_type: str = Field(description="custom or built-in")
    status: str
    create_time: str | None
    delete_time: str | None


class VoicePage(BaseModel):
    voices: list[EnvelopeVoice]
    total: int
    skip: int = Field(description="page number, from 0")
    limit: int


class EnvelopeDeletedVoice(BaseModel):
    voice_id: str
    delete_time: str | None


def ok(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "success", "data": data}


def envelope_voice(voice: Voice) -> dict[str, Any]:
    return {
        "voice_id": voice.voice_id,
        "display_name": voice.name,
        "description": voice.description,
        "language": voice.language,
        "gender": voice.gender,
        "tags": list(voice.tags or []),
        "voice_type": "built-in" if voice.kind == voices.BUILTIN else "custom",
        "status": voice.status,
        "create_time": iso(voice.created_at),
        "delete_time": iso(voice.deleted_at),
    }


@router.get("/voices", response_model=Envelope[VoicePage])
def list_voices(
    principal: CurrentUser,
    session: SessionDep,
    voice_type: Literal["custom", "built-in"] = "custom",
    keyword: Annotated[str | None, Query(max_length=200)] = None,
    skip: Annotated[int, Query(ge=0, le=100_000, description="page number, from 0")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    filters = voices.VoiceFilters(
        voice_type=voices.BUILTIN if voice_type == "built-in" else voices.CUSTOM,
        owned_only=voice_type == "custom",
        keyword=keyword,
    )
    rows, total = voices.list_voices(session, principal.user_id, filters, skip=skip * limit, limit=limit)
    return ok({"voices": [envelope_voice(v) for v in rows], "total": total, "skip": skip, "limit": limit})


def _check_container(data: bytes, param: str) -> bytes:
    return check_audio(
        data,
        param=param,
        allowed=ENVELOPE_CONTAINERS,
        empty=f"The audio from {param} is empty",
        unsupported=UNSUPPORTED,
    )


def _sample(file: UploadFile | None, voice_url: str | None, settings: Settings) -> tuple[bytes, str | None]:
    """The audio and a file name, from an upload or a URL (at least one; the file wins when both
    are sent, and the URL is then never fetched)."""
    has_url = bool(voice_url and voice_url.strip())
    if file is None and not has_url:
        raise InvalidInput("Provide file or voice_url (at least one is required)")
    if file is not None:
        data = _check_container(read_upload(file, settings.max_upload_bytes, param="file"), "file")
        return data, file.filename
    assert voice_url is not None
    resp = fetch(
        voice_url.strip(),
        settings,
        what="voice_url",
        max_bytes=min(settings.resolved_fetch_max_bytes, settings.max_upload_bytes),
    )
    data = _check_container(resp.content, "voice_url")
    return data, PurePosixPath(httpx.URL(resp.url).path).name or None


@router.post("/voices", response_model=Envelope[EnvelopeVoice], openapi_extra=IDEMPOTENT)
def create_voice(
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    file: Annotated[UploadFile | None, File(description="WAV, MP3 or M4A")] = None,
    voice_url: Annotated[str | None, Form(max_length=2048)] = None,
    display_name: Annotated[str | None, Form(max_length=200)] = None,
    denoise: Annotated[bool, Form()] = False,
    language: Annotated[str | None, Form(max_length=16)] = None,
    callback_url: Annotated[str | None, Form(max_length=2048)] = None,
) -> dict[str, Any]:
    """Clone a voice from an upload or a URL; the voice is pending until its clone job ends."""
    callback = webhooks.check_callback_url(callback_url, settings)
    data, filename = _sample(file, voice_url, settings)
    draft = cloning.VoiceDraft(
        name=default_title(display_name, filename, "Cloned voice"),
        language=language.strip().lower() if language and language.strip() else None,
        denoise=denoise,
    )
    voice, _job = cloning.create_cloned_voice(
        session,
        settings,
        store,
        owner_id=principal.user_id,
        draft=draft,
        uploads=[cloning.Upload(data, filename)],
        callback_url=callback,
        cost=settings.costs.clone_cost("envelope"),
    )
    return ok(envelope_voice(voice))


@router.get("/voices/{voice_id}", response_model=Envelope[EnvelopeVoice])
def get_voice(voice_id: str, principal: CurrentUser, session: SessionDep) -> dict[str, Any]:
    return ok(envelope_voice(voices.get_readable_voice(session, principal.user_id, voice_id)))


@router.delete("/voices/{voice_id}", response_model=Envelope[EnvelopeDeletedVoice])
def delete_voice(
    voice_id: str, principal: CurrentUser, session: SessionDep, store: StoreDep
) -> dict[str, Any]:
    """Soft delete: the row stays with its delete_time and its files stay in storage (seed 002);
    it no longer lists or resolves."""
    voice = voices.delete_voice(session, store, principal.user_id, voice_id, keep_files=True)
    return ok({"voice_id": voice.voice_id, "delete_time": iso(voice.deleted_at)})
