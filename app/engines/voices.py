"""From a voice to a `Synthesizer`, whatever engine speaks it: the one place that does this.

A voice is either a catalogue entry (`BuiltinVoice`, built-in) or a stored artifact (cloned).
Every TTS engine is a `VoiceBackend`, registered by its own module under `app/engines/tts/`:

- `builtin(voice, settings, name=)`: the Synthesizer for one of its catalogue entries
  (`app.engines.catalogue`; each entry names its backend);
- `artifacts`: the typed artifact dataclasses it reads (`VoiceArtifact` subclasses, each with
  an `engine` tag, a `version`, validation in `from_json`, and `synthesizer(context)`);
- `models(settings)`: the models it would load, for `registry.list_models`.

Stored artifacts are JSON objects: `{"engine": <tag>, "version": <n>, ...}`. A missing
`version` is version 1 and a missing `engine` is "timbre" (the first artifacts written). A
corrupt artifact, an unknown engine or a version newer than the code raises `ArtifactError`
(an `InvalidInput`) naming what is wrong; it never reaches an engine half-read.

How to add a TTS engine (e.g. Kokoro):

1. Write `app/engines/tts/kokoro.py`: its engine class, loaded through
   `app.engines.cache.load_once("kokoro:<model>", ...)` (one model cache per process: the
   registry's); a `Synthesizer` for one of its voices (`sample_rate`, `languages`, `stream`,
   with the speed/pitch/language checks and refusals of the others); and, if voices can be
   cloned with it, a frozen `VoiceArtifact` dataclass.
2. End the module with `register_backend(KokoroBackend())`, where `KokoroBackend(VoiceBackend)`
   sets `name = "kokoro"` and overrides `builtin` (and `artifacts`, `models` as needed).
3. Add its catalogue entries to `app/engines/catalogue.py`:
   `BuiltinVoice(..., backend="kokoro", engine=<model key>, language=..., locale=...)`.

Nothing else changes: this module imports every module of `app.engines.tts` (pkgutil) the first
time a backend is needed, so no family (app/api), job (app/jobs, speech and clone tasks) or
registry code lists the engines. Engine modules import this module and `app.engines.cache`,
never `app.engines.registry` (which sits above them).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Self

from app.core.config import Settings
from app.core.errors import InvalidInput, NotFound
from app.engines.base import Synthesizer

if TYPE_CHECKING:
    from app.engines.cache import ModelSource
    from app.engines.catalogue import BuiltinVoice

LEGACY_ENGINE = "timbre"  # artifacts from before "engine" was recorded: a timbre profile on Piper

_backends: dict[str, VoiceBackend] = {}
_artifact_types: dict[str, type[VoiceArtifact]] = {}
_registry_lock = threading.Lock()
_discovered = False


class ArtifactError(InvalidInput):
    """A stored voice artifact that cannot be read: corrupt, of an unknown engine, or too new."""


@dataclass(frozen=True)
class VoiceContext:
    """What an artifact needs to become a Synthesizer."""

    name: str  # the voice's name, as refusals show it ("Voice {name} speaks en; ...")
    settings: Settings
    fetch: Callable[[str], bytes]  # reads a blob the artifact refers to (e.g. XTTS latents)


class VoiceArtifact(ABC):
    """What a cloned voice is, for one engine kind. Subclasses are frozen dataclasses."""

    engine: ClassVar[str]  # the artifact's "engine" tag
    latest_version: ClassVar[int]  # the version this code writes (and the newest it reads)
    version: int

    @classmethod
    @abstractmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        """Validate and read a stored artifact (ArtifactError, ValueError or TypeError when corrupt)."""

    @abstractmethod
    def to_json(self) -> dict[str, object]:
        """The JSON object to store (from_json(to_json()) gives the same artifact)."""

    @abstractmethod
    def synthesizer(self, context: VoiceContext) -> Synthesizer:
        """The voice, ready to speak."""

    def languages(self, settings: Settings) -> frozenset[str] | None:
        """The language families it reads, known without loading a model; None when only the
        engine can say (it then refuses an unsupported language when it speaks)."""
        return None


class VoiceBackend:
    """One TTS engine's way from voices to Synthesizers (see the module docstring)."""

    name: ClassVar[str]  # what catalogue entries call it: BuiltinVoice.backend
    artifacts: ClassVar[tuple[type[VoiceArtifact], ...]] = ()

    def builtin(self, voice: BuiltinVoice, settings: Settings, *, name: str | None = None) -> Synthesizer:
        """The Synthesizer for a catalogue entry; `name` (a voice row's name) is shown in refusals."""
        raise NotFound(f"The {self.name} engine has no built-in voice {voice.key}")

    def models(self, settings: Settings) -> Sequence[ModelSource]:
        """The models it loads, for `registry.list_models`."""
        return ()


