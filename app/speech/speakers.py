"""Turning a voice row into a `Synthesizer`: the voice's side of `app.engines.voices`.

Built-in voices are catalogue entries (by `builtin_key`); cloned voices are their stored
artifact (read once, typed and validated, then kept in a small LRU). Which engine speaks,
and how, is the engines' business.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from app.core.config import Settings
from app.core.errors import InvalidInput, NotFound
from app.engines.base import Synthesizer
from app.engines.voices import (
    ArtifactError,
    VoiceArtifact,
    VoiceContext,
    builtin_synthesizer,
    builtin_voice,
    parse_artifact,
)
from app.storage import BlobStore
from app.voices.models import Voice

_ARTIFACT_CACHE_SIZE = 64
_artifacts: OrderedDict[str, VoiceArtifact] = OrderedDict()
_artifacts_lock = threading.Lock()


def _artifact(store: BlobStore, key: str, voice: Voice) -> VoiceArtifact:
    with _artifacts_lock:
        if key in _artifacts:
            _artifacts.move_to_end(key)
            return _artifacts[key]
    try:
        artifact = parse_artifact(store.get(key))
    except ArtifactError as exc:
        raise ArtifactError(f"Voice {voice.voice_id} cannot speak: {exc.message}") from exc
    with _artifacts_lock:
        _artifacts[key] = artifact
        while len(_artifacts) > _ARTIFACT_CACHE_SIZE:
            _artifacts.popitem(last=False)
    return artifact


def synthesizer_for(voice: Voice, store: BlobStore, settings: Settings) -> Synthesizer:
    """What speaks this voice; InvalidInput when it cannot (left the catalogue, not ready,
    unreadable artifact), NotFound when its model is gone."""
    if voice.kind == "builtin":
        spec = builtin_voice(voice.builtin_key or "", settings.resolved_models_dir)
        if spec is None:
            raise InvalidInput(f"Voice {voice.voice_id} is no longer available")
        return builtin_synthesizer(spec, settings, name=voice.name)
    if not voice.artifact_key:
        raise InvalidInput(f"Voice {voice.voice_id} is not ready to speak")
    artifact = _artifact(store, voice.artifact_key, voice)
    return artifact.synthesizer(VoiceContext(name=voice.name, settings=settings, fetch=store.get))


def voice_languages(voice: Voice, store: BlobStore, settings: Settings) -> frozenset[str] | None:
    """The language families a voice reads, known without loading its model (None: its engine
    decides when it speaks)."""
    if voice.kind == "builtin":
        spec = builtin_voice(voice.builtin_key or "", settings.resolved_models_dir)
        return frozenset({spec.language}) if spec is not None else None
    if not voice.artifact_key:
        return None
    try:
        artifact = _artifact(store, voice.artifact_key, voice)
    except (NotFound, InvalidInput):  # unreadable: the job says so when it runs (and releases the hold)
        return None
    return artifact.languages(settings)
