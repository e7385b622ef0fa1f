"""Built-in voices: Kokoro-82M's 54 voices in 9 languages, Piper joe (the lowest-latency voice),
voices derived from joe by WORLD timbre profiles, and any extra Piper voice an operator drops into
MODELS_DIR/piper.

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
    accent: str = ""  # e.g. "american", "british" (Kokoro voices)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES or self.style not in STYLES:
            raise ValueError(f"voice {self.key}: category/style outside seed 000's vocabulary")

    @property
    def listed_language(self) -> str:
        """The `language` users see: BCP-47-ish (en-US, en-GB, pt-BR, zh...) for the Kokoro bank;
        the family ("en") for the Piper voices, as they were first listed."""
        return self.locale if self.backend == "kokoro" else self.language

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
            "accent": self.accent,
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
        accent="american",
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

# --------------------------------------------------------------------------- Kokoro's voice bank

KOKORO_MODEL = "kokoro-v1.0"  # the engine key of Kokoro-82M v1.0 (int8 ONNX)

# Kokoro's locale prefix (first letter of a voice key) -> (language family, locale, accent).
KOKORO_LOCALES: dict[str, tuple[str, str, str]] = {
    "a": ("en", "en-US", "american"),
    "b": ("en", "en-GB", "british"),
    "e": ("es", "es", "spanish"),
    "f": ("fr", "fr", "french"),
    "h": ("hi", "hi", "indian"),
    "i": ("it", "it", "italian"),
    "j": ("ja", "ja", "japanese"),
    "p": ("pt", "pt-BR", "brazilian"),
    "z": ("zh", "zh", "mandarin"),
}

# key, name, Kokoro's overall grade ("" where its card gives none), style, category, description.
# Grades are the voice card's (hexgrad/Kokoro-82M VOICES.md, carried by kokoro-js); the seed
# vocabulary (style/category) is ours, chosen by listening.
_KOKORO_TABLE: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "af_heart",
        "Heart",
        "A",
        "narrative",
        "narrative",
        "Warm, expressive American female voice; Kokoro's best.",
    ),
    ("af_alloy", "Alloy", "C", "assistant", "professional", "Even, clear American female voice."),
    ("af_aoede", "Aoede", "C+", "conversational", "casual", "Soft, friendly American female voice."),
    ("af_bella", "Bella", "A-", "promotional", "professional", "Bright, confident American female voice."),
    ("af_jessica", "Jessica", "D", "conversational", "casual", "Light, casual American female voice."),
    ("af_kore", "Kore", "C+", "educational", "professional", "Calm, measured American female voice."),
    ("af_nicole", "Nicole", "B-", "conversational", "casual", "Close, whispery American female voice."),
    ("af_nova", "Nova", "C", "assistant", "professional", "Crisp, upbeat American female voice."),
    ("af_river", "River", "D", "conversational", "casual", "Relaxed American female voice."),
    ("af_sarah", "Sarah", "C+", "educational", "professional", "Clear, friendly American female voice."),
    ("af_sky", "Sky", "C-", "assistant", "casual", "Airy, youthful American female voice."),
    ("am_adam", "Adam", "F+", "conversational", "casual", "Plain American male voice."),
    ("am_echo", "Echo", "D", "assistant", "professional", "Steady American male voice."),
    ("am_eric", "Eric", "D", "conversational", "casual", "Easy-going American male voice."),
    ("am_fenrir", "Fenrir", "C+", "promotional", "professional", "Strong, resonant American male voice."),
    ("am_liam", "Liam", "D", "conversational", "casual", "Young, light American male voice."),
    ("am_michael", "Michael", "C+", "narrative", "narrative", "Deep, assured American male voice."),
    ("am_onyx", "Onyx", "D", "narrative", "narrative", "Low, dark American male voice."),
    ("am_puck", "Puck", "C+", "character", "character", "Playful, lively American male voice."),
    ("am_santa", "Santa", "D-", "character", "character", "Jolly, old American male voice."),
    ("bf_alice", "Alice", "D", "conversational", "casual", "Light British female voice."),
    ("bf_emma", "Emma", "B-", "narrative", "narrative", "Poised, clear British female voice."),
    ("bf_isabella", "Isabella", "C", "educational", "professional", "Warm British female voice."),
    ("bf_lily", "Lily", "D", "conversational", "casual", "Soft British female voice."),
    ("bm_daniel", "Daniel", "D", "assistant", "professional", "Even British male voice."),
    ("bm_fable", "Fable", "C", "narrative", "narrative", "Storytelling British male voice."),
    ("bm_george", "George", "C", "narrative", "professional", "Deep, formal British male voice."),
    ("bm_lewis", "Lewis", "D+", "conversational", "casual", "Relaxed British male voice."),
    ("ef_dora", "Dora", "", "conversational", "casual", "Spanish female voice."),
    ("em_alex", "Alex", "", "narrative", "professional", "Spanish male voice."),
    ("em_santa", "Santa", "", "character", "character", "Jolly Spanish male voice."),
    ("ff_siwis", "Siwis", "B-", "narrative", "professional", "Clear French female voice."),
    ("hf_alpha", "Alpha", "C", "assistant", "professional", "Hindi female voice."),
    ("hf_beta", "Beta", "C", "conversational", "casual", "Hindi female voice, lighter."),
    ("hm_omega", "Omega", "C", "narrative", "professional", "Hindi male voice."),
    ("hm_psi", "Psi", "C", "conversational", "casual", "Hindi male voice, lighter."),
    ("if_sara", "Sara", "C", "conversational", "professional", "Italian female voice."),
    ("im_nicola", "Nicola", "C", "narrative", "professional", "Italian male voice."),
    ("jf_alpha", "Alpha", "C+", "assistant", "professional", "Japanese female voice."),
    ("jf_gongitsune", "Gongitsune", "C", "narrative", "narrative", "Japanese female storytelling voice."),
    ("jf_nezumi", "Nezumi", "C-", "character", "character", "Japanese female voice, light and quick."),
    ("jf_tebukuro", "Tebukuro", "C", "narrative", "narrative", "Gentle Japanese female voice."),
    ("jm_kumo", "Kumo", "C-", "narrative", "professional", "Japanese male voice."),
    ("pf_dora", "Dora", "", "conversational", "casual", "Brazilian Portuguese female voice."),
    ("pm_alex", "Alex", "", "narrative", "professional", "Brazilian Portuguese male voice."),
    ("pm_santa", "Santa", "", "character", "character", "Jolly Brazilian Portuguese male voice."),
    ("zf_xiaobei", "Xiaobei", "D", "conversational", "casual", "Mandarin female voice."),
    ("zf_xiaoni", "Xiaoni", "D", "conversational", "casual", "Mandarin female voice, soft."),
    ("zf_xiaoxiao", "Xiaoxiao", "D", "assistant", "professional", "Mandarin female voice, clear."),
    ("zf_xiaoyi", "Xiaoyi", "D", "narrative", "narrative", "Mandarin female voice, calm."),
    ("zm_yunjian", "Yunjian", "D", "narrative", "narrative", "Mandarin male voice, deep."),
    ("zm_yunxi", "Yunxi", "D", "conversational", "casual", "Mandarin male voice, young."),
    ("zm_yunxia", "Yunxia", "D", "character", "character", "Mandarin male voice, bright."),
    ("zm_yunyang", "Yunyang", "D", "assistant", "professional", "Mandarin male voice, newsreader."),
)


def _kokoro_voice(
    key: str, name: str, grade: str, style: str, category: str, description: str
) -> BuiltinVoice:
    language, locale, accent = KOKORO_LOCALES[key[0]]
    gender = {"f": "female", "m": "male"}[key[1]]
    return BuiltinVoice(
        key=key,
        name=name,
        gender=gender,
        style=style,
        category=category,
        description=description,
        language=language,
        locale=locale,
        accent=accent,
        age_range="senior" if name == "Santa" else "adult",
        tags=tuple(t for t in ("kokoro", accent, f"grade-{grade.lower()}" if grade else "") if t),
        engine=KOKORO_MODEL,
        backend="kokoro",
    )


KOKORO_VOICES: tuple[BuiltinVoice, ...] = tuple(_kokoro_voice(*row) for row in _KOKORO_TABLE)
KOKORO_BY_KEY: dict[str, BuiltinVoice] = {v.key: v for v in KOKORO_VOICES}


# OpenAI's voice names are personas that speak every language, as OpenAI's do. In English each is
# the Kokoro voice of the same name where Kokoro has one (af_alloy, am_echo, bm_fable, am_onyx,
# af_nova) and a Kokoro voice of the same gender otherwise. In another language it is a voice of
# that language and the same gender, spread so that two personas of one gender differ where the
# language has voices enough (`persona_voice`; GET /v1/audio/voices shows the whole map).
@dataclass(frozen=True)
class Persona:
    name: str
    gender: str
    english: str  # the voice for English text


OPENAI_PERSONAS: tuple[Persona, ...] = (
    Persona("alloy", "female", "af_alloy"),
    Persona("echo", "male", "am_echo"),
    Persona("fable", "male", "bm_fable"),
    Persona("onyx", "male", "am_onyx"),
    Persona("nova", "female", "af_nova"),
    Persona("shimmer", "female", "af_bella"),
    Persona("ash", "male", "am_michael"),
    Persona("ballad", "male", "bm_george"),
    Persona("coral", "female", "af_heart"),
    Persona("sage", "female", "af_sarah"),
    Persona("verse", "male", "am_puck"),
    Persona("marin", "female", "bf_emma"),
    Persona("cedar", "male", "am_fenrir"),
)
# OpenAI name -> the built-in that reads English text (and any text when no language is known).
OPENAI_VOICE_MAP: dict[str, str] = {p.name: p.english for p in OPENAI_PERSONAS}
OPENAI_CLASSIC_VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer")
# Each language's voices best first (Kokoro's grades), for personas outside English.
_GRADE_ORDER = ("a", "a-", "b+", "b", "b-", "c+", "c", "c-", "d+", "d", "d-", "f+", "f", "")


def _grade(voice: BuiltinVoice) -> int:
    grade = next((t[len("grade-") :] for t in voice.tags if t.startswith("grade-")), "")
    return _GRADE_ORDER.index(grade) if grade in _GRADE_ORDER else len(_GRADE_ORDER)


# Voices personas never pick (still listed and usable by key): measured through Whisper base over
# three passages, zf_xiaoni's Mandarin has 42% CER where the other seven Mandarin voices have
# 5-10% (bench/voice_matrix.py).
PERSONA_EXCLUDED = frozenset({"zf_xiaoni"})


def persona_voice(name: str, language: str | None) -> str | None:
    """The built-in key an OpenAI persona speaks `language` with (None: not a persona name)."""
    persona = next((p for p in OPENAI_PERSONAS if p.name == name.strip().lower()), None)
    if persona is None:
        return None
    family = language_family(language) if language else "en"
    if family == "en":
        return persona.english
    spoken = sorted(
        (v for v in KOKORO_VOICES if v.language == family and v.key not in PERSONA_EXCLUDED), key=_grade
    )
    if not spoken:
        return persona.english  # nobody reads it: the language check names what can
    same_gender = [v for v in spoken if v.gender == persona.gender] or spoken
    peers = [p.name for p in OPENAI_PERSONAS if p.gender == persona.gender]
    return same_gender[peers.index(persona.name) % len(same_gender)].key


def persona_map() -> dict[str, dict[str, str]]:
    """Every persona -> {language: built-in key} for every language a built-in speaks."""
    languages = sorted({v.language for v in KOKORO_VOICES})
    return {
        p.name: {lang: persona_voice(p.name, lang) or p.english for lang in languages}
        for p in OPENAI_PERSONAS
    }


def voices_speaking(language: str, models_dir: Path | None = None) -> list[BuiltinVoice]:
    """Built-ins that read `language` (a family), best first (measured outliers last)."""
    family = language_family(language)
    spoken = (v for v in builtin_voices(models_dir) if v.language == family)
    return sorted(spoken, key=lambda v: (v.key in PERSONA_EXCLUDED, _grade(v)))


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
    builtin_keys = {v.key for v in (*BUILTIN_VOICES, *KOKORO_VOICES)}
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
    voices = [*BUILTIN_VOICES, *KOKORO_VOICES]
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
