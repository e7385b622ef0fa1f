"""GET/POST /v1/audio/voices and GET /v1/models, through TestClient and the official SDK."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from app.api.openai.voices import OPENAI_VOICE_NAMES
from tests.test_openai_fixtures import LiveApp, audio_file, decoded_seconds, live_app


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from live_app(tmp_path_factory)


def test_models_through_the_sdk(live: LiveApp) -> None:
    account = live.make_user()
    for prefix in ("/v1", "/api/v1"):
        ids = {m.id for m in live.sdk(account, prefix=prefix).models.list()}
        assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "whisper-1"} <= ids
    with pytest.raises(openai.AuthenticationError) as denied:
        live.sdk(key="ap_bogus").models.list()
    assert denied.value.status_code == 401
    assert denied.value.code == "invalid_api_key"


def test_builtin_voices_are_listed_under_their_openai_names(live: LiveApp) -> None:
    account = live.make_user()
    response = live.client.get("/api/v1/audio/voices", headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    ids = [v["id"] for v in body["data"]]
    assert set(OPENAI_VOICE_NAMES) <= set(ids)
    builtin = [v for v in body["data"] if v["type"] == "builtin" and v["id"].startswith("voice_")]
    assert builtin and all(v["status"] == "completed" for v in builtin)
    alloy = next(v for v in body["data"] if v["id"] == "alloy")
    assert alloy["object"] == "audio.voice" and alloy["voice_id"].startswith("voice_")
    assert isinstance(alloy["created_at"], int)


def test_create_voice_through_the_sdk(live: LiveApp, speech_wav_bytes: bytes) -> None:
    account = live.make_user(credits=5000)
    voice = live.sdk(account).audio.voices.create(
        name="My clone", audio_sample=audio_file(speech_wav_bytes, "me.wav"), consent="cons_1234"
    )
    assert voice.object == "audio.voice"
    assert voice.id.startswith("voice_")
    assert voice.name == "My clone"
    assert isinstance(voice.created_at, int)

    mine = live.client.get("/v1/audio/voices", headers=account.headers).json()["data"]
    listed = next(v for v in mine if v["id"] == voice.id)
    assert listed["type"] == "audio_sample"
    stranger = live.make_user()
    theirs = live.client.get("/v1/audio/voices", headers=stranger.headers).json()["data"]
    assert voice.id not in {v["id"] for v in theirs}


@pytest.mark.parametrize(
    ("fields", "sample", "status", "param"),
    [
        ({"name": "x"}, "speech", 400, "consent"),
        ({"name": "x", "consent": "false"}, "speech", 400, "consent"),
        ({"name": "x", "consent": "yes", "type": "prompt"}, "speech", 400, "type"),
        ({"name": "   ", "consent": "yes"}, "speech", 400, "name"),
        ({"consent": "yes"}, "speech", 400, "name"),
        ({"name": "x", "consent": "yes"}, "png", 415, "audio_sample"),
        ({"name": "x", "consent": "yes"}, "none", 400, "audio_sample"),
    ],
)
def test_create_voice_refusals(
    live: LiveApp,
    speech_wav_bytes: bytes,
    fields: dict[str, str],
    sample: str,
    status: int,
    param: str | None,
) -> None:
    account = live.make_user(credits=5000)
    files = {}
    if sample != "none":
        files["audio_sample"] = audio_file(
            speech_wav_bytes if sample == "speech" else b"\x89PNG\r\n\x1a\n" + bytes(64)
        )
    response = live.client.post("/v1/audio/voices", data=fields, files=files or None, headers=account.headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert live.balance(account) == (5000, 0)
    assert live.jobs(account) == []


@pytest.mark.slow
def test_cloned_voice_speaks_once_its_clone_completes(live: LiveApp, speech_wav_bytes: bytes) -> None:
    account = live.make_user(credits=5000)
    client = live.sdk(account)
    voice = client.audio.voices.create(
        name="Clone", audio_sample=audio_file(speech_wav_bytes), consent="cons_1"
    )

    def status() -> str:
        data = live.client.get("/v1/audio/voices", headers=account.headers).json()["data"]
        return str(next(v for v in data if v["id"] == voice.id)["status"])

    live.wait_for(lambda: status() in ("completed", "failed"))
    assert status() == "completed"
    audio = client.audio.speech.create(
        model="tts-1", voice={"id": voice.id}, input="Hello from my cloned voice.", response_format="wav"
    ).read()
    assert 0.8 < decoded_seconds(audio) < 6.0


@pytest.mark.slow
def test_a_real_man_cloned_through_the_sdk_speaks_like_him_under_both_judges(live: LiveApp) -> None:
    """What a user of the official SDK hears: a real man's reading (LibriSpeech M_1040, the first
    ~70% of it) uploaded with audio.voices.create, then spoken with audio.speech.create on other
    words. On the part of his recording the clone never heard, both speaker judges put it far
    nearer him than joe (measured 0.756 against 0.512, and 0.795 against 0.358), and the job's own
    held-out score reaches the native family's `quality`."""
    from app.engines import registry
    from tests.plugins.audio_samples import wav_bytes
    from tests.plugins.waiting import wait_until
    from tests.test_cloning import RATE, SPEAK, _cos, _decode, _joe, _person

    upload, held = _person("M_1040-133433-0000.flac")
    account = live.make_user(credits=100_000)
    client = live.sdk(account)
    voice = client.audio.voices.create(
        name="M_1040", audio_sample=audio_file(wav_bytes(upload, RATE), "reading.wav"), consent="cons_1040"
    )
    native = f"/api/v1/voice/voices/{voice.id}/status"
    done = wait_until(
        lambda: live.client.get(native, headers=account.headers).json(),
        lambda body: str(body["status"]).lower() in ("completed", "failed"),
    )
    assert done["status"] == "COMPLETED", done
    quality = done["quality"]["similarity"]
    assert quality is not None and 0.5 < quality <= 1.0, done["quality"]

    speech = client.audio.speech.create(
        model="tts-1", voice={"id": voice.id}, input=SPEAK, response_format="wav"
    )
    spoken = _decode(speech.read()).samples
    joe = _joe().synthesize(SPEAK)
    for judge, margin in ((registry.get_speaker_encoder(), 0.15), (registry.get_second_judge(), 0.2)):
        him = judge.embed(held, RATE)
        clone, base = _cos(judge.embed(spoken, RATE), him), _cos(judge.embed(joe, RATE), him)
        assert clone > base + margin, (type(judge).__name__, clone, base)
