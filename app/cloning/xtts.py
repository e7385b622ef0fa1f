"""Cloning with XTTS (`CHORUS_CLONE_ENGINE=xtts`, weights in `CHORUS_XTTS_MODEL_DIR`).

A clone is the XTTS conditioning latents of the cleaned samples: `build_xtts_voice` returns
them as bytes (stored in their own blob) and a JSON-able description (engine "xtts", model,
quality, timings); `xtts_artifact` makes the stored artifact of that description
(`app.engines.tts.xtts.XTTSArtifact`), which is how the voice speaks later.

The XTTS-v2 weights are under the Coqui Public Model License (non-commercial use only);
the operator provides them and is responsible for using them within that licence.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.audio import DecodedAudio, loudness_normalise, resample, speech_seconds, trim_silence
from app.core.config import Settings
from app.core.errors import InvalidInput
from app.engines import registry
from app.engines.base import Audio
from app.engines.tts.xtts import LATENTS_FORMAT, XTTSArtifact, XTTSEngine

log = logging.getLogger(__name__)

ARTIFACT_VERSION = XTTSArtifact.latest_version
ENGINE = XTTSArtifact.engine
WORK_RATE = 22_050  # XTTS's GPT conditioning rate (the speaker encoder resamples to 16 kHz itself)
TARGET_LUFS = -20.0
MIN_SPEECH_SECONDS = 1.0
# Spoken with the finished voice and compared with the samples (Harvard sentences, public domain).
SCORE_TEXT = "The boy was there when the sun rose. A rod is used to catch pink salmon."

Progress = Callable[[int], None]


def _config_sha256(engine: XTTSEngine) -> str:
    return hashlib.sha256((engine.model_dir / "config.json").read_bytes()).hexdigest()


def prepare(samples: list[DecodedAudio]) -> list[tuple[Audio, float]]:
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
                f"{label} has no speech"
                if speech == 0.0
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
    """(latents bytes, artifact description). The description's "embedding" (Resemblyzer) is for
    the voice row; `xtts_artifact` leaves it out of the stored artifact."""
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

    engine = registry.get_xtts_engine(settings)
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


def xtts_artifact(description: dict[str, Any], latents_key: str) -> XTTSArtifact:
    """The artifact to store for a `build_xtts_voice` description (its "embedding" is for the
    voice row, not the artifact) whose latents are stored under `latents_key`."""
    details = {
        k: v for k, v in description.items() if k not in ("version", "engine", "language", "embedding")
    }
    return XTTSArtifact(latents_key=latents_key, language=str(description["language"]), details=details)
