"""Creating a cloned voice from uploads: validate everything, then store, then queue.

Every sample is decoded and checked before anything is written, so a bad upload creates
nothing: no voice row, no blob, no credits spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audio import DecodedAudio, decode_audio, require_speech
from app.core.config import Settings
from app.core.db import on_rollback
from app.core.errors import InvalidInput
from app.jobs import service as jobs
from app.jobs.models import Job
from app.storage import BlobStore
from app.voices.models import Voice, VoiceSample

MIN_SAMPLE_SECONDS = 3.0
MAX_SAMPLE_SECONDS = 120.0
MAX_SAMPLES = 5
MAX_TOTAL_SECONDS = 300.0
_EXTENSIONS = {
    "wav": "wav",
    "mp3": "mp3",
    "ogg": "ogg",
    "flac": "flac",
    "mp4": "m4a",
    "webm": "webm",
    "aac": "aac",
}


@dataclass
class Upload:
    """One uploaded sample as received: bytes and the client's file name (display only)."""

    data: bytes
    filename: str | None = None


@dataclass
class VoiceDraft:
    name: str
    description: str | None = None
    language: str | None = None
    gender: str | None = None
    age_range: str | None = None
    category: str | None = None
    style: str | None = None
    tags: list[str] = field(default_factory=list)
    is_public: bool = False
    denoise: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedSample:
    upload: Upload
    audio: DecodedAudio


def check_samples(uploads: list[Upload], settings: Settings) -> list[CheckedSample]:
    """Decode and validate every sample; raise a 4xx naming the sample at fault."""
    if not uploads:
        raise InvalidInput("At least one audio sample is required")
    if len(uploads) > MAX_SAMPLES:
        raise InvalidInput(f"At most {MAX_SAMPLES} samples are allowed, got {len(uploads)}")
    checked: list[CheckedSample] = []
    total = 0.0
    for n, upload in enumerate(uploads, start=1):
        label = f"sample {n}" if len(uploads) > 1 else "the sample"
        try:
            audio = decode_audio(
                upload.data,
                target_rate=16_000,
                max_seconds=MAX_SAMPLE_SECONDS,
                max_sample_rate=settings.max_sample_rate,
            )
        except InvalidInput as exc:
            raise InvalidInput(f"{label.capitalize()}: {exc.message}") from exc
        if audio.duration < MIN_SAMPLE_SECONDS:
            raise InvalidInput(
                f"{label.capitalize()} is {audio.duration:.1f} s long; "
                f"at least {MIN_SAMPLE_SECONDS:.0f} s is needed"
            )
        require_speech(audio.samples, audio.sample_rate, label=label)
        total += audio.duration
        checked.append(CheckedSample(upload, audio))
    if total > MAX_TOTAL_SECONDS:
        raise InvalidInput(f"Samples total {total:.0f} s; at most {MAX_TOTAL_SECONDS:.0f} s is allowed")
    return checked


def first_sample_keys(session: Session, voice_ids: list[int]) -> dict[int, str]:
    """The storage key of each voice's first uploaded sample (voices without samples are absent)."""
    if not voice_ids:
        return {}
    rows = session.execute(
        select(VoiceSample.voice_id, VoiceSample.storage_key).where(
            VoiceSample.voice_id.in_(voice_ids), VoiceSample.position == 0
        )
    ).all()
    return {voice_id: key for voice_id, key in rows}


def sample_key(voice: Voice, position: int, container: str) -> str:
    return f"voices/{voice.uuid}/samples/{position}.{_EXTENSIONS.get(container, 'bin')}"


def create_cloned_voice(
    session: Session,
    settings: Settings,
    store: BlobStore,
    *,
    owner_id: int,
    draft: VoiceDraft,
    uploads: list[Upload],
    cost: int,
    callback_url: str | None = None,
) -> tuple[Voice, Job]:
    """Validate samples, create the voice (pending) and its clone job, store the samples.

    `cost` credits (the calling family's price, `CostsTable.clone_cost`) are held with the job;
    if anything fails the transaction rolls back and the samples written so far are deleted.
    """
    name = draft.name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("Voice name must be 1-200 characters")
    checked = check_samples(uploads, settings)
    voice = Voice(
        owner_id=owner_id,
        kind="custom",
        name=name,
        description=draft.description,
        language=draft.language,
        gender=draft.gender,
        age_range=draft.age_range,
        category=draft.category,
        style=draft.style,
        tags=list(draft.tags),
        is_public=draft.is_public,
        status="pending",
        engine=settings.clone_engine,
        sample_seconds=round(sum(c.audio.duration for c in checked), 3),
        extra=dict(draft.extra),
    )
    session.add(voice)
    session.flush()
    job = jobs.create_job(
        session,
        settings,
        owner_id=owner_id,
        kind="clone",
        params={"denoise": draft.denoise},
        credits=cost,
        voice_id=voice.id,
        callback_url=callback_url,
    )
    prefix = f"voices/{voice.uuid}/"
    on_rollback(session, lambda: store.delete_prefix(prefix))
    for position, sample in enumerate(checked):
        key = sample_key(voice, position, sample.audio.container)
        store.put(key, sample.upload.data, "application/octet-stream")
        session.add(
            VoiceSample(
                voice_id=voice.id,
                position=position,
                storage_key=key,
                original_filename=(sample.upload.filename or "")[:255] or None,
                container=sample.audio.container,
                duration=sample.audio.duration,
                sample_rate=sample.audio.source_rate,
            )
        )
    session.flush()
    return voice, job
