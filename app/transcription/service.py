"""Speech-to-text and translation done inside the request, billed per second of audio.

Flow: decode and check the upload (nothing held yet) → hold the credits in a committed
transaction of its own → run Whisper outside any transaction (a long inference must not
keep a database write lock) → capture in a second transaction, or release on failure.
Families call `decode_upload`, `check_options`, `start`, then iterate or `run`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from app.audio import DecodedAudio, decode_audio
from app.core.config import Settings
from app.core.db import session_scope
from app.core.errors import DomainError, InvalidInput, UnsupportedMedia
from app.engines.base import Transcriber
from app.engines.stt.whisper import Segment, Transcript, TranscriptInfo, Word
from app.jobs import service as jobs
from app.transcription.formats import GRANULARITIES, RESPONSE_FORMATS, billed_seconds
from app.transcription.languages import WHISPER_LANGUAGES, language_code
from app.voices.usage import record_usage

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
DEFAULT_ENGINE = "base"
MAX_PROMPT_CHARS = 2000

# Client model names -> Whisper engine. None means "the configured default" (whisper-1 and the
# gpt-4o family, and any name we do not know: the model field is accepted for compatibility).
MODEL_ALIASES: dict[str, str | None] = {
    "whisper-1": None,
    "gpt-4o-transcribe": None,
    "gpt-4o-mini-transcribe": None,
    "base": "base",
    "whisper-base": "base",
    "tiny.en": "tiny.en",
    "whisper-tiny.en": "tiny.en",
}

TASK_KINDS = {"transcribe": "transcription", "translate": "translation"}


def default_engine(settings: Settings) -> str:
    """The Whisper model behind whisper-1 (a `transcription_model` setting may override it later)."""
    return str(getattr(settings, "transcription_model", None) or DEFAULT_ENGINE)


def resolve_engine(model: str | None, task: str, settings: Settings) -> str:
    """Which Whisper model serves a request. Translation needs a multilingual model, so a
    default that is English-only (tiny.en) falls back to base for it."""
    name = (model or "").strip().lower()
    engine = MODEL_ALIASES.get(name) if name in MODEL_ALIASES else None
    if engine is None:
        engine = default_engine(settings)
        if task == "translate" and engine.endswith(".en"):
            engine = DEFAULT_ENGINE
    return engine


def cost(duration: float, settings: Settings) -> int:
    """Credits for audio of this duration: per started second."""
    return billed_seconds(duration) * settings.costs.transcription_per_second


@dataclass(frozen=True)
class TranscriptionOptions:
    task: str = "transcribe"
    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    response_format: str = "json"
    granularities: tuple[str, ...] = ()
    stream: bool = False

    @property
    def kind(self) -> str:
        return TASK_KINDS[self.task]

    @property
    def word_timestamps(self) -> bool:
        return "word" in self.granularities


def check_options(opts: TranscriptionOptions) -> TranscriptionOptions:
    """Reject bad parameters before anything is decoded or held; returns normalised options."""
    fmt = (opts.response_format or "json").strip().lower()
    if fmt not in RESPONSE_FORMATS:
        raise InvalidInput(
            f"Invalid response_format '{opts.response_format}'; use one of: {', '.join(RESPONSE_FORMATS)}",
            param="response_format",
        )
    grains: list[str] = []
    for raw in opts.granularities:
        value = raw.strip().lower()
        if value not in GRANULARITIES:
            raise InvalidInput(
                f"Invalid timestamp_granularities value '{raw}'; use 'word' and/or 'segment'",
                param="timestamp_granularities",
            )
        if value not in grains:
            grains.append(value)
    if opts.stream and fmt not in ("json", "text"):
        raise InvalidInput(
            f"stream=true is supported with response_format json or text, not {fmt}", param="stream"
        )
    if not 0.0 <= opts.temperature <= 1.0:
        raise InvalidInput("temperature must be between 0 and 1", param="temperature")
    if opts.prompt and len(opts.prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(f"prompt is longer than {MAX_PROMPT_CHARS} characters", param="prompt")
    language = None
    if opts.language and opts.language.strip():
        language = language_code(opts.language)
        if language not in WHISPER_LANGUAGES:
            raise InvalidInput(
                f"Unsupported language '{opts.language}'; use an ISO-639-1 code such as 'en'",
                param="language",
            )
    return TranscriptionOptions(
        task=opts.task,
        model=opts.model,
        language=language,
        prompt=opts.prompt or None,
        temperature=float(opts.temperature),
        response_format=fmt,
        granularities=tuple(grains),
        stream=opts.stream,
    )


def decode_upload(data: bytes, settings: Settings) -> DecodedAudio:
    """Upload bytes to 16 kHz mono; every refusal names the `file` parameter."""
    if not data:
        raise InvalidInput("The uploaded file is empty", param="file")
    try:
        return decode_audio(
            data,
            target_rate=SAMPLE_RATE,
            max_seconds=settings.max_audio_seconds,
            max_sample_rate=settings.max_sample_rate,
        )
    except UnsupportedMedia as exc:
        raise UnsupportedMedia(exc.message, param="file") from exc
    except InvalidInput as exc:
        raise InvalidInput(exc.message, param="file") from exc


def _engine(name: str, settings: Settings) -> Transcriber:
    """What decodes: a worker through the `stt` queue, or the Whisper model loaded in this process."""
    if settings.transcribes_on_workers:
        from app.transcription.workers import RemoteWhisper

        return RemoteWhisper(name, settings)
    from app.engines import registry

    return registry.get_stt(name, settings)


def _join(texts: list[str]) -> str:
    return " ".join(t.strip() for t in texts if t.strip())


@dataclass
class RunningTranscription:
    """One transcription with its credits held. Iterate `segments()` (or call `run()`); it settles
    itself: captured when the segments are exhausted, released if decoding fails. `abort()` settles
    an abandoned one (client gone): charged only if some text was already delivered."""

    settings: Settings
    user_id: int
    job_id: int
    options: TranscriptionOptions
    audio: np.ndarray
    duration: float
    engine_name: str
    credits: int
    info: TranscriptInfo | None = None
    collected: list[Segment] = field(default_factory=list)
    _settled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def segments(self) -> Iterator[Segment]:
        generator: Iterator[Segment] | None = None
        try:
            engine = _engine(self.engine_name, self.settings)
            info, generator = engine.stream(
                self.audio,
                task=self.options.task,
                language=self.options.language,
                prompt=self.options.prompt,
                temperature=self.options.temperature,
                word_timestamps=self.options.word_timestamps,
            )
            self.info = info
            for segment in generator:
                self.collected.append(segment)
                yield segment
        except GeneratorExit:  # the client went away: a worker decoding for it stops too
            close = getattr(generator, "close", None)
            if close is not None:
                close()
            raise
        except DomainError as exc:
            self.fail(exc.message)
            raise
        except Exception as exc:
            log.exception("transcription job %s failed", self.job_id)
            self.fail(f"Transcription failed: {type(exc).__name__}")
            raise
        self.complete()

    def transcript(self) -> Transcript:
        words: list[Word] = [w for s in self.collected for w in (s.words or [])]
        language = self.info.language if self.info else (self.options.language or "en")
        return Transcript(
            text=_join([s.text for s in self.collected]),
            language=language,
            duration=self.duration,
            segments=list(self.collected),
            words=words,
            language_probability=self.info.language_probability if self.info else 1.0,
            task=self.options.task,
        )

    def run(self) -> Transcript:
        for _ in self.segments():
            pass
        return self.transcript()

    def complete(self) -> None:
        """Capture the hold (nothing when no text came out: silence is not charged) and record usage."""
        with self._lock:
            if self._settled:
                return
            self._settled = True
        text = _join([s.text for s in self.collected])
        with session_scope(self.settings) as session:
            job = jobs.mark_completed(
                session,
                self.job_id,
                1,
                result_key=None,
                duration=round(self.duration, 3),
                credits_spent=None if text else 0,
            )
            if job is None:
                log.warning("transcription job %s was already final; not recording usage", self.job_id)
                return
            record_usage(
                session,
                user_id=self.user_id,
                kind=self.options.kind,
                job_id=self.job_id,
                characters=len(text),
                seconds=self.duration,
            )

    def fail(self, message: str) -> None:
        with self._lock:
            if self._settled:
                return
            self._settled = True
        with session_scope(self.settings) as session:
            jobs.mark_failed(session, self.job_id, message, attempt=1)

    def abort(self, delivered: bool) -> None:
        """The client went away: keep the charge only if it already received text."""
        if delivered and any(s.text.strip() for s in self.collected):
            self.complete()
        else:
            self.fail("The client disconnected before the transcript was delivered")


def start(
    settings: Settings, *, user_id: int, audio: DecodedAudio, options: TranscriptionOptions
) -> RunningTranscription:
    """Hold the credits for this audio in a committed transaction; raises InsufficientCredits, or
    RateLimited / Unavailable when it would run on workers that cannot take it now."""
    engine_name = resolve_engine(options.model, options.task, settings)
    if settings.transcribes_on_workers:
        from app.transcription.workers import admit

        admit(settings)
    credits = cost(audio.duration, settings)
    params = {
        "model": options.model,
        "engine": engine_name,
        "language": options.language,
        "response_format": options.response_format,
        "duration": round(audio.duration, 3),
        "stream": options.stream,
    }
    with session_scope(settings) as session:
        job = jobs.start_inline_job(
            session, settings, owner_id=user_id, kind=options.kind, params=params, credits=credits
        )
        job_id = job.id
    return RunningTranscription(
        settings=settings,
        user_id=user_id,
        job_id=job_id,
        options=options,
        audio=audio.samples,
        duration=audio.duration,
        engine_name=engine_name,
        credits=credits,
    )
