"""Streamed speech done inside the request, billed like TTS (1 credit per UTF-8 byte by default).

Flow (the speech twin of app.transcription.service): the family resolves the voice and starts its
speaker's sentence stream (so a refusal costs nothing) → `start_streamed_speech` holds the credits
on an inline job, in the request's transaction (committed before the first byte goes out) → the
family pulls encoded audio with `next_bytes()` → the last call captures the hold and records the
usage; a failure releases it. `abort()` settles a stream the client left: charged only if some
audio already reached it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.audio import StreamEncoder
from app.core.config import Settings
from app.core.db import session_scope
from app.core.errors import DomainError
from app.engines.timing import TimedChunk, WordTiming
from app.jobs import service as jobs
from app.speech.service import cost
from app.voices.usage import record_usage

log = logging.getLogger(__name__)

JOB_KIND = "speech_stream"
# The first bytes leave after a quarter second of audio is encoded, then 2 s slices.
FIRST_SLICE_SECONDS = 0.25
SLICE_SECONDS = 2.0


@dataclass
class StreamedSpeech:
    """One streamed speech with its credits held; produces encoded audio and settles itself."""

    settings: Settings
    user_id: int
    job_id: int
    job_public_id: str
    voice_id: int
    chunks: Iterator[TimedChunk]
    sample_rate: int
    fmt: str
    credits: int
    characters: int
    samples_out: int = 0
    finished: bool = False  # the last audio was returned and the hold captured
    _encoder: StreamEncoder | None = None
    _pending: np.ndarray | None = None  # synthesized audio not yet encoded
    _words: list[WordTiming] = field(default_factory=list)  # timed, not yet taken
    words_spoken: list[WordTiming] = field(default_factory=list)  # every word taken so far
    _done: bool = False
    _settled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def duration(self) -> float:
        return self.samples_out / self.sample_rate if self.sample_rate else 0.0

    def next_bytes(self) -> bytes | None:
        """The next encoded audio (non-empty), or the stream's tail (maybe empty) once the text is
        spoken, after which `finished` is true and the credits are captured; None when over.
        A failure releases the credits, then raises."""
        if self._done:
            return None
        try:
            if self._encoder is None:
                self._encoder = StreamEncoder(self.fmt, self.sample_rate)
            while True:  # returns as soon as bytes exist
                if self._pending is None or self._pending.size == 0:
                    chunk = next(self.chunks, None)  # one sentence per item
                    if chunk is None:
                        break
                    self._pending = chunk.audio
                    self._words += chunk.words
                piece = self._next_piece()
                self.samples_out += int(piece.size)
                data = self._encoder.feed(piece)
                if data:
                    return data
            tail = self._encoder.finish()
            self._done = True
            self._complete()
            self.finished = True
            return tail
        except Exception as exc:
            self._done = True
            if self._encoder is not None:
                self._encoder.close()
            if not isinstance(exc, DomainError):
                log.exception("speech stream for job %s failed", self.job_id)
            message = (
                exc.message if isinstance(exc, DomainError) else f"Synthesis failed: {type(exc).__name__}"
            )
            self._fail(message)
            raise

    def take_words(self) -> list[WordTiming]:
        """The words the audio sent so far has finished saying (all of them once finished)."""
        heard = self.duration + 1e-3
        taken = list(takewhile(lambda w: self.finished or w.end <= heard, self._words))
        self._words = self._words[len(taken) :]
        self.words_spoken += taken
        return taken

    def _next_piece(self) -> np.ndarray:
        """Encode a sentence in slices, the first one short: the first bytes leave after a
        quarter second of audio is encoded, not a whole sentence (mp3 encodes ~100x real time,
        so a 4 s sentence would add ~40 ms to the time to first byte)."""
        assert self._pending is not None
        seconds = FIRST_SLICE_SECONDS if self.samples_out == 0 else SLICE_SECONDS
        n = max(1, int(self.sample_rate * seconds))
        piece, self._pending = self._pending[:n], self._pending[n:]
        return piece

    def abort(self, delivered: bool) -> None:
        """The client went away: keep the charge only if it already received audio. Idempotent."""
        self._done = True
        if self._encoder is not None:
            self._encoder.close()
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()
        if delivered:
            self._complete()
        else:
            self._fail("The client disconnected before any audio was delivered")

    def _claim(self) -> bool:
        with self._lock:
            if self._settled:
                return False
            self._settled = True
            return True

    def _complete(self) -> None:
        """Capture the hold and record the usage, in a transaction of its own."""
        if not self._claim():
            return
        duration = round(self.duration, 3)
        with session_scope(self.settings) as session:
            job = jobs.mark_completed(
                session, self.job_id, 1, result_key=None, duration=duration, credits_spent=None
            )
            if job is None:
                log.warning("speech job %s was already final; not recording usage", self.job_id)
                return
            record_usage(
                session,
                user_id=self.user_id,
                kind="speech",
                voice_id=self.voice_id,
                job_id=self.job_id,
                characters=self.characters,
                seconds=duration,
            )

    def _fail(self, message: str) -> None:
        """Release the hold, in a transaction of its own."""
        if not self._claim():
            return
        with session_scope(self.settings) as session:
            jobs.mark_failed(session, self.job_id, message, attempt=1)


def start_streamed_speech(
    session: Session,
    settings: Settings,
    *,
    user_id: int,
    voice_id: int,
    text: str,
    chunks: Iterator[TimedChunk],
    sample_rate: int,
    fmt: str,
    params: dict[str, Any],
) -> StreamedSpeech:
    """Hold the cost of `text` on an inline job in the caller's transaction (raises
    InsufficientCredits); the job is born processing under a lease, so a crash still releases."""
    credits = cost(text, settings)
    job = jobs.start_inline_job(
        session, settings, owner_id=user_id, kind=JOB_KIND, credits=credits, voice_id=voice_id, params=params
    )
    return StreamedSpeech(
        settings=settings,
        user_id=user_id,
        job_id=job.id,
        job_public_id=job.public_id,
        voice_id=voice_id,
        chunks=chunks,
        sample_rate=sample_rate,
        fmt=fmt,
        credits=credits,
        characters=len(text),
    )
