"""Free-text delivery instructions (OpenAI's `instructions`) read as a small vocabulary, so they do
something on every voice (built-in Piper/Kokoro voices and clones alike).

Words and phrases are matched case-insensitively as whole words; what is found combines (speed
factors multiply, semitones and decibels add; each term counts once):

=========================================================  =======  ===========  ======
term (what it matches)                                     speed    pitch        gain
=========================================================  =======  ===========  ======
slower: slower, slowly, slow                               x0.85
faster: faster, quickly, quick, fast                       x1.15
calm: calm, calmly, soft, softly, gently                   x0.95    -1 semitone  -3 dB
excited: excited, excitedly, energetic, cheerful(ly)       x1.05    +2 semitones +2 dB
whisper: whisper, whispering, whispered, quiet, quietly                          -10 dB
loud: loud, loudly, shout, shouting                                              +4 dB
higher: higher, high-pitched, higher pitch, high pitch              +3 semitones
lower: lower, deep, deeper, low-pitched, lower pitch                -3 semitones
=========================================================  =======  ===========  ======

The speed factor multiplies the request's `speed` (clamped to 0.25-4), the pitch goes to the
synthesizer (clamped to +-12 semitones), the gain is applied to the delivered audio through the
same soft limiter the engines use (louder never clips). Anything else in the text is accepted and
reported as ignored; filler words (speak, in, a, voice, tone, please…) are not reported.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from app.engines.delivery import PITCH_MAX, PITCH_MIN, SPEED_MAX, SPEED_MIN, soft_limit
from app.engines.timing import TimedChunk

Chunk = TypeVar("Chunk", np.ndarray, TimedChunk)

# (term, speed factor, semitones, dB, pattern of what it matches)
_VOCABULARY: tuple[tuple[str, float, float, float, str], ...] = (
    ("higher", 1.0, 3.0, 0.0, r"higher(?:[- ]pitch(?:ed)?)?|high[- ]pitch(?:ed)?"),
    ("lower", 1.0, -3.0, 0.0, r"lower(?:[- ]pitch(?:ed)?)?|low[- ]pitch(?:ed)?|deep(?:er)?"),
    ("slower", 0.85, 0.0, 0.0, r"slow(?:er|ly)?"),
    ("faster", 1.15, 0.0, 0.0, r"fast(?:er)?|quick(?:ly|er)?"),
    ("calm", 0.95, -1.0, -3.0, r"calm(?:ly)?|soft(?:ly)?|gently|gentle"),
    ("excited", 1.05, 2.0, 2.0, r"excited(?:ly)?|energetic(?:ally)?|cheerful(?:ly)?"),
    ("whisper", 1.0, 0.0, -10.0, r"whisper(?:ing|ed|s)?|quiet(?:ly)?"),
    ("loud", 1.0, 0.0, 4.0, r"loud(?:ly|er)?|shout(?:ing|ed|s)?"),
)
_TERMS = re.compile(
    "|".join(f"(?P<{term}>\\b(?:{pattern})\\b)" for term, _s, _p, _g, pattern in _VOCABULARY), re.IGNORECASE
)
_EFFECTS = {term: (speed, pitch, gain) for term, speed, pitch, gain, _pattern in _VOCABULARY}
# Words that only frame an instruction ("speak in a calm voice, please"): never reported as ignored.
_FILLER = frozenset(
    (  # noqa: SIM905 (a word list reads better as text)
        "a an and be bit but in it little more much of please rather read say slightly somewhat "
        "speak talk the tone very voice way with your"
    ).split()
)
_WORD = re.compile(r"[^\W_]+")
_PUNCTUATION = " ,.;:!?-\u2013\u2014\"'()"
HEADER_MAX_CHARS = 200


@dataclass(frozen=True)
class Instructions:
    """What a request's instructions change: speed factor, semitones, decibels, and the terms found."""

    speed_factor: float = 1.0
    pitch: float = 0.0
    gain_db: float = 0.0
    applied: tuple[str, ...] = field(default_factory=tuple)
    ignored: str = ""

    def speed(self, requested: float) -> float:
        """The request's speed times the factor, clamped to what the engines take."""
        return float(min(SPEED_MAX, max(SPEED_MIN, requested * self.speed_factor)))

    def shifted_pitch(self, requested: float = 0.0) -> float:
        return float(min(PITCH_MAX, max(PITCH_MIN, requested + self.pitch)))

    def headers(self) -> dict[str, str]:
        """X-Chorus-Instructions-Applied / -Ignored (latin-1 safe, printable ASCII)."""
        return {
            "X-Chorus-Instructions-Applied": ", ".join(self.applied),
            "X-Chorus-Instructions-Ignored": header_safe(self.ignored),
        }


def parse_instructions(text: str | None) -> Instructions:
    """Read the vocabulary out of free text; None or blank text changes nothing."""
    if not text or not text.strip():
        return Instructions()
    speed, pitch, gain = 1.0, 0.0, 0.0
    applied: list[str] = []
    for match in _TERMS.finditer(text):
        term = match.lastgroup
        if term is None or term in applied:
            continue
        applied.append(term)
        s, p, g = _EFFECTS[term]
        speed, pitch, gain = speed * s, pitch + p, gain + g
    return Instructions(speed, pitch, gain, tuple(applied), ", ".join(_unknown_fragments(text)))


def _unknown_fragments(text: str) -> list[str]:
    """The stretches of text between known terms that say something (not only filler words)."""
    fragments: list[str] = []
    for piece in _between_terms(text):
        fragment = " ".join(piece.split()).strip(_PUNCTUATION)
        words = _WORD.findall(fragment)
        if any(w.lower() not in _FILLER for w in words):
            fragments.append(fragment)
    return fragments


def _between_terms(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _TERMS.finditer(text):
        pieces.append(text[start : match.start()])
        start = match.end()
    return [*pieces, text[start:]]


def header_safe(value: str, limit: int = HEADER_MAX_CHARS) -> str:
    """Printable ASCII only (accents folded, other characters dropped), one line, at most `limit`."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    printable = "".join(c if c.isprintable() else " " for c in folded)
    text = " ".join(printable.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def with_gain(chunks: Iterator[Chunk], gain_db: float) -> Iterator[Chunk]:
    """The chunks (audio, or timed audio) scaled by `gain_db` through the soft limiter; the
    chunks themselves when the gain is 0."""
    if gain_db == 0.0:
        return chunks
    return _gained(chunks, float(10.0 ** (gain_db / 20.0)))


def _scaled(audio: np.ndarray, factor: float) -> np.ndarray:
    return soft_limit((np.asarray(audio, dtype=np.float32) * np.float32(factor)).astype(np.float32))


def _gained(chunks: Iterator[Chunk], factor: float) -> Iterator[Chunk]:
    try:
        for chunk in chunks:
            if isinstance(chunk, TimedChunk):
                yield replace(chunk, audio=_scaled(chunk.audio, factor))
            else:
                yield _scaled(chunk, factor)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:  # a client that left stops the synthesis too
            close()
