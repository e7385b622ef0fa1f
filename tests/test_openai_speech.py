"""POST /v1/audio/speech: streamed audio, SSE events, credits, typed SDK errors."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import av
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
        ({"input": "Hi.", "voice": "alloy", "response_format": "xyz"}, "response_format", "ulaw_8000"),
        ({"input": "Hi.", "voice": "alloy", "response_format": "ulaw"}, "response_format", "ulaw_8000"),
        ({"input": "Hi.", "voice": "alloy", "response_format": "ulaw_16000"}, "response_format", "8000"),
        ({"input": "Hi.", "voice": "alloy", "response_format": "pcm_12345"}, "response_format", "16000"),
        ({"input": "Hi.", "voice": "alloy", "response_format": "mp3_8000_128"}, "response_format", "kbps"),
        ({"input": "Hi.", "voice": "alloy", "response_format": "ogg_44100"}, "response_format", "mp3"),
        (
            {"input": "Hi.", "voice": "alloy", "response_format": "pcm_16000", "sample_rate": 8000},
            "sample_rate",
            "16000",
        ),
        (
            {"input": "Hi.", "voice": "alloy", "response_format": "opus", "sample_rate": 16000},
            "sample_rate",
            "48000",
        ),
        ({"input": "Hi.", "voice": "alloy", "sample_rate": 12345}, "sample_rate", "12345"),
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
    *body, done = events
    deltas = [e for e in body if e["type"] == "speech.audio.delta"]
    timed = [e for e in body if e["type"] == "speech.audio.words"]
    assert deltas and len(deltas) + len(timed) == len(body)
    assert set(deltas[0]) == {"type", "audio"}
    # Each words event follows the audio that finished saying them: every word, once, in order.
    assert body[0]["type"] == "speech.audio.delta"
    words = [w for e in timed for w in e["words"]]
    assert [w["word"] for w in words] == SHORT.split()
    heard = 0.0
    for event in body:
        if event["type"] == "speech.audio.delta":
            heard += len(base64.b64decode(event["audio"])) / 2 / 24_000  # s16le at 24 kHz (+ header)
        else:
            assert all(w["end"] <= heard + 0.01 for w in event["words"]), (event, heard)
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


# --- rate-specific formats and instructions (loads Kokoro) -----------------------------------------


def _speak(live: LiveApp, account: Any, **body: Any) -> httpx.Response:
    response = live.client.post(
        "/v1/audio/speech",
        json={"model": "gpt-4o-mini-tts", "input": SHORT, "voice": "alloy", **body},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    return response


def _wav(data: bytes, rate: int | None = None) -> tuple[np.ndarray, int]:
    from app.audio import decode_audio

    audio = decode_audio(data, max_seconds=600, max_sample_rate=192_000, target_rate=rate)
    return audio.samples, audio.sample_rate


def _raw(data: bytes, demuxer: str, rate: int) -> np.ndarray:
    """Headerless audio (mulaw, alaw, s16le) decoded by FFmpeg at `rate`."""
    with av.open(
        io.BytesIO(data), format=demuxer, options={"sample_rate": str(rate), "ch_layout": "mono"}
    ) as c:
        stream = c.streams.audio[0]
        assert stream.rate == rate
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(stream)]) / 32768.0


def _envelope_correlation(a: np.ndarray, b: np.ndarray, rate: int) -> float:
    hop = int(0.02 * rate)
    n = min(a.size, b.size) // hop * hop
    env_a = np.sqrt(np.mean(np.square(a[:n].reshape(-1, hop)), axis=1))
    env_b = np.sqrt(np.mean(np.square(b[:n].reshape(-1, hop)), axis=1))
    return float(np.corrcoef(env_a, env_b)[0, 1])


def _rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


@pytest.mark.slow
def test_speech_telephony_and_rated_formats(live: LiveApp) -> None:
    """Each format decoded (not judged by its headers): the wav's speech, at the rate the name asks."""
    account = live.make_user(credits=10_000)
    wav = _speak(live, account, response_format="wav").content
    seconds = decoded_seconds(wav)
    cases = [
        ("ulaw_8000", "mulaw", 8000, "audio/basic"),
        ("alaw_8000", "alaw", 8000, "audio/x-alaw-basic"),
        *((f"pcm_{rate}", "s16le", rate, "audio/pcm") for rate in (8000, 16_000, 22_050, 24_000, 44_100)),
    ]
    for fmt, demuxer, rate, media in cases:
        response = _speak(live, account, response_format=fmt)
        assert response.headers["content-type"] == media
        audio = _raw(response.content, demuxer, rate)
        reference, _ = _wav(wav, rate)  # the wav's samples, resampled by app.audio
        assert audio.size / rate == pytest.approx(seconds, rel=0.03), fmt
        assert _envelope_correlation(audio, reference, rate) > 0.9, fmt
        n = min(audio.size, reference.size)
        assert float(np.corrcoef(audio[:n], reference[:n])[0, 1]) > 0.9, fmt  # the waveform, too

    mp3 = _speak(live, account, response_format="mp3_44100_128").content
    samples, rate = _wav(mp3)
    assert rate == 44_100
    assert samples.size / rate == pytest.approx(seconds, rel=0.05)
    assert len(mp3) * 8 / (samples.size / rate) == pytest.approx(128_000, rel=0.1)
    assert _envelope_correlation(_wav(mp3, 16_000)[0], _wav(wav, 16_000)[0], 16_000) > 0.8
    assert live.balance(account) == (10_000 - (2 + len(cases)) * _cost(SHORT), 0)


