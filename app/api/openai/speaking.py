"""Starting one OpenAI speech request, shared by /audio/speech, /audio/speech/with-timestamps and
each piece of the speech WebSocket: the body checked (every refusal names the OpenAI parameter at
fault), the voice resolved, its timed sentence stream started (a refusal costs nothing) and the
credits held (app.speech.streaming settles them).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.api.deps import SessionDep
from app.api.openai.schemas import MAX_INPUT_CHARS, SPEECH_FORMATS, STREAM_FORMATS, SpeechBody
from app.api.openai.streaming import STREAM_HEADERS
from app.api.openai.voices import resolve_speaker
from app.audio import check_format
from app.core.config import Settings
from app.core.errors import InvalidInput
from app.engines.base import timed_stream
from app.speech import service as speech
from app.speech.instructions import Instructions, parse_instructions, with_gain
from app.speech.streaming import StreamedSpeech, start_streamed_speech
from app.storage import BlobStore

# Params the speech service names differently from OpenAI.
_SPEECH_PARAMS = {"text": "input", "language": "input", None: "input"}


def speech_plan(
    body: SpeechBody, settings: Settings, said: Instructions | None = None
) -> tuple[speech.SpeechRequest, bool]:
    """Validate the body; every refusal names the OpenAI parameter at fault. The request's speed
    and pitch include what `instructions` ask for (`said`: already parsed from them)."""
    if not body.input or not body.input.strip():
        raise InvalidInput("input must not be empty", param="input")
    if len(body.input) > MAX_INPUT_CHARS:
        raise InvalidInput(
            f"input is {len(body.input)} characters; the maximum is {MAX_INPUT_CHARS}", param="input"
        )
    try:  # the canonical name carries sample_rate (mp3 at 16000 Hz: "mp3_16000")
        fmt = check_format(
            body.response_format or "mp3", sample_rate=body.sample_rate, formats=SPEECH_FORMATS
        )
    except InvalidInput as exc:
        raise InvalidInput(exc.message, param=exc.param or "response_format") from exc
    stream_format = (body.stream_format or "audio").strip().lower()
    if stream_format not in STREAM_FORMATS:
        raise InvalidInput(
            f"Invalid stream_format '{body.stream_format}'; use 'audio' or 'sse'", param="stream_format"
        )
    speed = 1.0 if body.speed is None else float(body.speed)
    if not speech.MIN_SPEED <= speed <= speech.MAX_SPEED:
        raise InvalidInput(f"speed must be between {speech.MIN_SPEED} and {speech.MAX_SPEED}", param="speed")
    said = said or parse_instructions(body.instructions)
    try:
        req = speech.validate(
            speech.SpeechRequest(
                text=body.input, speed=said.speed(speed), pitch=said.shifted_pitch(), format=fmt
            ),
            settings,
            max_chars=MAX_INPUT_CHARS,
        )
    except InvalidInput as exc:
        raise InvalidInput(exc.message, param=_SPEECH_PARAMS.get(exc.param, exc.param)) from exc
    return req, stream_format == "sse"


@dataclass(frozen=True)
class StartedSpeech:
    speech: StreamedSpeech
    sse: bool
    format: str
    headers: dict[str, str]


def start_speech(
    body: SpeechBody, user_id: int, session: SessionDep, settings: Settings, store: BlobStore
) -> StartedSpeech:
    """Validate, resolve the voice, start its timed sentence stream (a refusal costs nothing) and
    hold the credits: what both speech routes share."""
    said = parse_instructions(body.instructions)
    req, sse = speech_plan(body, settings, said)
    chosen = resolve_speaker(session, store, settings, user_id, body.voice, req.text)
    speaker, voice = chosen.synthesizer, chosen.voice
    try:
        language = speech.reading_language(
            req.text,
            declared=None,
            languages=speaker.languages,
            voice_name=chosen.name,
            settings=settings,
        )
        chunks = timed_stream(speaker, req.text, speed=req.speed, pitch=req.pitch, language=language)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, param=_SPEECH_PARAMS.get(exc.param, exc.param)) from exc
    streamed = start_streamed_speech(
        session,
        settings,
        user_id=user_id,
        voice_id=voice.id,
        text=req.text,
        chunks=with_gain(chunks, said.gain_db),
        sample_rate=speaker.sample_rate,
        fmt=req.format,
        params={
            "model": body.model,
            "format": req.format,
            "speed": req.speed,
            "stream_format": "sse" if sse else "audio",
            "characters": len(req.text),
            **({"pitch": req.pitch, "instructions": list(said.applied)} if said.applied else {}),
        },
    )
    told = said.headers() if body.instructions and body.instructions.strip() else {}
    headers = {**STREAM_HEADERS, "X-Chorus-Job-Id": streamed.job_public_id, **told}
    return StartedSpeech(streamed, sse, req.format, headers)
