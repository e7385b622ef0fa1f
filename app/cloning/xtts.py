"""Cloning and speaking with XTTS (`CHORUS_CLONE_ENGINE=xtts`, weights in `CHORUS_XTTS_MODEL_DIR`).

A clone is the XTTS conditioning latents of the cleaned samples: `build_xtts_voice` returns
them as bytes (the artifact to store) and a JSON-able description (engine "xtts", model,
quality, timings). `xtts_speaker` turns those bytes back into something that speaks, with
the same `.stream(text, speed=, pitch=, language=)` / `.sample_rate` as speech.speakers.Speaker.

The XTTS-v2 weights are under the Coqui Public Model License (non-commercial use only);
the operator provides them and is responsible for using them within that licence.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.audio import DecodedAudio, loudness_normalise, resample, speech_seconds, trim_silence
from app.core.config import Settings
from app.core.errors import InvalidInput
from app.engines.tts.xtts import LATENTS_FORMAT, XTTSEngine, XTTSUnavailable

log = logging.getLogger(__name__)

ARTIFACT_VERSION = 1
ENGINE = "xtts"
WORK_RATE = 22_050  # XTTS's GPT conditioning rate (the speaker encoder resamples to 16 kHz itself)
TARGET_LUFS = -20.0
MIN_SPEECH_SECONDS = 1.0
# Spoken with the finished voice and compared with the samples (Harvard sentences, public domain).
SCORE_TEXT = "The boy was there when the sun rose. A rod is used to catch pink salmon."

Progress = Callable[[int], None]

_engines: dict[str, XTTSEngine] = {}
_engines_lock = threading.Lock()


def get_engine(settings: Settings) -> XTTSEngine:
    """The XTTS engine for `settings.xtts_model_dir`, loaded once per process."""
    if settings.xtts_model_dir is None:
        raise XTTSUnavailable(
            "XTTS cloning is selected (CHORUS_CLONE_ENGINE=xtts) but CHORUS_XTTS_MODEL_DIR is not set"
        )
    key = str(Path(settings.xtts_model_dir).resolve())
    engine = _engines.get(key)
    if engine is None:
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = XTTSEngine(Path(key))
    return engine


def reset_engines() -> None:
    """Forget loaded engines (tests)."""
    with _engines_lock:
        _engines.clear()


def _config_sha256(engine: XTTSEngine) -> str:
    return hashlib.sha256((engine.model_dir / "config.json").read_bytes()).hexdigest()


def prepare(samples: list[DecodedAudio]) -> list[tuple[np.ndarray, float]]:
    """(audio at WORK_RATE trimmed and loudness-normalised, speech seconds) per sample; no speech fails."""
    many = len(samples) > 1
    out = []
    for n, s in enumerate(samples, start=1):
        label = f"Sample {n}" if many else "The sample"
        x = np.asarray(s.samples, dtype=np.float32).reshape(-1)
        if s.sample_rate != WORK_RATE:
            x = resample(x, s.sample_rate, WORK_RATE)
        x = trim_silence(x, WORK_RATE)
        speech = speech_seconds(x, WORK_RATE) if len(x) else 0.0
        if speech < MIN_SPEECH_SECONDS:
            raise InvalidInput(
                f"{label} has no speech" if speech == 0.0
                else f"{label} has only {speech:.1f} s of speech; record at least 3 s of someone talking"
            )
        out.append((loudness_normalise(x, WORK_RATE, TARGET_LUFS), speech))
    return out


def build_xtts_voice(
    samples: list[DecodedAudio],
    settings: Settings,
    progress: Progress,
    *,
    language: str | None = None,
    score: bool = True,
) -> tuple[bytes, dict[str, Any]]:
    """(latents bytes, artifact description). The description's "embedding" (Resemblyzer, for the
    voice row) is not part of the artifact: pop it before storing."""
    from app.engines import registry
    from app.engines.speaker import cosine

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str, pct: int) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now
        progress(pct)

    if not samples:
        raise InvalidInput("The voice has no samples")
    prepared = prepare(samples)
    lap("prepare", 15)

    engine = get_engine(settings)
    lang = engine.resolve_language(language)
    lap("load", 25)

    latents = engine.compute_latents([a for a, _ in prepared], WORK_RATE)
    data = engine.to_bytes(latents)
    lap("latents", 60)

    encoder = registry.get_speaker_encoder()
    embeddings = [encoder.embed(a, WORK_RATE) for a, _ in prepared]
    mean = np.mean(np.stack(embeddings), axis=0)
    mean = mean / (np.linalg.norm(mean) or 1.0)
    lap("embed", 70)

    similarity = None
    if score:
        test = engine.synthesize(SCORE_TEXT, latents, lang)
        similarity = round(cosine(encoder.embed(test, engine.sample_rate), mean), 4)
        lap("score", 90)

    meta: dict[str, Any] = {
        "version": ARTIFACT_VERSION,
        "engine": ENGINE,
        "language": lang,
        "latents": {"format": LATENTS_FORMAT, "bytes": len(data)},
        "model": {
            "dir": engine.model_dir.name,
            "config_sha256": _config_sha256(engine),
            "gpt_width": engine.model_dim,
            "sample_rate": engine.sample_rate,
        },
        "licence": "XTTS-v2 weights: Coqui Public Model License (non-commercial)",
        "quality": {"similarity": similarity, "scored_against": "the clone samples (not held out)"},
        "samples": [
            {"seconds": round(len(a) / WORK_RATE, 2), "speech_seconds": round(sp, 2)} for a, sp in prepared
        ],
        "timings": timings,
        "embedding": [float(v) for v in mean],
    }
    log.info("XTTS clone built: %d samples, similarity %s, %s", len(prepared), similarity, timings)
    return data, meta


@dataclass
class XTTSSpeaker:
    """A cloned XTTS voice, speaking like speech.speakers.Speaker."""

    name: str
    engine: XTTSEngine
    latents: dict[str, Any]
    language: str = "en"

    @property
    def sample_rate(self) -> int:
        return int(self.engine.sample_rate)

    def stream(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, language: str | None = None
    ) -> Iterator[np.ndarray]:
        """Audio one sentence at a time (the first arrives before the rest is synthesized)."""
        lang = language if language and language.lower() != "auto" else self.language
        return self.engine.stream(text, self.latents, lang, speed, pitch=pitch)


def xtts_speaker(
    voice_artifact_bytes: bytes, settings: Settings, *, name: str = "xtts", language: str = "en"
) -> XTTSSpeaker:
    """Speaker for stored latents bytes; InvalidInput when they do not fit the configured model."""
    engine = get_engine(settings)
    try:
        latents = engine.latents_from_bytes(voice_artifact_bytes)
    except ValueError as exc:
        raise InvalidInput(f"Voice {name} cannot speak with the installed XTTS model: {exc}") from exc
    return XTTSSpeaker(name=name, engine=engine, latents=latents, language=language)
