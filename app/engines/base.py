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
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

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


class Transcriber(Protocol):
    """Speech to text; `transcribe` returns the engine's own result type."""

    name: str


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
