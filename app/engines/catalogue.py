"""Built-in voices: Piper joe, voices derived from joe by WORLD timbre profiles, and any
extra Piper voice an operator drops into MODELS_DIR/piper.

Every entry names the backend that speaks it (`backend`, an `app.engines.voices.VoiceBackend`)
and the model within that backend (`engine`); `app.engines.voices.builtin_synthesizer` turns an
entry into a Synthesizer.

The derived voices were tuned so that every pair is clearly different to a speaker
encoder (Resemblyzer cosine < 0.87 on the same text) while staying intelligible
(Whisper base WER <= 12% over Harvard lists 1 and 2); bench/voice_matrix.py prints both.
Formant warp factor (alpha) and spectral tilt move Resemblyzer far more than F0 does,
so the voices are spread mainly along those two axes, with F0 set to suit each gender.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from app.engines.languages import language_family
from app.engines.timbre.profile import TimbreProfile

log = logging.getLogger(__name__)

DEFAULT_VOICE = "joe"
JOE_MODEL = "joe"  # the engine key of the bundled Piper model


# Seed 000's vocabulary: clients filter built-ins by these words.
CATEGORIES = ("professional", "casual", "character", "narrative")
STYLES = ("conversational", "narrative", "assistant", "educational", "promotional", "character")


@dataclass(frozen=True)
class BuiltinVoice:
    key: str
    name: str
    gender: str  # "male" | "female" | "neutral"
    style: str  # one of STYLES: how the voice is best used
    description: str
    language: str  # two-letter family, e.g. "en"
    age_range: str
    tags: tuple[str, ...] = ()
    profile: TimbreProfile | None = None
    engine: str = JOE_MODEL  # which model of its backend speaks it (Piper: the model key)
    locale: str = "en_US"
    model_path: Path | None = field(default=None, compare=False)
    config_path: Path | None = field(default=None, compare=False)
    category: str = "professional"  # one of CATEGORIES
    backend: str = "piper"  # the VoiceBackend (TTS engine) that speaks it

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES or self.style not in STYLES:
            raise ValueError(f"voice {self.key}: category/style outside seed 000's vocabulary")

    @property
    def base(self) -> str:
        """The model this voice is spoken by (same as `engine`)."""
        return self.engine

    def to_dict(self) -> dict[str, object]:
        """Metadata for the catalogue sync and API listings (profile as a JSON dict)."""
        return {
            "key": self.key,
            "name": self.name,
            "gender": self.gender,
            "style": self.style,
            "category": self.category,
            "description": self.description,
            "language": self.language,
            "locale": self.locale,
            "age_range": self.age_range,
            "tags": list(self.tags),
            "engine": self.engine,
            "profile": self.profile.to_dict() if self.profile else None,
        }


class _EQ(TypedDict):
    eq_freqs_hz: tuple[float, ...]
    eq_gains_db: tuple[float, ...]


def _eq(*points: tuple[float, float]) -> _EQ:
    return {"eq_freqs_hz": tuple(p[0] for p in points), "eq_gains_db": tuple(p[1] for p in points)}


BUILTIN_VOICES: tuple[BuiltinVoice, ...] = (
    BuiltinVoice(
        key="joe",
        name="Joe",
        gender="male",
        style="narrative",
        category="narrative",
        description="Clear, even American male voice; the unprocessed Piper joe model.",
        language="en",
        age_range="adult",
        tags=("american", "clear", "narration"),
    ),
    BuiltinVoice(
        key="bruno",
        name="Bruno",
        gender="male",
        style="promotional",
        category="professional",
        description="Deep, dark male voice with a low pitch and a full low end.",
        language="en",
        age_range="middle-aged",
        tags=("american", "deep", "authoritative"),
        profile=TimbreProfile(
            f0_shift_semitones=-4.0,
            f0_range_scale=0.9,
            formant_alpha=0.90,
            **_eq((150.0, 4.0), (1000.0, 0.0), (6000.0, -2.0)),
        ),
    ),
    BuiltinVoice(
        key="leo",
        name="Leo",
        gender="male",
        style="conversational",
        category="casual",
        description="Bright, lively younger male voice.",
        language="en",
        age_range="young adult",
        tags=("american", "bright", "energetic"),
        profile=TimbreProfile(
            f0_shift_semitones=3.0,
            f0_range_scale=1.15,
            formant_alpha=1.10,
            formant_alpha_high=1.0,
            **_eq((150.0, -4.0), (1000.0, 0.0), (6000.0, 4.0)),
        ),
    ),
    BuiltinVoice(
        key="ava",
        name="Ava",
        gender="female",
        style="assistant",
        category="professional",
        description="Warm, soft female voice with a rounded tone.",
        language="en",
        age_range="adult",
        tags=("american", "warm", "soft"),
        profile=TimbreProfile(
            f0_shift_semitones=8.0,
            formant_alpha=1.22,
            formant_alpha_high=1.05,
            **_eq((150.0, 4.0), (1000.0, 0.0), (6000.0, -7.0)),
        ),
    ),
    BuiltinVoice(
        key="luna",
        name="Luna",
        gender="female",
        style="character",
        category="character",
        description="Bright, expressive young female voice.",
        language="en",
        age_range="young adult",
        tags=("american", "bright", "expressive"),
        profile=TimbreProfile(
            f0_shift_semitones=11.0,
            f0_range_scale=1.2,
            formant_alpha=1.12,
            formant_alpha_high=1.28,
            **_eq((150.0, -8.0), (1000.0, 0.0), (6000.0, 7.0)),
        ),
    ),
    BuiltinVoice(
        key="sam",
        name="Sam",
        gender="neutral",
        style="educational",
        category="professional",
        description="Balanced, gender-neutral mid-pitch voice.",
        language="en",
        age_range="adult",
        tags=("american", "neutral", "calm"),
        profile=TimbreProfile(
            f0_shift_semitones=6.0,
            formant_alpha=0.92,
            formant_alpha_high=1.16,
            **_eq((150.0, 3.0), (1000.0, 0.0), (6000.0, -3.0)),
        ),
    ),
)

# Every OpenAI voice name -> a built-in voice. The six classic names map to six different voices.
OPENAI_VOICE_MAP: dict[str, str] = {
    "alloy": "sam",
    "echo": "joe",
    "fable": "leo",
    "onyx": "bruno",
    "nova": "luna",
    "shimmer": "ava",
    "ash": "joe",
    "ballad": "leo",
    "coral": "luna",
    "sage": "ava",
    "verse": "sam",
    "marin": "ava",
    "cedar": "bruno",
}
OPENAI_CLASSIC_VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer")

_KEY_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


def _voice_key(stem: str) -> str:
    return _KEY_UNSAFE.sub("-", stem.lower()).strip("-.") or "piper-voice"


def discover_piper_voices(models_dir: Path) -> list[BuiltinVoice]:
    """Extra Piper voices in MODELS_DIR/piper: every `<name>.onnx` with its `<name>.onnx.json`.

    `models_dir` may be MODELS_DIR (its `piper` folder is scanned) or the piper folder itself.

    Metadata comes from the JSON: name from `dataset`, language from `language.code`,
    quality from `audio.quality`. Gender is not recorded by Piper, so it is "neutral".
    Unreadable files are skipped with a warning rather than breaking start-up.
    """
    folder = Path(models_dir)
    if (folder / "piper").is_dir():
        folder = folder / "piper"
    if not folder.is_dir():
        return []
    builtin_keys = {v.key for v in BUILTIN_VOICES}
    found: list[BuiltinVoice] = []
    for model in sorted(folder.glob("*.onnx")):
        config = model.with_name(model.name + ".json")
        if not config.is_file():
            log.warning("Piper voice %s has no %s; skipped", model.name, config.name)
            continue
        try:
            meta = json.loads(config.read_text(encoding="utf-8"))
            sample_rate = int(meta["audio"]["sample_rate"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("Piper voice config %s unreadable (%s); skipped", config.name, exc)
            continue
        lang = meta.get("language") or {}
        code = str(lang.get("code") or (meta.get("espeak") or {}).get("voice") or "en")
        dataset = str(meta.get("dataset") or model.stem)
        quality = str((meta.get("audio") or {}).get("quality") or "")
        key = _voice_key(model.name[: -len(".onnx")])
        if key in builtin_keys:
            key = f"piper-{key}"
        language_name = str(lang.get("name_english") or code)
        found.append(
            BuiltinVoice(
                key=key,
                name=dataset.replace("_", " ").title(),
                gender="neutral",
                style="narrative",
                description=f"Piper voice {dataset} ({language_name}, {quality or 'unknown'} quality, "
                f"{sample_rate} Hz)",
                language=language_family(str(lang.get("family") or code)),
                locale=code,
                age_range="adult",
                tags=tuple(t for t in ("piper", quality, code) if t),
                engine=key,
                model_path=model,
                config_path=config,
            )
        )
    return found


def builtin_voices(models_dir: Path | None = None) -> list[BuiltinVoice]:
    """The fixed built-ins plus any discovered Piper voices."""
    voices = list(BUILTIN_VOICES)
    if models_dir is not None:
        voices.extend(discover_piper_voices(models_dir))
    return voices


def resolve_voice_name(name: str) -> str:
    """An OpenAI voice name or a built-in key -> built-in key (case-insensitive)."""
    low = name.strip().lower()
    return OPENAI_VOICE_MAP.get(low, low)


def find_builtin(key: str, models_dir: Path | None = None) -> BuiltinVoice | None:
    wanted = resolve_voice_name(key)
    for voice in builtin_voices(models_dir):
        if voice.key == wanted:
            return voice
    return None
