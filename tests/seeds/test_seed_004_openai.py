"""Seed 004 (OpenAI-compatible audio endpoints), its examples run with the official `openai` SDK.

Each test ports one example or note of ../shared/seeds/004_400138feb212a000.txt: the same
`client.audio.*.create(...)` calls with only `base_url` (the live server + "/api/v1" as in the
seed, or "/v1") and `api_key` changed, the same attributes read. The field tables and the
"Notes & differences" become tests of what they promise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import requests
from openai import OpenAI

from app.audio import decode_audio, encode_audio
from tests.plugins.services import Account
from tests.plugins.waiting import wait_until
from tests.test_openai_fixtures import LiveApp

TIMEOUT = 120  # seconds per HTTP request (a bound on a hang, not a timing)
SEED_INPUT = "Hello from AudioPod."


def _client(live: LiveApp, account: Account, prefix: str = "/api/v1") -> OpenAI:
    """The seed's Configuration: OpenAI(base_url=".../api/v1", api_key="ap_your_api_key")."""
    return OpenAI(base_url=live.base_url + prefix, api_key=account.key, max_retries=0, timeout=TIMEOUT)


def _seconds(data: bytes) -> float:
    return decode_audio(data, max_seconds=600, max_sample_rate=192_000).duration


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _cost(text: str) -> int:
    return len(text.encode("utf-8"))


@pytest.fixture(scope="module")
def audio_mp3(tmp_path_factory: pytest.TempPathFactory, speech_samples: tuple[np.ndarray, int]) -> Path:
    """The seed's `audio.mp3`: ≈ 6 s of real English speech."""
    samples, rate = speech_samples
    path = tmp_path_factory.mktemp("seed-004") / "audio.mp3"
    path.write_bytes(encode_audio(samples, rate, "mp3"))
    return path


@pytest.fixture(scope="module")
def short_mp3(
    tmp_path_factory: pytest.TempPathFactory, speech_sentences: tuple[list[np.ndarray], int]
) -> Path:
    """ "The quick brown fox jumps over the lazy dog." alone (≈ 2.5 s), as MP3."""
    sentences, rate = speech_sentences
    path = tmp_path_factory.mktemp("seed-004") / "short.mp3"
    path.write_bytes(encode_audio(sentences[0], rate, "mp3"))
    return path


# --- Configuration and Text to speech -----------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1"])
def test_configuration(live: LiveApp, prefix: str, tmp_path: Path) -> None:
    """ "Configuration": client = OpenAI(base_url="https://api.audiopod.ai/api/v1",
    api_key="ap_your_api_key") - the seed's base (API.md also mounts the family at /v1)."""
    account = live.make_user(credits=1000)
    client = OpenAI(base_url=live.base_url + prefix, api_key=account.key)
    response = client.audio.speech.create(model="tts-1", voice="nova", input=SEED_INPUT)
    response.stream_to_file(tmp_path / "speech.mp3")
    assert 0.5 < _seconds((tmp_path / "speech.mp3").read_bytes()) < 6.0
    assert live.balance(account) == (1000 - _cost(SEED_INPUT), 0)  # billed once audio is produced


def test_text_to_speech(live: LiveApp, tmp_path: Path) -> None:
    """ "Text to speech": client.audio.speech.create(model="tts-1", voice="nova",
    input="Hello from AudioPod.", response_format="mp3"); response.stream_to_file("speech.mp3")."""
    account = live.make_user(credits=1000)
    client = _client(live, account)
    response = client.audio.speech.create(
        model="tts-1",
        voice="nova",
        input="Hello from AudioPod.",
        response_format="mp3",  # mp3 | opus | aac | flac | wav | pcm
    )
    response.stream_to_file(tmp_path / "speech.mp3")
    data = (tmp_path / "speech.mp3").read_bytes()
    assert response.response.headers["content-type"] == "audio/mpeg"
    assert data[:3] == b"ID3" or data[0] == 0xFF  # an MP3 file
    assert 0.5 < _seconds(data) < 6.0
    assert live.balance(account) == (1000 - _cost(SEED_INPUT), 0)


