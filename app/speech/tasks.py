"""The speech job: synthesize sentence by sentence, encode, store (with its words' timings, for
captions), record usage."""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from app.audio import content_type, encode_audio, file_extension
from app.core.db import session_scope
from app.core.errors import DomainError
from app.engines.base import timed_stream
from app.engines.text import split_sentences
from app.engines.timing import TimedChunk
from app.jobs.models import Job, JobKind
from app.jobs.queue import TTS_QUEUE
from app.jobs.tasks import JobContext, JobFailed, JobOutcome, TaskSpec, register
from app.speech.captions import dump_words, words_key
from app.speech.speakers import synthesizer_for
from app.storage import get_store
from app.voices.models import Voice
from app.voices.usage import record_usage


def speech_key(owner_id: int, job_id: int, fmt: str) -> str:
    return f"speech/{owner_id}/{job_id}.{file_extension(fmt)}"


def _run(ctx: JobContext) -> JobOutcome:
    store = get_store(ctx.settings)
    with session_scope(ctx.settings) as session:
        voice = session.get(Voice, ctx.voice_id) if ctx.voice_id else None
        if voice is None or voice.deleted_at is not None:
            raise JobFailed("The voice was deleted")
        session.expunge(voice)
    params = ctx.params
    text, fmt = str(params["text"]), str(params.get("format", "mp3"))
    try:
        synthesizer = synthesizer_for(voice, store, ctx.settings)
        sentences = max(1, len(split_sentences(text)))

        def progress(chunks_done: int) -> None:
            ctx.report_progress(min(90, int(90 * chunks_done / sentences)))

        chunks: list[TimedChunk] = []
        for chunk in timed_stream(
            synthesizer,
            text,
            speed=float(params.get("speed", 1.0)),
            pitch=float(params.get("pitch", 0.0)),
            language=params.get("language"),
        ):
            chunks.append(chunk)
            progress(len(chunks))
        audio = np.concatenate([c.audio for c in chunks]) if chunks else np.zeros(0, dtype=np.float32)
        data = encode_audio(audio, synthesizer.sample_rate, fmt)
    except DomainError as exc:
        raise JobFailed(exc.message) from exc
    key = speech_key(ctx.owner_id, ctx.job_id, fmt)
    # The words first: once the audio exists the job may be read as done, captions included.
    store.put(
        words_key(ctx.owner_id, ctx.job_id),
        dump_words([w for c in chunks for w in c.words]),
        "application/json",
    )
    store.put(key, data, content_type(fmt))
    return JobOutcome(result_key=key, duration=round(len(audio) / synthesizer.sample_rate, 3))


def _on_completed(session: Session, job: Job, outcome: JobOutcome) -> None:
    record_usage(
        session,
        user_id=job.owner_id,
        kind="tts",
        voice_id=job.voice_id,
        job_id=job.id,
        characters=len(str(job.params.get("text", ""))),
        seconds=outcome.duration or 0.0,
    )


register(
    TaskSpec(
        kind=JobKind.SPEECH,
        run=_run,
        on_completed=_on_completed,
        public_id_prefix="speech",
        event_prefix="speech",
        queue=TTS_QUEUE,
    )
)
