"""Captions of generated speech: the words the engine timed, stored beside a job's audio and
rendered as SRT, WebVTT or JSON (`GET /api/v1/voice/tts-jobs/{job}/captions`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from app.core.errors import InvalidInput
from app.engines.timing import WordTiming
from app.transcription.formats import srt_cues, vtt_cues

CAPTION_FORMATS: tuple[str, ...] = ("srt", "vtt", "json")
MEDIA_TYPES: dict[str, str] = {
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
}
# A cue ends at a sentence end, or after this many words or characters (two subtitle lines).
CUE_MAX_WORDS = 12
CUE_MAX_CHARS = 84


def words_key(owner_id: int, job_id: int) -> str:
    return f"speech/{owner_id}/{job_id}.words.json"


def dump_words(words: Sequence[WordTiming]) -> bytes:
    return json.dumps({"words": [w.to_dict() for w in words]}, ensure_ascii=False).encode()


def load_words(data: bytes) -> list[WordTiming]:
    raw = json.loads(data)
    return [WordTiming(str(w["word"]), float(w["start"]), float(w["end"])) for w in raw["words"]]


def cues(words: Sequence[WordTiming]) -> list[tuple[float, float, str]]:
    """Words grouped into subtitle cues: a sentence per cue, long ones cut by words/characters."""
    out: list[tuple[float, float, str]] = []
    current: list[WordTiming] = []
    for word in words:
        text = " ".join(w.word for w in [*current, word])
        if current and (len(current) >= CUE_MAX_WORDS or len(text) > CUE_MAX_CHARS):
            out.append((current[0].start, current[-1].end, " ".join(w.word for w in current)))
            current = []
        current.append(word)
        if word.word.endswith((".", "!", "?", "…", "。", "！", "？")):
            out.append((current[0].start, current[-1].end, " ".join(w.word for w in current)))
            current = []
    if current:
        out.append((current[0].start, current[-1].end, " ".join(w.word for w in current)))
    return out


def check_format(fmt: str) -> str:
    name = (fmt or "srt").strip().lower()
    if name not in CAPTION_FORMATS:
        raise InvalidInput(
            f"Unknown captions format '{fmt}'; use one of: {', '.join(CAPTION_FORMATS)}", param="format"
        )
    return name


def render(words: Sequence[WordTiming], fmt: str) -> str:
    name = check_format(fmt)
    if name == "json":
        return dump_words(words).decode()
    return srt_cues(cues(words)) if name == "srt" else vtt_cues(cues(words))