@pytest.mark.slow
def test_speech_sample_rate_field(live: LiveApp) -> None:
    account = live.make_user(credits=10_000)
    seconds = decoded_seconds(_speak(live, account, response_format="wav").content)
    wav = _speak(live, account, response_format="wav", sample_rate=16_000).content
    samples, rate = _wav(wav)
    assert rate == 16_000 and samples.size / rate == pytest.approx(seconds, rel=0.02)
    mp3 = _speak(live, account, response_format="mp3", sample_rate=22_050).content
    samples, rate = _wav(mp3)
    assert rate == 22_050 and samples.size / rate == pytest.approx(seconds, rel=0.05)
    pcm = _speak(live, account, response_format="pcm", sample_rate=8000).content
    assert len(pcm) / 2 / 8000 == pytest.approx(seconds, rel=0.02)
    same = _speak(live, account, response_format="pcm_8000", sample_rate=8000).content
    assert same == pcm
    opus = _speak(live, account, response_format="opus", sample_rate=48_000).content
    assert _wav(opus)[1] == 48_000
    refused = live.client.post(
        "/v1/audio/speech",
        json={
            "model": "tts-1",
            "input": SHORT,
            "voice": "alloy",
            "response_format": "ulaw_8000",
            "sample_rate": 16_000,
        },
        headers=account.headers,
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "sample_rate"
    assert live.balance(account) == (10_000 - 6 * _cost(SHORT), 0)


def test_instructions_vocabulary() -> None:
    """The parser alone: terms combine, repeat once, clamp, and the rest is reported header-safe."""
    from app.speech.instructions import parse_instructions

    said = parse_instructions("Speak SLOWLY and softly, slower still, in a deep voice; sound like a pirate!")
    assert said.applied == ("slower", "calm", "lower")
    assert said.speed_factor == pytest.approx(0.85 * 0.95)
    assert (said.pitch, said.gain_db) == (-4.0, -3.0)
    assert said.ignored == "still, in a, voice; sound like a pirate"  # what falls between terms
    assert parse_instructions("excited and loud").gain_db == 6.0
    assert parse_instructions("high-pitched whisper").applied == ("higher", "whisper")
    assert parse_instructions("Speak cheerfully.").ignored == ""
    assert parse_instructions(None) == parse_instructions("   ") == parse_instructions("")
    assert parse_instructions("faster").speed(4.0) == 4.0  # clamped to the engines' range
    assert parse_instructions("slower").speed(0.25) == 0.25
    assert parse_instructions("higher").shifted_pitch(11.0) == 12.0
    headers = parse_instructions("chuchote 🤫 doucement\r\nX-Evil: 1, whisper").headers()
    assert headers["X-Chorus-Instructions-Applied"] == "whisper"
    assert headers["X-Chorus-Instructions-Ignored"] == "chuchote doucement X-Evil: 1"
    assert all(value.isascii() and value.isprintable() for value in headers.values())


@pytest.mark.slow
def test_speech_instructions(live: LiveApp) -> None:
    """The vocabulary changes the audio measurably on a built-in voice; other words are reported."""
    from tests.plugins.pitch import median_f0

    account = live.make_user(credits=10_000)
    plain_response = _speak(live, account, response_format="wav")
    assert not any(h.lower().startswith("x-chorus-instructions") for h in plain_response.headers)
    plain, rate = _wav(plain_response.content)

    slower = _speak(live, account, response_format="wav", instructions="Speak slower")
    assert slower.headers["x-chorus-instructions-applied"] == "slower"
    assert slower.headers["x-chorus-instructions-ignored"] == ""
    assert _wav(slower.content)[0].size / plain.size > 1.1

    whisper = _speak(
        live, account, response_format="wav", instructions="Whisper, s'il vous plaît — très bas 🤫"
    )
    assert whisper.headers["x-chorus-instructions-applied"] == "whisper"
    assert whisper.headers["x-chorus-instructions-ignored"] == "s'il vous plait tres bas"
    quiet = _wav(whisper.content)[0]
    assert quiet.size == plain.size
    assert _rms_db(plain) - _rms_db(quiet) > 6

    higher = _speak(live, account, response_format="wav", instructions="higher pitch")
    assert higher.headers["x-chorus-instructions-applied"] == "higher"
    raised = 12 * np.log2(median_f0(_wav(higher.content)[0], rate) / median_f0(plain, rate))
    assert raised > 2, raised

    loud = _speak(live, account, response_format="wav", instructions="LOUDLY!")
    louder = _wav(loud.content)[0]
    assert _rms_db(louder) - _rms_db(plain) > 2
    assert np.mean(np.abs(louder) > 0.999) < 1e-3  # soft-limited, not clipped

    pirate = _speak(live, account, response_format="wav", instructions="sound like a pirate")
    assert pirate.headers["x-chorus-instructions-applied"] == ""
    assert pirate.headers["x-chorus-instructions-ignored"] == "sound like a pirate"
    assert len(pirate.content) == len(plain_response.content)

    # Piper speaks through the same parameters (its duration noise makes takes differ a little).
    def joe(**body: Any) -> np.ndarray:
        return _wav(_speak(live, account, response_format="wav", voice="joe", **body).content)[0]

    joe_plain, joe_slow, joe_quiet = joe(), joe(instructions="slowly"), joe(instructions="quietly")
    assert joe_slow.size / joe_plain.size > 1.05
    assert _rms_db(joe_plain) - _rms_db(joe_quiet) > 6
    assert live.balance(account) == (10_000 - 9 * _cost(SHORT), 0)


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["joe", "alloy"])  # Piper, and an OpenAI name on a Kokoro voice
def test_speech_with_timestamps(live: LiveApp, voice: str) -> None:
    account = live.make_user(credits=1000)
    text = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
    response = live.client.post(
        "/v1/audio/speech/with-timestamps",
        json={"model": "tts-1", "input": text, "voice": voice, "response_format": "mp3"},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format"] == "mp3" and set(body) == {"audio_base64", "format", "words", "characters"}
    audio = base64.b64decode(body["audio_base64"])
    seconds = decoded_seconds(audio)
    words = body["words"]
    assert [w["word"] for w in words] == text.split()
    assert all(0 <= a["start"] < a["end"] <= b["start"] for a, b in zip(words, words[1:], strict=False))
    assert words[-1]["end"] == pytest.approx(seconds, abs=0.4)
    # The pause between the sentences lies between "planks." and "Glue".
    planks, glue = words[7], words[8]
    assert glue["start"] - planks["end"] > 0.1
    chars = body["characters"]
    assert "".join(c["char"] for c in chars) == " ".join(w["word"] for w in words)
    assert chars[0]["start"] == words[0]["start"] and chars[-1]["end"] == words[-1]["end"]
    assert live.balance(account) == (1000 - _cost(text), 0)

    streamed = live.client.post(
        "/v1/audio/speech/with-timestamps",
        json={"input": "Hi there.", "voice": voice, "stream_format": "sse"},
        headers=account.headers,
    )
    kinds = [e["type"] for e in sse_events(streamed.content)]
    assert (
        kinds[0] == "speech.audio.delta"
        and "speech.audio.words" in kinds
        and kinds[-1] == "speech.audio.done"
    )

    refused = live.client.post(
        "/v1/audio/speech/with-timestamps", json={"input": " ", "voice": voice}, headers=account.headers
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "input"
    assert live.balance(account) == (1000 - _cost(text) - _cost("Hi there."), 0)
