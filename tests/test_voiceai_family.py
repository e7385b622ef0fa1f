"""voice.ai family (seed 001) end to end through HTTP: clone, status words, update, delete, BOLA."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.services import blob_files
from tests.test_credits_full import (
    Harness,
    add_voice,
    assert_ledger_invariant,
    available,
    build_harness,
    clone_job_of,
    finish_job,
    stored_things,
)

T = "/api/v1/tts"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    yield from build_harness(tmp_path)


def _clone(
    h: Harness,
    headers: dict[str, str],
    data: bytes,
    filename: str = "sample.wav",
    content_type: str = "audio/wav",
    **form: Any,
) -> Any:
    return h.client.post(
        f"{T}/clone-voice", headers=headers, data=form, files={"file": (filename, data, content_type)}
    )


def test_clone_poll_update_delete(harness: Harness, speech_wav_bytes: bytes) -> None:
    account = harness.make_user(credits=3000)
    c, h = harness.client, {"Authorization": f"Bearer {account.key}"}  # the seed's auth header
    r = _clone(harness, h, speech_wav_bytes, name="My Cloned Voice", voice_visibility="PRIVATE")
    assert r.status_code == 200, r.text
    created = r.json()
    assert set(created) == {"voice_id", "name", "status", "voice_visibility"}
    assert (created["name"], created["status"], created["voice_visibility"]) == (
        "My Cloned Voice",
        "PENDING",
        "PRIVATE",
    )
    assert available(harness, account) == 2000
    voice_id = created["voice_id"]
    assert c.get(f"{T}/voice/{voice_id}", headers=h).json()["status"] == "PENDING"

    finish_job(harness.settings, clone_job_of(harness.settings, voice_id), result_key="voices/x/a.json")
    got = c.get(f"{T}/voice/{voice_id}", headers=h).json()
    assert got["status"] == "AVAILABLE" and got["created_at"] and got["voice_visibility"] == "PRIVATE"
    assert [v["voice_id"] for v in c.get(f"{T}/voices", headers=h).json()] == [voice_id]

    r = c.patch(
        f"{T}/voice/{voice_id}", headers=h, json={"name": "Updated Voice Name", "voice_visibility": "PUBLIC"}
    )
    assert r.status_code == 200 and r.json()["name"] == "Updated Voice Name"
    assert r.json()["voice_visibility"] == "PUBLIC"
    r = c.patch(f"{T}/voice/{voice_id}", headers=h, json={"voice_visibility": "PRIVATE"})
    assert r.json()["name"] == "Updated Voice Name" and r.json()["voice_visibility"] == "PRIVATE"

    r = c.delete(f"{T}/voice/{voice_id}", headers=h)
    assert r.status_code == 200 and r.json() == {"voice_id": voice_id}
    assert c.get(f"{T}/voice/{voice_id}", headers=h).status_code == 404
    assert c.get(f"{T}/voices", headers=h).json() == []
    assert available(harness, account) == 2000
    assert_ledger_invariant(harness.settings, account.user_id)


def test_status_words_and_failed_clone_is_free(harness: Harness, speech_wav_bytes: bytes) -> None:
    account = harness.make_user(credits=1000)
    r = _clone(harness, account.headers, speech_wav_bytes)
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["voice_visibility"] == "PUBLIC" and created["name"] == "sample"  # the defaults
    job_id = clone_job_of(harness.settings, created["voice_id"])
    finish_job(harness.settings, job_id, ok=False, error="No usable speech")
    got = harness.client.get(f"{T}/voice/{created['voice_id']}", headers=account.headers).json()
    assert got["status"] == "FAILED"
    assert available(harness, account) == 1000


def test_formats_mp3_ogg_and_raw_pcm(harness: Harness, speech_wav_bytes: bytes) -> None:
    account = harness.make_user(credits=5000)
    with wave.open(io.BytesIO(speech_wav_bytes)) as w:
        pcm = w.readframes(w.getnframes())
    r = _clone(harness, account.headers, pcm, filename="sample.pcm", content_type="application/octet-stream")
    assert r.status_code == 200, r.text
    r = _clone(harness, account.headers, pcm, filename="blob", content_type="audio/L16; rate=24000")
    assert r.status_code == 200, r.text
    assert stored_things(harness.settings, account.user_id) == (2, 2, 2)
    unnamed = _clone(harness, account.headers, pcm, filename="blob", content_type="application/octet-stream")
    assert unnamed.status_code == 415 and "MP3, WAV, OGG" in unnamed.json()["detail"]


def test_bad_input_stores_and_charges_nothing(harness: Harness, speech_wav_bytes: bytes) -> None:
    account = harness.make_user(credits=3000)
    flac = b"fLaC" + b"\0" * 200
    cases: list[tuple[bytes, dict[str, Any], int, str]] = [
        (b"definitely not audio" * 20, {}, 415, "Unsupported audio format"),
        (flac, {}, 415, "Unsupported audio format"),
        (b"", {}, 400, "empty"),
        (speech_wav_bytes, {"voice_visibility": "SECRET"}, 400, "voice_visibility"),
        (speech_wav_bytes, {"name": "n" * 201}, 400, "name"),
        (speech_wav_bytes, {"callback_url": "file:///etc/passwd"}, 400, "http or https"),
        (speech_wav_bytes, {"callback_url": "http://[::1]:8080/"}, 400, "private or loopback"),
        (speech_wav_bytes[: 44 + 22050 * 2], {}, 400, "at least 3 s"),
        (b"RIFF" + b"\0" * 7_864_320, {}, 413, "larger than the limit"),
    ]
    for data, form, status, message in cases:
        r = _clone(harness, account.headers, data, **form)
        assert r.status_code == status, (form, r.text[:200])
        body = r.json()
        assert set(body) == {"detail"} and message.lower() in body["detail"].lower(), (form, body)
    r = harness.client.post(f"{T}/clone-voice", headers=account.headers, data={"name": "x"})
    assert r.status_code == 400 and r.json() == {"detail": "Missing required parameter: file"}
    assert stored_things(harness.settings, account.user_id) == (0, 0, 0)
    assert blob_files(harness.settings) == []
    assert available(harness, account) == 3000

    poor = harness.make_user(credits=999)
    r = _clone(harness, poor.headers, speech_wav_bytes)
    assert r.status_code == 402 and r.json()["detail"]["required"] == 1000
    assert stored_things(harness.settings, poor.user_id) == (0, 0, 0)

    mine = add_voice(harness.settings, account.user_id, name="mine")
    bad_updates = (
        {"voice_visibility": "HIDDEN"},
        {"name": ""},
        {"status": "AVAILABLE"},
        {"name": None, "x": 1},
    )
    for payload in bad_updates:
        r = harness.client.patch(f"{T}/voice/{mine.voice_id}", headers=account.headers, json=payload)
        assert r.status_code == 400 and isinstance(r.json()["detail"], str), payload
    assert harness.client.get(f"{T}/voice/{mine.voice_id}", headers=account.headers).json()["name"] == "mine"
    assert harness.client.get(f"{T}/voice/voice_missing", headers=account.headers).json() == {
        "detail": "Voice not found"
    }
    assert harness.client.get(f"{T}/voices").status_code == 401


def test_two_users(harness: Harness) -> None:
    alice, bob = harness.make_user("alice"), harness.make_user("bob")
    private = add_voice(harness.settings, alice.user_id, name="alice private")
    public = add_voice(harness.settings, alice.user_id, name="alice public", is_public=True)
    joe = add_voice(harness.settings, None, name="Joe", builtin_key="joe-test", is_public=True)
    c = harness.client
    for ref in (private.voice_id, private.id, private.uuid):
        assert c.get(f"{T}/voice/{ref}", headers=bob.headers).status_code == 404
        assert c.patch(f"{T}/voice/{ref}", headers=bob.headers, json={"name": "mine"}).status_code == 404
        assert c.delete(f"{T}/voice/{ref}", headers=bob.headers).status_code == 404
    assert c.get(f"{T}/voice/{public.voice_id}", headers=bob.headers).json()["voice_visibility"] == "PUBLIC"
    r = c.patch(f"{T}/voice/{public.voice_id}", headers=bob.headers, json={"name": "mine"})
    assert r.status_code == 403 and r.json() == {"detail": "You can only change your own voices"}
    assert c.delete(f"{T}/voice/{public.voice_id}", headers=bob.headers).status_code == 403
    assert c.delete(f"{T}/voice/{joe.voice_id}", headers=alice.headers).status_code == 403
    assert c.get(f"{T}/voices", headers=bob.headers).json() == []  # only the caller's own voices
    assert {v["name"] for v in c.get(f"{T}/voices", headers=alice.headers).json()} == {
        "alice private",
        "alice public",
    }
    assert c.get(f"{T}/voice/{public.voice_id}", headers=alice.headers).json()["name"] == "alice public"
