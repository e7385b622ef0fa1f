"""OpenAI-compatible audio family, mounted at /v1 and /api/v1 (so `base_url` may end in either).

Routes are sync functions: FastAPI runs them in the threadpool, so decoding, Whisper and the
first database work never block the event loop. Streamed bodies are produced chunk by chunk
in the threadpool too (see streaming.py).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response

from app.api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from app.api.families import IDEMPOTENT, OPENAI, FamilyRouter
from app.api.intake import read_upload
from app.api.openai.live import speech_stream
from app.api.openai.schemas import (
    SPEECH_FORMAT_EXAMPLES,
    SPEECH_FORMATS,
    AudioVoice,
    AudioVoiceList,
    ModelList,
    SpeechBody,
    SpeechWithTimestamps,
    Transcription,
    VerboseTranscription,
)
from app.api.openai.speaking import start_speech
from app.api.openai.speech import SpeechStream
from app.api.openai.streaming import STREAM_HEADERS, PrefetchingStreamingResponse
from app.api.openai.transcripts import TranscriptEvents
from app.api.openai.voices import list_usable_voices, render_voice
from app.audio import content_type
from app.cloning import service as cloning
from app.core.config import Settings
from app.core.errors import InvalidInput, UnsupportedMedia
from app.engines.timing import character_timings
from app.transcription import service as transcription
from app.transcription.formats import MEDIA_TYPES, render

SPEECH_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
TRANSCRIPTION_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")

_FALSE = frozenset({"", "0", "false", "no", "off", "none", "null"})


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in _FALSE


def _transcribe(
    task: str,
    principal: CurrentUser,
    settings: Settings,
    file: UploadFile,
    *,
    model: str | None,
    language: str | None,
    prompt: str | None,
    response_format: str | None,
    temperature: float | None,
    granularities: list[str],
    stream: bool | None,
) -> Response:
    options = transcription.check_options(
        transcription.TranscriptionOptions(
            task=task,
            model=model,
            language=language,
            prompt=prompt,
            temperature=temperature or 0.0,
            response_format=response_format or "json",
            granularities=tuple(granularities),
            stream=bool(stream),
        )
    )
    audio = transcription.decode_upload(read_upload(file, settings.max_upload_bytes, param="file"), settings)
    running = transcription.start(settings, user_id=principal.user_id, audio=audio, options=options)
    if options.stream:
        return PrefetchingStreamingResponse(
            TranscriptEvents(running), media_type="text/event-stream", headers=STREAM_HEADERS
        )
    body = render(
        running.run(), options.response_format, granularities=options.granularities, duration=audio.duration
    )
    if isinstance(body, dict):
        return JSONResponse(body)
    return Response(body, media_type=MEDIA_TYPES[options.response_format])


# What the transcription routes answer: JSON for json/verbose_json, text for the others, SSE when streamed.
TRANSCRIPT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Transcription | VerboseTranscription,
        "content": {
            "text/plain": {},
            "application/x-subrip": {},
            "text/vtt": {},
            "text/event-stream": {},
        },
        "description": "The transcript in response_format; `stream=true`: transcript.text.delta events",
    }
}


def build_router(*, owns: Sequence[str] = ()) -> APIRouter:
    """The family's routes; mounted at /v1 and at /api/v1, each mount saying which paths under it
    the family `owns` where no route matches (app.api.families)."""
    router = FamilyRouter(family=OPENAI, owns=owns, tags=["openai"])
    # Text in as it is written, audio and word timings out (protocol: app.api.openai.live).
    router.add_api_websocket_route("/audio/speech/stream", speech_stream)

    @router.get("/models", response_model=ModelList)
    def list_models(principal: CurrentUser) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "chorus"}
                for name in (*SPEECH_MODELS, *TRANSCRIPTION_MODELS)
            ],
        }

    @router.post(
        "/audio/speech",
        response_class=Response,
        responses={
            200: {
                "content": {
                    t: {}
                    for t in (
                        *(content_type(f) for f in (*SPEECH_FORMATS, *SPEECH_FORMAT_EXAMPLES)),
                        "text/event-stream",
                    )
                },
                "description": "Audio, streamed by sentence (stream_format=sse: speech.audio.delta, "
                "speech.audio.words and speech.audio.done events). "
                "With `instructions`: X-Chorus-Instructions-Applied / -Ignored headers",
            }
        },
    )
    def create_speech(
        body: SpeechBody, principal: CurrentUser, session: SessionDep, settings: SettingsDep, store: StoreDep
    ) -> Response:
        """Text to speech. The first sentence's audio is sent before the rest is synthesized;
        credits are held now (committed with this request) and captured when the audio is out."""
        started = start_speech(body, principal.user_id, session, settings, store)
        media_type = "text/event-stream" if started.sse else content_type(started.format)
        return PrefetchingStreamingResponse(
            SpeechStream(started.speech, sse=started.sse), media_type=media_type, headers=started.headers
        )

    @router.post(
        "/audio/speech/with-timestamps",
        response_class=Response,
        responses={
            200: {
                "model": SpeechWithTimestamps,
                "content": {"text/event-stream": {}},
                "description": "The audio (base64) and when each word and character is said; "
                "stream_format=sse: the events of /audio/speech",
            }
        },
    )
    def create_speech_with_timestamps(
        body: SpeechBody, principal: CurrentUser, session: SessionDep, settings: SettingsDep, store: StoreDep
    ) -> Response:
        """Speech and its timing, from the engine's own phoneme durations (every voice, clones
        included): `words` [{word, start, end}] in seconds, `characters` as ElevenLabs aligns them."""
        started = start_speech(body, principal.user_id, session, settings, store)
        if started.sse:
            return PrefetchingStreamingResponse(
                SpeechStream(started.speech, sse=True),
                media_type="text/event-stream",
                headers=started.headers,
            )
        # The hold is committed first: settling it at the end runs in a transaction of its own.
        session.commit()
        audio = bytearray()
        while (data := started.speech.next_bytes()) is not None:  # settles the credits at the end
            audio += data
        started.speech.take_words()
        words = started.speech.words_spoken
        return JSONResponse(
            {
                "audio_base64": base64.b64encode(bytes(audio)).decode("ascii"),
                "format": started.format,
                "words": [w.to_dict() for w in words],
                "characters": character_timings(words),
            },
            headers={k: v for k, v in started.headers.items() if k not in STREAM_HEADERS},
        )

    @router.post("/audio/transcriptions", response_class=Response, responses=TRANSCRIPT_RESPONSES)
    def create_transcription(
        principal: CurrentUser,
        settings: SettingsDep,
        file: Annotated[UploadFile, File(description="flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav or webm")],
        model: Annotated[str | None, Form(max_length=100)] = None,
        language: Annotated[str | None, Form(max_length=32)] = None,
        prompt: Annotated[str | None, Form()] = None,
        response_format: Annotated[str | None, Form(max_length=32)] = None,
        temperature: Annotated[float | None, Form()] = None,
        granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
        granularities_plain: Annotated[list[str] | None, Form(alias="timestamp_granularities")] = None,
        stream: Annotated[bool | None, Form()] = None,
    ) -> Response:
        """Speech to text in the spoken language; billed per started second of audio."""
        return _transcribe(
            "transcribe",
            principal,
            settings,
            file,
            model=model,
            language=language,
            prompt=prompt,
            response_format=response_format,
            temperature=temperature,
            granularities=[*(granularities or []), *(granularities_plain or [])],
            stream=stream,
        )

    @router.post("/audio/translations", response_class=Response, responses=TRANSCRIPT_RESPONSES)
    def create_translation(
        principal: CurrentUser,
        settings: SettingsDep,
        file: Annotated[UploadFile, File(description="flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav or webm")],
        model: Annotated[str | None, Form(max_length=100)] = None,
        prompt: Annotated[str | None, Form()] = None,
        response_format: Annotated[str | None, Form(max_length=32)] = None,
        temperature: Annotated[float | None, Form()] = None,
        granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
        granularities_plain: Annotated[list[str] | None, Form(alias="timestamp_granularities")] = None,
        stream: Annotated[bool | None, Form()] = None,
    ) -> Response:
        """Speech in any language to English text (Whisper's translate task)."""
        return _transcribe(
            "translate",
            principal,
            settings,
            file,
            model=model,
            language=None,
            prompt=prompt,
            response_format=response_format,
            temperature=temperature,
            granularities=[*(granularities or []), *(granularities_plain or [])],
            stream=stream,
        )

    @router.get("/audio/voices", response_model=AudioVoiceList)
    def list_audio_voices(principal: CurrentUser, session: SessionDep) -> dict[str, Any]:
        """Voices usable as `voice`: OpenAI names, built-ins, and the caller's own (with status)."""
        return {"object": "list", "data": list_usable_voices(session, principal.user_id)}

    @router.post("/audio/voices", response_model=AudioVoice, openapi_extra=IDEMPOTENT)
    def create_audio_voice(
        principal: CurrentUser,
        session: SessionDep,
        settings: SettingsDep,
        store: StoreDep,
        name: Annotated[str, Form(min_length=1, max_length=200)],
        audio_sample: Annotated[UploadFile, File()],
        consent: Annotated[str | None, Form(max_length=200)] = None,
        voice_type: Annotated[str | None, Form(alias="type", max_length=32)] = None,
    ) -> dict[str, Any]:
        """Clone a voice from one sample; usable as `voice` once its clone job completes."""
        if not name.strip():
            raise InvalidInput("name must not be empty", param="name")
        if voice_type is not None and voice_type.strip().lower() not in ("", "audio_sample"):
            raise InvalidInput("Only type 'audio_sample' voices can be created here", param="type")
        if not _truthy(consent):
            raise InvalidInput(
                "consent is required: confirm the speaker agreed to have their voice cloned", param="consent"
            )
        data = read_upload(audio_sample, settings.max_upload_bytes, param="audio_sample")
        try:
            voice, _job = cloning.create_cloned_voice(
                session,
                settings,
                store,
                owner_id=principal.user_id,
                draft=cloning.VoiceDraft(name=name, extra={"consent": (consent or "").strip()[:200]}),
                uploads=[cloning.Upload(data, audio_sample.filename)],
                cost=settings.costs.clone_cost("openai"),
            )
        except (InvalidInput, UnsupportedMedia) as exc:
            raise type(exc)(exc.message, param=exc.param or "audio_sample") from exc
        return render_voice(voice)

    return router
