"""The native family end to end through HTTP, on the embedded default with the real engines."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import numpy as np
import pytest

from app.audio import decode_audio
from app.core.db import session_scope
from app.voices.models import Voice
from tests.plugins.services import Account, AppHarness, blob_files
from tests.plugins.waiting import JOB_WAIT_S, wait_until

V = "/api/v1/voice"


def _poll(
    client: Any,
    url: str,
    headers: dict[str, str],
    done: tuple[str, ...],
    key: str = "status",
    timeout: float = JOB_WAIT_S,
) -> dict[str, Any]:
    return wait_until(
        lambda: client.get(url, headers=headers).json(), lambda body: str(body[key]).lower() in done, timeout
    )


def _download(harness: AppHarness, url: str) -> bytes:
    r = harness.client.get(url) if url.startswith("http://testserver") else httpx.get(url)
    assert r.status_code == 200, r.text
    return r.content


def _credits(harness: AppHarness, account: Account) -> int:
    return int(harness.client.get("/api/v1/credits", headers=account.headers).json()["credits"])


def _clone(harness: AppHarness, account: Account, wav: bytes, **form: Any) -> dict[str, Any]:
    r = harness.client.post(
        f"{V}/voice-profiles",
        headers=account.headers,
        data={"name": "My voice", **form},
        files={"file": ("me.wav", wav, "audio/wav")},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _completed_voice(harness: AppHarness, account: Account, wav: bytes, **form: Any) -> dict[str, Any]:
    voice = _clone(harness, account, wav, **form)
    return _poll(
        harness.client, f"{V}/voices/{voice['voice_id']}/status", account.headers, ("completed", "failed")
    )


def _builtin(harness: AppHarness) -> Voice:
    with session_scope(harness.settings) as session:
        voice = session.query(Voice).filter(Voice.builtin_key == "joe").one()
        session.expunge(voice)
        return voice


@pytest.mark.slow
def test_sdk_flow_clone_speak_download_delete(embedded: AppHarness, speech_wav_bytes: bytes) -> None:
    """What an SDK does: clone from a WAV, poll, generate, poll, download, decode, delete."""
    account = embedded.make_user(credits=5000)
    c, h = embedded.client, account.headers
    created = _clone(embedded, account, speech_wav_bytes, description="test", tags="warm,narration")
    assert created["status"] == "PROCESSING" and created["clone_job_id"]
    assert created["file_path"] == f"voices/{created['uuid']}/samples/0.wav"
    assert created["voice_type"] == "CUSTOM" and created["tags"] == ["warm", "narration"]
    voice = _poll(c, f"{V}/voices/{created['voice_id']}/status", h, ("completed", "failed"))
    assert voice["status"] == "COMPLETED", voice
    assert c.get(f"{V}/voices/{voice['uuid']}", headers=h).json()["id"] == voice["id"]
    assert c.get(f"{V}/voices/{voice['id']}", headers=h).json()["voice_id"] == voice["voice_id"]
    mine = c.get(f"{V}/voice-profiles", params={"voice_type": "CUSTOM"}, headers=h).json()["voices"]
    assert [(v["voice_id"], v["clone_job_id"]) for v in mine] == [
        (voice["voice_id"], created["clone_job_id"])
    ]

    text = "Hello from the other side. This is a cloned voice speaking."
    job = c.post(
        f"{V}/voices/{voice['voice_id']}/generate",
        headers=h,
        json={"input_text": text, "audio_format": "wav"},
    )
    assert job.status_code == 202, job.text
    assert job.json()["status"] == "pending" and job.json()["credits_reserved"] == len(text.encode())
    status = _poll(c, f"{V}/tts-jobs/{job.json()['job_id']}/status", h, ("completed", "failed"))
    assert status["status"] == "completed", status
    assert status["progress"] == 100 and status["audio_format"] == "wav"
    audio = decode_audio(_download(embedded, status["output_url"]), max_seconds=600, max_sample_rate=192000)
    assert audio.duration == pytest.approx(status["duration"], rel=0.05)
    assert 2.0 < audio.duration < 10.0
    assert _credits(embedded, account) == 5000 - len(text.encode())  # voice creation is free here

    # Captions: the words the engine timed, in order, inside the audio; SRT/VTT cue per sentence.
    captions = f"{V}/tts-jobs/{job.json()['job_id']}/captions"
    words = c.get(captions, headers=h, params={"format": "json"}).json()["words"]
    assert [w["word"] for w in words] == text.split()
    assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:], strict=False))
    assert 0.0 <= words[0]["start"] < 0.5 and words[-1]["end"] == pytest.approx(audio.duration, abs=0.4)
    srt = c.get(captions, headers=h)
    assert srt.headers["content-type"].startswith("application/x-subrip")
    assert srt.text.startswith("1\n00:00:00,") and "Hello from the other side." in srt.text
    assert "2\n00:00:0" in srt.text and "This is a cloned voice speaking." in srt.text
    vtt = c.get(captions, headers=h, params={"format": "vtt"})
    assert vtt.text.startswith("WEBVTT\n\n00:00:00.") and vtt.headers["content-type"].startswith("text/vtt")
    bad = c.get(captions, headers=h, params={"format": "ass"})
    assert bad.status_code == 400 and "srt, vtt, json" in bad.text
    stranger = embedded.make_user(credits=0)
    assert c.get(captions, headers=stranger.headers).status_code == 404

    listed = c.get(f"{V}/tts-jobs", headers=h).json()
    assert listed["total"] == 1 and listed["jobs"][0]["job_id"] == job.json()["job_id"]
    detail = c.get(f"{V}/voices/{voice['voice_id']}", headers=h).json()
    assert detail["usage_stats"]["total_generations"] == 1

    assert any(f"voices/{voice['uuid']}" in str(p) for p in blob_files(embedded.settings))
    assert c.delete(f"{V}/voices/{voice['voice_id']}", headers=h).status_code == 204
    assert c.get(f"{V}/voices/{voice['voice_id']}", headers=h).status_code == 404
    assert not any(f"voices/{voice['uuid']}" in str(p) for p in blob_files(embedded.settings))


@pytest.mark.slow
def test_multi_sample_voice_and_form_generate(embedded: AppHarness, speech_wav_bytes: bytes) -> None:
    account = embedded.make_user(credits=5000)
    r = embedded.client.post(
        f"{V}/voice-profiles/multi-sample",
        headers=account.headers,
        data={"name": "Two takes"},
        files=[
            ("voice_files", ("a.wav", speech_wav_bytes, "audio/wav")),
            ("voice_files", ("b.wav", speech_wav_bytes, "audio/wav")),
        ],
    )
    assert r.status_code == 200, r.text
    voice = _poll(
        embedded.client, f"{V}/voices/{r.json()['voice_id']}/status", account.headers, ("completed", "failed")
    )
    assert voice["status"] == "COMPLETED"
    job = embedded.client.post(
        f"{V}/voices/{voice['voice_id']}/generate",
        headers=account.headers,
        data={"input_text": "Form bodies work too.", "audio_format": "mp3"},
    )
    assert job.status_code == 202, job.text


def test_bad_uploads_create_nothing_and_cost_nothing(
    embedded: AppHarness, speech_wav_bytes: bytes, silence_wav_bytes: bytes
) -> None:
    account = embedded.make_user(credits=5000)
    cases = [
        (b"this is not audio at all" * 100, 415, "not a supported audio format"),
        (silence_wav_bytes, 400, "No speech found"),
        (speech_wav_bytes[: 44 + 22050 * 2], 400, "at least 3 s"),  # one second
        (b"", 400, "no audio"),
    ]
    for data, status, message in cases:
        r = embedded.client.post(
            f"{V}/voice-profiles",
            headers=account.headers,
            data={"name": "x"},
            files={"file": ("x.wav", data, "audio/wav")},
        )
        assert r.status_code == status, (message, r.text)
        assert message.lower() in r.json()["detail"].lower()
    r = embedded.client.post(
        f"{V}/voice-profiles/multi-sample",
        headers=account.headers,
        data={"name": "x"},
        files=[
            ("voice_files", ("a.wav", speech_wav_bytes, "audio/wav")),
            ("voice_files", ("b.wav", silence_wav_bytes, "audio/wav")),
        ],
    )
    assert r.status_code == 400 and "sample 2" in r.json()["detail"].lower()
    with session_scope(embedded.settings) as session:
        assert session.query(Voice).filter(Voice.owner_id == account.user_id).count() == 0
    assert blob_files(embedded.settings) == []
    assert _credits(embedded, account) == 5000


def test_insufficient_credits_is_402_and_creates_nothing(
    embedded: AppHarness, speech_wav_bytes: bytes
) -> None:
    account = embedded.make_user(credits=10)
    embedded.settings.costs.native_clone = 1000  # free by default; an operator may price it
    r = embedded.client.post(
        f"{V}/voice-profiles",
        headers=account.headers,
        data={"name": "x"},
        files={"file": ("x.wav", speech_wav_bytes, "audio/wav")},
    )
    assert r.status_code == 402
    assert r.json()["detail"]["required"] == 1000 and r.json()["detail"]["available"] == 10
    assert blob_files(embedded.settings) == []
    joe = _builtin(embedded)
    r = embedded.client.post(
        f"{V}/voices/{joe.voice_id}/generate",
        headers=account.headers,
        json={"input_text": "This text is longer than ten bytes."},
    )
    assert r.status_code == 402 and r.json()["detail"]["required"] == 35
    assert _credits(embedded, account) == 10


@pytest.mark.slow
def test_failed_speech_job_releases_credits(embedded: AppHarness) -> None:
    account = embedded.make_user(credits=1000)
    with session_scope(embedded.settings) as session:  # a completed voice whose artifact is missing
        broken = Voice(
            owner_id=account.user_id,
            kind="custom",
            name="broken",
            status="completed",
            artifact_key="voices/none/artifact.json",
        )
        session.add(broken)
        session.flush()
        ref = broken.voice_id
    r = embedded.client.post(
        f"{V}/voices/{ref}/generate", headers=account.headers, json={"input_text": "Hello"}
    )
    assert r.status_code == 202
    status = _poll(
        embedded.client, f"{V}/tts-jobs/{r.json()['id']}/status", account.headers, ("completed", "failed")
    )
    assert status["status"] == "failed" and status["error_message"]
    assert status["output_url"] is None
    assert _credits(embedded, account) == 1000


def test_only_completed_voices_can_speak(embedded: AppHarness) -> None:
    account = embedded.make_user()
    with session_scope(embedded.settings) as session:
        pending = Voice(owner_id=account.user_id, kind="custom", name="wip", status="processing")
        session.add(pending)
        session.flush()
        ref = pending.voice_id
    r = embedded.client.post(f"{V}/voices/{ref}/generate", headers=account.headers, json={"input_text": "Hi"})
    assert r.status_code == 400 and "PROCESSING" in r.json()["detail"]


def _voice_row(owner: int | None, **fields: Any) -> Voice:
    values: dict[str, Any] = {"kind": "custom", "status": "completed", "name": "v"}
    values.update(fields)
    return Voice(owner_id=owner, **values)


def test_ownership_rules_between_two_users(embedded: AppHarness) -> None:
    alice, bob = embedded.make_user("alice"), embedded.make_user("bob")
    with session_scope(embedded.settings) as session:
        private = _voice_row(alice.user_id, name="alice private", artifact_key="x")
        public = _voice_row(alice.user_id, name="alice public", is_public=True)
        session.add_all([private, public])
        session.flush()
        priv, pub = private.voice_id, public.voice_id
        priv_id, priv_uuid = private.id, private.uuid
    c = embedded.client
    joe = _builtin(embedded)
    for ref in (priv, priv_id, priv_uuid):  # every identifier of someone's private voice is 404
        assert c.get(f"{V}/voices/{ref}", headers=bob.headers).status_code == 404
        assert c.get(f"{V}/voices/{ref}/status", headers=bob.headers).status_code == 404
        assert c.patch(f"{V}/voices/{ref}", headers=bob.headers, json={"name": "mine"}).status_code == 404
        assert c.delete(f"{V}/voices/{ref}", headers=bob.headers).status_code == 404
        assert (
            c.post(f"{V}/voices/{ref}/generate", headers=bob.headers, json={"input_text": "hi"}).status_code
            == 404
        )
        assert c.get(f"{V}/voice-profiles/{ref}/preview", headers=bob.headers).status_code == 404
    # someone's public voice: readable, usable, not changeable
    assert c.get(f"{V}/voices/{pub}", headers=bob.headers).status_code == 200
    assert c.patch(f"{V}/voices/{pub}", headers=bob.headers, json={"name": "mine"}).status_code == 403
    assert c.delete(f"{V}/voices/{pub}", headers=bob.headers).status_code == 403
    assert (
        c.post(f"{V}/voices/{pub}/generate", headers=bob.headers, json={"input_text": "hi"}).status_code
        == 202
    )
    # built-in voices: readable by all, changeable by none
    assert c.get(f"{V}/voices/{joe.voice_id}", headers=bob.headers).status_code == 200
    assert c.patch(f"{V}/voices/{joe.voice_id}", headers=alice.headers, json={"name": "x"}).status_code == 403
    assert c.delete(f"{V}/voices/{joe.voice_id}", headers=alice.headers).status_code == 403
    # listings: bob sees alice's public voice but never her private one
    listed = c.get(f"{V}/voice-profiles", params={"include_public": True}, headers=bob.headers).json()
    names = {v["name"] for v in listed["voices"]}
    assert "alice public" in names and "alice private" not in names
    names = {
        v["name"]
        for v in c.get(f"{V}/voice-profiles", params={"include_public": False}, headers=bob.headers).json()[
            "voices"
        ]
    }
    assert "alice public" not in names
    # the owner can change it; PATCH forbids unknown fields
    r = c.patch(f"{V}/voices/{priv}", headers=alice.headers, json={"name": "renamed", "tags": ["a"]})
    assert r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["tags"] == ["a"]
    r = c.patch(f"{V}/voices/{priv}", headers=alice.headers, json={"status": "COMPLETED"})
    assert r.status_code == 400 and "status" in r.json()["detail"]


def test_filters_and_pagination_over_200_voices(embedded: AppHarness) -> None:
    account = embedded.make_user()
    genders, langs, styles = ("male", "female", "neutral"), ("en", "de", "fr", "es"), ("calm", "bright")
    with session_scope(embedded.settings) as session:
        for n in range(200):
            session.add(
                _voice_row(
                    account.user_id,
                    name=f"voice {n:03d}",
                    gender=genders[n % 3],
                    language=langs[n % 4],
                    style=styles[n % 2],
                    category="narration" if n % 5 == 0 else "character",
                    description="a pirate captain" if n % 50 == 0 else None,
                    tags=["storm"] if n == 7 else [],
                    is_public=n % 10 == 0,
                )
            )
    c, h = embedded.client, account.headers
    builtins = c.get(f"{V}/voice-profiles", params={"voice_type": "STANDARD"}, headers=h).json()["total"]
    first = c.get(f"{V}/voice-profiles", params={"voice_type": "CUSTOM", "limit": 500}, headers=h).json()
    assert first["total"] == 200 and len(first["voices"]) == 50 and first["hasMore"] is True
    seen: list[str] = []
    for skip in range(0, 200, 50):
        page = c.get(f"{V}/voice-profiles", params={"voice_type": "CUSTOM", "skip": skip}, headers=h).json()
        seen += [v["voice_id"] for v in page["voices"]]
        assert page["hasMore"] is (skip + 50 < 200)
    beyond = c.get(f"{V}/voice-profiles", params={"voice_type": "CUSTOM", "skip": 400}, headers=h).json()
    assert beyond["voices"] == [] and beyond["total"] == 200 and beyond["hasMore"] is False
    assert len(seen) == len(set(seen)) == 200  # stable ordering: no voice twice, none missed
    everything = c.get(f"{V}/voice-profiles", headers=h).json()
    assert everything["total"] == 200 + builtins

    def total(**params: Any) -> int:
        r = c.get(f"{V}/voice-profiles", params={"voice_type": "CUSTOM", **params}, headers=h)
        assert r.status_code == 200, r.text
        assert all(k in r.json()["filters_applied"] for k in params)
        return int(r.json()["total"])

    assert total(gender="female") == 67
    assert total(language="de") == 50
    assert total(style="calm") == 100
    assert total(category="narration") == 40
    assert total(is_public=True) == 20
    assert total(keyword="pirate") == 4
    assert total(keyword="STORM") == 1
    assert total(keyword="voice 19") == 10  # voice 190-199
    assert total(gender="male", language="en", style="calm") == 17


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/voice-profiles", {"params": {"gender": "robot"}}),
        ("get", "/voice-profiles", {"params": {"voice_type": "PREMIUM"}}),
        ("get", "/voice-profiles", {"params": {"skip": -1}}),
        ("get", "/tts-jobs", {"params": {"status": "done"}}),
        ("post", "/preview/batch", {"json": {"voice_ids": [], "text": "hi"}}),
        ("post", "/preview/batch", {"json": {"voice_ids": [str(n) for n in range(11)], "text": "hi"}}),
        ("post", "/preview/batch", {"json": {"voice_ids": ["1"], "text": ""}}),
        ("post", "/voices/{joe}/generate", {"json": {"input_text": "hi", "speed": 5}}),
        ("post", "/voices/{joe}/generate", {"json": {"input_text": "hi", "audio_format": "m4a"}}),
        ("post", "/voices/{joe}/generate", {"json": {"input_text": "   "}}),
        (
            "post",
            "/voices/{joe}/generate",
            {"content": b"{bad json", "headers": {"Content-Type": "application/json"}},
        ),
        ("get", "/voice-profiles/{joe}/preview", {"params": {"audio_format": "midi"}}),
    ],
)
def test_bad_parameters_are_400_in_the_native_shape(
    embedded: AppHarness, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    account = embedded.make_user()
    joe = _builtin(embedded)
    headers = {**account.headers, **kwargs.pop("headers", {})}
    r = getattr(embedded.client, method)(V + path.format(joe=joe.voice_id), headers=headers, **kwargs)
    assert r.status_code == 400, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert _credits(embedded, account) == 10_000


@pytest.mark.slow
def test_previews_are_cached_free_and_batched(embedded: AppHarness) -> None:
    account = embedded.make_user()
    joe = _builtin(embedded)
    c, h = embedded.client, account.headers
    missing = c.get(
        f"{V}/voice-profiles/{joe.voice_id}/preview", params={"generate_if_missing": False}, headers=h
    )
    assert missing.status_code == 404
    made = c.get(f"{V}/voice-profiles/{joe.voice_id}/preview", headers=h)
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["format"] == "mp3" and body["duration"] > 1 and joe.name in body["text"]
    files_after_first = len(blob_files(embedded.settings))
    cached = c.get(
        f"{V}/voice-profiles/{joe.voice_id}/preview", params={"generate_if_missing": False}, headers=h
    )
    assert cached.status_code == 200 and cached.json()["duration"] == body["duration"]
    assert len(blob_files(embedded.settings)) == files_after_first
    audio = decode_audio(_download(embedded, body["audio_url"]), max_seconds=60, max_sample_rate=192000)
    assert audio.duration == pytest.approx(body["duration"], abs=0.15)

    with session_scope(embedded.settings) as session:
        others = [v.voice_id for v in session.query(Voice).filter(Voice.kind == "builtin").limit(3)]
    batch = c.post(
        f"{V}/preview/batch",
        headers=h,
        json={"voice_ids": others, "text": "Same words, different voices.", "format": "wav"},
    )
    assert batch.status_code == 200, batch.text
    previews = batch.json()["previews"]
    assert [p["voice_id"] for p in previews] == others
    assert all(p["duration"] > 0.5 for p in previews)
    assert _credits(embedded, account) == 10_000


def test_preview_links_play_and_last_at_least_the_signed_url_ttl(embedded: AppHarness) -> None:
    """A listing's `preview_url`s: the same link for a voice within a minute (signed once), each
    valid for at least signed_url_ttl_seconds from now, playable without a key, and refused when
    tampered with."""
    account = embedded.make_user()
    c, h = embedded.client, account.headers
    params = {"voice_type": "STANDARD", "limit": 5}
    for _ in range(2):  # two listings within one minute: a pair that crossed a minute is taken again
        started = time.time()
        first = c.get(f"{V}/voice-profiles", params=params, headers=h).json()["voices"]
        again = c.get(f"{V}/voice-profiles", params=params, headers=h).json()["voices"]
        if int(started) // 60 == int(time.time()) // 60:
            break
    links = [v["preview_url"] for v in first]
    assert all(links) and len(set(links)) == len(links)
    assert [v["preview_url"] for v in again] == links
    for link in links:
        claims = jwt.decode(link.rsplit("/", 1)[1], options={"verify_signature": False})
        assert claims["exp"] >= started + embedded.settings.signed_url_ttl_seconds
        assert claims["exp"] <= time.time() + embedded.settings.signed_url_ttl_seconds + 61
    played = c.get(links[0])
    assert played.status_code == 200 and played.headers["content-type"].startswith("audio/")
    token = links[0].rsplit("/", 1)[1]
    tampered = links[0][: -len(token)] + token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert c.get(tampered).status_code == 404
    assert _credits(embedded, account) == 10_000


def test_ratings_make_avg_rating_real(embedded: AppHarness) -> None:
    """POST /tts-jobs/{job}/rating by the owner, once per job and changeable; `avg_rating` in the
    voice's usage_stats and in analytics is the mean of the ratings (0.0 before any)."""
    alice, bob = embedded.make_user(credits=5000), embedded.make_user(credits=5000)
    c, joe = embedded.client, _builtin(embedded).voice_id
    before = c.get(f"{V}/voices/{joe}", headers=alice.headers).json()["usage_stats"]["avg_rating"]
    assert before == 0.0

    def finished_job(account: Account) -> str:
        r = c.post(f"{V}/voices/{joe}/generate", headers=account.headers, json={"input_text": "Rate me."})
        assert r.status_code == 202, r.text
        job_id = str(r.json()["job_id"])
        _poll(c, f"{V}/tts-jobs/{job_id}/status", account.headers, ("completed",))
        return job_id

    first, second = finished_job(alice), finished_job(alice)
    r = c.post(f"{V}/tts-jobs/{first}/rating", headers=alice.headers, json={"rating": 2})
    assert r.status_code == 200 and r.json() == {"job_id": first, "rating": 2}
    r = c.post(f"{V}/tts-jobs/{first}/rating", headers=alice.headers, json={"rating": 4})  # changed
    assert r.status_code == 200 and r.json()["rating"] == 4
    r = c.post(f"{V}/tts-jobs/{second}/rating", headers=alice.headers, json={"rating": 5})
    assert r.status_code == 200
    # Not someone else's job, not outside 1-5: nothing changes.
    assert c.post(f"{V}/tts-jobs/{first}/rating", headers=bob.headers, json={"rating": 1}).status_code == 404
    for bad in (0, 6, "five", None):
        r = c.post(f"{V}/tts-jobs/{first}/rating", headers=alice.headers, json={"rating": bad})
        assert r.status_code == 400, (bad, r.text)

    stats = c.get(f"{V}/voices/{joe}", headers=alice.headers).json()["usage_stats"]
    assert stats["avg_rating"] == 4.5
    # A listing page shows the same figures (its own one-query path), beside voices never used.
    listed = c.get(f"{V}/voice-profiles", params={"voice_type": "STANDARD"}, headers=bob.headers).json()
    by_id = {v["voice_id"]: v["usage_stats"] for v in listed["voices"]}
    assert by_id[joe]["avg_rating"] == 4.5 and by_id[joe]["total_generations"] >= 2
    assert any(s["avg_rating"] == 0.0 and s["total_generations"] == 0 for s in by_id.values())
    analytics = c.get(f"{V}/analytics/usage", headers=alice.headers, params={"voice_id": joe}).json()
    assert analytics["avg_rating"] == 4.5
    assert c.get(f"{V}/analytics/usage", headers=bob.headers).json()["avg_rating"] == 0.0