@pytest.mark.parametrize(
    ("response_format", "media"),
    [
        ("mp3", "audio/mpeg"),
        ("opus", "audio/opus"),
        ("aac", "audio/aac"),
        ("flac", "audio/flac"),
        ("wav", "audio/wav"),
        ("pcm", "audio/pcm"),
    ],
)
def test_text_to_speech_response_formats(live: LiveApp, response_format: str, media: str) -> None:
    """ "Text to speech" field `response_format`: mp3 (default), opus, aac, flac, wav, pcm."""
    account = live.make_user(credits=1000)
    response = _client(live, account).audio.speech.create(
        model="tts-1",
        voice="nova",
        input=SEED_INPUT,
        response_format=response_format,  # type: ignore[arg-type]
    )
    data = response.read()
    assert response.response.headers["content-type"] == media
    seconds = len(data) / 2 / 24_000 if response_format == "pcm" else _seconds(data)  # pcm: s16le 24 kHz
    assert 0.5 < seconds < 6.0, response_format


def test_text_to_speech_default_format_is_mp3(live: LiveApp) -> None:
    """ "Text to speech" field `response_format`: "mp3 (default)"."""
    account = live.make_user(credits=1000)
    response = _client(live, account).audio.speech.create(model="tts-1", voice="onyx", input=SEED_INPUT)
    assert response.response.headers["content-type"] == "audio/mpeg"
    assert 0.5 < _seconds(response.read()) < 6.0


def test_text_to_speech_voice_name_or_id(live: LiveApp) -> None:
    """ "Text to speech" field `voice`: "A voice name (e.g. nova, onyx) or a voice ID. List options at
    GET /api/v1/voice/voice-profiles"."""
    account = live.make_user(credits=1000)
    listed = requests.get(
        f"{live.base_url}/api/v1/voice/voice-profiles",
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=TIMEOUT,
    )
    assert listed.status_code == 200, listed.text
    profile = listed.json()["voices"][0]
    client = _client(live, account)
    for voice in ("onyx", profile["voice_id"], profile["name"]):
        audio = client.audio.speech.create(model="tts-1", voice=voice, input=SEED_INPUT).read()
        assert 0.5 < _seconds(audio) < 6.0, voice


def test_text_to_speech_speed(live: LiveApp) -> None:
    """ "Text to speech" field `speed`: 0.25 – 4.0 (default 1.0)."""
    account = live.make_user(credits=1000)
    client = _client(live, account)
    durations = {}
    for speed in (0.25, 1.0, 4.0):
        audio = client.audio.speech.create(
            model="tts-1", voice="nova", input=SEED_INPUT, response_format="wav", speed=speed
        ).read()
        durations[speed] = _seconds(audio)
    assert durations[0.25] > durations[1.0] > durations[4.0] > 0.1, durations


