"""Language code helpers shared by the engines."""

from __future__ import annotations

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
