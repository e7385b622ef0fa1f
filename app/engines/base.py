"""What every engine offers, as protocols: the domains depend on these, never on a model library.

- `Synthesizer`: something that speaks (a Piper model, a Piper model with a timbre profile, an
  XTTS speaker, a Kokoro voice...). It streams float32 mono audio one sentence at a time, so the
  first sentence can leave before the rest is made, and says which languages it reads.
- `Transcriber`: speech to text (Whisper).
- `SpeakerEmbedder`: a fixed-size speaker embedding of a stretch of speech (Resemblyzer).

A TTS engine is one module under `app/engines/tts/` that registers a `VoiceBackend` (see
`app.engines.voices`): how to turn its typed artifact into a `Synthesizer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from app.engines.timing import TimedChunk, sentence_words

if TYPE_CHECKING:
    from app.engines.stt.whisper import Segment, TranscriptInfo

Audio = NDArray[np.float32]


@runtime_checkable
class Synthesizer(Protocol):
    """A voice that can speak."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def languages(self) -> frozenset[str]:
        """Language families it reads (e.g. {"en"}); text in another language is refused."""
        ...

    def stream(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, language: str | None = None
    ) -> Iterator[Audio]:
        """Validate now (raise InvalidInput before any audio), then yield one chunk per sentence."""
        ...


@runtime_checkable
class TimedSynthesizer(Synthesizer, Protocol):
    """A voice that also says when each word is spoken (Piper, Kokoro: from their durations)."""

    def stream_timed(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, language: str | None = None
    ) -> Iterator[TimedChunk]:
        """As `stream`, each chunk with its sentence's words timed from the start."""
        ...


def timed_stream(
    synthesizer: Synthesizer,
    text: str,
    *,
    speed: float = 1.0,
    pitch: float = 0.0,
    language: str | None = None,
) -> Iterator[TimedChunk]:
    """Chunks with word timings from any voice: its own (`TimedSynthesizer`), else each chunk's
    duration shared by its sentence's words by letters (one chunk per sentence, as engines
    stream; XTTS); words are then approximate. Validates before returning, like `stream`."""
    if isinstance(synthesizer, TimedSynthesizer):
        return synthesizer.stream_timed(text, speed=speed, pitch=pitch, language=language)
    chunks = synthesizer.stream(text, speed=speed, pitch=pitch, language=language)
    return _shared_by_letters(chunks, text, synthesizer.sample_rate, language)


def _shared_by_letters(
    chunks: Iterator[Audio], text: str, rate: int, language: str | None
) -> Iterator[TimedChunk]:
    from app.engines.text import normalise_text, split_sentences

    sentences = split_sentences(normalise_text(text, language=language or "en"), 10_000)
    offset = 0
    for n, chunk in enumerate(chunks):
        sentence = sentences[n] if n < len(sentences) else ""
        words = [w.shifted(offset / rate) for w in sentence_words(sentence, [], rate, length=len(chunk))]
        offset += len(chunk)
        yield TimedChunk(chunk, words)


class Transcriber(Protocol):
    """Speech to text as it is decoded: Whisper in this process, or a worker answering for it."""

    def stream(
        self,
        audio: np.ndarray,
        *,
        task: str = "transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float = 0.0,
        word_timestamps: bool = False,
    ) -> tuple[TranscriptInfo, Iterator[Segment]]:
        """Validate now, then return the info (language known) and the segments as decoded."""
        ...


class SpeakerEmbedder(Protocol):
    def embed(self, samples: Audio, rate: int) -> Audio:
        """A unit-length speaker embedding of `samples` at `rate` Hz."""
        ...


def synthesize(
    synthesizer: Synthesizer,
    text: str,
    *,
    speed: float = 1.0,
    pitch: float = 0.0,
    language: str | None = None,
    on_chunk: ProgressCallback | None = None,
) -> Audio:
    """The whole utterance at once (jobs, previews); `on_chunk(n)` after each sentence."""
    chunks: list[Audio] = []
    for chunk in synthesizer.stream(text, speed=speed, pitch=pitch, language=language):
        chunks.append(chunk)
        if on_chunk is not None:
            on_chunk(len(chunks))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)


class ProgressCallback(Protocol):
    def __call__(self, chunks_done: int, /) -> None: ...
