"""Seed 001 (voice.ai clone API), its Python examples run as written against a live Chorus.

Each test is one example of ../shared/seeds/001_18c842310280fc14.txt with only the base URL
and the key changed: the same `requests` calls (``Authorization: Bearer <key>``), the same
fields read, the same printed formatting. The examples build on each other (clone, poll,
list, update, delete), so they share one cloned voice through module-scoped fixtures.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import requests

from app.audio import encode_audio
from tests.plugins.services import Account
from tests.plugins.waiting import wait_until
from tests.test_openai_fixtures import LiveApp

TIMEOUT = 120  # seconds per HTTP request (a bound on a hang, not a timing)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def voice_sample_mp3(speech_samples: tuple[np.ndarray, int]) -> bytes:
    """The seed's `voice_sample.mp3`: ≈ 6 s of real speech encoded as MP3."""
    samples, rate = speech_samples
    return encode_audio(samples, rate, "mp3")


@pytest.fixture(scope="module")
def clone_response(base_url: str, api_key: str, voice_sample_mp3: bytes) -> requests.Response:
    """Step 1, "Clone the Voice", exactly as the seed sends it."""
    f = io.BytesIO(voice_sample_mp3)  # with open('voice_sample.mp3', 'rb') as f:
    files = {"file": ("voice_sample.mp3", f, "audio/mpeg")}
    data = {"name": "My Cloned Voice", "voice_visibility": "PRIVATE"}
    return requests.post(
        f"{base_url}/api/v1/tts/clone-voice",
        headers={"Authorization": f"Bearer {api_key}"},
        files=files,
        data=data,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def voice_id(clone_response: requests.Response) -> str:
    assert clone_response.status_code == 200, clone_response.text
    return str(clone_response.json()["voice_id"])


def _poll_until_settled(base_url: str, api_key: str, voice_id: str, printed: list[str]) -> dict[str, Any]:
    """Step 2's loop: GET the voice every 2 s until AVAILABLE or FAILED; returns the last body."""

    def read() -> dict[str, Any]:
        response = requests.get(
            f"{base_url}/api/v1/tts/voice/{voice_id}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        status_data: dict[str, Any] = response.json()
        printed.append(f"Status: {status_data['status']}")
        return status_data

    return wait_until(read, lambda s: s["status"] in ("AVAILABLE", "FAILED"), interval=2.0)


@pytest.fixture(scope="module")
def available_voice(base_url: str, api_key: str, voice_id: str) -> dict[str, Any]:
    printed: list[str] = []
    return _poll_until_settled(base_url, api_key, voice_id, printed)


def test_clone_the_voice(clone_response: requests.Response, account: Account, live: LiveApp) -> None:
    """Step 1 "Clone the Voice": multipart `file` ('voice_sample.mp3', audio/mpeg), `name`,
    `voice_visibility` PRIVATE; prints f"Voice ID: {data['voice_id']}, Status: {data['status']}"."""
    assert clone_response.status_code == 200, clone_response.text
    data = clone_response.json()
    line = f"Voice ID: {data['voice_id']}, Status: {data['status']}"
    assert line == f"Voice ID: {data['voice_id']}, Status: PENDING"
    assert str(data["voice_id"]).startswith("voice_")
    assert data["name"] == "My Cloned Voice"
    assert data["voice_visibility"] == "PRIVATE"
    total, held = live.balance(account)
    assert total - held == 200_000 - 1000  # API.md: a voice.ai clone costs the clone cost (1000)


def test_check_voice_status(base_url: str, api_key: str, voice_id: str) -> None:
    """Step 2 "Check Voice Status": poll GET /api/v1/tts/voice/{voice_id} until
    `status == 'AVAILABLE'` ("Voice is ready!") or 'FAILED' ("Voice cloning failed")."""
    printed: list[str] = []
    status_data = _poll_until_settled(base_url, api_key, voice_id, printed)
    status = status_data["status"]
    assert status == "AVAILABLE", status_data  # "Voice is ready!"
    # Status values: PENDING, PROCESSING, AVAILABLE, FAILED; nothing else is ever printed.
    assert {line.removeprefix("Status: ") for line in printed} <= {"PENDING", "PROCESSING", "AVAILABLE"}
    assert status_data["voice_id"] == voice_id
    assert status_data["name"] == "My Cloned Voice"
    assert status_data["voice_visibility"] == "PRIVATE"
    assert status_data["created_at"]


def test_list_voices(
    base_url: str, api_key: str, live: LiveApp, voice_id: str, available_voice: dict[str, Any]
) -> None:
    """ "List Voices": GET /api/v1/tts/voices, "all voices owned by the authenticated user";
    prints f"Voice ID: {voice['voice_id']}, Name: {voice['name']}, Status: {voice['status']}"."""
    response = requests.get(
        f"{base_url}/api/v1/tts/voices",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    voices = response.json()
    assert isinstance(voices, list)
    lines = [
        f"Voice ID: {voice['voice_id']}, Name: {voice['name']}, Status: {voice['status']}" for voice in voices
    ]
    assert f"Voice ID: {voice_id}, Name: My Cloned Voice, Status: AVAILABLE" in lines
    assert all(voice["status"] in ("PENDING", "PROCESSING", "AVAILABLE", "FAILED") for voice in voices)

    stranger = live.make_user(credits=0)
    theirs = requests.get(f"{base_url}/api/v1/tts/voices", headers=_bearer(stranger.key), timeout=TIMEOUT)
    assert theirs.status_code == 200, theirs.text
    assert theirs.json() == []  # only the caller's voices, never someone else's


def test_request_parameters_default_visibility_is_public(
    base_url: str, api_key: str, live: LiveApp, speech_wav_bytes: bytes
) -> None:
    """ "Request Parameters": `file` (required; MP3, WAV or OGG), `name` (optional),
    `voice_visibility` (optional) - "PUBLIC" or "PRIVATE" (default: "PUBLIC"). The clone is
    listed among the caller's voices and not among anyone else's, public or not."""
    response = requests.post(
        f"{base_url}/api/v1/tts/clone-voice",
        headers={"Authorization": f"Bearer {api_key}"},
        files={"file": ("voice_sample.wav", io.BytesIO(speech_wav_bytes), "audio/wav")},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["status"] == "PENDING"
    assert data["voice_visibility"] == "PUBLIC"
    new_id = data["voice_id"]
    got = requests.get(f"{base_url}/api/v1/tts/voice/{new_id}", headers=_bearer(api_key), timeout=TIMEOUT)
    assert got.status_code == 200 and got.json()["voice_visibility"] == "PUBLIC", got.text

    mine = requests.get(f"{base_url}/api/v1/tts/voices", headers=_bearer(api_key), timeout=TIMEOUT).json()
    assert new_id in {voice["voice_id"] for voice in mine}
    stranger = live.make_user(credits=0)
    theirs = requests.get(f"{base_url}/api/v1/tts/voices", headers=_bearer(stranger.key), timeout=TIMEOUT)
    assert new_id not in {voice["voice_id"] for voice in theirs.json()}  # public, but not theirs

    printed: list[str] = []
    settled = _poll_until_settled(base_url, api_key, new_id, printed)
    assert settled["status"] == "AVAILABLE", settled
    assert settled["voice_visibility"] == "PUBLIC"


def test_update_voice(base_url: str, api_key: str, voice_id: str, available_voice: dict[str, Any]) -> None:
    """ "Update Voice": PATCH /api/v1/tts/voice/{voice_id} with JSON
    {'name': 'Updated Voice Name', 'voice_visibility': 'PRIVATE'};
    prints f"Updated: {data['name']}, Visibility: {data['voice_visibility']}"."""
    response = requests.patch(
        f"{base_url}/api/v1/tts/voice/{voice_id}",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        json={"name": "Updated Voice Name", "voice_visibility": "PRIVATE"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert f"Updated: {data['name']}, Visibility: {data['voice_visibility']}" == (
        "Updated: Updated Voice Name, Visibility: PRIVATE"
    )
    got = requests.get(f"{base_url}/api/v1/tts/voice/{voice_id}", headers=_bearer(api_key), timeout=TIMEOUT)
    assert got.json()["name"] == "Updated Voice Name" and got.json()["voice_visibility"] == "PRIVATE"


def test_delete_voice(
    base_url: str, api_key: str, live: LiveApp, voice_id: str, available_voice: dict[str, Any]
) -> None:
    """ "Delete Voice": DELETE /api/v1/tts/voice/{voice_id} (owner-only);
    prints f"Deleted: {data['voice_id']}"."""
    stranger = live.make_user(credits=0)
    refused = requests.delete(
        f"{base_url}/api/v1/tts/voice/{voice_id}", headers=_bearer(stranger.key), timeout=TIMEOUT
    )
    assert refused.status_code in (403, 404), refused.text  # owner-only

    response = requests.delete(
        f"{base_url}/api/v1/tts/voice/{voice_id}",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert f"Deleted: {data['voice_id']}" == f"Deleted: {voice_id}"
    gone = requests.get(f"{base_url}/api/v1/tts/voice/{voice_id}", headers=_bearer(api_key), timeout=TIMEOUT)
    assert gone.status_code == 404
    listed = requests.get(f"{base_url}/api/v1/tts/voices", headers=_bearer(api_key), timeout=TIMEOUT).json()
    assert voice_id not in {voice["voice_id"] for voice in listed}
