"""POST /v1/audio/speech: streamed audio, SSE events, credits, typed SDK errors."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from app.api.openai import voices as openai_voices
from app.voices.models import UsageEvent
from tests.test_openai_fixtures import LiveApp, decoded_seconds, live_app, sse_events

SHORT = "Hello there. This is a short test."
LONG = " ".join(f"This is sentence number {n} of a longer text." for n in range(1, 9))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from live_app(tmp_path_factory)


def _cost(text: str) -> int:
    return len(text.encode("utf-8"))


def _usage_events(live: LiveApp, job_id: int) -> list[UsageEvent]:
    from sqlalchemy import select

    from app.core.db import session_scope

    with session_scope(live.settings) as session:
        rows = list(session.scalars(select(UsageEvent).where(UsageEvent.job_id == job_id)))
        session.expunge_all()
        return rows


class GatedSpeaker:
    """Wraps a real Speaker; its stream stops before chunk number `stop_at` until `gate` opens."""

    def __init__(self, inner: Any, stop_at: int) -> None:
        self.inner = inner
        self.stop_at = stop_at
        self.gate = threading.Event()
        self.reached = threading.Event()

    @property
    def sample_rate(self) -> int:
        return int(self.inner.sample_rate)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.inner.languages)

    def stream(self, text: str, **kwargs: Any) -> Iterator[np.ndarray]:
        chunks = self.inner.stream(text, **kwargs)

        def gated() -> Iterator[np.ndarray]:
            for n, chunk in enumerate(chunks):
                if n == self.stop_at:
                    self.reached.set()
                    assert self.gate.wait(60), "test never opened the gate"
                yield chunk

        return gated()


class Gates:
    """Every speaker the speech route builds while a test runs, gated before chunk `stop_at`."""

    def __init__(self) -> None:
        self.stop_at = 1
        self.speakers: list[GatedSpeaker] = []

    def open_all(self) -> None:
        for speaker in self.speakers:
            speaker.gate.set()


@pytest.fixture
def gates(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gates]:
    control = Gates()
    real = openai_voices.synthesizer_for

    def wrapper(*args: Any, **kwargs: Any) -> GatedSpeaker:
        speaker = GatedSpeaker(real(*args, **kwargs), stop_at=control.stop_at)
        control.speakers.append(speaker)
        return speaker

    monkeypatch.setattr(openai_voices, "synthesizer_for", wrapper)
    yield control
    control.open_all()


# --- validation: 400 with param, nothing charged, no job -------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"input": "", "voice": "alloy"}, "input", "empty"),
        ({"input": "   ", "voice": "alloy"}, "input", "empty"),
        ({"input": "a" * 4097, "voice": "alloy"}, "input", "4096"),
        ({"voice": "alloy"}, "input", "Missing required parameter"),
        ({"input": "Hi.", "voice": "no-such-voice"}, "voice", "not found"),
        ({"input": "Hi.", "voice": {"id": "voice_doesnotexist"}}, "voice", "not found"),
        ({"input": "Hi.", "voice": {"name": "x"}}, "voice", "voice"),
        ({"input": "Hi.", "voice": 987654}, "voice", "not found"),
        ({"input": "Hi.", "voice": "alloy", "speed": 4.5}, "speed", "between"),
        ({"input": "Hi.", "voice": "alloy", "speed": 0.1}, "speed", "between"),
        ({"input": "Hi.", "voice": "alloy", "response_format": "ogg"}, "response_format", "mp3"),
        ({"input": "Hi.", "voice": "alloy", "response_format": "xyz"}, "response_format", "xyz"),
        ({"input": "Hi.", "voice": "alloy", "stream_format": "chunks"}, "stream_format", "sse"),
    ],
)
def test_speech_rejects_bad_input(live: LiveApp, body: dict[str, Any], param: str, fragment: str) -> None:
    account = live.make_user(credits=1000)
    response = live.client.post("/v1/audio/speech", json={"model": "tts-1", **body}, headers=account.headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert fragment in error["message"]
    assert live.balance(account) == (1000, 0)
    assert live.jobs(account) == []


def test_speech_pending_voice_is_refused(live: LiveApp) -> None:
    from app.core.db import session_scope
    from app.voices.models import Voice

    account = live.make_user(credits=1000)
    with session_scope(live.settings) as session:
        voice = Voice(owner_id=account.user_id, kind="custom", name="Mine", status="pending")
        session.add(voice)
        session.flush()
        voice_id = voice.voice_id
    response = live.client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "Hi.", "voice": {"id": voice_id}},
        headers=account.headers,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "voice"
    assert "PENDING" in response.json()["error"]["message"]


def test_sdk_typed_errors(live: LiveApp) -> None:
    account = live.make_user(credits=10)
    client = live.sdk(account)
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=9.0)
    assert "speed must be between" in bad.value.message
    assert bad.value.body["param"] == "speed"  # type: ignore[index]

    with pytest.raises(openai.AuthenticationError):
        live.sdk(key="ap_not-a-real-key").audio.speech.create(model="tts-1", voice="alloy", input="Hi.")

    with pytest.raises(openai.RateLimitError) as quota:
        client.audio.speech.create(model="tts-1", voice="alloy", input="This costs more than ten credits.")
    assert quota.value.code == "insufficient_quota"
    assert "Insufficient credits" in quota.value.message
    assert live.balance(account) == (10, 0)
    assert live.jobs(account) == []


# --- synthesis (loads Piper) ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
def test_sdk_speech_mp3_charges_exactly_the_cost(live: LiveApp, prefix: str) -> None:
    account = live.make_user(credits=1000)
    client = live.sdk(account, prefix=prefix)
    response = client.audio.speech.create(model="tts-1", voice="alloy", input=SHORT)
    data = response.read()
    assert response.response.headers["content-type"] == "audio/mpeg"
    assert 1.0 < decoded_seconds(data) < 8.0
    assert live.balance(account) == (1000 - _cost(SHORT), 0)
    [job] = live.jobs(account)
    assert (job.kind, job.status, job.credits_held) == ("speech_stream", "completed", _cost(SHORT))
    [event] = _usage_events(live, job.id)
    assert (event.kind, event.characters) == ("speech", len(SHORT))
    assert event.seconds > 1.0


@pytest.mark.slow
def test_speech_formats_and_voice_references(live: LiveApp) -> None:
    account = live.make_user(credits=1000)
    voices = live.client.get("/v1/audio/voices", headers=account.headers).json()["data"]
    builtin = next(v for v in voices if v["type"] == "builtin" and v["id"].startswith("voice_"))
    text = "Hi there."
    cases = [
        ("opus", "audio/opus", "nova"),
        ("aac", "audio/aac", {"id": builtin["voice_id"]}),
        ("flac", "audio/flac", builtin["voice_id"]),
        ("wav", "audio/wav", "Shimmer"),
        ("pcm", "audio/pcm", "echo"),
    ]
    for fmt, media, voice in cases:
        response = live.client.post(
            "/v1/audio/speech",
            json={
                "model": "gpt-4o-mini-tts",
                "input": text,
                "voice": voice,
                "response_format": fmt,
                "instructions": "Speak cheerfully.",
                "speed": 1.25,
            },
            headers={**account.headers, "Accept": "text/html"},  # Accept never causes a refusal
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media
        pcm = fmt == "pcm"
        seconds = len(response.content) / 2 / 24_000 if pcm else decoded_seconds(response.content)
        assert 0.3 < seconds < 4.0, fmt
    assert live.balance(account) == (1000 - len(cases) * _cost(text), 0)


@pytest.mark.slow
def test_speech_sse_events(live: LiveApp) -> None:
    account = live.make_user(credits=1000)
    response = live.client.post(
        "/v1/audio/speech",
        json={
            "model": "gpt-4o-mini-tts",
            "input": SHORT,
            "voice": "coral",
            "response_format": "wav",
            "stream_format": "sse",
        },
        headers=account.headers,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    *deltas, done = events
    assert deltas and all(e["type"] == "speech.audio.delta" for e in deltas)
    assert set(deltas[0]) == {"type", "audio"}
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert usage["input_tokens"] == _cost(SHORT)
    assert usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert 1.0 < decoded_seconds(audio) < 8.0
    # The first delta carries the WAV header and only the first quarter second of audio: the
    # stream does not wait for a whole sentence to be encoded before sending bytes.
    first = base64.b64decode(deltas[0]["audio"])
    assert 44 < len(first) <= 44 + int(0.25 * 24_000) * 2, len(first)
    assert live.balance(account) == (1000 - _cost(SHORT), 0)


@pytest.mark.slow
def test_first_sentence_arrives_before_the_rest_is_synthesized(live: LiveApp, gates: Gates) -> None:
    """Audio of sentence 1 reaches the client while synthesis of sentence 2 is held at a gate:
    the job is still processing and its credits are held, not captured."""
    account = live.make_user(credits=10_000)
    body = {"model": "tts-1", "input": LONG, "voice": "alloy", "response_format": "wav"}
    with (
        httpx.Client(base_url=live.base_url, headers=account.headers, timeout=60) as http,
        http.stream("POST", "/v1/audio/speech", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        chunks = response.iter_raw()
        first = next(chunks)
        assert first.startswith(b"RIFF")
        [speaker] = gates.speakers
        assert speaker.reached.wait(30) and not speaker.gate.is_set()  # sentence 2 is held back
        [job] = live.jobs(account)
        assert job.status == "processing"
        assert live.balance(account) == (10_000, _cost(LONG))
        speaker.gate.set()
        rest = b"".join(chunks)
    assert 8.0 < decoded_seconds(first + rest) < 60.0
    live.wait_for(lambda: live.jobs(account)[0].status == "completed")
    assert live.balance(account) == (10_000 - _cost(LONG), 0)


@pytest.mark.slow
def test_concurrent_streams_do_not_block_each_other(live: LiveApp, gates: Gates) -> None:
    """While one stream waits in a worker thread, another request is served to the end."""
    account = live.make_user(credits=10_000)
    body = {"model": "tts-1", "input": LONG, "voice": "alloy", "response_format": "pcm"}
    with (
        httpx.Client(base_url=live.base_url, headers=account.headers, timeout=60) as http,
        http.stream("POST", "/v1/audio/speech", json=body) as blocked,
    ):
        blocked_chunks = blocked.iter_raw()
        next(blocked_chunks)
        gates.stop_at = 10_000  # the second request is not gated
        free = http.post("/v1/audio/speech", json={**body, "input": SHORT})
        assert free.status_code == 200
        assert len(free.content) > 24_000  # over half a second of 24 kHz s16 audio
        assert not gates.speakers[0].gate.is_set()
        gates.open_all()
        assert len(b"".join(blocked_chunks)) > 24_000
    live.wait_for(lambda: [j.status for j in live.jobs(account)] == ["completed", "completed"])


@pytest.mark.slow
def test_disconnect_before_any_audio_releases_the_hold(live: LiveApp, gates: Gates) -> None:
    gates.stop_at = 0  # stop before the first chunk
    account = live.make_user(credits=1000)
    payload = json.dumps({"model": "tts-1", "input": SHORT, "voice": "alloy"}).encode()
    host, port = live.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-API-Key: {account.key}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        live.wait_for(lambda: bool(gates.speakers) and gates.speakers[0].reached.is_set())
        [job] = live.jobs(account)
        assert job.status == "processing"
        assert live.balance(account) == (1000, _cost(SHORT))
    time.sleep(0.5)  # let the server see the closed connection before synthesis resumes
    gates.open_all()
    live.wait_for(lambda: live.jobs(account)[0].status == "failed")
    assert live.balance(account) == (1000, 0)
    assert "disconnected" in (live.jobs(account)[0].error or "")
