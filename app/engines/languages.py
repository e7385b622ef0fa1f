"""Language code helpers shared by the engines."""

from __future__ import annotations

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
