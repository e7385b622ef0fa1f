"""Idempotency-Key on job- and voice-creating POSTs, in every family's shape."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from app.api import idempotency
from app.core.db import session_scope, utcnow
from app.jobs.models import IdempotencyKey, Job
from tests.test_credits_full import Harness, add_voice, available, build_harness, stored_things


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    yield from build_harness(tmp_path)


def _tts(h: Harness, headers: dict[str, str], key: str | None, payload: dict[str, Any]) -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return h.client.post(
        "/api/v1/tts",
        headers={**headers, **extra, "Content-Type": "application/json"},
        content=json.dumps(payload).encode(),
    )


def _jobs(h: Harness, user_id: int) -> int:
    with session_scope(h.settings) as session:
        return len(session.scalars(select(Job.id).where(Job.owner_id == user_id)).all())


def test_same_key_and_body_replays_the_first_response(harness: Harness) -> None:
    account = harness.make_user(credits=1000)
    voice = add_voice(harness.settings, account.user_id)
    payload = {"text": "Say it once", "voiceId": voice.voice_id}
    first = _tts(harness, account.headers, "order-1", payload)
    second = _tts(harness, account.headers, "order-1", payload)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content and second.json()["speechId"] == first.json()["speechId"]
    assert "idempotent-replayed" not in first.headers and second.headers["idempotent-replayed"] == "true"
    assert second.headers["x-ratelimit-limit"] and second.headers["x-request-id"]
    assert _jobs(harness, account.user_id) == 1 and available(harness, account) == 1000 - 11

    native = {"input_text": "Native once", "audio_format": "wav"}
    url = f"/api/v1/voice/voices/{voice.voice_id}/generate"
    gen_headers = {**account.headers, "Idempotency-Key": "gen-1"}
    responses = [harness.client.post(url, headers=gen_headers, json=native) for _ in range(2)]
    assert [r.status_code for r in responses] == [202, 202] and responses[0].json() == responses[1].json()
    assert _jobs(harness, account.user_id) == 2


def test_same_key_other_request_is_422_in_each_family_shape(
    harness: Harness, speech_wav_bytes: bytes
) -> None:
    account = harness.make_user(credits=5000)
    voice = add_voice(harness.settings, account.user_id)
    assert _tts(harness, account.headers, "k", {"text": "one", "voiceId": voice.voice_id}).status_code == 200
    r = _tts(harness, account.headers, "k", {"text": "two", "voiceId": voice.voice_id})
    assert r.status_code == 422 and r.json() == {
        "code": "IDEMPOTENCY_MISMATCH",
        "error": "Idempotency-Key was already used with a different request",
    }
    key = {**account.headers, "Idempotency-Key": "k"}
    files = {"file": ("a.wav", speech_wav_bytes, "audio/wav")}
    r = harness.client.post("/api/v1/tts/clone-voice", headers=key, files=files)
    assert r.status_code == 422 and set(r.json()) == {"detail"}
    r = harness.client.post("/voices", headers=key, files=files)
    assert r.status_code == 422 and r.json()["code"] == 422 and r.json()["data"] is None
    r = harness.client.post("/api/v1/voice/voice-profiles", headers=key, data={"name": "x"}, files=files)
    assert r.status_code == 422 and "different request" in r.json()["detail"]
    assert stored_things(harness.settings, account.user_id) == (1, 1, 0)


def test_first_request_still_running_is_409(harness: Harness) -> None:
    account = harness.make_user(credits=1000)
    voice = add_voice(harness.settings, account.user_id)
    body = json.dumps({"text": "slow one", "voiceId": voice.voice_id}).encode()
    print_ = idempotency.fingerprint("POST", "/api/v1/tts", b"", [body], "application/json")
    now = utcnow()
    with session_scope(harness.settings) as session:
        session.add(
            IdempotencyKey(
                user_id=account.user_id,
                key="busy",
                fingerprint=print_,
                status="in_progress",
                created_at=now,
                expires_at=now + timedelta(hours=24),
            )
        )
    headers = {**account.headers, "Idempotency-Key": "busy", "Content-Type": "application/json"}
    r = harness.client.post("/api/v1/tts", headers=headers, content=body)
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT"
    assert _jobs(harness, account.user_id) == 0

    with session_scope(harness.settings) as session:  # its process died: the key is taken over
        session.execute(update(IdempotencyKey).values(created_at=now - timedelta(minutes=11)))
    r = harness.client.post("/api/v1/tts", headers=headers, content=body)
    assert r.status_code == 200 and _jobs(harness, account.user_id) == 1
    again = harness.client.post("/api/v1/tts", headers=headers, content=body)
    assert again.json() == r.json() and _jobs(harness, account.user_id) == 1


def test_multipart_retries_replay_in_every_family(harness: Harness, speech_wav_bytes: bytes) -> None:
    """Clients draw a new multipart boundary per attempt; the retry is still the same request."""
    account = harness.make_user(credits=10_000)
    wav = ("a.wav", speech_wav_bytes, "audio/wav")
    routes: list[tuple[str, dict[str, Any], str, int]] = [
        ("/api/v1/voice/voice-profiles", {"name": "native"}, "file", 200),
        ("/api/v1/voice/voice-profiles/multi-sample", {"name": "multi"}, "voice_files", 200),
        ("/api/v1/voice-clone", {"title": "clone"}, "voice", 200),
        ("/api/v1/tts/clone-voice", {"name": "voiceai"}, "file", 200),
        ("/voices", {"display_name": "envelope"}, "file", 200),
        ("/v1/audio/voices", {"name": "openai", "consent": "yes"}, "audio_sample", 200),
    ]
    for n, (path, form, field, status) in enumerate(routes):
        headers = {**account.headers, "Idempotency-Key": f"upload-{n}"}
        first = harness.client.post(path, headers=headers, data=form, files={field: wav})
        second = harness.client.post(path, headers=headers, data=form, files={field: wav})
        assert first.status_code == second.status_code == status, (path, first.text, second.text)
        assert first.content == second.content and second.headers["idempotent-replayed"] == "true"
    assert stored_things(harness.settings, account.user_id) == (6, 6, 6)
    # One hold per voice, at each family's price: the two native routes are free (seed 000).
    assert available(harness, account) == 10_000 - 4 * 1000


def test_concurrent_duplicates_create_one_voice(harness: Harness, speech_wav_bytes: bytes) -> None:
    account = harness.make_user(credits=5000)
    headers = {**account.headers, "Idempotency-Key": "double-click"}
    results: list[Any] = []
    barrier = threading.Barrier(3)

    def post() -> None:
        barrier.wait()
        results.append(
            harness.client.post(
                "/api/v1/voice-clone",
                headers=headers,
                data={"title": "twice"},
                files={"voice": ("a.wav", speech_wav_bytes, "audio/wav")},
            )
        )

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, [r.text for r in results]
    assert len({r.json()["voiceId"] for r in results if r.status_code == 200}) == 1
    assert stored_things(harness.settings, account.user_id) == (1, 1, 1)
    assert available(harness, account) == 4000


def test_a_failed_first_attempt_frees_the_key(harness: Harness) -> None:
    account = harness.make_user(credits=100)
    voice = add_voice(harness.settings, account.user_id)
    missing = {"text": "hi", "voiceId": "voice_nope"}
    first = _tts(harness, account.headers, "retry-me", missing)
    second = _tts(harness, account.headers, "retry-me", missing)
    assert first.status_code == second.status_code == 404 and "idempotent-replayed" not in second.headers
    fixed = _tts(harness, account.headers, "retry-me", {"text": "hi", "voiceId": voice.voice_id})
    assert fixed.status_code == 200  # not 422: nothing was created under the key before
    with session_scope(harness.settings) as session:
        (row,) = session.scalars(select(IdempotencyKey)).all()
        assert row.status == "completed" and row.response_status == 200
        assert row.expires_at - row.created_at == timedelta(hours=24)


def test_keys_belong_to_their_user_and_expire(harness: Harness) -> None:
    alice, bob = harness.make_user("alice"), harness.make_user("bob")
    shared = add_voice(harness.settings, alice.user_id, is_public=True)
    payload = {"text": "same key", "voiceId": shared.voice_id}
    a = _tts(harness, alice.headers, "same", payload)
    b = _tts(harness, bob.headers, "same", payload)
    assert a.status_code == b.status_code == 200 and a.json()["speechId"] != b.json()["speechId"]
    assert "idempotent-replayed" not in b.headers
    with session_scope(harness.settings) as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == alice.user_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    again = _tts(harness, alice.headers, "same", payload)
    assert again.status_code == 200 and again.json()["speechId"] != a.json()["speechId"]
    with session_scope(harness.settings) as session:
        session.execute(update(IdempotencyKey).values(expires_at=utcnow() - timedelta(seconds=1)))
        assert idempotency.purge_expired_keys(session) == 2


def test_bad_key_and_unauthenticated(harness: Harness) -> None:
    account = harness.make_user()
    voice = add_voice(harness.settings, account.user_id)
    payload = {"text": "hi", "voiceId": voice.voice_id}
    r = _tts(harness, account.headers, "x" * 256, payload)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]
    r = harness.client.post("/voices", headers={"Idempotency-Key": "k"}, data={"voice_url": "http://x/a.wav"})
    assert r.status_code == 401 and r.json()["code"] == 401
    wrong = {"Idempotency-Key": "k", "X-API-Key": "ap_wrong"}
    r = harness.client.post("/api/v1/tts", headers=wrong, json=payload)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    token = harness.client.post("/api/v1/auth/token", headers=account.headers).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    first, second = (_tts(harness, bearer, "jwt", payload) for _ in range(2))
    assert first.json() == second.json() and second.headers["idempotent-replayed"] == "true"
    assert _jobs(harness, account.user_id) == 1


def test_boundary_replacement_across_chunks() -> None:
    marker = b"--abc123"
    data = b"--abc123\r\nx\r\n--abc123\r\nyy--abc123--\r\n"
    expected = data.replace(marker, b"--B")
    for size in range(1, len(data) + 1):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert b"".join(idempotency._replace_stream(chunks, marker, b"--B")) == expected, size
    ct = 'multipart/form-data; boundary="abc123"'
    assert idempotency.fingerprint("POST", "/voices", b"", [data], ct) == idempotency.fingerprint(
        "POST", "/voices", b"", [data.replace(b"abc123", b"zzz999")], "multipart/form-data; boundary=zzz999"
    )
    assert idempotency.fingerprint("POST", "/voices", b"", [data], ct) != idempotency.fingerprint(
        "POST", "/voices", b"", [data + b"!"], ct
    )
    assert idempotency.applies_to("POST", "/api/v1/voice/voices/voice_1/generate")
    assert idempotency.applies_to("POST", "/v1/audio/voices")
    assert idempotency.applies_to("POST", "/api/v1/tts")
    assert not idempotency.applies_to("GET", "/api/v1/tts")
    assert not idempotency.applies_to("POST", "/v1/audio/speech")
