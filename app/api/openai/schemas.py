"""Request bodies of the OpenAI family. Unknown fields are ignored (newer SDKs send more)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

SPEECH_FORMATS: tuple[str, ...] = ("mp3", "opus", "aac", "flac", "wav", "pcm")
STREAM_FORMATS: tuple[str, ...] = ("audio", "sse")
MAX_INPUT_CHARS = 4096


class SpeechBody(BaseModel):
    """POST /audio/speech. Values are checked by the route so each error names its parameter."""

    model_config = ConfigDict(extra="ignore")

    input: str
    voice: str | int | dict[str, Any]
    model: str | None = None
    instructions: str | None = None
    response_format: str | None = None
    speed: float | None = None
    stream_format: str | None = None
