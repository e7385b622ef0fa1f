"""Speech requests: validation, cost, and TTS jobs. Families translate their shapes to these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audio import check_format
from app.core.config import Settings
from app.core.db import utcnow
from app.core.errors import Conflict, InvalidInput, NotFound, VoiceNotReady
from app.engines.catalogue import voices_speaking
from app.engines.languages import detect_language, language_label
from app.engines.text import normalise_text
from app.jobs import service as jobs
from app.jobs.models import JOB_COMPLETED, Job
from app.speech.speakers import voice_languages
from app.storage import get_store
from app.voices import service as voices
from app.voices.models import Voice

MIN_SPEED, MAX_SPEED = 0.25, 4.0
MIN_PITCH, MAX_PITCH = -12.0, 12.0


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    speed: float = 1.0
    pitch: float = 0.0
    format: str = "mp3"
    language: str | None = None


def validate(
    req: SpeechRequest, settings: Settings, *, max_chars: int | None = None, max_bytes: int | None = None
) -> SpeechRequest:
    """Reject what cannot be spoken, with a message a person can act on."""
    limit = max_chars or settings.max_tts_chars
    if not req.text or not req.text.strip():
        raise InvalidInput("Text is empty", param="text")
    if len(req.text) > limit:
        raise InvalidInput(f"Text is {len(req.text)} characters; the limit is {limit}", param="text")
    if max_bytes is not None and len(req.text.encode()) > max_bytes:
        raise InvalidInput(f"Text is {len(req.text.encode())} bytes; the limit is {max_bytes}", param="text")
    normalise_text(req.text)  # raises when nothing speakable remains
    if not MIN_SPEED <= req.speed <= MAX_SPEED:
        raise InvalidInput(f"speed must be between {MIN_SPEED} and {MAX_SPEED}", param="speed")
    if not MIN_PITCH <= req.pitch <= MAX_PITCH:
        raise InvalidInput(f"pitch must be between {MIN_PITCH:g} and {MAX_PITCH:g} semitones", param="pitch")
    return SpeechRequest(
        req.text,
        float(req.speed),
        float(req.pitch),
        check_format(req.format),
        req.language.strip().lower() if req.language else None,
    )


def cost(text: str, settings: Settings) -> int:
    """1 credit per UTF-8 byte by default (the costs table decides)."""
    return len(text.encode("utf-8")) * settings.costs.tts_per_byte


def speakable_voice(session: Session, user_id: int, ref: str | int) -> Voice:
    """A voice the user may speak with, that is ready (`reading_language` checks the language
    against what the voice reads: a clone on the voice bank reads every language of the bank,
    whatever language its row was created with)."""
    voice = voices.get_readable_voice(session, user_id, ref)
    if voice.status != "completed":
        raise VoiceNotReady(
            f"Voice {voice.voice_id} is {voice.status.upper()}; only COMPLETED voices can speak"
        )
    return voice


def reading_language(
    text: str,
    *,
    declared: str | None,
    languages: frozenset[str] | None,
    voice_name: str,
    settings: Settings,
) -> str:
    """The language a text is read in. The text decides (`detect_language`): its script, or for
    Latin-script text a language model sure enough of itself; the declared language (else the
    voice's own) settles short or unclear Latin text. A voice that cannot read it is refused
    before anything is charged, with the voices that can (`languages` None: no check here)."""
    primary = next(iter(languages)) if languages and len(languages) == 1 else None
    hint = declared if declared and declared.lower() != "auto" else primary
    language = detect_language(text, hint)
    if languages is not None and language not in languages:
        raise InvalidInput(_refusal(language, voice_name, languages, settings), param="language")
    return language


def _refusal(language: str, voice_name: str, languages: frozenset[str], settings: Settings) -> str:
    label = language_label(language)
    speaks = ", ".join(f"{language_label(code)} ({code})" for code in sorted(languages))
    able = [v.key for v in voices_speaking(language, settings.resolved_models_dir)]
    if able:
        shown = ", ".join(able[:8]) + (f" and {len(able) - 8} more" if len(able) > 8 else "")
        can = f"Voices that speak {label}: {shown}"
    else:
        can = f"No built-in voice speaks {label}"
    return f"This text is {label} ({language}); voice {voice_name} speaks {speaks}. {can}."


def job_voice(session: Session, job: Job) -> Voice | None:
    """The voice a speech job speaks with, even if it was deleted since (the job's owner may see it)."""
    return session.get(Voice, job.voice_id) if job.voice_id else None


def create_tts_job(
    session: Session,
    settings: Settings,
    *,
    user_id: int,
    voice_ref: str | int,
    request: SpeechRequest,
    callback_url: str | None = None,
    extra: dict[str, Any] | None = None,
    max_chars: int | None = None,
    max_bytes: int | None = None,
) -> Job:
    """Hold the cost and queue the job; `max_chars`/`max_bytes` replace the server's text limit
    (CHORUS_MAX_TTS_CHARS) when the caller's contract sets its own, e.g. in UTF-8 bytes."""
    req = validate(request, settings, max_chars=max_chars, max_bytes=max_bytes)
    voice = speakable_voice(session, user_id, voice_ref)
    language = reading_language(
        req.text,
        declared=req.language,
        languages=voice_languages(voice, get_store(settings), settings),
        voice_name=voice.name,
        settings=settings,
    )
    params = {
        "text": req.text,
        "speed": req.speed,
        "pitch": req.pitch,
        "format": req.format,
        "language": language,
        **(extra or {}),
    }
    return jobs.create_job(
        session,
        settings,
        owner_id=user_id,
        kind="speech",
        params=params,
        credits=cost(req.text, settings),
        voice_id=voice.id,
        callback_url=callback_url,
    )


def list_tts_jobs(
    session: Session, user_id: int, *, status: str | None, skip: int, limit: int
) -> tuple[list[Job], int]:
    query = select(Job).where(Job.owner_id == user_id, Job.kind == "speech")
    if status:
        query = query.where(Job.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Job.created_at.desc(), Job.id.desc()).offset(skip).limit(limit)
    ).all()
    return list(rows), int(total)


def rate_tts_job(session: Session, user_id: int, job_ref: str | int, rating: int) -> Job:
    """The owner's 1-5 rating of a finished speech job; rating again replaces it."""
    if not 1 <= rating <= 5:
        raise InvalidInput("rating must be an integer from 1 to 5", param="rating")
    job = jobs.get_owned_job(session, user_id, job_ref, kind="speech")
    if job.status != JOB_COMPLETED:
        raise InvalidInput(f"Only a completed job can be rated; this one is {job.status}", param="rating")
    job.rating = rating
    job.rated_at = utcnow()
    session.flush()
    return job


def job_captions(session: Session, settings: Settings, user_id: int, job_ref: str | int, fmt: str) -> str:
    """A finished speech job's captions in `fmt` (srt, vtt, json), from the words its engine timed."""
    from app.speech.captions import check_format, load_words, render, words_key

    fmt = check_format(fmt)
    job = jobs.get_owned_job(session, user_id, job_ref, kind="speech")
    if job.status != JOB_COMPLETED:
        raise Conflict(f"Captions exist once the job is completed; this one is {job.status}")
    store = get_store(settings)
    key = words_key(job.owner_id, job.id)
    if not store.exists(key):
        raise NotFound("This job has no captions (it was made before speech was timed by word)")
    return render(load_words(store.get(key)), fmt)
