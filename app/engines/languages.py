"""Language code helpers shared by the engines."""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol, cast

from app.core.errors import InvalidInput

_LANGUAGE_NAMES = {
    "english": "en",
    "german": "de",
    "french": "fr",
    "spanish": "es",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
    "polish": "pl",
    "russian": "ru",
    "chinese": "zh",
    "japanese": "ja",
    "korean": "ko",
    "ukrainian": "uk",
    "turkish": "tr",
    "swedish": "sv",
}


def language_family(code: str) -> str:
    """'en_US', 'en-us', 'EN', 'English' -> 'en'."""
    c = code.strip().lower()
    c = _LANGUAGE_NAMES.get(c, c)
    return c.replace("_", "-").split("-")[0]


def check_language(languages: frozenset[str], language: str | None, voice_name: str) -> None:
    """Refuse a request for a language a voice does not read ("auto", "" and None pass).

    `languages` are families (a `Synthesizer.languages`); the message names the voice.
    """
    if language is None or language == "" or language.lower() == "auto":
        return
    if language_family(language) not in languages:
        raise InvalidInput(
            f"Voice {voice_name} speaks {', '.join(sorted(languages))}; language {language} is not supported",
            param="language",
        )


# --------------------------------------------------------------------------- which language a text is in

LANGUAGE_LABELS = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "hi": "Hindi",
    "it": "Italian",
    "ja": "Japanese",
    "pt": "Portuguese",
    "zh": "Chinese",
    "de": "German",
    "ko": "Korean",
    "ru": "Russian",
    "ar": "Arabic",
}

# Latin-script languages told apart by a character n-gram model (py3langid). German is among
# them so that German text is refused by voices that cannot read it, not read with English rules.
LATIN_LANGUAGES = ("en", "es", "fr", "it", "pt", "de")
# The model overrules the voice's own language only when the text is clearly not in it: three
# words or more and under 1% for the voice's language. Loanwords stay English: "Our naïve café
# charges 5 €" reads 92% French but 6% English; "Nuestro tren sale a las ocho." 0.7% English.
# Without a voice language, the model's choice needs 90%.
_MIN_WORDS = 3
_MAX_HINT_PROBABILITY = 0.01
_MIN_PROBABILITY = 0.9
# One CJK character carries about as much as three Latin letters (a syllable, often a word).
_CJK_WEIGHT = 3

_SCRIPTS: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("kana", ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))),
    ("han", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF))),
    ("hangul", ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F))),
    ("devanagari", ((0x0900, 0x097F),)),
    ("cyrillic", ((0x0400, 0x04FF),)),
    ("arabic", ((0x0600, 0x06FF),)),
)
_SCRIPT_LANGUAGE = {"hangul": "ko", "devanagari": "hi", "cyrillic": "ru", "arabic": "ar"}


def _script(ch: str) -> str | None:
    code = ord(ch)
    for name, ranges in _SCRIPTS:
        if any(lo <= code <= hi for lo, hi in ranges):
            return name
    if ch.isalpha() and code < 0x0250:
        return "latin"
    return None


class _Classifier(Protocol):
    def rank(self, text: str) -> list[tuple[str, float]]: ...


@lru_cache(maxsize=1)
def _identifier() -> _Classifier:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LATIN_LANGUAGES))
    return cast(_Classifier, identifier)


def detect_language(text: str, hint: str | None = None) -> str:
    """The language family a text is written in, e.g. "zh" for `今天的天气很好`.

    The script with the most letters decides (CJK characters weigh three letters): kana means
    Japanese, Han alone Chinese (Japanese when `hint` is "ja": kanji-only Japanese exists),
    Devanagari Hindi, Hangul Korean. Latin text goes to the n-gram model, which overrules
    `hint` (the voice's language) only when the text is clearly not in it (see _MAX_HINT_PROBABILITY).
    """
    hint_family = language_family(hint) if hint else None
    counts: dict[str, int] = {}
    for ch in text:
        script = _script(ch)
        if script is not None:
            counts[script] = counts.get(script, 0) + (_CJK_WEIGHT if script in ("han", "kana") else 1)
    if counts.get("kana"):
        counts["kana"] += counts.pop("han", 0)  # kanji inside kana text is Japanese
    if not counts:
        return hint_family or "en"
    script = max(counts, key=lambda s: counts[s])
    if script == "kana":
        return "ja"
    if script == "han":
        return "ja" if hint_family == "ja" else "zh"
    if script != "latin":
        return _SCRIPT_LANGUAGE[script]
    latin_text = "".join(ch if _script(ch) in ("latin", None) else " " for ch in text)
    latin_hint = hint_family if hint_family in LATIN_LANGUAGES else None
    if len(latin_text.split()) >= _MIN_WORDS:
        ranked = dict(_identifier().rank(latin_text))
        best = max(ranked, key=lambda code: ranked[code])
        if latin_hint is None:
            return best if ranked[best] >= _MIN_PROBABILITY else "en"
        if ranked.get(latin_hint, 0.0) < _MAX_HINT_PROBABILITY:
            return best
    return latin_hint or "en"


def language_label(code: str) -> str:
    """'zh' -> 'Chinese' (the code itself when unknown)."""
    return LANGUAGE_LABELS.get(language_family(code), code)