@pytest.mark.slow
def test_generate_in_a_telephony_format(embedded: AppHarness) -> None:
    """audio_format takes the rated names too: raw G.711 mu-law at 8 kHz for a phone line."""
    from tests.test_openai_speech import _raw

    account = embedded.make_user(credits=1000)
    c, h = embedded.client, account.headers
    joe = _builtin(embedded)
    text = "Your call is important to us."
    job = c.post(
        f"{V}/voices/{joe.voice_id}/generate",
        headers=h,
        json={"input_text": text, "audio_format": "ulaw_8000"},
    )
    assert job.status_code == 202, job.text
    status = _poll(c, f"{V}/tts-jobs/{job.json()['job_id']}/status", h, ("completed", "failed"))
    assert status["status"] == "completed" and status["audio_format"] == "ulaw_8000"
    data = _download(embedded, status["output_url"])
    assert len(data) == pytest.approx(8000 * status["duration"], rel=0.03)  # one byte a sample, no header
    samples = _raw(data, "mulaw", 8000)
    assert np.abs(samples).max() > 0.1
    refused = c.post(
        f"{V}/voices/{joe.voice_id}/generate", headers=h, json={"input_text": text, "audio_format": "ulaw"}
    )
    assert refused.status_code == 400 and "ulaw_8000" in refused.text
    assert _credits(embedded, account) == 1000 - len(text.encode())