# --- custom voice clones ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def my_clone(live: LiveApp, account: Account, speech_wav_bytes: bytes) -> dict[str, Any]:
    """A custom voice clone made through the native REST API ("voice cloning ... available through
    the native REST API"), waited on until COMPLETED."""
    headers = {"Authorization": f"Bearer {account.key}"}
    created = requests.post(
        f"{live.base_url}/api/v1/voice/voice-profiles",
        headers=headers,
        data={"name": "Seedfour Narrator"},
        files={"file": ("me.wav", speech_wav_bytes, "audio/wav")},
        timeout=TIMEOUT,
    )
    assert created.status_code == 200, created.text
    voice_id = created.json()["voice_id"]

    def status() -> dict[str, Any]:
        response = requests.get(
            f"{live.base_url}/api/v1/voice/voices/{voice_id}/status", headers=headers, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    voice = wait_until(status, lambda v: v["status"] in ("COMPLETED", "FAILED"), interval=2.0)
    assert voice["status"] == "COMPLETED", voice
    return voice


def test_voices_custom_clone_name_or_id_as_voice(
    live: LiveApp, account: Account, my_clone: dict[str, Any]
) -> None:
    """ "Notes & differences - Voices": "Browse the full catalog — including custom voice clones — at
    GET /api/v1/voice/voice-profiles and pass any voice name or ID as voice." (API.md: the caller's
    own voice name, any voice id, or {"id"})."""
    listed = requests.get(
        f"{live.base_url}/api/v1/voice/voice-profiles",
        params={"voice_type": "CUSTOM"},
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=TIMEOUT,
    )
    assert listed.status_code == 200, listed.text
    mine = next(v for v in listed.json()["voices"] if v["voice_id"] == my_clone["voice_id"])
    assert mine["name"] == "Seedfour Narrator"

    client = _client(live, account)
    refs: list[Any] = [
        mine["name"],
        mine["voice_id"],
        str(mine["id"]),
        mine["uuid"],
        {"id": mine["voice_id"]},
    ]
    for ref in refs:
        audio = client.audio.speech.create(
            model="tts-1", voice=ref, input="Hello from my own voice.", response_format="wav"
        ).read()
        assert 0.5 < _seconds(audio) < 6.0, ref


def test_voices_someone_elses_clone_name_is_not_theirs(live: LiveApp, my_clone: dict[str, Any]) -> None:
    """ "Voices": a custom clone's name is the caller's own - another user's private clone name does not
    resolve for them (an OpenAI-shaped error, nothing charged)."""
    stranger = live.make_user(credits=1000)
    with pytest.raises(openai.APIStatusError) as refused:
        _client(live, stranger).audio.speech.create(model="tts-1", voice=my_clone["name"], input=SEED_INPUT)
    assert refused.value.status_code in (400, 404)
    assert live.balance(stranger) == (1000, 0)


# --- Transcription and Translation --------------------------------------------------------------


def test_transcription(live: LiveApp, audio_mp3: Path) -> None:
    """ "Transcription": with open("audio.mp3", "rb") as f: transcript =
    client.audio.transcriptions.create(model="whisper-1", file=f, response_format="json");
    print(transcript.text)."""
    account = live.make_user(credits=1000)
    client = _client(live, account)
    with open(audio_mp3, "rb") as f:
        transcript = client.audio.transcriptions.create(
            model="whisper-1",
            file=f,
            response_format="json",  # json | text | verbose_json | srt | vtt
        )
    assert {"quick", "brown", "fox", "stella", "station", "noon"} <= _words(transcript.text), transcript.text


def test_transcription_fields(live: LiveApp, short_mp3: Path) -> None:
    """ "Transcription" fields: `language` ISO-639-1 hint, `prompt`, `response_format` json (default),
    text, verbose_json ("includes the detected language, duration, and segment-level timestamps"),
    srt, vtt."""
    account = live.make_user(credits=1000)
    client = _client(live, account)

    def transcribe(**fields: Any) -> Any:
        with open(short_mp3, "rb") as f:
            return client.audio.transcriptions.create(model="whisper-1", file=f, **fields)

    text = transcribe(response_format="text", language="en", prompt="A pangram about a fox.")
    assert isinstance(text, str) and {"quick", "fox", "lazy", "dog"} <= _words(text), text

    verbose = transcribe(response_format="verbose_json")
    assert verbose.language and 2.0 < verbose.duration < 4.0
    assert verbose.segments and all(0 <= s.start < s.end for s in verbose.segments)
    assert "fox" in verbose.text.lower()

    srt = transcribe(response_format="srt")
    assert re.match(r"1\r?\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\r?\n\S", str(srt)), srt
    vtt = transcribe(response_format="vtt")
    assert re.match(r"WEBVTT\r?\n\r?\n(\d+\r?\n)?00:00:\d\d\.\d{3} --> 00:00:\d\d\.\d{3}", str(vtt)), vtt


def test_translation(live: LiveApp, short_mp3: Path) -> None:
    """ "Translation": with open("spanish.mp3", "rb") as f: translation =
    client.audio.translations.create(model="whisper-1", file=f); print(translation.text)  # English.
    (No Spanish voice ships with the test environment: the speech here is English, and stays English.)"""
    account = live.make_user(credits=1000)
    client = _client(live, account)
    with open(short_mp3, "rb") as f:
        translation = client.audio.translations.create(
            model="whisper-1",
            file=f,
        )
    assert {"quick", "brown", "fox"} <= _words(translation.text), translation.text


# --- Notes & differences ------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["bearer", "x-api-key"])
def test_notes_auth_bearer_or_x_api_key(live: LiveApp, scheme: str) -> None:
    """ "Notes & differences - Auth": "pass your AudioPod API key as a Bearer token (the scheme the
    OpenAI SDKs use). X-API-Key is also accepted."""
    account = live.make_user(credits=1000)
    headers = {"Authorization": f"Bearer {account.key}"} if scheme == "bearer" else {"X-API-Key": account.key}
    response = requests.post(
        f"{live.base_url}/api/v1/audio/speech",
        headers=headers,
        json={"model": "tts-1", "voice": "nova", "input": SEED_INPUT},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mpeg"
    assert 0.5 < _seconds(response.content) < 6.0


def test_notes_models_any_model_string(live: LiveApp, short_mp3: Path) -> None:
    """ "Notes & differences - Models": "the model field is accepted for compatibility ... you don't
    need to change model strings when migrating" - OpenAI's speech and transcription model names."""
    account = live.make_user(credits=1000)
    client = _client(live, account)
    for model in ("tts-1-hd", "gpt-4o-mini-tts"):
        audio = client.audio.speech.create(model=model, voice="alloy", input=SEED_INPUT).read()
        assert 0.5 < _seconds(audio) < 6.0, model
    with open(short_mp3, "rb") as f:
        transcript = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=f)
    assert "fox" in transcript.text.lower(), transcript.text


def test_notes_errors_follow_the_openai_shape(live: LiveApp) -> None:
    """ "Notes & differences - Errors follow the OpenAI shape ({ "error": { "message", "type", "param" } }),
    so existing OpenAI error handling works unchanged"; "Nothing is charged for a request that fails"."""
    account = live.make_user(credits=1000)
    client = _client(live, account)
    handled: list[Callable[[], Any]] = [
        lambda: client.audio.speech.create(model="tts-1", voice="nova", input=SEED_INPUT, speed=9.0),
        lambda: client.audio.speech.create(model="tts-1", voice="no-such-voice", input=SEED_INPUT),
        lambda: client.audio.speech.create(model="tts-1", voice="nova", input=""),
    ]
    for call in handled:
        with pytest.raises(openai.BadRequestError) as bad:
            call()
        body = bad.value.body
        assert isinstance(body, dict) and {"message", "type", "param"} <= set(body), body
        assert body["type"] == "invalid_request_error" and bad.value.message

    raw = requests.post(
        f"{live.base_url}/api/v1/audio/speech",
        headers={"Authorization": f"Bearer {account.key}"},
        json={"model": "tts-1", "voice": "nova", "input": SEED_INPUT, "speed": 9.0},
        timeout=TIMEOUT,
    )
    assert raw.status_code == 400 and {"message", "type", "param"} <= set(raw.json()["error"])

    with pytest.raises(openai.AuthenticationError) as denied:
        OpenAI(
            base_url=live.base_url + "/api/v1", api_key="ap_your_api_key", max_retries=0
        ).audio.speech.create(model="tts-1", voice="nova", input=SEED_INPUT)
    assert denied.value.status_code == 401
    assert live.balance(account) == (1000, 0)
