"""Text clean-up and sentence chunking for TTS.

Piper synthesizes one sentence per model call, so chunking by sentence gives the first
audio quickly when streaming; very long sentences are cut at commas (then spaces) so that
one model call never gets a pathological input. Number expansion is English-only and
modest: espeak-ng (inside Piper) already reads digits in every language, we only make the
common English cases (currency, percent, ordinals, decimals, years) read naturally.
"""

from __future__ import annotations

import re
import unicodedata

from app.core.errors import InvalidInput

__all__ = ["normalise_text", "split_sentences", "number_to_words"]

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_SYMBOLS = {
    "&": " and ",
    "%": " percent ",
    "+": " plus ",
    "=": " equals ",
    "@": " at ",
    "#": " number ",
    "°": " degrees ",
}
_CURRENCY = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
}
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "no",
    "fig",
    "mt",
    "gen",
    "col",
    "lt",
    "sgt",
    "capt",
    "approx",
    "dept",
    "inc",
    "ltd",
    "co",
}


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer (hyphen-free, TTS friendly)."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_to_words(rest))
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            tail = "" if rest == 0 else (" and " if rest < 100 else " ") + number_to_words(rest)
            return number_to_words(head) + " " + name + tail
    return str(n)  # unreachable


def _ordinal(n: int) -> str:
    words = number_to_words(n).split(" ")
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _year(n: int) -> str:
    """1984 -> nineteen eighty four; 2005 -> two thousand five; 1900 -> nineteen hundred."""
    if 2000 <= n <= 2009:
        return number_to_words(n).replace(" and ", " ")
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_to_words(hi) + " hundred"
    if lo < 10:
        return number_to_words(hi) + " oh " + number_to_words(lo)
    return number_to_words(hi) + " " + number_to_words(lo)


def _currency(m: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    whole = int(m.group(2).replace(",", ""))
    words = f"{number_to_words(whole)} {one if whole == 1 else many}"
    if m.group(3):
        cents = int((m.group(3) + "0")[:2])
        if cents:
            words += f" and {number_to_words(cents)} {sub_one if cents == 1 else sub_many}"
    return f" {words} "


def _number(m: re.Match[str]) -> str:
    raw = m.group(0)
    whole_s, _, frac = raw.partition(".")
    has_commas = "," in whole_s
    whole = int(whole_s.replace(",", ""))
    if frac:
        return f" {number_to_words(whole)} point {' '.join(_ONES[int(d)] for d in frac)} "
    if not has_commas and len(whole_s) == 4 and 1100 <= whole <= 2099:
        return f" {_year(whole)} "
    if len(whole_s.replace(",", "")) > 15:
        return " " + " ".join(_ONES[int(d)] for d in whole_s if d.isdigit()) + " "
    return f" {number_to_words(whole)} "


def _expand_english(text: str) -> str:
    text = re.sub(r"([$€£])\s?(\d[\d,]*)(?:\.(\d{1,2}))?\b", _currency, text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: f" {_ordinal(int(m.group(1)))} ", text)
    text = re.sub(r"(?<![\w.])-(?=\d)", " minus ", text)
    text = re.sub(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", _number, text)
    for sym, word in _SYMBOLS.items():
        text = text.replace(sym, word)
    return text


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in "\n\t\v\f "


def normalise_text(text: str, *, language: str = "en") -> str:
    """Make user text safe and readable for the synthesizer.

    Control, format and unassigned characters (NUL included) are removed, whitespace is
    collapsed, and for English simple numbers and symbols become words. Raises
    InvalidInput when nothing speakable (no letter or digit) remains.
    """
    if not isinstance(text, str):
        raise InvalidInput("Text must be a string", param="text")
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if not _is_control(ch))
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    if language.lower().split("-")[0].split("_")[0] == "en":
        text = _expand_english(text)
    # Collapse whitespace but keep paragraph breaks (a blank line ends a sentence).
    text = "\n\n".join(re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text))
    text = re.sub(r"\n\n(\n\n)+", "\n\n", text).strip()
    text = re.sub(r"[ ]+([,.;:!?])", r"\1", text)
    if not any(ch.isalnum() for ch in text):
        raise InvalidInput("Text is empty", param="text")
    return text


# Latin stops end a sentence before a space; CJK stops end one wherever they are (no spaces there).
_SENTENCE_END = re.compile(r"([.!?…]+[\"')\]]*)(\s+|$)|([。！？]+[」』\"')\]]*)(\s*)")


def _raw_sentences(text: str) -> list[str]:
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        group = 1 if m.group(1) else 3
        end = m.end(group)
        if group == 1 and m.group(1).startswith(".") and len(m.group(1)) == 1:
            # "Dr. Smith", "e.g. this": an abbreviation is not a sentence end.
            words = text[start:end].split()
            last = words[-1].rstrip(".").lower() if words else ""
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                continue
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _cut_long(sentence: str, max_chars: int) -> list[str]:
    """Cut at the last comma/semicolon/colon before max_chars, else the last space, else hard."""
    parts: list[str] = []
    rest = sentence
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        cut = max(window.rfind(", "), window.rfind("; "), window.rfind(": "), window.rfind(" — "))
        if cut >= max_chars // 3:
            cut += 1  # keep the punctuation with the first part
        else:
            cut = window.rfind(" ")
            if cut < max_chars // 3:
                cut = max_chars
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        parts.append(rest)
    return [p for p in parts if p]


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """Split normalised text into sentence chunks of at most max_chars characters each.

    Sentence ends are . ! ? … (and CJK stops) followed by space or end of text; common
    abbreviations and initials do not end a sentence. Chunks without any letter or digit
    (stray punctuation) are merged away. Raises InvalidInput when nothing speakable remains.
    """
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    chunks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = re.sub(r"\s+", " ", paragraph).strip()
        for sentence in _raw_sentences(paragraph):
            for piece in _cut_long(sentence, max_chars):
                if any(ch.isalnum() for ch in piece):
                    chunks.append(piece)
                elif chunks and len(chunks[-1]) + len(piece) < max_chars:
                    chunks[-1] += piece
    if not chunks:
        raise InvalidInput("Text is empty", param="text")
    return chunks
