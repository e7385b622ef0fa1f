"""`GET /v1/audio/speech/stream` (WebSocket): text in as an LLM writes it, audio and word timings out.

Protocol (JSON text messages unless said otherwise):
- client, first: `{"voice": "alloy", "response_format": "pcm", "speed": 1.0, "instructions": "...",
  "sample_rate": 16000}` — voice as in /audio/speech; formats that follow each other piece by
  piece: pcm (24 kHz s16le), pcm_<rate>, ulaw_8000, alaw_8000, mp3 (default pcm).
- client, then: `{"text": "..."}` as it arrives; `{"flush": true}` speaks what is buffered;
  `{"close": true}` flushes and ends the session.
- server: binary frames of audio; `{"type": "words", "words": [{"word", "start", "end"}]}` once the
  audio saying them was sent (seconds from the start of the session's audio);
  `{"type": "done", "usage": {"characters", "credits", "seconds"}}` before it closes (1000);
  `{"type": "error", "error": {OpenAI error}}` then close (1008 for a refusal, 1011 otherwise).
Auth: `X-API-Key`, `Authorization: Bearer <key or JWT>`, or `?key=` (browsers cannot set headers).
Credits: each spoken piece is held when it starts and captured once its audio is out; a dropped
connection is charged only for pieces whose audio reached the client (app.speech.live).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import anyio
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.deps import websocket_principal
from app.api.openai.schemas import SpeechBody
from app.api.openai.speaking import speech_plan, start_speech
from app.api.openai.streaming import openai_error_response
from app.api.openai.voices import resolve_speaker
from app.core.config import Settings
from app.core.db import session_scope
from app.core.errors import DomainError, InvalidInput
from app.speech.live import ClauseBuffer, check_live_format
from app.speech.streaming import StreamedSpeech
from app.storage import get_store

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 120.0  # no message for this long: what is buffered is spoken and the session ends
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011


# What the first message may set (as in /audio/speech); `input` comes piece by piece.
CONFIG_FIELDS = ("voice", "response_format", "speed", "instructions", "sample_rate", "model")
PROBE_TEXT = "Hello."  # checks the configuration as a speech request would, before any text arrives


@dataclass
class _Session:
    user_id: int
    body: SpeechBody  # the configuration as a speech body; each piece replaces `input`
    offset: float = 0.0  # seconds of audio sent so far
    characters: int = 0
    credits: int = 0


def _configure(settings: Settings, user_id: int, config: object) -> _Session:
    """The first message checked as /audio/speech checks its body (format, speed, instructions,
    voice), plus a format that can be sent piece after piece; nothing is held yet."""
    if not isinstance(config, dict) or "voice" not in config:
        raise InvalidInput('The first message configures the stream: {"voice": ..., "response_format": ...}')
    fields = {k: config[k] for k in CONFIG_FIELDS if k in config}
    try:
        body = SpeechBody.model_validate({**fields, "input": PROBE_TEXT})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidInput(f"{error['msg']}", param=str(error["loc"][0])) from exc
    fmt = check_live_format(body.response_format or "pcm", body.sample_rate)
    body = body.model_copy(update={"response_format": fmt, "sample_rate": None, "stream_format": None})
    speech_plan(body, settings)
    with session_scope(settings) as session:  # an unknown voice is refused now, not at the first piece
        resolve_speaker(session, get_store(settings), settings, user_id, body.voice, PROBE_TEXT)
    return _Session(user_id, body)


def _start(settings: Settings, live: _Session, text: str) -> StreamedSpeech:
    """This piece as a speech request of its own: checked, its credits held and committed."""
    with session_scope(settings) as session:
        body = live.body.model_copy(update={"input": text})
        return start_speech(body, live.user_id, session, settings, get_store(settings)).speech


async def _speak(websocket: WebSocket, settings: Settings, live: _Session, text: str) -> None:
    """One piece: its audio as binary frames, its words after the audio that says them."""
    streamed = await run_in_threadpool(_start, settings, live, text)
    delivered = False
    try:
        while (data := await run_in_threadpool(streamed.next_bytes)) is not None:
            if data:
                await websocket.send_bytes(data)
                delivered = True
            words = streamed.take_words()
            if words:
                shifted = [w.shifted(live.offset).to_dict() for w in words]
                await websocket.send_text(json.dumps({"type": "words", "words": shifted}))
    except BaseException:
        if not streamed.finished:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(streamed.abort, delivered)
        raise
    live.offset += streamed.duration
    live.characters += len(text)
    live.credits += streamed.credits


async def _error(websocket: WebSocket, exc: BaseException) -> None:
    body = json.loads(bytes(openai_error_response(exc).body))
    code = POLICY_VIOLATION if isinstance(exc, DomainError) else INTERNAL_ERROR
    try:
        await websocket.send_text(json.dumps({"type": "error", **body}))
        await websocket.close(code)
    except (WebSocketDisconnect, RuntimeError):
        pass


async def speech_stream(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    await websocket.accept()
    try:
        with session_scope(settings) as session:
            user_id = websocket_principal(session, settings, websocket).user_id
        with anyio.fail_after(IDLE_TIMEOUT_S):
            config = json.loads(await websocket.receive_text())
        live = _configure(settings, user_id, config)
        buffer = ClauseBuffer()
        while True:
            with anyio.move_on_after(IDLE_TIMEOUT_S) as idle:
                message = json.loads(await websocket.receive_text())
            if idle.cancelled_caught or not isinstance(message, dict):
                message = {"close": True}
            ready = buffer.add(str(message["text"])) if isinstance(message.get("text"), str) else ""
            if message.get("flush") or message.get("close"):
                ready = f"{ready} {buffer.flush()}".strip()
            if ready:
                await _speak(websocket, settings, live, ready)
            if message.get("close"):
                usage = {
                    "characters": live.characters,
                    "credits": live.credits,
                    "seconds": round(live.offset, 3),
                }
                await websocket.send_text(json.dumps({"type": "done", "usage": usage}))
                await websocket.close(1000)
                return
    except WebSocketDisconnect:
        return
    except (DomainError, ValueError, TimeoutError) as exc:
        if isinstance(exc, ValueError) and not isinstance(exc, DomainError):
            exc = InvalidInput('Messages are JSON objects: a config, then {"text"}, {"flush"}, {"close"}')
        elif isinstance(exc, TimeoutError):
            exc = InvalidInput("No configuration message arrived")
        await _error(websocket, exc)
    except Exception as exc:
        log.exception("speech WebSocket failed")
        await _error(websocket, exc)
