"""Envelope family (seed 002) end to end: upload or SSRF-safe voice_url, details, soft delete, BOLA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.core.db import session_scope
from app.jobs.models import Job
from app.voices.models import Voice
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
from tests.test_fetch import LocalServer, running_server


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    yield from build_harness(tmp_path)


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


def _ok(r: Any) -> Any:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 0 and body["message"] == "success"
    return body["data"]


def test_upload_details_list_soft_delete(harness: Harness, speech_wav_bytes: bytes) -> None:
    account = harness.make_user(credits=2500)
    c, h = harness.client, account.headers
    form = {"display_name": "Anna", "language": "EN", "denoise": "true"}
    files = {"file": ("anna.wav", speech_wav_bytes, "audio/wav")}
    voice = _ok(c.post("/voices", headers=h, data=form, files=files))
    assert voice["display_name"] == "Anna" and voice["status"] == "pending" and voice["language"] == "en"
    assert voice["voice_type"] == "custom" and voice["delete_time"] is None
    assert available(harness, account) == 1500
    with session_scope(harness.settings) as session:
        job = session.get(Job, clone_job_of(harness.settings, voice["voice_id"]))
        assert job is not None and job.params["denoise"] is True

    finish_job(harness.settings, clone_job_of(harness.settings, voice["voice_id"]), result_key="v/x/a.json")
    assert _ok(c.get(f"/voices/{voice['voice_id']}", headers=h))["status"] == "completed"
    listed = _ok(c.get("/voices", headers=h))
    assert listed["total"] == 1 and [v["voice_id"] for v in listed["voices"]] == [voice["voice_id"]]
    assert (listed["skip"], listed["limit"]) == (0, 10)

    stored = sorted(blob_files(harness.settings))
    assert stored  # the uploaded sample
    deleted = _ok(c.delete(f"/voices/{voice['voice_id']}", headers=h))
    assert deleted["voice_id"] == voice["voice_id"] and deleted["delete_time"]
    # Seed 002: "The voice won't be physically removed from storage."
    assert sorted(blob_files(harness.settings)) == stored
    r = c.get(f"/voices/{voice['voice_id']}", headers=h)
    assert r.status_code == 404 and r.json() == {"code": 404, "message": "Voice not found", "data": None}
    assert _ok(c.get("/voices", headers=h))["total"] == 0
    with session_scope(harness.settings) as session:  # soft: the row stays, with its delete time
        row = session.scalar(select(Voice).where(Voice.voice_id == voice["voice_id"]))
        assert row is not None and row.deleted_at is not None
    assert available(harness, account) == 1500
    assert_ledger_invariant(harness.settings, account.user_id)


def test_voice_url_is_downloaded(
    harness: Harness, speech_wav_bytes: bytes, local_server: LocalServer
) -> None:
    account = harness.make_user(credits=1000)
    local_server.routes["/files/bob.wav"] = (200, {"Content-Type": "audio/wav"}, speech_wav_bytes)
    local_server.routes["/moved"] = (302, {"Location": "/files/bob.wav"}, b"")
    form = {"voice_url": local_server.url("/moved")}
    voice = _ok(harness.client.post("/voices", headers=account.headers, data=form))
    assert voice["display_name"] == "bob" and voice["status"] == "pending"
    assert len(local_server.hits("/files/bob.wav")) == 1
    assert stored_things(harness.settings, account.user_id) == (1, 1, 1)
    assert available(harness, account) == 0


def test_bad_input_stores_and_charges_nothing(
    harness: Harness, speech_wav_bytes: bytes, local_server: LocalServer
) -> None:
    account = harness.make_user(credits=5000)
    ogg = b"OggS" + b"\0" * 400
    local_server.routes["/a.ogg"] = (200, {}, ogg)
    local_server.routes["/missing.wav"] = (404, {}, b"")
    local_server.routes["/to-metadata"] = (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    to_localhost = f"http://localhost:{local_server.port}/files/a.wav"
    local_server.routes["/to-localhost"] = (302, {"Location": to_localhost}, b"")
    local_server.routes["/to-private"] = (307, {"Location": "http://192.168.0.10/a.wav"}, b"")
    wav = ("a.wav", speech_wav_bytes, "audio/wav")
    cases: list[tuple[dict[str, Any], dict[str, Any] | None, int, str]] = [
        ({}, None, 400, "at least one is required"),
        (
            {"voice_url": "http://localhost/a.wav"},
            None,
            400,
            "voice_url must not point at a private or loopback address",
        ),
        ({"voice_url": f"http://127.0.0.2:{local_server.port}/a.wav"}, None, 400, "private or loopback"),
        ({"voice_url": "http://169.254.169.254/latest/meta-data/iam"}, None, 400, "metadata"),
        ({"voice_url": local_server.url("/to-metadata")}, None, 400, "metadata"),
        ({"voice_url": local_server.url("/to-localhost")}, None, 400, "private or loopback"),
        ({"voice_url": local_server.url("/to-private")}, None, 400, "private or loopback"),
        ({"voice_url": "ftp://example.com/a.wav"}, None, 400, "http or https"),
        ({"voice_url": "file:///etc/passwd"}, None, 400, "http or https"),
        ({"voice_url": local_server.url("/missing.wav")}, None, 400, "HTTP 404"),
        ({"voice_url": local_server.url("/a.ogg")}, None, 415, "Only WAV, MP3 and M4A"),
        ({}, {"file": ("a.ogg", ogg, "audio/ogg")}, 415, "Only WAV, MP3 and M4A"),
        ({"language": "x" * 17}, {"file": wav}, 400, "language"),
        ({"callback_url": "gopher://example.com/"}, {"file": wav}, 400, "http or https"),
    ]
    for form, files, status, message in cases:
        r = harness.client.post("/voices", headers=account.headers, data=form, files=files)
        assert r.status_code == status, (form, r.text)
        body = r.json()
        assert body["code"] == status and body["data"] is None, body
        assert message.lower() in body["message"].lower(), (form, body)
    assert local_server.hits("/files/a.wav") == []  # the redirect to localhost was never followed
    assert stored_things(harness.settings, account.user_id) == (0, 0, 0)
    assert blob_files(harness.settings) == []
    assert available(harness, account) == 5000
    for params in ({"skip": -1}, {"limit": 0}, {"limit": 101}, {"voice_type": "mine"}):
        r = harness.client.get("/voices", params=params, headers=account.headers)
        assert r.status_code == 400 and r.json()["code"] == 400, params


def test_two_users(harness: Harness) -> None:
    alice, bob = harness.make_user("alice"), harness.make_user("bob")
    private = add_voice(harness.settings, alice.user_id, name="alice private")
    public = add_voice(harness.settings, alice.user_id, name="alice public", is_public=True)
    c = harness.client
    for ref in (private.voice_id, private.id, private.uuid):
        assert c.get(f"/voices/{ref}", headers=bob.headers).json()["code"] == 404
        assert c.delete(f"/voices/{ref}", headers=bob.headers).json()["code"] == 404
    assert _ok(c.get(f"/voices/{public.voice_id}", headers=bob.headers))["display_name"] == "alice public"
    r = c.delete(f"/voices/{public.voice_id}", headers=bob.headers)
    assert r.status_code == 403 and r.json()["code"] == 403
    assert _ok(c.get("/voices", headers=bob.headers))["voices"] == []  # custom = the caller's own
    assert _ok(c.get("/voices", headers=alice.headers))["total"] == 2
    assert _ok(c.get("/voices", params={"keyword": "PUBLIC"}, headers=alice.headers))["total"] == 1
    assert c.get("/voices").json()["code"] == 401
