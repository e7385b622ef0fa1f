"""XTTS-v2 engine (coqui-tts, the optional `gpu` extra): conditioning latents in, speech out.

A cloned voice is its conditioning latents: `gpt_cond_latent` (GPT prompt, [1, 32, d]) and
`speaker_embedding` (HiFi-GAN decoder conditioning, [1, 512, 1]). They are computed once at
clone time (`compute_latents`), stored as bytes (`latents_to_bytes`) and every synthesis
starts from them, so the reference audio is never needed again.

Weights are operator-provided: `model_dir` holds the XTTS-v2 layout (`config.json`,
`model.pth`, `vocab.json`; `speakers_xtts.pth` etc. are optional). Nothing is fetched.
The XTTS-v2 weights are under the Coqui Public Model License (non-commercial).

coqui-tts is imported lazily, so the app runs without the extra. coqui-tts needs
`torchaudio` importable, but only its pure-Python parts (MelSpectrogram, resample): the
PyPI torchaudio wheels are CUDA builds whose C++ extension cannot load next to a CPU
torch (or next to a torch built for another CUDA). When that extension fails to load, it is
replaced by a stub that reports "no extension" and torchaudio is imported without it
(`_import_torchaudio`), which leaves every function XTTS inference uses intact.

Thread safety: the GPT inference wrapper keeps per-call state (`store_prefix_emb`), so one
engine synthesizes one sentence at a time (a lock per engine); a stream releases the lock
between sentences.

What speaks: `XTTSSynthesizer` (an engine plus one voice's latents). A cloned voice is stored
as an `XTTSArtifact` (JSON beside the latents blob); `XTTSBackend` registers both with
`app.engines.voices`. The engine itself is loaded once per process by `registry.get_xtts_engine`.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import sys
import threading
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NoReturn, Self, TypedDict

import numpy as np

from app.core.config import Settings
from app.core.errors import InvalidInput, Unavailable
from app.engines.base import Audio, Synthesizer
from app.engines.cache import load_once
from app.engines.delivery import check_pitch, check_speed
from app.engines.languages import language_family
from app.engines.text import normalise_text, split_sentences
from app.engines.voices import (
    VoiceArtifact,
    VoiceBackend,
    VoiceContext,
    details_of,
    read_str,
    read_version,
    register_backend,
)

if TYPE_CHECKING:
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

log = logging.getLogger(__name__)

LATENTS_FORMAT = "chorus-xtts-latents"
LATENTS_VERSION = 1
XTTS_SPEED_MIN, XTTS_SPEED_MAX = 0.5, 2.0  # XTTS stretches its GPT latents; beyond this a WORLD stretch
MIN_REFERENCE_SECONDS = 0.5
REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")

_import_lock = threading.Lock()


class XTTSUnavailable(Unavailable):
    """coqui-tts is not installed or the weights directory is unusable (an operator problem, 503)."""


class XTTSLatents(TypedDict):
    """A voice for XTTS: GPT prompt latents [1, 32, d] and decoder conditioning [1, 512, 1]."""

    gpt_cond_latent: torch.Tensor
    speaker_embedding: torch.Tensor


# --------------------------------------------------------------------------- lazy imports


def _stub_torchaudio_extension() -> types.ModuleType:
    """A `torchaudio._extension` that says the C++ extension is absent (the pure-Python API stays)."""
    ext = types.ModuleType("torchaudio._extension")

    def _unavailable(*_args: object, **_kwargs: object) -> NoReturn:
        raise RuntimeError("torchaudio's C++ extension is not loadable in this environment")

    ext._IS_TORCHAUDIO_EXT_AVAILABLE = False  # type: ignore[attr-defined]
    ext._IS_ALIGN_AVAILABLE = False  # type: ignore[attr-defined]
    ext.fail_if_no_align = lambda _func: _unavailable  # type: ignore[attr-defined]
    ext._check_cuda_version = lambda: None  # type: ignore[attr-defined]
    ext._load_lib = lambda _lib: False  # type: ignore[attr-defined]
    ext.__all__ = ["_IS_TORCHAUDIO_EXT_AVAILABLE"]  # type: ignore[attr-defined]
    return ext


def _import_torchaudio() -> types.ModuleType:
    """Import torchaudio; when only its C++ extension fails (CUDA wheel, CPU torch), import it without."""
    if "torchaudio" in sys.modules:
        return sys.modules["torchaudio"]
    if importlib.util.find_spec("torchaudio") is None:
        raise XTTSUnavailable("torchaudio is not installed; install the gpu extra: pip install 'chorus[gpu]'")
    try:
        import torchaudio

        return torchaudio
    except (OSError, RuntimeError) as exc:
        log.warning("torchaudio's C++ extension did not load (%s); using its pure-Python parts", exc)
    for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
        del sys.modules[name]
    sys.modules["torchaudio._extension"] = _stub_torchaudio_extension()
    import torchaudio

    return torchaudio


def _coqui() -> tuple[type[XttsConfig], type[Xtts]]:
    """(XttsConfig, Xtts) from coqui-tts, imported on first use."""
    with _import_lock:
        try:
            _import_torchaudio()
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts
        except XTTSUnavailable:
            raise
        except ImportError as exc:
            raise XTTSUnavailable(
                f"XTTS needs coqui-tts (pip install 'chorus[gpu]'): {str(exc).strip()}"
            ) from exc
    return XttsConfig, Xtts


def _torch() -> types.ModuleType:
    import torch

    return torch


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if device != "auto":
        return device
    return "cuda" if _torch().cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- latents as bytes


def latents_to_bytes(latents: XTTSLatents) -> bytes:
    """Serialise latents (tensors moved to CPU) with torch.save."""
    torch = _torch()
    payload = {
        "format": LATENTS_FORMAT,
        "version": LATENTS_VERSION,
        "gpt_cond_latent": latents["gpt_cond_latent"].detach().to("cpu", torch.float32).contiguous(),
        "speaker_embedding": latents["speaker_embedding"].detach().to("cpu", torch.float32).contiguous(),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def latents_from_bytes(data: bytes, device: str = "cpu") -> XTTSLatents:
    """Inverse of latents_to_bytes (tensors only: loaded with weights_only=True)."""
    torch = _torch()
    try:
        payload = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        raise ValueError(f"Not an XTTS latents artifact: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != LATENTS_FORMAT:
        raise ValueError("Not an XTTS latents artifact")
    gpt, spk = payload.get("gpt_cond_latent"), payload.get("speaker_embedding")
    if (
        not isinstance(gpt, torch.Tensor)
        or not isinstance(spk, torch.Tensor)
        or gpt.ndim != 3
        or spk.ndim != 3
    ):
        raise ValueError("XTTS latents artifact has malformed tensors")
    return {"gpt_cond_latent": gpt, "speaker_embedding": spk}


# --------------------------------------------------------------------------- checks


def _world_adjust(audio: Audio, rate: int, pitch: float, stretch: float) -> Audio:
    """Pitch shift (semitones) and residual time stretch (>1 = shorter) with WORLD."""
    from app.engines.timbre.profile import TimbreProfile
    from app.engines.timbre.transformer import convert

    return convert(audio, rate, TimbreProfile().with_shift(pitch), rate=stretch)


# --------------------------------------------------------------------------- the engine


class XTTSEngine:
    """One XTTS model loaded from an operator's weights directory."""

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "auto",
        *,
        sentence_pause_s: float = 0.1,
        temperature: float | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        missing = [n for n in REQUIRED_FILES if not (self.model_dir / n).is_file()]
        if not self.model_dir.is_dir() or missing:
            raise XTTSUnavailable(
                f"XTTS weights directory {self.model_dir} is missing {', '.join(missing) or 'entirely'} "
                "(expected the XTTS-v2 layout: config.json, model.pth, vocab.json)"
            )
        XttsConfig, Xtts = _coqui()
        torch = _torch()
        self.device = resolve_device(device)
        config = XttsConfig()
        config.load_json(str(self.model_dir / "config.json"))
        model = Xtts(config)
        model.load_checkpoint(config, checkpoint_dir=str(self.model_dir), eval=True)
        model.to(torch.device(self.device))
        model.eval()
        self.config = config
        self.model = model
        self.sentence_pause_s = sentence_pause_s
        self.temperature = float(temperature if temperature is not None else config.temperature)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- properties

    @property
    def sample_rate(self) -> int:
        return int(self.config.model_args.output_sample_rate)

    @property
    def model_dim(self) -> int:
        return int(self.config.model_args.gpt_n_model_channels)

    @property
    def languages(self) -> list[str]:
        return [str(lang) for lang in self.config.languages]

    def resolve_language(self, language: str | None, default: str = "en") -> str:
        """A request's language as XTTS names it ('zh' -> 'zh-cn'); InvalidInput when unsupported."""
        if language is None or language == "" or language.lower() == "auto":
            language = default
        family = language_family(language)
        code = "zh-cn" if family == "zh" else family
        if code not in self.languages:
            raise InvalidInput(
                f"language {language} is not supported by XTTS (supported: {', '.join(self.languages)})",
                param="language",
            )
        return code

    # ---------------------------------------------------------------- cloning

    def compute_latents(self, samples: list[Audio], rate: int) -> XTTSLatents:
        """Conditioning latents from reference audio (float mono at `rate`), as XTTS's own
        get_conditioning_latents: speaker embedding per sample (averaged), GPT latents from
        the samples joined (first `gpt_cond_len` seconds, in `gpt_cond_chunk_len` chunks)."""
        torch = _torch()
        cfg = self.config
        max_ref = int(cfg.max_ref_len) * int(rate)
        audios = []
        for x in samples:
            a = np.clip(np.asarray(x, dtype=np.float32).reshape(-1), -1.0, 1.0)[:max_ref]
            if len(a) < MIN_REFERENCE_SECONDS * rate:
                continue
            if cfg.sound_norm_refs and np.abs(a).max() > 0:
                a = a / np.abs(a).max() * 0.75
            audios.append(torch.from_numpy(np.ascontiguousarray(a))[None, :])
        if not audios:
            raise InvalidInput(f"The samples are too short (at least {MIN_REFERENCE_SECONDS:g} s each)")
        model = self.model
        with self._lock, torch.inference_mode():
            embeddings = [model.get_speaker_embedding(a.to(self.device), rate) for a in audios]
            gpt_cond_latent = model.get_gpt_cond_latents(
                torch.cat(audios, dim=-1).to(self.device),
                rate,
                length=int(cfg.gpt_cond_len),
                chunk_length=int(cfg.gpt_cond_chunk_len),
            )
            speaker_embedding = torch.stack(embeddings).mean(dim=0)
        return {"gpt_cond_latent": gpt_cond_latent.float(), "speaker_embedding": speaker_embedding.float()}

    def to_bytes(self, latents: XTTSLatents) -> bytes:
        return latents_to_bytes(latents)

    def latents_from_bytes(self, data: bytes) -> XTTSLatents:
        """Latents for this model, on its device; ValueError when they came from another model."""
        latents = latents_from_bytes(data, device=self.device)
        if latents["gpt_cond_latent"].shape[-1] != self.model_dim:
            raise ValueError(
                f"XTTS latents have width {latents['gpt_cond_latent'].shape[-1]}, "
                f"this model {self.model_dim}: the voice was cloned with different XTTS weights"
            )
        return latents

    # ---------------------------------------------------------------- synthesis

    def _sentence(self, sentence: str, latents: XTTSLatents, language: str, speed: float) -> Audio:
        torch = _torch()
        with self._lock, torch.inference_mode():
            out = self.model.inference(
                sentence,
                language,
                latents["gpt_cond_latent"],
                latents["speaker_embedding"],
                temperature=self.temperature,
                length_penalty=float(self.config.length_penalty),
                repetition_penalty=float(self.config.repetition_penalty),
                top_k=int(self.config.top_k),
                top_p=float(self.config.top_p),
                speed=speed,
                enable_text_splitting=False,
            )
        wav = out["wav"]
        wav = wav.detach().cpu().numpy() if hasattr(wav, "detach") else np.asarray(wav)
        return np.asarray(wav, dtype=np.float32).reshape(-1)

    def stream(
        self,
        text: str,
        latents: XTTSLatents,
        language: str | None = "en",
        speed: float = 1.0,
        *,
        pitch: float = 0.0,
    ) -> Iterator[Audio]:
        """Validate now, then yield one float32 chunk (at `sample_rate`) per sentence."""
        speed = check_speed(speed)
        pitch = check_pitch(pitch)
        lang = self.resolve_language(language)
        limit = int(self.model.tokenizer.char_limits.get(lang.split("-")[0], 250))
        sentences = split_sentences(normalise_text(text, language=lang), max(20, limit))
        return self._generate(sentences, latents, lang, speed, pitch)

    def _generate(
        self, sentences: list[str], latents: XTTSLatents, language: str, speed: float, pitch: float
    ) -> Iterator[Audio]:
        xtts_speed = min(max(speed, XTTS_SPEED_MIN), XTTS_SPEED_MAX)
        stretch = speed / xtts_speed
        pause = np.zeros(int(round(self.sentence_pause_s / speed * self.sample_rate)), dtype=np.float32)
        last = len(sentences) - 1
        for i, sentence in enumerate(sentences):
            audio = self._sentence(sentence, latents, language, xtts_speed)
            if pitch != 0.0 or stretch != 1.0:
                audio = _world_adjust(audio, self.sample_rate, pitch, stretch)
            audio = np.clip(audio, -1.0, 1.0)
            yield (audio if i == last else np.concatenate([audio, pause])).astype(np.float32)

    def synthesize(
        self,
        text: str,
        latents: XTTSLatents,
        language: str | None = "en",
        speed: float = 1.0,
        *,
        pitch: float = 0.0,
    ) -> Audio:
        """Whole text to one float32 array at `sample_rate`."""
        chunks = list(self.stream(text, latents, language, speed, pitch=pitch))
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def get_xtts_engine(settings: Settings) -> XTTSEngine:
    """The engine for `settings.xtts_model_dir`, loaded once per process (XTTSUnavailable when it is
    not set; `app.engines.registry.get_xtts_engine` is the public way to it)."""
    if settings.xtts_model_dir is None:
        raise XTTSUnavailable(
            "XTTS cloning is selected (CHORUS_CLONE_ENGINE=xtts) but CHORUS_XTTS_MODEL_DIR is not set"
        )
    model_dir = Path(settings.xtts_model_dir).resolve()
    return load_once(f"xtts:{model_dir}", lambda: XTTSEngine(model_dir))


