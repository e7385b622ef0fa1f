"""How every built-in engine's sentences reach the listener: speed and pitch checks, the pause
between sentences, WORLD pitch/timbre/stretch where the model itself cannot do it, a soft
limiter, and each word's time. Piper and Kokoro both speak through `deliver`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from app.core.errors import InvalidInput
from app.engines.base import Audio
from app.engines.timbre.profile import TimbreProfile
from app.engines.timbre.transformer import TimbreTransformer, convert
from app.engines.timing import PhonemeRun, TimedChunk, sentence_words

SPEED_MIN, SPEED_MAX = 0.25, 4.0
PITCH_MIN, PITCH_MAX = -12.0, 12.0
LIMIT_KNEE = 0.9
STRETCH_TOLERANCE = 0.04  # leave the model's own duration alone when it is this close to the target


def soft_limit(x: Audio, knee: float = LIMIT_KNEE) -> Audio:
    """Leave samples below the knee alone and bend the rest smoothly under 1.0 (no hard clips)."""
    a = np.abs(x)
    over = a > knee
    if not over.any():
        return x
    y = x.copy()
    y[over] = np.sign(x[over]) * (knee + (1.0 - knee) * np.tanh((a[over] - knee) / (1.0 - knee)))
    return y


def check_speed(speed: float) -> float:
    speed = float(speed)
    if not np.isfinite(speed) or not SPEED_MIN <= speed <= SPEED_MAX:
        raise InvalidInput(f"speed must be between {SPEED_MIN} and {SPEED_MAX}", param="speed")
    return speed


def check_pitch(pitch: float) -> float:
    pitch = float(pitch)
    if not np.isfinite(pitch) or not PITCH_MIN <= pitch <= PITCH_MAX:
        raise InvalidInput(f"pitch must be between {PITCH_MIN:g} and {PITCH_MAX:g} semitones", param="pitch")
    return pitch


def residual_rate(rate: float) -> float:
    """1.0 when a time-stretch of `rate` would be inaudible, else `rate`."""
    return 1.0 if abs(rate - 1.0) <= STRETCH_TOLERANCE else rate


@dataclass(frozen=True)
class SentenceAudio:
    """What a model made of one sentence: its audio, the time-stretch rate still needed to reach
    the requested speed (1.0: none), and where each spoken word is in `audio` (samples; None
    when the model gives no durations: the words then share the sentence by letters)."""

    audio: Audio
    residual: float = 1.0
    word_spans: list[PhonemeRun] | None = None


def deliver(
    sentences: Sequence[str],
    sentence_audio: Callable[[str], SentenceAudio],
    *,
    sample_rate: int,
    speed: float,
    pitch: float,
    profile: TimbreProfile | None,
    pause_s: float,
) -> Iterator[TimedChunk]:
    """Yield one float32 chunk per sentence, with that sentence's words timed.

    `sentence_audio(sentence)` gives the model's audio, the time-stretch rate still needed to
    reach `speed`, and the spoken words' spans. A sentence that needs a stretch goes through one
    WORLD pass (stretch + pitch + timbre; its word times scale with its length); otherwise a
    streaming WORLD transformer applies pitch and timbre across sentence joins (timing kept).
    Sentences are separated by `pause_s` (scaled by speed).
    """
    prof = (profile or TimbreProfile()).with_shift(pitch)
    transform = not prof.is_identity
    pause = np.zeros(int(round(pause_s / speed * sample_rate)), dtype=np.float32)
    fade = min(int(0.005 * sample_rate), 64)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    transformer = TimbreTransformer(prof, sample_rate) if transform else None
    last = len(sentences) - 1
    offset = 0  # samples of the utterance before this sentence
    for i, sentence in enumerate(sentences):
        made = sentence_audio(sentence)
        audio, residual = made.audio, made.residual
        model_length = len(audio)
        tail = i == last
        if residual != 1.0:
            # Whole sentence in one WORLD pass: stretch + pitch + timbre. A sentence is a
            # complete utterance with silent edges; short fades make the joins safe.
            audio = convert(audio, sample_rate, prof, rate=residual)
            if len(audio) > 2 * fade:
                audio[:fade] *= ramp
                audio[-fade:] *= ramp[::-1]
            chunk = audio if tail else np.concatenate([audio, pause])
            if transformer is not None:  # emit what it still holds from the previous sentence
                chunk = np.concatenate([transformer.flush(), chunk])
        elif transformer is not None:
            chunk = transformer.process(audio if tail else np.concatenate([audio, pause]))
            if tail:
                chunk = np.concatenate([chunk, transformer.flush()])
        else:
            chunk = audio if tail else np.concatenate([audio, pause])
        scale = len(audio) / model_length if model_length else 1.0
        spans = [run.scaled(scale) for run in made.word_spans or []]
        words = [
            w.shifted(offset / sample_rate)
            for w in sentence_words(sentence, spans, sample_rate, length=len(audio))
        ]
        offset += len(audio) + (0 if tail else len(pause))
        yield TimedChunk(soft_limit(chunk.astype(np.float32)), words)
