"""Streamed speech: synthesize a sentence, encode it, send it, and settle the credits at the end.

The hold was committed with the request; this object captures it in its own transaction once
the last audio is produced, or releases it if synthesis fails or the client leaves before any
audio reached it. A client that leaves after receiving audio pays for the request.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from app.api.openai.streaming import openai_error_event, sse_event
from app.audio import StreamEncoder
from app.core.config import Settings
from app.core.db import session_scope
from app.core.errors import DomainError
from app.jobs import service as jobs
from app.voices.usage import record_usage

log = logging.getLogger(__name__)

# output_tokens in `speech.audio.done` counts audio in 20 ms frames (there are no audio tokens here).
AUDIO_FRAMES_PER_SECOND = 50


FIRST_SLICE_SECONDS = 0.25
SLICE_SECONDS = 2.0


@dataclass
class SpeechStream:
    """A `ChunkSource` for one /audio/speech request (raw audio or SSE events)."""

    settings: Settings
    user_id: int
    job_id: int
    voice_id: int
    chunks: Iterator[np.ndarray]
    sample_rate: int
    fmt: str
    credits: int
    characters: int
    sse: bool = False
    samples_out: int = 0
    _encoder: StreamEncoder | None = None
    _pending: np.ndarray | None = None  # synthesized audio not yet encoded
    _done: bool = False
    _settled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def duration(self) -> float:
        return self.samples_out / self.sample_rate if self.sample_rate else 0.0

    def _wrap(self, data: bytes) -> bytes:
        if not self.sse or not data:
            return data
        return sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})

    def usage(self) -> dict[str, int]:
        output = math.ceil(self.duration * AUDIO_FRAMES_PER_SECOND)
        return {"input_tokens": self.credits, "output_tokens": output, "total_tokens": self.credits + output}

    def next_chunk(self) -> bytes | None:
        if self._done:
            return None
        try:
            if self._encoder is None:
                self._encoder = StreamEncoder(self.fmt, self.sample_rate)
            while True:  # returns as soon as bytes exist
                if self._pending is None or self._pending.size == 0:
                    self._pending = next(self.chunks, None)  # one sentence per item
                    if self._pending is None:
                        break
                piece = self._next_piece()
                self.samples_out += int(piece.size)
                data = self._encoder.feed(piece)
                if data:
                    return self._wrap(data)
            tail = self._wrap(self._encoder.finish())
            self._done = True
            self._complete()
            if self.sse:
                tail += sse_event({"type": "speech.audio.done", "usage": self.usage()})
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

    def _next_piece(self) -> np.ndarray:
        """Encode a sentence in slices, the first one short: the first bytes leave after a
        quarter second of audio is encoded, not a whole sentence (mp3 encodes ~100x real time,
        so a 4 s sentence would add ~40 ms to the time to first byte)."""
        assert self._pending is not None
        seconds = FIRST_SLICE_SECONDS if self.samples_out == 0 else SLICE_SECONDS
        n = max(1, int(self.sample_rate * seconds))
        piece, self._pending = self._pending[:n], self._pending[n:]
        return piece

    def error_chunk(self, exc: BaseException) -> bytes | None:
        return openai_error_event(exc) if self.sse else None

    def abort(self, delivered: bool) -> None:
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
        if not self._claim():
            return
        with session_scope(self.settings) as session:
            jobs.mark_failed(session, self.job_id, message, attempt=1)