def register_backend(backend: VoiceBackend) -> VoiceBackend:
    """Called once by each module of app/engines/tts at import."""
    with _registry_lock:
        for kind in backend.artifacts:
            owner = _artifact_types.get(kind.engine)
            if owner is not None and owner is not kind:
                raise RuntimeError(f"Two artifact types claim the engine tag {kind.engine!r}")
        _backends[backend.name] = backend
        for kind in backend.artifacts:
            _artifact_types[kind.engine] = kind
    return backend


def _discover() -> None:
    """Import every module of app.engines.tts (each registers its backend when first imported).

    No lock of ours is held while importing: Python's per-module import locks already make
    concurrent callers wait for a module being imported, and holding ours could deadlock with a
    thread importing an engine module directly (its registration would wait for ours)."""
    global _discovered
    if _discovered:
        return
    from app.engines import tts

    for module in pkgutil.iter_modules(tts.__path__, f"{tts.__name__}."):
        importlib.import_module(module.name)
    _discovered = True


def backends() -> Mapping[str, VoiceBackend]:
    """Every registered backend by name, in the order of their modules' names."""
    _discover()
    with _registry_lock:
        ordered = sorted(_backends.items(), key=lambda item: type(item[1]).__module__)
    return MappingProxyType(dict(ordered))


def artifact_types() -> Mapping[str, type[VoiceArtifact]]:
    """Every artifact type by its engine tag."""
    _discover()
    return MappingProxyType(_artifact_types)


# --------------------------------------------------------------------------- built-in voices


def builtin_voice(key: str, models_dir: Path) -> BuiltinVoice | None:
    """The catalogue entry with exactly this key (OpenAI names are not resolved here), or None."""
    from app.engines.catalogue import builtin_voices

    return {v.key: v for v in builtin_voices(models_dir)}.get(key)


def builtin_synthesizer(voice: BuiltinVoice, settings: Settings, *, name: str | None = None) -> Synthesizer:
    """A catalogue entry, ready to speak, through its backend."""
    backend = backends().get(voice.backend)
    if backend is None:
        raise NotFound(f"Voice {voice.key} needs the {voice.backend} engine, which this server does not have")
    return backend.builtin(voice, settings, name=name)


# --------------------------------------------------------------------------- stored artifacts


def parse_artifact(raw: bytes | Mapping[str, object]) -> VoiceArtifact:
    """A stored artifact (JSON bytes or the decoded object), typed and validated."""
    if isinstance(raw, bytes | bytearray):
        try:
            data: object = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise ArtifactError(f"its artifact is not JSON ({exc})") from exc
    else:
        data = raw
    if not isinstance(data, Mapping):
        raise ArtifactError("its artifact is not a JSON object")
    fields: Mapping[str, object] = data
    engine = fields.get("engine", LEGACY_ENGINE)
    if not isinstance(engine, str):
        raise ArtifactError(f"its artifact names no engine ({engine!r})")
    kind = artifact_types().get(engine)
    if kind is None:
        raise ArtifactError(f"it needs the {engine!r} engine, which this server does not have")
    try:
        return kind.from_json(fields)
    except ArtifactError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ArtifactError(f"its {engine} artifact is corrupt ({exc})") from exc


def dump_artifact(artifact: VoiceArtifact) -> bytes:
    """The bytes to store for an artifact."""
    return json.dumps(artifact.to_json()).encode()


# --------------------------------------------------------------------------- helpers for artifacts


def read_version(data: Mapping[str, object], kind: type[VoiceArtifact]) -> int:
    """The artifact's version (absent = 1); ArtifactError when invalid or newer than the code."""
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArtifactError(f"its {kind.engine} artifact has an invalid version {version!r}")
    if version > kind.latest_version:
        raise ArtifactError(
            f"its {kind.engine} artifact is version {version}, newer than this server reads "
            f"(up to {kind.latest_version})"
        )
    return version


def read_str(
    data: Mapping[str, object], key: str, kind: type[VoiceArtifact], default: str | None = None
) -> str:
    """A non-empty string field (ArtifactError when missing without a default, or not a string)."""
    value = data.get(key, default)
    if value is None:
        raise ArtifactError(f"its {kind.engine} artifact has no {key}")
    if not isinstance(value, str) or not value:
        raise ArtifactError(f"its {kind.engine} artifact has an invalid {key} ({value!r})")
    return value


def details_of(data: Mapping[str, object], known: Sequence[str]) -> dict[str, object]:
    """The descriptive keys of an artifact (quality, timings...): kept, never read to speak."""
    return {k: v for k, v in data.items() if k not in known}
