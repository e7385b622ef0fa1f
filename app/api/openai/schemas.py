"""Request bodies and response shapes of the OpenAI family. Unknown request fields are ignored
(newer SDKs send more)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


# -- responses -------------------------------------------------------------------------------


class Model(BaseModel):
    id: str
    object: str
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: str
    data: list[Model]


class AudioVoice(BaseModel):
    """OpenAI's audio.voice object plus what a client needs to choose one."""

    object: str
    id: str
    name: str
    type: str = Field(description="builtin or audio_sample")
    created_at: int = Field(description="Unix seconds")
    voice_id: str
    display_name: str
    language: str | None
    gender: str | None
    status: str
    accent: str | None = None
    languages: dict[str, str] | None = Field(
        None,
        description="OpenAI names only: the built-in voice key it speaks each language with "
        "(the text's language decides)",
    )


class AudioVoiceList(BaseModel):
    object: str
    data: list[AudioVoice]


class DurationUsage(BaseModel):
    type: str
    seconds: int


class Transcription(BaseModel):
    """response_format=json."""

    text: str
    usage: DurationUsage


class TranscriptionSegment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float


class VerboseTranscription(BaseModel):
    """response_format=verbose_json (segments and words as timestamp_granularities ask)."""

    task: str
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment] | None = None
    words: list[TranscriptionWord] | None = None
    usage: DurationUsage
