"""The clone job: samples from storage → (denoise) → app.cloning.pipeline → stored artifact and
normalised samples → voice COMPLETED, or FAILED with a message a person can act on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audio import DecodedAudio, decode_audio, encode_audio
from app.audio.denoise import deep_filter, is_noisy
from app.cloning.pipeline import WORK_RATE, build_voice
from app.core.db import utcnow
from app.core.errors import DomainError, InvalidInput
from app.engines.voices import dump_artifact
from app.jobs.models import Job, JobKind
from app.jobs.queue import CLONE_QUEUE
from app.jobs.tasks import JobContext, JobFailed, JobOutcome, TaskSpec, register
from app.storage import BlobStore, get_store
from app.voices.models import Voice, VoiceSample


def artifact_key(voice_uuid: str) -> str:
    return f"voices/{voice_uuid}/artifact.json"


def clean_sample_key(voice_uuid: str, position: int) -> str:
    """Where the trimmed, loudness-normalised sample is kept (deleted with the voice's prefix)."""
    return f"voices/{voice_uuid}/clean/{position}.flac"


def _run(ctx: JobContext) -> JobOutcome:
    from app.core.db import session_scope

    store = get_store(ctx.settings)
    with session_scope(ctx.settings) as session:
        voice = session.get(Voice, ctx.voice_id)
        if voice is None or voice.deleted_at is not None:
            raise JobFailed("The voice was deleted before cloning finished")
        voice_uuid = voice.uuid
        language = voice.language
        keys = list(
            session.scalars(
                select(VoiceSample.storage_key)
                .where(VoiceSample.voice_id == voice.id)
                .order_by(VoiceSample.position)
            )
        )
    if not keys:
        raise JobFailed("The voice has no samples")
    ctx.report_progress(2)
    samples = []
    for n, key in enumerate(keys, start=1):
        try:
            audio = decode_audio(
                store.get(key),
                target_rate=WORK_RATE,
                max_seconds=600,
                max_sample_rate=ctx.settings.max_sample_rate,
            )
        except DomainError as exc:
            raise JobFailed(f"Sample {n}: {exc.message}") from exc
        # denoise=true, or an upload whose speech stands little above its noise floor.
        if ctx.params.get("denoise") or is_noisy(audio.samples, audio.sample_rate):
            audio = replace(audio, samples=deep_filter(audio.samples, audio.sample_rate))
        samples.append(audio)
    ctx.report_progress(8)
    if ctx.settings.clone_engine == "xtts":
        return _run_xtts(ctx, store, voice_uuid, samples, language)
    try:
        result = build_voice(samples, ctx.settings, ctx.report_progress, language=language)
    except DomainError as exc:
        raise JobFailed(exc.message) from exc
    ctx.report_progress(93)  # stops here if the voice was deleted meanwhile: nothing is written
    for position, clean in enumerate(result.clean_samples):
        data = encode_audio(clean, result.sample_rate, "flac")
        store.put(clean_sample_key(voice_uuid, position), data, "audio/flac")
    key = artifact_key(voice_uuid)
    store.put(key, dump_artifact(result.voice_artifact), "application/json")
    ctx.report_progress(95)
    return JobOutcome(
        result_key=key,
        data={"embedding": result.embedding, "quality": result.quality_similarity},
    )


def _run_xtts(
    ctx: JobContext, store: BlobStore, voice_uuid: str, samples: list[DecodedAudio], language: str | None
) -> JobOutcome:
    """GPU hosts: XTTS conditioning latents are the artifact (stored beside a small JSON)."""
    from app.cloning.xtts import build_xtts_voice, xtts_artifact

    try:
        latents, meta = build_xtts_voice(samples, ctx.settings, ctx.report_progress, language=language)
    except DomainError as exc:
        raise JobFailed(exc.message) from exc
    ctx.report_progress(93)  # stops here if the voice was deleted meanwhile: nothing is written
    artifact = xtts_artifact(meta, latents_key=f"voices/{voice_uuid}/xtts_latents.pt")
    store.put(artifact.latents_key, latents, "application/octet-stream")
    key = artifact_key(voice_uuid)
    store.put(key, dump_artifact(artifact), "application/json")
    ctx.report_progress(95)
    return JobOutcome(
        result_key=key, data={"embedding": meta["embedding"], "quality": meta["quality"]["similarity"]}
    )


def _on_started(session: Session, job: Job) -> None:
    voice = session.get(Voice, job.voice_id) if job.voice_id else None
    if voice is not None and voice.status == "pending":
        voice.status = "processing"


def _on_completed(session: Session, job: Job, outcome: JobOutcome) -> None:
    voice = session.get(Voice, job.voice_id) if job.voice_id else None
    if voice is None:
        return
    voice.status = "completed"
    voice.error_message = None
    voice.artifact_key = outcome.result_key
    voice.embedding = outcome.data.get("embedding")
    voice.quality_similarity = outcome.data.get("quality")
    voice.processed_at = utcnow()


def _on_failed(session: Session, job: Job, message: str) -> None:
    voice = session.get(Voice, job.voice_id) if job.voice_id else None
    if voice is None:
        return
    voice.status = "failed"
    voice.error_message = message
    voice.processed_at = utcnow()


def _event_data(session: Session, job: Job) -> dict[str, Any]:
    voice = session.get(Voice, job.voice_id) if job.voice_id else None
    return {"voice_status": voice.status} if voice is not None else {}


def _before_retry(session: Session, job: Job) -> None:
    """The voice waits for the new clone job (an operator's retry of a failed clone)."""
    voice = session.get(Voice, job.voice_id) if job.voice_id else None
    if voice is None or voice.deleted_at is not None:
        raise InvalidInput("The voice of this clone job was deleted")
    voice.status, voice.error_message = "pending", None


register(
    TaskSpec(
        kind=JobKind.CLONE,
        run=_run,
        on_started=_on_started,
        on_completed=_on_completed,
        on_failed=_on_failed,
        public_id_prefix="clone",
        event_prefix="voice",
        queue=CLONE_QUEUE,
        result_is_output=False,  # the artifact is the voice's, not a download for the owner
        event_data=_event_data,
        before_retry=_before_retry,
    )
)
