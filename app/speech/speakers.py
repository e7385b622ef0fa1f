"""Turning a voice row into something that speaks: a Piper engine plus an optional timbre profile.

Built-in voices come from the catalogue; cloned voices from their stored artifact.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.config import Settings
from app.core.errors import InvalidInput
from app.storage import BlobStore
from app.voices.models import Voice

_ARTIFACT_CACHE_SIZE = 64
_artifacts: OrderedDict[str, dict[str, Any]] = OrderedDict()
_artifacts_lock = threading.Lock()


@dataclass
class Speaker:
    name: str
    engine: Any  # app.engines.tts.piper.PiperEngine
    profile: Any  # app.engines.timbre.profile.TimbreProfile | None

    @property
    def sample_rate(self) -> int:
        return int(self.engine.sample_rate)

    def stream(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, language: str | None = None
    ) -> Iterator[np.ndarray]:
        """Audio one sentence at a time (the first arrives before the rest is synthesized)."""
        return self.engine.stream(
            text, speed=speed, pitch=pitch, language=language, profile=self.profile, voice_name=self.name
        )


def _artifact(store: BlobStore, key: str) -> dict[str, Any]:
    with _artifacts_lock:
        if key in _artifacts:
            _artifacts.move_to_end(key)
            return _artifacts[key]
    data = json.loads(store.get(key))
    with _artifacts_lock:
        _artifacts[key] = data
        while len(_artifacts) > _ARTIFACT_CACHE_SIZE:
            _artifacts.popitem(last=False)
    return data


def speaker_for(voice: Voice, store: BlobStore, settings: Settings) -> Speaker:
    from app.engines import registry
    from app.engines.timbre.profile import TimbreProfile
    from app.voices.builtin import builtin_speaker_parts

    if voice.kind == "builtin":
        try:
            engine, profile = builtin_speaker_parts(voice.builtin_key or "", settings)
        except KeyError as exc:
            raise InvalidInput(f"Voice {voice.voice_id} is no longer available") from exc
        return Speaker(voice.name, engine, profile)
    if not voice.artifact_key:
        raise InvalidInput(f"Voice {voice.voice_id} is not ready to speak")
    artifact = _artifact(store, voice.artifact_key)
    if artifact.get("engine") == "xtts":
        from app.cloning.xtts import xtts_speaker

        return xtts_speaker(
            store.get(artifact["latents_key"]),
            settings,
            name=voice.name,  # type: ignore[return-value]
            language=artifact.get("language", "en"),
        )
    engine = registry.get_piper_engine(artifact.get("base_voice", "joe"), settings)
    profile_data = artifact.get("profile")
    profile = TimbreProfile.from_dict(profile_data) if profile_data else None
    return Speaker(voice.name, engine, profile)


def synthesize(
    speaker: Speaker, text: str, *, speed: float, pitch: float, language: str | None, on_chunk: Any = None
) -> np.ndarray:
    chunks = []
    for chunk in speaker.stream(text, speed=speed, pitch=pitch, language=language):
        chunks.append(chunk)
        if on_chunk is not None:
            on_chunk(len(chunks))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)