# --------------------------------------------------------------------------- a voice that speaks


class XTTSSynthesizer:
    """A cloned XTTS voice: the engine and the voice's latents. A request without a language (or
    "auto") is read in the voice's own language."""

    def __init__(self, name: str, engine: XTTSEngine, latents: XTTSLatents, language: str = "en") -> None:
        self.name = name
        self.engine = engine
        self.latents = latents
        self.language = language

    @property
    def sample_rate(self) -> int:
        return int(self.engine.sample_rate)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(language_family(lang) for lang in self.engine.languages)

    def stream(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, language: str | None = None
    ) -> Iterator[Audio]:
        """Audio one sentence at a time (the first arrives before the rest is synthesized)."""
        lang = language if language and language.lower() != "auto" else self.language
        return self.engine.stream(text, self.latents, lang, speed, pitch=pitch)


def xtts_synthesizer(
    latents: bytes, settings: Settings, *, name: str = "xtts", language: str = "en"
) -> XTTSSynthesizer:
    """The voice for stored latents bytes; InvalidInput when they do not fit the configured model."""
    engine = get_xtts_engine(settings)
    try:
        parsed = engine.latents_from_bytes(latents)
    except ValueError as exc:
        raise InvalidInput(f"Voice {name} cannot speak with the installed XTTS model: {exc}") from exc
    return XTTSSynthesizer(name, engine, parsed, language)


