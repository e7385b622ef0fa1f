"""The process-wide model cache behind `app.engines.registry` (the one place models are kept).

Every loaded model lives here under a name ("piper:joe", "whisper:base", "resemblyzer",
"xtts:<dir>", or whatever an engine module passes to `load_once`). Each name has its own lock
and loading is double-checked, so concurrent first requests load a model once while requests
for other models are not blocked. Workers load after fork (never share loaded models across a
fork). It sits below the engine modules so that they can load through it; callers use the
typed getters of `app.engines.registry`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

T = TypeVar("T")

_models: dict[str, object] = {}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
load_counts: dict[str, int] = {}  # how many times each model was actually loaded (tests, /ready)


def _lock_for(name: str) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(name)
        if lock is None:
            lock = _locks[name] = threading.Lock()
        return lock


def load_once(name: str, loader: Callable[[], T]) -> T:
    """The model cached under `name`, made by `loader` the first time (once, even when raced)."""
    model = _models.get(name)
    if model is not None:
        return cast(T, model)
    with _lock_for(name):
        model = _models.get(name)
        if model is None:
            model = loader()
            _models[name] = model
            load_counts[name] = load_counts.get(name, 0) + 1
    return cast(T, model)


def is_loaded(name: str) -> bool:
    return name in _models


def reset() -> None:
    """Forget every loaded model (tests)."""
    with _locks_guard:
        _models.clear()
        _locks.clear()
        load_counts.clear()


@dataclass(frozen=True)
class ModelSource:
    """A model an engine can load, as `registry.list_models` shows it (size and state measured there)."""

    name: str
    role: str  # "tts" | "stt" | "speaker"
    source: str  # package or folder it comes from
    path: Path | None
    cache_name: str  # its name in this cache
    available: bool
    fallback_size: int = 0  # when nothing is at `path` yet (e.g. Whisper base before assembly)
