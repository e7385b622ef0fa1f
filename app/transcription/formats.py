"""Transcript renderings: OpenAI's json / verbose_json shapes and SRT / WebVTT subtitles.

Kept apart from the engine so every family renders the same transcript the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from app.engines.stt.whisper import Segment, Transcript, Word
from app.transcription.languages import language_name

RESPONSE_FORMATS: tuple[str, ...] = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES: tuple[str, ...] = ("word", "segment")

MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


def billed_seconds(duration: float) -> int:
    """Whole seconds billed for audio of this duration (rounded up, at least 1)."""
    return max(1, math.ceil(round(duration, 3)))


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cues(segments: Iterable[Segment]) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.text.strip()) for s in segments if s.text.strip()]


def to_srt(segments: Iterable[Segment]) -> str:
    """SubRip: numbered cues, comma before milliseconds."""
    return srt_cues(_cues(segments))


def to_vtt(segments: Iterable[Segment]) -> str:
    """WebVTT: a header, then cues with a dot before milliseconds."""
    return vtt_cues(_cues(segments))


def srt_cues(cues: Iterable[tuple[float, float, str]]) -> str:
    """(start, end, text) cues as SubRip (transcripts, and captions of generated speech)."""
    blocks = [
        f"{n}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{text}\n"
        for n, (start, end, text) in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def vtt_cues(cues: Iterable[tuple[float, float, str]]) -> str:
    """(start, end, text) cues as WebVTT."""
    blocks = [f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{text}\n" for start, end, text in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def segment_json(segment: Segment) -> dict[str, Any]:
    """One segment with exactly the fields OpenAI's TranscriptionSegment has."""
    return {
        "id": segment.id,
        "seek": segment.seek,
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": float(segment.temperature),
        "avg_logprob": float(segment.avg_logprob),
        "compression_ratio": float(segment.compression_ratio),
        "no_speech_prob": float(segment.no_speech_prob),
    }


def word_json(word: Word) -> dict[str, Any]:
    return {"word": word.word.strip(), "start": round(word.start, 3), "end": round(word.end, 3)}


def usage(duration: float) -> dict[str, Any]:
    """OpenAI's duration usage: the seconds billed."""
    return {"type": "duration", "seconds": billed_seconds(duration)}


def render(
    transcript: Transcript,
    response_format: str,
    *,
    granularities: Iterable[str] = (),
    duration: float | None = None,
) -> dict[str, Any] | str:
    """The response body for `response_format`: a dict for the JSON formats, else text."""
    seconds = transcript.duration if duration is None else duration
    if response_format == "text":
        return transcript.text + "\n" if transcript.text else ""
    if response_format == "srt":
        return to_srt(transcript.segments)
    if response_format == "vtt":
        return to_vtt(transcript.segments)
    if response_format == "json":
        return {"text": transcript.text, "usage": usage(seconds)}
    if response_format != "verbose_json":
        raise ValueError(f"unknown response_format {response_format!r}")
    wanted = set(granularities) or {"segment"}
    body: dict[str, Any] = {
        "task": transcript.task,
        "language": "english" if transcript.task == "translate" else language_name(transcript.language),
        "duration": round(seconds, 3),
        "text": transcript.text,
    }
    if "segment" in wanted:
        body["segments"] = [segment_json(s) for s in transcript.segments]
    if "word" in wanted:
        body["words"] = [word_json(w) for w in transcript.words]
    body["usage"] = usage(seconds)
    return body