# --------------------------------------------------------------------------- cloned voices


@dataclass(frozen=True)
class XTTSArtifact(VoiceArtifact):
    """A voice cloned with XTTS (`app.cloning.xtts` builds it): its latents live in their own blob.

    Stored JSON: {"version": 1, "engine": "xtts", "language", ...details, "latents_key"}; the
    details (latents format and size, model, licence, quality, samples, timings) are for people.
    """

    engine: ClassVar[str] = "xtts"
    latest_version: ClassVar[int] = 1
    _KEYS: ClassVar[tuple[str, ...]] = ("version", "engine", "language", "latents_key")

    latents_key: str
    language: str = "en"
    details: Mapping[str, object] = field(default_factory=dict)
    version: int = latest_version

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        return cls(
            latents_key=read_str(data, "latents_key", cls),
            language=read_str(data, "language", cls, default="en"),
            details=details_of(data, cls._KEYS),
            version=read_version(data, cls),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "engine": self.engine,
            "language": self.language,
            **self.details,
            "latents_key": self.latents_key,
        }

    def synthesizer(self, context: VoiceContext) -> Synthesizer:
        latents = context.fetch(self.latents_key)
        return xtts_synthesizer(latents, context.settings, name=context.name, language=self.language)


class XTTSBackend(VoiceBackend):
    """Voices cloned with XTTS (no built-ins: the weights are the operator's)."""

    name = "xtts"
    artifacts = (XTTSArtifact,)


register_backend(XTTSBackend())
