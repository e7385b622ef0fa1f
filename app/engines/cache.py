"""The process-wide model cache behind `app.engines.registry` (the one place models are kept).

Every loaded model lives here under a name ("piper:joe", "whisper:base", "resemblyzer",
"xtts:<dir>", or whatever an engine module passes to `load_once`). Each name has its own lock
and loading is double-checked, so concurrent first requests load a model once while requests
for other models are not blocked. Workers load after fork (never share loaded models across a
fork). It sits below the engine modules so that they can load through it; callers use the
typed getters of `app.engines.registry`.

Models come and go: `unload_idle` drops those unused for a while (the `ModelJanitor` thread calls
it; `pin` keeps the preloaded ones), and the next use loads them again. A request that still
holds a dropped model finishes with it; its memory goes back to the OS after that.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from app.core.periodic import PeriodicThread

T = TypeVar("T")

_models: dict[str, object] = {}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
load_counts: dict[str, int] = {}  # how many times each model was actually loaded (tests, /ready)
unload_counts: dict[str, int] = {}  # how many times each was dropped for idleness (/metrics)
_last_used: dict[str, float] = {}  # time.monotonic() of each model's last use
_pinned: set[str] = set()  # never dropped (the operator's preload list)

log = logging.getLogger(__name__)


def _lock_for(name: str) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(name)
        if lock is None:
            lock = _locks[name] = threading.Lock()
        return lock


def load_once(name: str, loader: Callable[[], T]) -> T:
    """The model cached under `name`, made by `loader` the first time (once, even when raced)."""
    _last_used[name] = time.monotonic()
    model = _models.get(name)
    if model is not None:
        return cast(T, model)
    with _lock_for(name):
        model = _models.get(name)
        if model is None:
            model = loader()
            _models[name] = model
            load_counts[name] = load_counts.get(name, 0) + 1
            _last_used[name] = time.monotonic()
    return cast(T, model)


def is_loaded(name: str) -> bool:
    return name in _models


def pin(name: str) -> None:
    """Keep `name` loaded whatever its idle time (preloaded models)."""
    _pinned.add(name)


def pinned() -> frozenset[str]:
    """The models kept loaded whatever their idle time."""
    return frozenset(_pinned)


def loaded_models() -> dict[str, float]:
    """Each loaded model and the seconds since it was last used."""
    now = time.monotonic()
    return {name: round(now - _last_used.get(name, now), 1) for name in list(_models)}


def unload_idle(idle_seconds: float, *, now: float | None = None) -> list[str]:
    """Drop the models (not pinned) unused for `idle_seconds` or more; 0 keeps everything."""
    if idle_seconds <= 0:
        return []
    dropped = []
    for name in list(_models):
        if name in _pinned:
            continue
        with _lock_for(name):  # not while it is being loaded
            clock = time.monotonic() if now is None else now
            if name in _models and clock - _last_used.get(name, clock) >= idle_seconds:
                del _models[name]
                unload_counts[name] = unload_counts.get(name, 0) + 1
                dropped.append(name)
    if dropped:
        log.info("unloaded idle models: %s", ", ".join(dropped))
        gc.collect()
        _return_freed_memory()
    return dropped


def _return_freed_memory() -> None:
    """glibc keeps freed arenas; malloc_trim hands them back so the process's RSS falls."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class ModelJanitor(PeriodicThread):
    """Drops idle models every `interval` seconds (stopped with the server)."""

    def __init__(self, idle_seconds: float, interval: float) -> None:
        super().__init__("chorus-model-janitor", interval, lambda: unload_idle(idle_seconds))


def reset() -> None:
    """Forget every loaded model (tests)."""
    with _locks_guard:
        _models.clear()
        _locks.clear()
        load_counts.clear()
        unload_counts.clear()
        _last_used.clear()
        _pinned.clear()


def package_dir(package: str) -> Path | None:
    """Directory of an installed package, without importing it (None when not installed): models
    that ship inside PyPI packages are found this way."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class ModelSource:
    """A model an engine can load, as `registry.list_models` shows it (size and state measured there)."""

    name: str
    role: str  # "tts" | "stt" | "speaker" | "vocoder"
    source: str  # package or folder it comes from
    path: Path | None
    cache_name: str  # its name in this cache
    available: bool
    fallback_size: int = 0  # when nothing is at `path` yet (e.g. Whisper base before assembly)
