"""Request bodies and response shapes of the OpenAI family. Unknown request fields are ignored
(newer SDKs send more)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SPEECH_FORMATS: tuple[str, ...] = ("mp3", "opus", "aac", "flac", "wav", "pcm")
# Besides the plain names: rate-specific ones parsed by app.audio.parse_format (these are examples).
SPEECH_FORMAT_EXAMPLES: tuple[str, ...] = ("ulaw_8000", "alaw_8000", "pcm_16000", "mp3_44100_128")
STREAM_FORMATS: tuple[str, ...] = ("audio", "sse")
MAX_INPUT_CHARS = 4096


class SpeechBody(BaseModel):
    """POST /audio/speech. Values are checked by the route so each error names its parameter."""

    model_config = ConfigDict(extra="ignore")

    input: str
    voice: str | int | dict[str, Any]
    model: str | None = None
    instructions: str | None = Field(
        None,
        description="Delivery in words: slower/faster, calm, excited/cheerful, whisper/quiet, loud, "
        "higher/lower pitch (app.speech.instructions); other words are ignored and named in the "
        "X-Chorus-Instructions-Ignored header",
    )
    response_format: str | None = Field(
        None,
        description="mp3 (default), opus, aac, flac, wav, pcm; or <format>_<rate> (pcm_16000, wav_8000), "
        "mp3_<rate>_<kbps> (mp3_44100_128), opus_48000_<kbps>, ulaw_8000, alaw_8000 (raw G.711)",
    )
    speed: float | None = None
    stream_format: str | None = None
    sample_rate: int | None = Field(
        None,
        description="Output sample rate in Hz (8000-48000) for a plain response_format; opus is always "
        "48000; a rate in the format's name must agree",
    )


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


class TimedWord(BaseModel):
    word: str
    start: float = Field(description="seconds from the start of the audio")
    end: float


class TimedCharacter(BaseModel):
    char: str
    start: float
    end: float


class SpeechWithTimestamps(BaseModel):
    """POST /audio/speech/with-timestamps (not stream_format=sse)."""

    audio_base64: str
    format: str
    words: list[TimedWord]
    characters: list[TimedCharacter]


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
