"""Clone family ("Voice Clone & Text-to-Speech API", seed 003) end to end through HTTP.

Jobs are finished by hand (see tests/test_credits_full.py: `harness`, `finish_job`), so
credits are checked exactly at every step: held at creation, captured on success,
released on failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.audio import decode_audio
from app.core.db import session_scope
from app.jobs import webhooks
from app.storage import get_store
from app.voices.models import Voice
from app.voices.usage import record_usage
from tests.plugins.services import _build_harness, blob_files, make_settings
from tests.plugins.waiting import JOB_WAIT_S, wait_until
from tests.test_credits_full import (
    Harness,
    add_voice,
    assert_ledger_invariant,
    available,
    build_harness,
    clone_job_of,
    finish_job,
    job_id_of,
    stored_things,
)
from tests.test_fetch import LocalServer, running_server


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    yield from build_harness(tmp_path)


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


def _clone(h: Harness, headers: dict[str, str], wav: bytes, **form: Any) -> Any:
    return h.client.post(
        "/api/v1/voice-clone", headers=headers, data=form, files={"voice": ("my-voice.wav", wav, "audio/wav")}
    )


def test_voice_clone_then_list(harness: Harness, speech_wav_bytes: bytes, local_server: LocalServer) -> None:
    account = harness.make_user(credits=5000)
    cover = local_server.url("/cover.jpg")
    r = _clone(
        harness,
        account.headers,
        speech_wav_bytes,
        title="My Voice Clone",
        description="A custom voice",
        coverImage=cover,
        tags='["male","young"]',
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["voiceId"] == body["voice"]["id"]
    voice = body["voice"]
    assert set(voice) == {
        "id",
        "title",
        "description",
        "coverImage",
        "audioUrl",
        "duration",
        "tags",
        "status",
        "createdAt",
    }
    assert (voice["title"], voice["description"], voice["coverImage"]) == (
        "My Voice Clone",
        "A custom voice",
        cover,
    )
    assert voice["tags"] == ["male", "young"] and voice["status"] == "PROCESSING"
    assert voice["duration"] == pytest.approx(len(speech_wav_bytes[44:]) / 2 / 22050, abs=0.05)
    assert harness.client.get(voice["audioUrl"]).content == speech_wav_bytes  # the uploaded sample
    assert local_server.seen == []  # coverImage is stored, never fetched
    assert available(harness, account) == 4000  # 1000 held

    finish_job(
        harness.settings, clone_job_of(harness.settings, voice["id"]), result_key="voices/x/artifact.json"
    )
    assert available(harness, account) == 4000
    listed = harness.client.get(
        "/api/v1/voices", params={"type": "USER", "status": "COMPLETED"}, headers=account.headers
    ).json()
    assert listed["success"] is True
    (row,) = listed["voices"]
    assert row["id"] == voice["id"] and row["status"] == "COMPLETED" and row["type"] == "USER"
    assert row["isPublic"] is False and row["usageCount"] == 0 and row["coverImage"] == cover
    assert listed["pagination"] == {
        "page": 1,
        "limit": 20,
        "total": 1,
        "totalPages": 1,
        "hasNext": False,
        "hasPrev": False,
    }
    usage = harness.client.get("/api/v1/credits/usage", headers=account.headers).json()["usage"]
    assert [(e["type"], e["amount"]) for e in usage] == [("capture", -1000), ("hold", 0), ("grant", 5000)]
    assert_ledger_invariant(harness.settings, account.user_id)


def test_title_defaults_and_comma_tags_and_failed_clone_costs_nothing(
    harness: Harness, speech_wav_bytes: bytes
) -> None:
    account = harness.make_user(credits=1000)
    r = _clone(harness, account.headers, speech_wav_bytes, tags="warm, narration ,")
    assert r.status_code == 200, r.text
    voice = r.json()["voice"]
    assert (
        voice["title"] == "my-voice"
        and voice["tags"] == ["warm", "narration"]
        and voice["coverImage"] is None
    )
    assert available(harness, account) == 0
    finish_job(harness.settings, clone_job_of(harness.settings, voice["id"]), ok=False)
    assert available(harness, account) == 1000
    listed = harness.client.get("/api/v1/voices", params={"status": "FAILED"}, headers=account.headers).json()
    assert [v["id"] for v in listed["voices"]] == [voice["id"]]


def test_tts_job_charged_per_utf8_byte_on_success_only(harness: Harness) -> None:
    account = harness.make_user(credits=1000)
    voice = add_voice(
        harness.settings, account.user_id, name="Narrator", extra={"coverImage": "https://x/c.jpg"}
    )
    text = "Hello, 你好 world."  # 2 CJK characters are 6 bytes
    assert len(text.encode()) == 20
    r = harness.client.post(
        "/api/v1/tts",
        headers=account.headers,
        json={"text": text, "voiceId": voice.voice_id, "format": "wav"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["creditsUsed"] == 20 and body["speechId"].startswith("speech_")
    assert body["speech"]["status"] == "PROCESSING" and body["speech"]["text"] == text
    assert body["speech"]["format"] == "wav" and body["speech"]["creditsUsed"] == 20
    assert available(harness, account) == 980

    status = harness.client.get(f"/api/v1/tts/{body['speechId']}", headers=account.headers).json()
    assert status["speech"]["status"] == "PROCESSING" and status["speech"]["audioUrl"] is None
    assert status["speech"]["captionsUrl"] is None
    captions = f"/api/v1/voice/tts-jobs/{body['speechId']}/captions"
    pending = harness.client.get(captions, headers=account.headers)
    assert pending.status_code == 409 and "completed" in pending.text
    assert status["speech"]["voice"] == {
        "id": voice.voice_id,
        "title": "Narrator",
        "coverImage": "https://x/c.jpg",
        "type": "USER",
    }

    key = f"speech/{account.user_id}/out.wav"
    get_store(harness.settings).put(key, b"RIFF0000WAVE", "audio/wav")
    finish_job(harness.settings, job_id_of(harness.settings, body["speechId"]), result_key=key, duration=1.5)
    done = harness.client.get(f"/api/v1/tts/{body['speechId']}", headers=account.headers).json()["speech"]
    assert done["status"] == "COMPLETED" and done["duration"] == 1.5 and done["creditsUsed"] == 20
    assert harness.client.get(done["audioUrl"]).content == b"RIFF0000WAVE"
    untimed = harness.client.get(done["captionsUrl"], headers=account.headers)  # no words were stored
    assert untimed.status_code == 404 and "no captions" in untimed.text
    assert available(harness, account) == 980

    failed = harness.client.post(
        "/api/v1/tts", headers=account.headers, json={"text": "Again", "voiceId": voice.id}
    )
    assert failed.status_code == 200 and available(harness, account) == 975
    finish_job(harness.settings, job_id_of(harness.settings, failed.json()["speechId"]), ok=False)
    gone = harness.client.get(f"/api/v1/tts/{failed.json()['speechId']}", headers=account.headers).json()[
        "speech"
    ]
    assert gone["status"] == "FAILED" and gone["creditsUsed"] == 0 and gone["error"] == "engine exploded"
    assert available(harness, account) == 980
    assert_ledger_invariant(harness.settings, account.user_id)


def test_tts_accepts_exactly_5000_bytes(harness: Harness) -> None:
    account = harness.make_user(credits=6000)
    voice = add_voice(harness.settings, account.user_id)
    text = ("All work and no play. " * 300)[:5000]
    r = harness.client.post(
        "/api/v1/tts", headers=account.headers, json={"text": text, "voiceId": voice.voice_id}
    )
    assert r.status_code == 200, r.text
    assert r.json()["creditsUsed"] == 5000 and available(harness, account) == 1000


def test_usage_count_popularity_and_sorting(harness: Harness) -> None:
    account = harness.make_user()
    quiet = add_voice(harness.settings, account.user_id, name="b-quiet")
    busy = add_voice(harness.settings, account.user_id, name="a-busy")
    with session_scope(harness.settings) as session:
        for _ in range(3):
            record_usage(session, user_id=account.user_id, kind="tts", voice_id=busy.id, characters=5)
        record_usage(session, user_id=account.user_id, kind="preview", voice_id=quiet.id)  # not a generation

    def order(**params: Any) -> list[str]:
        r = harness.client.get("/api/v1/voices", params={"type": "USER", **params}, headers=account.headers)
        assert r.status_code == 200, r.text
        return [v["title"] for v in r.json()["voices"]]

    body = harness.client.get(
        "/api/v1/voices", params={"type": "USER", "sortBy": "popularity"}, headers=account.headers
    ).json()
    assert [(v["title"], v["usageCount"], v["popularity"]) for v in body["voices"]] == [
        ("a-busy", 3, 3),
        ("b-quiet", 0, 0),
    ]
    assert order(sortBy="popularity", sortOrder="asc") == ["b-quiet", "a-busy"]
    assert order(sortBy="title", sortOrder="asc") == ["a-busy", "b-quiet"]
    assert order(sortBy="createdAt", sortOrder="asc") == ["b-quiet", "a-busy"]
    page = harness.client.get(
        "/api/v1/voices", params={"type": "USER", "limit": 1, "page": 2}, headers=account.headers
    ).json()
    assert page["pagination"] == {
        "page": 2,
        "limit": 1,
        "total": 2,
        "totalPages": 2,
        "hasNext": False,
        "hasPrev": True,
    }


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page": -1},
        {"limit": 0},
        {"limit": 101},
        {"sortBy": "rating"},
        {"sortOrder": "up"},
        {"type": "ALL"},
        {"status": "DONE"},
        {"page": "one"},
    ],
)
def test_bad_list_parameters(harness: Harness, params: dict[str, Any]) -> None:
    account = harness.make_user()
    r = harness.client.get("/api/v1/voices", params=params, headers=account.headers)
    assert r.status_code == 400
    assert set(r.json()) == {"code", "error"} and r.json()["code"] == "INVALID_PARAMETERS"


def test_bad_input_is_400_and_stores_and_charges_nothing(harness: Harness, speech_wav_bytes: bytes) -> None:
    account = harness.make_user(credits=3000)
    voice = add_voice(harness.settings, account.user_id)
    h, c = account.headers, harness.client
    tts_cases: list[tuple[dict[str, Any], int, str]] = [
        ({"text": "é" * 2501, "voiceId": voice.voice_id}, 400, "Text exceeds maximum length of 5000 bytes"),
        ({"text": "", "voiceId": voice.voice_id}, 400, "text"),
        ({"text": "   ", "voiceId": voice.voice_id}, 400, "empty"),
        ({"text": "hi"}, 400, "Missing required parameter: voiceId"),
        ({"voiceId": voice.voice_id}, 400, "Missing required parameter: text"),
        ({"text": "hi", "voiceId": voice.voice_id, "format": "flac"}, 400, "format"),
        ({"text": "hi", "voiceId": voice.voice_id, "speed": 2}, 400, "speed"),
        (
            {"text": "hi", "voiceId": voice.voice_id, "callbackUrl": "ftp://example.com/hook"},
            400,
            "http or https",
        ),
        (
            {"text": "hi", "voiceId": voice.voice_id, "callbackUrl": "http://169.254.169.254/"},
            400,
            "metadata",
        ),
        ({"text": "hi", "voiceId": voice.voice_id, "callbackUrl": "http://10.0.0.8/hook"}, 400, "private"),
        ({"text": "hi", "voiceId": "voice_does_not_exist"}, 404, "Voice not found or not available"),
    ]
    for payload, status, message in tts_cases:
        r = c.post("/api/v1/tts", headers=h, json=payload)
        assert r.status_code == status, (payload, r.text)
        assert message.lower() in r.json()["error"].lower(), (payload, r.text)
        assert r.json()["code"] == ("NOT_FOUND" if status == 404 else "INVALID_PARAMETERS")
    r = c.post("/api/v1/tts", headers={**h, "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETERS"

    clone_cases: list[tuple[dict[str, Any], bytes, int, str]] = [
        ({}, b"this is not audio at all" * 50, 400, "Invalid file type"),
        ({}, b"\x89PNG\r\n\x1a\n" + b"\0" * 100, 400, "Invalid file type"),
        ({}, b"", 400, "empty"),
        ({"description": "d" * 501}, speech_wav_bytes, 400, "description"),
        ({"coverImage": "javascript:alert(1)"}, speech_wav_bytes, 400, "coverImage"),
        ({"tags": '[{"a": 1}]'}, speech_wav_bytes, 400, "tags"),
        ({"tags": "[broken"}, speech_wav_bytes, 400, "tags"),
        ({"callbackUrl": "http://127.0.0.2/hook"}, speech_wav_bytes, 400, "private or loopback"),
        ({}, speech_wav_bytes[: 44 + 22050 * 2], 400, "at least 3 s"),
    ]
    for form, data, status, message in clone_cases:
        r = _clone(harness, h, data, **form)
        assert r.status_code == status, (form, r.text)
        assert message.lower() in r.json()["error"].lower(), (form, r.text)
    r = c.post("/api/v1/voice-clone", headers=h, data={"title": "x"})
    assert r.status_code == 400 and r.json()["error"] == "Missing required parameter: voice"
    too_big = b"RIFF" + b"\0" * (20 * 1024 * 1024)
    r = _clone(harness, h, too_big)
    assert r.status_code == 400 and r.json() == {
        "code": "INVALID_PARAMETERS",
        "error": "File size exceeds 20MB limit",
    }

    assert stored_things(harness.settings, account.user_id) == (1, 0, 0)  # only the voice made above
    assert blob_files(harness.settings) == []
    assert available(harness, account) == 3000
    assert_ledger_invariant(harness.settings, account.user_id)


def test_usage_limit_exceeded_carries_credits_and_need(harness: Harness, speech_wav_bytes: bytes) -> None:
    account = harness.make_user(credits=10)
    voice = add_voice(harness.settings, account.user_id)
    text = "Hello, this is a test speech."
    r = harness.client.post(
        "/api/v1/tts", headers=account.headers, json={"text": text, "voiceId": voice.voice_id}
    )
    assert r.status_code == 429
    assert r.json() == {
        "code": "USAGE_LIMIT_EXCEEDED",
        "error": r.json()["error"],
        "credits": 10,
        "needCredits": 29,
    }
    r = _clone(harness, account.headers, speech_wav_bytes)
    assert r.status_code == 429 and r.json()["needCredits"] == 1000 and r.json()["credits"] == 10
    assert stored_things(harness.settings, account.user_id) == (1, 0, 0)
    assert blob_files(harness.settings) == []
    assert available(harness, account) == 10


def test_two_users(harness: Harness) -> None:
    alice, bob = harness.make_user("alice"), harness.make_user("bob")
    private = add_voice(harness.settings, alice.user_id, name="alice private")
    public = add_voice(harness.settings, alice.user_id, name="alice public", is_public=True)
    c = harness.client
    speech = c.post(
        "/api/v1/tts", headers=alice.headers, json={"text": "mine", "voiceId": private.voice_id}
    ).json()
    for ref in (speech["speechId"], job_id_of(harness.settings, speech["speechId"])):
        r = c.get(f"/api/v1/tts/{ref}", headers=bob.headers)
        assert r.status_code == 404 and r.json() == {
            "code": "NOT_FOUND",
            "error": "Speech not found or access denied",
        }
    for ref in (private.voice_id, private.id, private.uuid):
        r = c.post("/api/v1/tts", headers=bob.headers, json={"text": "hi", "voiceId": ref})
        assert r.status_code == 404 and r.json()["error"] == "Voice not found or not available"
    assert (
        c.post(
            "/api/v1/tts", headers=bob.headers, json={"text": "hi", "voiceId": public.voice_id}
        ).status_code
        == 200
    )
    titles = [
        v["title"]
        for v in c.get("/api/v1/voices", params={"limit": 100}, headers=bob.headers).json()["voices"]
    ]
    assert "alice public" in titles and "alice private" not in titles
    bob_usage = c.get("/api/v1/credits/usage", headers=bob.headers).json()["usage"]
    assert {e["jobId"] for e in bob_usage if e["jobId"]} != {speech["speechId"]}
    assert speech["speechId"] not in {e["jobId"] for e in bob_usage}


def test_voiceai_paths_are_not_taken_by_speech_status(harness: Harness) -> None:
    account = harness.make_user()
    mine = add_voice(harness.settings, account.user_id, name="mine")
    listed = harness.client.get("/api/v1/tts/voices", headers=account.headers)
    assert listed.status_code == 200 and isinstance(listed.json(), list)
    assert [v["voice_id"] for v in listed.json()] == [mine.voice_id]
    one = harness.client.get(f"/api/v1/tts/voice/{mine.voice_id}", headers=account.headers)
    assert one.status_code == 200 and one.json()["status"] == "AVAILABLE"
    missing = harness.client.get("/api/v1/tts/speech_nope", headers=account.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    assert harness.client.get("/api/v1/tts/speech_nope").json() == {
        "code": "UNAUTHORIZED",
        "error": "Invalid or missing API key",
    }


def test_voice_rows_keep_cover_image_in_extra(harness: Harness, speech_wav_bytes: bytes) -> None:
    account = harness.make_user(credits=2000)
    r = _clone(
        harness,
        account.headers,
        speech_wav_bytes,
        coverImage="https://cdn.example/c.png",
        tags=json.dumps(["a"]),
    )
    assert r.status_code == 200
    with session_scope(harness.settings) as session:
        voice = session.scalar(select(Voice).where(Voice.voice_id == r.json()["voiceId"]))
        assert voice is not None and voice.extra == {"coverImage": "https://cdn.example/c.png"}


@pytest.mark.slow
def test_real_engines_clone_speak_with_webhooks(tmp_path: Path, speech_wav_bytes: bytes) -> None:
    """The whole seed flow on the embedded default with the real engines and worker threads:
    clone, poll, speak, poll, download; both webhooks arrive signed; credits exact."""
    settings = make_settings(tmp_path / "data", fetch_allow_hosts=["127.0.0.1"])
    try:
        with running_server() as receiver, contextmanager(_build_harness)(settings) as h:
            _real_flow(h, receiver, speech_wav_bytes)
    finally:
        webhooks.install(None)


def _wait_for(read: Any, done: Any, timeout: float = JOB_WAIT_S) -> Any:
    return wait_until(read, done, timeout, interval=0.3)


def _real_flow(h: Any, receiver: LocalServer, speech_wav_bytes: bytes) -> None:
    receiver.routes["/hook"] = (204, {}, b"")
    account = h.make_user(credits=5000)
    c, headers, hook = h.client, account.headers, receiver.url("/hook")
    r = c.post(
        "/api/v1/voice-clone",
        headers=headers,
        data={"callbackUrl": hook},
        files={"voice": ("me.wav", speech_wav_bytes, "audio/wav")},
    )
    assert r.status_code == 200, r.text
    voice_id = r.json()["voiceId"]
    listed = _wait_for(
        lambda: c.get("/api/v1/voices", params={"type": "USER"}, headers=headers).json(),
        lambda body: body["voices"][0]["status"] != "PROCESSING",
    )
    assert listed["voices"][0]["status"] == "COMPLETED", listed

    text = "Hello from the cloned voice."
    r = c.post(
        "/api/v1/tts",
        headers=headers,
        json={"text": text, "voiceId": voice_id, "format": "wav", "callbackUrl": hook},
    )
    assert r.status_code == 200, r.text
    speech = _wait_for(
        lambda: c.get(f"/api/v1/tts/{r.json()['speechId']}", headers=headers).json()["speech"],
        lambda item: item["status"] != "PROCESSING",
    )
    assert speech["status"] == "COMPLETED", speech
    audio = decode_audio(c.get(speech["audioUrl"]).content, max_seconds=60, max_sample_rate=192_000)
    assert audio.duration == pytest.approx(speech["duration"], rel=0.05)
    assert available(h, account) == 5000 - 1000 - len(text.encode())
    captions = c.get(speech["captionsUrl"], headers=headers)  # the clone's words, as WebVTT
    assert captions.status_code == 200 and captions.text.startswith("WEBVTT")
    assert "Hello from the cloned voice." in captions.text
    cue = captions.text.splitlines()[2]  # "00:00:00.0xx --> 00:00:01.9xx"
    end = cue.split(" --> ")[1]
    assert abs(int(end[3:5]) * 60 + float(end[6:]) - audio.duration) < 0.4
    assert_ledger_invariant(h.settings, account.user_id)

    hits = _wait_for(lambda: receiver.hits("/hook"), lambda seen: len(seen) >= 2)
    for seen in hits:
        assert webhooks.verify(
            h.settings.secret,
            seen.headers["x-chorus-timestamp"],
            seen.body,
            seen.headers["x-chorus-signature"],
        )
    events = [json.loads(seen.body) for seen in hits]
    assert [e["type"] for e in events] == ["voice.completed", "speech.completed"]
    assert events[1]["data"]["output_url"] and events[0]["data"]["voice_id"] == voice_id
