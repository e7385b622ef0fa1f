"""Native family (AudioPod voice management shape): /api/v1/voice/...

Routes parse the family's shapes, call the core services, and render the results.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import Depends, File, Form, Query, Request, Response, UploadFile
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from app.api.common import download_url, iso
from app.api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from app.api.families import IDEMPOTENT, NATIVE, FamilyRouter
from app.api.intake import read_upload
from app.api.native.schemas import (
    BatchPreviews,
    NativeCreatedVoice,
    NativeQueuedSpeech,
    NativeVoice,
    Rating,
    TTSJob,
    TTSJobList,
    VoiceList,
    VoicePreview,
    native_voice,
)
from app.audio import check_format, content_type
from app.cloning import service as cloning
from app.core.config import Settings
from app.core.errors import InvalidInput
from app.jobs import service as jobs
from app.jobs import webhooks
from app.jobs.models import Job
from app.speech import service as speech
from app.speech.captions import MEDIA_TYPES as CAPTION_MEDIA_TYPES
from app.speech.captions import check_format as check_caption_format
from app.storage import BlobStore
from app.voices import blends, previews
from app.voices import service as voices
from app.voices.models import Voice
from app.voices.usage import voice_stats

router = FamilyRouter(family=NATIVE, prefix="/api/v1/voice", tags=["native"])

MAX_PAGE = 50


def _audio_format(value: str) -> str:
    """The canonical name of a format `check_format` takes: the plain names and the rated ones."""
    try:
        return check_format(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from exc


AudioFormat = Annotated[
    str,
    AfterValidator(_audio_format),
    Field(
        max_length=32,
        description="mp3, wav, ogg, opus, flac, aac, pcm; also ulaw_8000, alaw_8000, <format>_<rate> "
        "(e.g. pcm_16000) and mp3_<rate>_<kbps> (e.g. mp3_44100_128)",
    ),
]


def _render_voices(
    session: SessionDep, rows: list[Voice], request: Request, settings: Settings
) -> list[dict[str, Any]]:
    ids = [v.id for v in rows]
    stats = voice_stats(session, ids)
    base_url = str(request.base_url)
    return [
        native_voice(
            v,
            clone_job_id=stats[v.id].clone_job_id,
            total_generations=stats[v.id].generations,
            avg_rating=stats[v.id].avg_rating,
            preview_url=previews.preview_link(v, settings, base_url),
        )
        for v in rows
    ]


@router.get("/voice-profiles", response_model=VoiceList)
@router.get("/voices", response_model=VoiceList)
def list_voice_profiles(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    voice_type: Literal["CUSTOM", "STANDARD"] | None = None,
    is_public: bool | None = None,
    include_public: bool = False,
    category: Annotated[str | None, Query(max_length=64)] = None,
    language: Annotated[str | None, Query(max_length=16)] = None,
    gender: Literal["male", "female", "neutral"] | None = None,
    style: Annotated[str | None, Query(max_length=64)] = None,
    keyword: Annotated[str | None, Query(max_length=200)] = None,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1)] = MAX_PAGE,
) -> dict[str, Any]:
    limit = min(limit, MAX_PAGE)  # the contract clamps rather than refuses
    filters = voices.VoiceFilters(
        voice_type={"CUSTOM": voices.CUSTOM, "STANDARD": voices.BUILTIN}.get(voice_type or ""),
        is_public=is_public,
        include_public=include_public,
        category=category,
        language=language,
        gender=gender,
        style=style,
        keyword=keyword,
    )
    rows, total = voices.list_voices(session, principal.user_id, filters, skip=skip, limit=limit)
    applied = {
        "voice_type": voice_type,
        "is_public": is_public,
        "include_public": include_public,
        "category": category,
        "language": language,
        "gender": gender,
        "style": style,
        "keyword": keyword,
    }
    return {
        "voices": _render_voices(session, rows, request, settings),
        "total": total,
        "hasMore": skip + len(rows) < total,
        "filters_applied": {k: v for k, v in applied.items() if v is not None},
    }


def _uploads(files: list[UploadFile], settings: Settings, param: str) -> list[cloning.Upload]:
    """Read whole (within the upload limit); the clone service decodes and checks each sample."""
    return [cloning.Upload(read_upload(f, settings.max_upload_bytes, param=param), f.filename) for f in files]


def _create_voice(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: Settings,
    store: BlobStore,
    files: list[UploadFile],
    files_param: str,
    name: str,
    description: str | None,
    denoise: bool,
    is_public: bool,
    language: str | None,
    gender: str | None,
    tags: str | None,
    category: str | None,
    style: str | None,
) -> dict[str, Any]:
    draft = cloning.VoiceDraft(
        name=name,
        description=description,
        language=language,
        gender=gender,
        tags=voices.parse_tags(tags),
        category=category,
        style=style,
        is_public=is_public,
        denoise=denoise,
    )
    voice, job = cloning.create_cloned_voice(
        session,
        settings,
        store,
        owner_id=principal.user_id,
        draft=draft,
        uploads=_uploads(files, settings, files_param),
        cost=settings.costs.clone_cost("native"),
    )
    body = _render_voices(session, [voice], request, settings)[0]
    body["clone_job_id"] = job.public_id
    # The stored sample's storage key (seed 000's `file_path`), never a server path.
    body["file_path"] = cloning.first_sample_keys(session, [voice.id])[voice.id]
    return body


@router.post("/voice-profiles", response_model=NativeCreatedVoice, openapi_extra=IDEMPOTENT)
def create_voice_profile(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    file: Annotated[UploadFile, File()],
    description: Annotated[str | None, Form(max_length=2000)] = None,
    denoise: Annotated[bool, Form()] = False,
    is_public: Annotated[bool, Form()] = False,
    language: Annotated[str | None, Form(max_length=16)] = None,
    gender: Annotated[Literal["male", "female", "neutral"] | None, Form()] = None,
    tags: Annotated[str | None, Form(max_length=1000, description=voices.TAGS_RULE)] = None,
    category: Annotated[str | None, Form(max_length=64)] = None,
    style: Annotated[str | None, Form(max_length=64)] = None,
) -> dict[str, Any]:
    return _create_voice(
        request,
        principal,
        session,
        settings,
        store,
        [file],
        "file",
        name,
        description,
        denoise,
        is_public,
        language,
        gender,
        tags,
        category,
        style,
    )


@router.post("/voice-profiles/multi-sample", response_model=NativeCreatedVoice, openapi_extra=IDEMPOTENT)
def create_voice_profile_multi(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    voice_files: Annotated[list[UploadFile], File()],
    description: Annotated[str | None, Form(max_length=2000)] = None,
    denoise: Annotated[bool, Form()] = False,
    is_public: Annotated[bool, Form()] = False,
    language: Annotated[str | None, Form(max_length=16)] = None,
    gender: Annotated[Literal["male", "female", "neutral"] | None, Form()] = None,
    tags: Annotated[str | None, Form(max_length=1000, description=voices.TAGS_RULE)] = None,
    category: Annotated[str | None, Form(max_length=64)] = None,
    style: Annotated[str | None, Form(max_length=64)] = None,
) -> dict[str, Any]:
    if not 1 <= len(voice_files) <= cloning.MAX_SAMPLES:
        raise InvalidInput(f"Send 1 to {cloning.MAX_SAMPLES} voice_files", param="voice_files")
    return _create_voice(
        request,
        principal,
        session,
        settings,
        store,
        voice_files,
        "voice_files",
        name,
        description,
        denoise,
        is_public,
        language,
        gender,
        tags,
        category,
        style,
    )


class BlendPartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice_id: str = Field(min_length=1, max_length=100, description="A built-in's key (af_bella) or voice id")
    weight: float = Field(1.0, gt=0, le=100)


class BlendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    voices: list[BlendPartBody] = Field(min_length=2, max_length=8)
    description: str | None = Field(None, max_length=2000)


@router.post("/voice-profiles/blend", response_model=NativeVoice, openapi_extra=IDEMPOTENT)
def create_voice_blend(
    body: BlendBody,
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
) -> dict[str, Any]:
    """A custom voice mixed from 2-8 Kokoro built-ins of one language (weights are normalised):
    free, ready at once, usable by its voice_id in every family."""
    row = blends.create_blend(
        session,
        store,
        user_id=principal.user_id,
        name=body.name,
        parts=[blends.BlendPart(part.voice_id, part.weight) for part in body.voices],
        description=body.description,
    )
    return _render_voices(session, [row], request, settings)[0]


@router.get("/voices/{voice}", response_model=NativeVoice)
@router.get("/voices/{voice}/status", response_model=NativeVoice)
def get_voice(
    voice: str, request: Request, principal: CurrentUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    row = voices.get_readable_voice(session, principal.user_id, voice)
    return _render_voices(session, [row], request, settings)[0]


class VoiceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    is_public: bool | None = None
    tags: list[str] | None = Field(None, description=voices.TAGS_RULE)
    category: str | None = Field(None, max_length=64)
    style: str | None = Field(None, max_length=64)
    language: str | None = Field(None, max_length=16)
    gender: Literal["male", "female", "neutral"] | None = None
    age_range: str | None = Field(None, max_length=32)


@router.patch("/voices/{voice}", response_model=NativeVoice)
def update_voice(
    voice: str,
    body: VoiceUpdate,
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    row = voices.update_voice(session, principal.user_id, voice, body.model_dump(exclude_unset=True))
    return _render_voices(session, [row], request, settings)[0]


@router.delete("/voices/{voice}", status_code=204)
def delete_voice(voice: str, principal: CurrentUser, session: SessionDep, store: StoreDep) -> Response:
    voices.delete_voice(session, store, principal.user_id, voice)
    return Response(status_code=204)


@router.get("/voice-profiles/{voice}/preview", response_model=VoicePreview)
def voice_preview(
    voice: str,
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    audio_format: AudioFormat = "mp3",
    generate_if_missing: bool = True,
) -> dict[str, Any]:
    row = voices.get_readable_voice(session, principal.user_id, voice)
    preview = previews.get_preview(store, settings, row, fmt=audio_format, generate=generate_if_missing)
    return {
        "voice_id": row.voice_id,
        "audio_url": download_url(request, settings, store, preview.key),
        "duration": preview.duration,
        "format": audio_format,
        "text": preview.text,
    }


@router.get(
    "/previews/{token}",
    response_class=Response,
    responses={
        200: {"content": {content_type(previews.PREVIEW_LINK_FORMAT): {}}, "description": "The preview audio"}
    },
)
def play_preview(token: str, session: SessionDep, settings: SettingsDep, store: StoreDep) -> Response:
    """What a voice's `preview_url` plays: the signed link is the credential (no API key)."""
    audio, media_type = previews.preview_from_link(session, store, settings, token)
    return Response(audio, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


class BatchPreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice_ids: list[str | int] = Field(min_length=1, max_length=10)
    text: str = Field(min_length=1, max_length=1000)
    speed: float = Field(1.0, ge=speech.MIN_SPEED, le=speech.MAX_SPEED)
    pitch: float = Field(0.0, ge=speech.MIN_PITCH, le=speech.MAX_PITCH, description="semitones")
    format: AudioFormat = "mp3"


@router.post("/preview/batch", response_model=BatchPreviews)
def batch_preview(
    body: BatchPreviewBody,
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
) -> dict[str, Any]:
    rows = [voices.get_readable_voice(session, principal.user_id, ref) for ref in body.voice_ids]
    made = previews.batch_previews(
        store, settings, rows, text=body.text, fmt=body.format, speed=body.speed, pitch=body.pitch
    )
    return {
        "previews": [
            {
                "voice_id": p.voice.voice_id,
                "voice_name": p.voice.name,
                "audio_url": download_url(request, settings, store, p.key),
                "duration": p.duration,
            }
            for p in made
        ]
    }


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_text: str = Field(min_length=1)
    speed: float = Field(1.0, ge=speech.MIN_SPEED, le=speech.MAX_SPEED)
    pitch: float = Field(0.0, ge=speech.MIN_PITCH, le=speech.MAX_PITCH, description="semitones")
    language: str | None = Field(None, max_length=16)
    audio_format: AudioFormat = "mp3"
    generation_params: dict[str, Any] | None = None
    callback_url: str | None = Field(None, max_length=2048)


async def generate_body(request: Request) -> GenerateBody:
    """The generate route takes JSON or a form with the same fields."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            data: Any = {k: v for k, v in form.items() if isinstance(v, str)}
            if "generation_params" in data:
                data["generation_params"] = json.loads(data["generation_params"] or "null")
        else:
            data = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput("Request body is not valid JSON (or nested too deeply)") from exc
    if not isinstance(data, dict):
        raise InvalidInput("Request body must be a JSON object or a form")
    try:
        return GenerateBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidInput(f"Invalid parameter {param}: {first['msg']}", param=param) from exc


@router.post(
    "/voices/{voice}/generate", status_code=202, response_model=NativeQueuedSpeech, openapi_extra=IDEMPOTENT
)
def generate_speech(
    voice: str,
    principal: CurrentUser,  # before the body: an anonymous caller gets 401, not a parse error
    body: Annotated[GenerateBody, Depends(generate_body)],
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    job = speech.create_tts_job(
        session,
        settings,
        user_id=principal.user_id,
        voice_ref=voice,
        request=speech.SpeechRequest(
            body.input_text, body.speed, body.pitch, body.audio_format, body.language
        ),
        callback_url=webhooks.check_callback_url(body.callback_url, settings),
        extra={"generation_params": body.generation_params} if body.generation_params else None,
    )
    row = speech.job_voice(session, job)
    return {
        "id": job.id,
        "job_id": job.public_id,
        "status": job.status,
        "voice_id": row.voice_id if row else None,
        "credits_reserved": job.credits_held,
    }


def _job_view(job: Job, request: Request, settings: Settings, store: BlobStore) -> dict[str, Any]:
    fmt = str(job.params.get("format", "mp3"))
    output_url = None
    if job.status == "completed" and job.result_key:
        output_url = download_url(request, settings, store, job.result_key)
    return {
        "id": job.id,
        "job_id": job.public_id,
        "status": job.status,
        "progress": job.progress,
        "output_url": output_url,
        "duration": job.duration,
        "audio_format": fmt,
        "error_message": job.error,
        "created_at": iso(job.created_at),
        "completed_at": iso(job.completed_at),
    }


@router.get("/tts-jobs/{job}/status", response_model=TTSJob)
def tts_job_status(
    job: str,
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
) -> dict[str, Any]:
    row = jobs.get_owned_job(session, principal.user_id, job, kind="speech")
    return _job_view(row, request, settings, store)


@router.get("/tts-jobs", response_model=TTSJobList)
def list_tts_jobs(
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    status: Literal["pending", "processing", "completed", "failed"] | None = None,
) -> dict[str, Any]:
    rows, total = speech.list_tts_jobs(session, principal.user_id, status=status, skip=skip, limit=limit)
    return {
        "jobs": [_job_view(j, request, settings, store) for j in rows],
        "total": total,
        "hasMore": skip + len(rows) < total,
    }


@router.get(
    "/tts-jobs/{job}/captions",
    response_class=Response,
    responses={200: {"content": {t: {} for t in CAPTION_MEDIA_TYPES.values()}, "description": "Captions"}},
)
def tts_job_captions(
    job: str,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    format: Annotated[str, Query(max_length=8, description="srt, vtt or json")] = "srt",  # noqa: A002
) -> Response:
    """The words of a completed job's audio, timed by the engine that spoke them."""
    body = speech.job_captions(session, settings, principal.user_id, job, format)
    return Response(body, media_type=CAPTION_MEDIA_TYPES[check_caption_format(format)])


class RatingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)


@router.post("/tts-jobs/{job}/rating", response_model=Rating)
def rate_tts_job(job: str, body: RatingBody, principal: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """The owner's 1-5 rating of a completed job; rating again replaces it. Feeds `avg_rating`."""
    row = speech.rate_tts_job(session, principal.user_id, job, body.rating)
    return {"job_id": row.public_id, "rating": row.rating}
