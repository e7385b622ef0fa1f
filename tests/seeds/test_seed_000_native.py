"""Seed 000 (AudioPod "Voice Management API"): every code example, run against a live Chorus.

A user migrating to Chorus pastes the seed's Python `requests` code (and the JavaScript / curl
examples translated to `requests`), changing only the base URL and the key. Each test is that code:
the same requests, the same fields read, the same status checks (`if response.status_code == 200`
becomes an assertion) and the same formatting of values. Where /work/shared/API.md differs from
the seed, API.md wins (voice creation answers 200 with `status` PROCESSING and a `file_path`;
`GET /api/v1/voice/voices` lists; `avg_rating` is always a number; creation and previews are free).

Cloning is slow on CPU, so one voice made by the "Upload Single Audio Sample" request is shared by
the examples that need a custom voice; the other uploads are checked on their responses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.core.db import session_scope
from app.voices.models import Voice
from tests.plugins.services import Account
from tests.plugins.waiting import wait_until
from tests.test_openai_fixtures import LiveApp, decoded_seconds

TIMEOUT = 300  # seconds for one HTTP request (a bound on a hang, not a timing assertion)
BUILTIN_CATEGORIES = {"professional", "casual", "character", "narrative"}
BUILTIN_STYLES = {"conversational", "narrative", "assistant", "educational", "promotional", "character"}
TERMINAL = ("completed", "failed")


# --------------------------------------------------------------------------------------------
# Fixtures: the user's files, the shared custom voice, someone else's voices.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def opening_balance(live: LiveApp, account: Account) -> tuple[int, int]:
    """(total, held) credits before any example runs: everything in this seed's examples is free."""
    return live.balance(account)


def _assert_nothing_charged(live: LiveApp, account: Account, opening: tuple[int, int]) -> None:
    total, held = live.balance(account)
    assert (total, held) == opening, (
        f"seed 000 operations are free; credits went from {opening} to {(total, held)} (total, held)"
    )


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory, speech_wav_bytes: bytes) -> Path:
    """The user's files: voice_sample.wav, sample1.wav, sample2.wav, sample3.wav (real speech)."""
    folder = tmp_path_factory.mktemp("seed000-audio")
    for name in ("voice_sample.wav", "sample1.wav", "sample2.wav", "sample3.wav"):
        (folder / name).write_bytes(speech_wav_bytes)
    return folder


@pytest.fixture(scope="module")
def single_upload(
    base_url: str, api_key: str, audio_dir: Path, live: LiveApp, account: Account
) -> tuple[requests.Response, tuple[int, int], tuple[int, int]]:
    """The seed's "Upload Single Audio Sample" request (Python), made once; (response, before, after)."""
    before = live.balance(account)
    with open(audio_dir / "voice_sample.wav", "rb") as audio_file:
        response = requests.post(
            f"{base_url}/api/v1/voice/voice-profiles",
            headers={"X-API-Key": api_key},
            data={
                "name": "My Custom Voice",
                "description": "Professional voice for presentations",
                "denoise": True,
            },
            files={"file": audio_file},
            timeout=TIMEOUT,
        )
    return response, before, live.balance(account)


@pytest.fixture(scope="module")
def curl_upload(base_url: str, api_key: str, audio_dir: Path) -> requests.Response:
    """The seed's curl form of "Upload Single Audio Sample" (-F name=... -F file=@voice_sample.wav)."""
    with open(audio_dir / "voice_sample.wav", "rb") as audio_file:
        return requests.post(
            f"{base_url}/api/v1/voice/voice-profiles",
            headers={"X-API-Key": api_key},
            data={
                "name": "My Custom Voice",
                "description": "Professional voice for presentations",
                "denoise": "true",
            },
            files={"file": ("voice_sample.wav", audio_file, "application/octet-stream")},
            timeout=TIMEOUT,
        )


def _wait_for_voice(base_url: str, api_key: str, voice_ref: object) -> dict[str, Any]:
    """Poll GET /voices/{voice}/status until the voice is completed or failed."""

    def read() -> dict[str, Any]:
        r = requests.get(
            f"{base_url}/api/v1/voice/voices/{voice_ref}/status",
            headers={"X-API-Key": api_key},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    return wait_until(read, lambda v: str(v["training_status"]).lower() in TERMINAL, interval=0.5)


@pytest.fixture(scope="module")
def custom_voice(
    base_url: str,
    api_key: str,
    single_upload: tuple[requests.Response, tuple[int, int], tuple[int, int]],
) -> dict[str, Any]:
    """The voice cloned by the single-sample upload, once it has finished training."""
    response = single_upload[0]
    assert response.ok, (response.status_code, response.text)
    voice = _wait_for_voice(base_url, api_key, response.json()["id"])
    assert voice["training_status"] == "completed", voice
    return voice


@pytest.fixture(scope="module")
def builtin_voices(base_url: str, api_key: str) -> list[dict[str, Any]]:
    r = requests.get(
        f"{base_url}/api/v1/voice/voice-profiles",
        headers={"X-API-Key": api_key},
        params={"voice_type": "STANDARD", "limit": 50},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    voices = list(r.json()["voices"])
    assert len(voices) >= 4, "the examples need at least four built-in voices"
    return voices


@pytest.fixture(scope="module")
def stranger(live: LiveApp) -> Iterator[dict[str, str]]:
    """Another user's public and private custom voices: {"public": voice_id, "private": voice_id}."""
    other = live.make_user(credits=0)
    with session_scope(live.settings) as session:
        public = Voice(
            owner_id=other.user_id,
            kind="custom",
            name="Stranger public voice",
            status="completed",
            is_public=True,
        )
        private = Voice(
            owner_id=other.user_id,
            kind="custom",
            name="Stranger private voice",
            status="completed",
            is_public=False,
        )
        session.add_all([public, private])
        session.flush()
        refs = {"public": public.voice_id, "private": private.voice_id}
    yield refs


def _create_collection(base_url: str, api_key: str, collection_data: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{base_url}/api/v1/voice/collections",
        headers={"X-API-Key": api_key, "Content-Type": "application/json"},
        json=collection_data,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def podcast_collection(base_url: str, api_key: str, builtin_voices: list[dict[str, Any]]) -> dict[str, Any]:
    r = _create_collection(
        base_url,
        api_key,
        {
            "name": "My Podcast Voices",
            "description": "Voices for podcast production",
            "voice_ids": [builtin_voices[0]["voice_id"], builtin_voices[1]["voice_id"]],
            "tags": ["podcast", "production"],
            "is_public": False,
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


# --------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------


def test_authentication(base_url: str, api_key: str) -> None:
    """Seed 000 "Authentication": X-API-Key (recommended) or Authorization: Bearer <JWT>."""
    url = f"{base_url}/api/v1/voice/voice-profiles"
    assert requests.get(url, headers={"X-API-Key": api_key}, timeout=TIMEOUT).status_code == 200
    token = requests.post(f"{base_url}/api/v1/auth/token", headers={"X-API-Key": api_key}, timeout=TIMEOUT)
    assert token.status_code == 200, token.text
    assert token.json()["token_type"] == "bearer"
    jwt = token.json()["access_token"]
    r = requests.get(url, headers={"Authorization": f"Bearer {jwt}"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    r = requests.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert requests.get(url, timeout=TIMEOUT).status_code == 401


# --------------------------------------------------------------------------------------------
# Voice Discovery
# --------------------------------------------------------------------------------------------


def test_list_available_voices(base_url: str, api_key: str, stranger: dict[str, str]) -> None:
    """Seed 000 "List Available Voices" (Python): GET /api/v1/voice/voice-profiles?limit=50&skip=0."""
    response = requests.get(
        f"{base_url}/api/v1/voice/voice-profiles",
        headers={"X-API-Key": api_key},
        params={"limit": 50, "skip": 0},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    voices_data = response.json()
    for voice in voices_data["voices"]:
        print(f"Voice: {voice['name']} ({voice['voice_id']})")
        print(f" Category: {voice['category']}")
        print(f" Language: {voice['language']}")
        print(f" Gender: {voice['gender']}")
        print(f" Preview: {voice['preview_url']}")
    assert voices_data["voices"], "no voices listed"
    assert isinstance(voices_data["total"], int) and voices_data["total"] >= len(voices_data["voices"])
    assert isinstance(voices_data["hasMore"], bool)
    assert isinstance(voices_data["filters_applied"], dict)

    builtins = [v for v in voices_data["voices"] if not v["is_custom"]]
    assert builtins, "the built-in voices are listed"
    for voice in builtins:
        assert voice["category"] in BUILTIN_CATEGORIES, (voice["name"], voice["category"])
        assert voice["preview_url"], f"built-in voice {voice['name']} has no preview_url"
    # The printed preview URL is what a user opens: it plays audio (no API key in a browser).
    audio = requests.get(builtins[0]["preview_url"], timeout=TIMEOUT)
    assert audio.status_code == 200, audio.text[:300]
    assert decoded_seconds(audio.content) > 0.5

    # include_public defaults to false: someone else's public voice shows only when asked for.
    listed = {v["voice_id"] for v in voices_data["voices"]}
    assert stranger["public"] not in listed and stranger["private"] not in listed
    with_public = requests.get(
        f"{base_url}/api/v1/voice/voice-profiles",
        headers={"X-API-Key": api_key},
        params={"include_public": "true", "limit": 50},
        timeout=TIMEOUT,
    )
    assert with_public.status_code == 200, with_public.text
    listed = {v["voice_id"] for v in with_public.json()["voices"]}
    assert stranger["public"] in listed and stranger["private"] not in listed


def test_list_available_voices_curl(base_url: str, api_key: str) -> None:
    """Seed 000 "List Available Voices" (curl):
    curl -X GET .../api/v1/voice/voice-profiles -H "X-API-Key: your_api_key"."""
    response = requests.get(
        f"{base_url}/api/v1/voice/voice-profiles", headers={"X-API-Key": api_key}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["voices"] and len(body["voices"]) <= 50
    for key in ("total", "hasMore", "filters_applied"):
        assert key in body, key


def test_get_voice_details(
    base_url: str, api_key: str, builtin_voices: list[dict[str, Any]], custom_voice: dict[str, Any]
) -> None:
    """Seed 000 "Get Voice Details": GET /api/v1/voice/voices/{voice_id}/status with the integer voice ID."""
    for voice_id in (builtin_voices[0]["id"], custom_voice["id"]):
        assert isinstance(voice_id, int)  # "Voice ID is actually an integer"
        response = requests.get(
            f"{base_url}/api/v1/voice/voices/{voice_id}/status",
            headers={"X-API-Key": api_key},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        voice = response.json()
        print(f"Voice Name: {voice['name']}")
        print(f"Description: {voice['description']}")
        print(f"Language: {voice['language']}")
        print(f"Category: {voice['category']}")
        if voice["is_custom"]:
            print(f"Custom voice created: {voice['created_at']}")
            print(f"Training status: {voice['training_status']}")
            assert voice["created_at"] and voice["training_status"] == "completed"
        features = voice["supported_features"]
        print(f"Speed control: {features['speed_control']}")
        print(f"Pitch control: {features['pitch_control']}")
        assert voice["id"] == voice_id
        assert voice["is_custom"] is (voice_id == custom_voice["id"])


# --------------------------------------------------------------------------------------------
# Create Custom Voices
# --------------------------------------------------------------------------------------------


def _check_created_voice(live: LiveApp, voice_data: dict[str, Any], name: str, description: str) -> None:
    """The seed's Response block, with API.md's `status` PROCESSING and storage-key `file_path`."""
    assert isinstance(voice_data["id"], int)
    assert voice_data["uuid"]
    assert voice_data["name"] == name
    assert voice_data["description"] == description
    assert voice_data["voice_type"] == "CUSTOM"
    assert voice_data["status"] == "PROCESSING", voice_data
    assert voice_data["created_at"]
    assert voice_data["processed_at"] is None
    assert voice_data["is_public"] is False
    file_path = voice_data.get("file_path")
    assert isinstance(file_path, str) and file_path, f"no file_path in {voice_data}"
    assert not file_path.startswith("/") and str(live.settings.data_dir) not in file_path, file_path


def test_upload_single_audio_sample(
    live: LiveApp,
    account: Account,
    single_upload: tuple[requests.Response, tuple[int, int], tuple[int, int]],
    custom_voice: dict[str, Any],
    opening_balance: tuple[int, int],
) -> None:
    """Seed 000 "Upload Single Audio Sample" (Python): POST /api/v1/voice/voice-profiles, multipart name,
    description, denoise=True, file."""
    response, before, after = single_upload
    assert response.status_code == 200, (response.status_code, response.text)
    voice_data = response.json()
    voice_id = voice_data["id"]
    print(f"Voice created with ID: {voice_id}")
    _check_created_voice(live, voice_data, "My Custom Voice", "Professional voice for presentations")
    assert after == before, f"voice creation is free; credits (total, held) went from {before} to {after}"
    assert custom_voice["id"] == voice_id and custom_voice["status"] == "COMPLETED"
    _assert_nothing_charged(live, account, opening_balance)


def test_upload_single_audio_sample_curl(live: LiveApp, curl_upload: requests.Response) -> None:
    """Seed 000 "Upload Single Audio Sample" (curl):
    -F name -F description -F denoise=true -F file=@voice_sample.wav."""
    assert curl_upload.status_code == 200, (curl_upload.status_code, curl_upload.text)
    _check_created_voice(live, curl_upload.json(), "My Custom Voice", "Professional voice for presentations")


def test_upload_multiple_audio_samples(
    base_url: str, api_key: str, audio_dir: Path, live: LiveApp, account: Account
) -> None:
    """Seed 000 "Upload Multiple Audio Samples":
    POST /api/v1/voice/voice-profiles/multi-sample with three voice_files."""
    before = live.balance(account)
    voice_files = [
        str(audio_dir / "sample1.wav"),
        str(audio_dir / "sample2.wav"),
        str(audio_dir / "sample3.wav"),
    ]
    files = []
    for _i, file_path in enumerate(voice_files):
        files.append(("voice_files", open(file_path, "rb")))  # noqa: SIM115 - the seed's own code
    try:
        response = requests.post(
            f"{base_url}/api/v1/voice/voice-profiles/multi-sample",
            headers={"X-API-Key": api_key},
            data={
                "name": "High Quality Voice",
                "description": "Multi-sample voice for better quality",
                "is_public": False,
            },
            files=files,
            timeout=TIMEOUT,
        )
    finally:
        # Close files
        for _, file_obj in files:
            file_obj.close()
    assert response.status_code == 200, (response.status_code, response.text)  # API.md: 200, Voice
    voice = response.json()
    assert voice["name"] == "High Quality Voice"
    assert voice["description"] == "Multi-sample voice for better quality"
    assert voice["voice_type"] == "CUSTOM" and voice["is_custom"] is True
    assert voice["status"] == "PROCESSING" and voice["is_public"] is False
    assert live.balance(account) == before, "multi-sample voice creation is free"


# --------------------------------------------------------------------------------------------
# Voice Preview
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["builtin-id", "custom-uuid"])
def test_generate_voice_preview(
    which: str,
    base_url: str,
    api_key: str,
    builtin_voices: list[dict[str, Any]],
    custom_voice: dict[str, Any],
    tmp_path: Path,
    live: LiveApp,
    account: Account,
) -> None:
    """Seed 000 "Generate Voice Preview": GET /api/v1/voice/voice-profiles/{voice_identifier}/preview
    (voice_identifier = "123", "Voice ID or UUID")."""
    before = live.balance(account)
    voice_identifier = str(builtin_voices[0]["id"]) if which == "builtin-id" else str(custom_voice["uuid"])
    response = requests.get(
        f"{base_url}/api/v1/voice/voice-profiles/{voice_identifier}/preview",
        headers={"X-API-Key": api_key},
        params={"audio_format": "mp3", "generate_if_missing": True},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    preview_result = response.json()
    print(f"Preview URL: {preview_result['audio_url']}")
    print(f"Duration: {preview_result['duration']} seconds")

    # Download preview audio
    audio_response = requests.get(preview_result["audio_url"], timeout=TIMEOUT)
    with open(tmp_path / "voice_preview.mp3", "wb") as f:
        f.write(audio_response.content)
    assert audio_response.status_code == 200, audio_response.text[:300]
    assert decoded_seconds((tmp_path / "voice_preview.mp3").read_bytes()) == pytest.approx(
        preview_result["duration"], abs=0.25
    )
    assert live.balance(account) == before, "voice previews are free"


def test_batch_preview_generation(
    base_url: str, api_key: str, builtin_voices: list[dict[str, Any]], live: LiveApp, account: Account
) -> None:
    """Seed 000 "Batch Preview Generation": POST /api/v1/voice/preview/batch."""
    before = live.balance(account)
    chosen = builtin_voices[:3]
    batch_preview_data = {
        "voice_ids": [v["voice_id"] for v in chosen],
        "text": "Compare how different voices sound with this text.",
        "speed": 1.0,
        "pitch": 0.0,
        "format": "mp3",
    }
    response = requests.post(
        f"{base_url}/api/v1/voice/preview/batch",
        headers={"X-API-Key": api_key, "Content-Type": "application/json"},
        json=batch_preview_data,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    batch_result = response.json()
    print(f"Generated {len(batch_result['previews'])} voice previews")
    for i, preview in enumerate(batch_result["previews"]):
        print(f"Voice {i + 1}: {preview['voice_name']}")
        print(f" URL: {preview['audio_url']}")
        print(f" Duration: {preview['duration']}s")
    assert [p["voice_name"] for p in batch_result["previews"]] == [v["name"] for v in chosen]
    assert all(p["audio_url"] and p["duration"] > 0 for p in batch_result["previews"])
    assert live.balance(account) == before, "voice previews are free"


# --------------------------------------------------------------------------------------------
# Custom Voice Management
# --------------------------------------------------------------------------------------------


def test_list_custom_voices(
    base_url: str, api_key: str, custom_voice: dict[str, Any], stranger: dict[str, str]
) -> None:
    """Seed 000 "List Custom Voices": GET /api/v1/voice/voice-profiles?voice_type=CUSTOM&limit=25&skip=0."""
    response = requests.get(
        f"{base_url}/api/v1/voice/voice-profiles",
        headers={"X-API-Key": api_key},
        params={"voice_type": "CUSTOM", "limit": 25, "skip": 0},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    custom_voices = response.json()
    for voice in custom_voices["voices"]:
        print(f"Custom Voice: {voice['name']}")
        print(f" Voice ID: {voice['voice_id']}")
        print(f" Status: {voice['training_status']}")
        print(f" Created: {voice['created_at']}")
        print(f" Clone Job: {voice['clone_job_id']}")
    listed = {v["voice_id"]: v for v in custom_voices["voices"]}
    assert all(v["is_custom"] for v in custom_voices["voices"])
    # API.md: voice_type=CUSTOM is the caller's own custom voices (others' public ones only on request)
    assert stranger["public"] not in listed, "another user's public voice is listed as my custom voice"
    assert stranger["private"] not in listed
    mine = listed.get(custom_voice["voice_id"])
    assert mine is not None, "my cloned voice is not in the custom list"
    assert mine["training_status"] == "completed" and mine["created_at"] and mine["clone_job_id"]


def test_update_custom_voice(base_url: str, api_key: str, custom_voice: dict[str, Any]) -> None:
    """Seed 000 "Update Custom Voice": PATCH /api/v1/voice/voices/{voice_id} (integer ID) with JSON."""
    voice_id = custom_voice["id"]
    update_data = {
        "name": "Updated Voice Name",
        "description": "My updated custom voice description",
        "is_public": False,  # Keep voice private
    }
    response = requests.patch(
        f"{base_url}/api/v1/voice/voices/{voice_id}",
        headers={"X-API-Key": api_key, "Content-Type": "application/json"},
        json=update_data,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    updated_voice = response.json()
    print("Voice updated successfully:")
    print(f" Name: {updated_voice['name']}")
    print(f" Description: {updated_voice['description']}")
    print(f" Tags: {', '.join(updated_voice['tags'])}")
    assert updated_voice["name"] == "Updated Voice Name"
    assert updated_voice["description"] == "My updated custom voice description"
    assert updated_voice["is_public"] is False


def test_delete_custom_voice(base_url: str, api_key: str, curl_upload: requests.Response) -> None:
    """Seed 000 "Delete Custom Voice": DELETE /api/v1/voice/voices/{voice_id} ("an integer or an UUID") → 204,
    then the seed's 404 branch "Voice not found or already deleted"."""
    assert curl_upload.ok, (curl_upload.status_code, curl_upload.text)
    created = curl_upload.json()
    _wait_for_voice(base_url, api_key, created["id"])
    for voice_id in (created["uuid"], created["id"]):
        response = requests.delete(
            f"{base_url}/api/v1/voice/voices/{voice_id}", headers={"X-API-Key": api_key}, timeout=TIMEOUT
        )
        if voice_id == created["uuid"]:
            assert response.status_code == 204, response.text  # "Custom voice deleted successfully"
        else:
            assert response.status_code == 404, response.text  # "Voice not found or already deleted"
    gone = requests.get(
        f"{base_url}/api/v1/voice/voices/{created['id']}/status",
        headers={"X-API-Key": api_key},
        timeout=TIMEOUT,
    )
    assert gone.status_code == 404


# --------------------------------------------------------------------------------------------
# Voice Collections
# --------------------------------------------------------------------------------------------


def test_create_voice_collection(base_url: str, api_key: str, builtin_voices: list[dict[str, Any]]) -> None:
    """Seed 000 "Create Voice Collection": POST /api/v1/voice/collections → 201."""
    collection_data = {
        "name": "My Podcast Voices",
        "description": "Voices for podcast production",
        "voice_ids": [builtin_voices[0]["voice_id"], builtin_voices[1]["voice_id"]],
        "tags": ["podcast", "production"],
        "is_public": False,
    }
    response = _create_collection(base_url, api_key, collection_data)
    assert response.status_code == 201, response.text
    collection = response.json()
    print(f"Collection created: {collection['name']}")
    print(f"Collection ID: {collection['collection_id']}")
    print(f"Contains {len(collection['voice_ids'])} voices")
    assert str(collection["collection_id"]).startswith("collection_")
    assert len(collection["voice_ids"]) == 2
    assert collection["name"] == "My Podcast Voices"
    assert collection["voice_ids"] == collection_data["voice_ids"]


def test_list_voice_collections(base_url: str, api_key: str, podcast_collection: dict[str, Any]) -> None:
    """Seed 000 "List Voice Collections": GET /api/v1/voice/collections?limit=25&skip=0."""
    response = requests.get(
        f"{base_url}/api/v1/voice/collections",
        headers={"X-API-Key": api_key},
        params={"limit": 25, "skip": 0},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    collections = response.json()
    for collection in collections["collections"]:
        print(f"Collection: {collection['name']}")
        print(f" Description: {collection['description']}")
        print(f" Voices: {len(collection['voice_ids'])}")
        print(f" Created: {collection['created_at']}")
    listed = {c["collection_id"]: c for c in collections["collections"]}
    assert podcast_collection["collection_id"] in listed
    assert listed[podcast_collection["collection_id"]]["description"] == "Voices for podcast production"


def test_add_voices_to_collection(
    base_url: str, api_key: str, podcast_collection: dict[str, Any], builtin_voices: list[dict[str, Any]]
) -> None:
    """Seed 000 "Add Voices to Collection": POST /api/v1/voice/collections/{collection_id}/voices."""
    collection_id = podcast_collection["collection_id"]
    new_voices = {"voice_ids": [builtin_voices[2]["voice_id"], builtin_voices[3]["voice_id"]]}
    response = requests.post(
        f"{base_url}/api/v1/voice/collections/{collection_id}/voices",
        headers={"X-API-Key": api_key, "Content-Type": "application/json"},
        json=new_voices,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    updated_collection = response.json()
    print("Added voices to collection")
    print(f"Collection now has {len(updated_collection['voice_ids'])} voices")
    assert len(updated_collection["voice_ids"]) == len(podcast_collection["voice_ids"]) + 2
    assert set(new_voices["voice_ids"]) <= set(updated_collection["voice_ids"])


# --------------------------------------------------------------------------------------------
# Voice Analytics
# --------------------------------------------------------------------------------------------


def test_get_voice_usage_statistics(base_url: str, api_key: str, custom_voice: dict[str, Any]) -> None:
    """Seed 000 "Get Voice Usage Statistics":
    GET /api/v1/voice/analytics/usage?voice_id=...&period=30d&breakdown=daily."""
    voice_id = custom_voice["voice_id"]
    response = requests.get(
        f"{base_url}/api/v1/voice/analytics/usage",
        headers={"X-API-Key": api_key},
        params={"voice_id": voice_id, "period": "30d", "breakdown": "daily"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    analytics = response.json()
    print(f"Usage for voice {voice_id}:")
    print(f" Total generations: {analytics['total_generations']}")
    print(f" Total characters: {analytics['total_characters']}")
    print(f" Total duration: {analytics['total_duration']} seconds")
    print(f" Average rating: {analytics['avg_rating']:.2f}")
    # Daily breakdown
    for day_data in analytics["daily_breakdown"]:
        print(f" {day_data['date']}: {day_data['generations']} generations")
    assert analytics["avg_rating"] == 0.0  # no ratings yet: 0.0, always a number
    assert analytics["total_generations"] == 0


# --------------------------------------------------------------------------------------------
# Use Cases & Examples
# --------------------------------------------------------------------------------------------


def find_best_voice_for_content(
    base_url: str, content_type: str, language: str, gender_preference: str | None, api_key: str
) -> dict[str, Any]:
    """Help users find the best voice for their content (the seed's function, BASE_URL swapped)."""
    # Define voice selection criteria based on content type
    criteria_map = {
        "podcast": {"category": "professional", "style": "conversational"},
        "audiobook": {"category": "professional", "style": "narrative"},
        "assistant": {"category": "professional", "style": "assistant"},
        "character": {"category": "character", "style": "character"},
        "casual": {"category": "casual", "style": "conversational"},
    }
    criteria = criteria_map.get(content_type, {"category": "professional"})
    # Search for matching voices
    params: dict[str, Any] = {"language": language, "limit": 10}
    if gender_preference:
        params["gender"] = gender_preference
    if "category" in criteria:
        params["category"] = criteria["category"]
    if "style" in criteria:
        params["style"] = criteria["style"]
    response = requests.get(
        f"{base_url}/api/v1/voice/voices", headers={"X-API-Key": api_key}, params=params, timeout=TIMEOUT
    )
    if response.status_code != 200:
        return {"error": "Failed to fetch voices", "status": response.status_code, "body": response.text}
    voices_data = response.json()
    voices = voices_data["voices"]
    # Rank voices by suitability
    ranked_voices = []
    for voice in voices:
        score: float = 0
        # Prefer voices with higher ratings
        if voice.get("usage_stats", {}).get("avg_rating"):
            score += voice["usage_stats"]["avg_rating"] * 10
        # Prefer voices with proven usage
        if voice.get("usage_stats", {}).get("total_generations", 0) > 1000:
            score += 20
        # Prefer exact style matches
        if voice.get("style") == criteria.get("style"):
            score += 30
        ranked_voices.append({"voice": voice, "suitability_score": score})
    # Sort by score
    ranked_voices.sort(key=lambda x: x["suitability_score"], reverse=True)
    return {
        "content_type": content_type,
        "language": language,
        "criteria": criteria,
        "recommended_voices": ranked_voices[:5],  # Top 5 recommendations
        "total_matches": len(voices),
    }


def _all_listed_voices(base_url: str, api_key: str) -> list[dict[str, Any]]:
    voices: list[dict[str, Any]] = []
    while True:
        r = requests.get(
            f"{base_url}/api/v1/voice/voice-profiles",
            headers={"X-API-Key": api_key},
            params={"skip": len(voices), "limit": 50},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        voices += r.json()["voices"]
        if not r.json()["hasMore"]:
            return voices


def _is_english(language: object) -> bool:
    return isinstance(language, str) and (language.lower() == "en" or language.lower().startswith("en-"))


@pytest.mark.parametrize(
    ("content_type", "gender_preference"),
    [("podcast", "female"), ("audiobook", None), ("assistant", None), ("character", None), ("casual", None)],
)
def test_voice_selection_assistant(
    base_url: str, api_key: str, content_type: str, gender_preference: str | None
) -> None:
    """Seed 000 "Voice Selection Assistant": find_best_voice_for_content() over GET /api/v1/voice/voices
    (the seed's usage is podcast / en / female; the other content types of its criteria_map too)."""
    recommendations = find_best_voice_for_content(
        base_url,
        content_type=content_type,
        language="en",
        gender_preference=gender_preference,
        api_key=api_key,
    )
    assert "error" not in recommendations, recommendations
    print(f"Top recommendations for {recommendations['content_type']} in {recommendations['language']}:")
    for i, rec in enumerate(recommendations["recommended_voices"], 1):
        voice = rec["voice"]
        print(f" {i}. {voice['name']} (Score: {rec['suitability_score']:.1f})")
        print(f" Category: {voice['category']}, Style: {voice.get('style', 'N/A')}")
        print(f" Rating: {voice.get('usage_stats', {}).get('avg_rating', 'N/A')}")

    # The filters were applied: the matches are exactly the listed voices that fit the criteria.
    criteria = recommendations["criteria"]
    expected = [
        v
        for v in _all_listed_voices(base_url, api_key)
        if v["category"] == criteria["category"]
        and v["style"] == criteria["style"]
        and (gender_preference is None or v["gender"] == gender_preference)
        and _is_english(v["language"])
    ]
    assert recommendations["total_matches"] == min(len(expected), 10), (recommendations, expected)
    for rec in recommendations["recommended_voices"]:
        voice = rec["voice"]
        assert voice["category"] == criteria["category"] and voice["style"] == criteria["style"]


def organize_voices_by_project(base_url: str, voices_to_organize: list[str], api_key: str) -> dict[str, Any]:
    """Organize voices into project-based collections (the seed's function, BASE_URL swapped; its
    `if response.status_code == 200` / `== 201` checks are assertions)."""
    # Group voices by characteristics for project organization
    voice_groups: dict[str, list[str]] = {
        "narrative_voices": [],
        "character_voices": [],
        "professional_voices": [],
        "multilingual_voices": [],
    }
    for voice_id in voices_to_organize:
        # Get voice details
        response = requests.get(
            f"{base_url}/api/v1/voice/voices/{voice_id}", headers={"X-API-Key": api_key}, timeout=TIMEOUT
        )
        assert response.status_code == 200, (voice_id, response.text)
        voice = response.json()
        # Categorize voice
        style = voice.get("style", "")
        category = voice.get("category", "")
        if style == "narrative" or "audiobook" in voice.get("tags", []):
            voice_groups["narrative_voices"].append(voice_id)
        elif category == "character" or style == "character":
            voice_groups["character_voices"].append(voice_id)
        elif category == "professional":
            voice_groups["professional_voices"].append(voice_id)
        # Check if multilingual
        if voice.get("language") != "en" or "multilingual" in voice.get("tags", []):
            voice_groups["multilingual_voices"].append(voice_id)
    # Create collections for non-empty groups
    created_collections = []
    collection_configs = {
        "narrative_voices": {
            "name": "Narrative & Audiobook Voices",
            "description": "Voices optimized for storytelling and long-form content",
        },
        "character_voices": {
            "name": "Character & Creative Voices",
            "description": "Unique voices for character work and creative projects",
        },
        "professional_voices": {
            "name": "Professional & Business Voices",
            "description": "Clear, professional voices for business content",
        },
        "multilingual_voices": {
            "name": "International & Multilingual Voices",
            "description": "Voices for international content and multiple languages",
        },
    }
    for group_name, voice_ids in voice_groups.items():
        if voice_ids:  # Only create collection if there are voices
            config = collection_configs[group_name]
            collection_data = {
                "name": config["name"],
                "description": config["description"],
                "voice_ids": voice_ids,
                "tags": [group_name.replace("_", "-"), "auto-organized"],
            }
            response = _create_collection(base_url, api_key, collection_data)
            assert response.status_code == 201, (group_name, response.text)
            collection = response.json()
            created_collections.append(
                {
                    "collection_id": collection["collection_id"],
                    "name": collection["name"],
                    "voice_count": len(voice_ids),
                    "voices": voice_ids,
                }
            )
    return {
        "organized": True,
        "collections_created": len(created_collections),
        "collections": created_collections,
        "total_voices_organized": sum(len(group) for group in voice_groups.values()),
    }


def test_voice_collection_manager(
    base_url: str, api_key: str, builtin_voices: list[dict[str, Any]], custom_voice: dict[str, Any]
) -> None:
    """Seed 000 "Voice Collection Manager": organize_voices_by_project() with four voice IDs."""
    voice_list = [v["voice_id"] for v in builtin_voices[:3]] + [custom_voice["voice_id"]]
    organization_result = organize_voices_by_project(base_url, voice_list, api_key)
    print(
        f"Organized {organization_result['total_voices_organized']} voices into "
        f"{organization_result['collections_created']} collections:"
    )
    for collection in organization_result["collections"]:
        print(f" {collection['name']}: {collection['voice_count']} voices")
    for made in organization_result["collections"]:
        r = requests.get(
            f"{base_url}/api/v1/voice/collections/{made['collection_id']}",
            headers={"X-API-Key": api_key},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        assert r.json()["voice_ids"] == made["voices"]


def test_voice_selection_guidelines(builtin_voices: list[dict[str, Any]]) -> None:
    """Seed 000 "Voice Selection Guidelines": the guide's categories, styles and features are the API's own
    vocabulary (API.md: built-in category ∈ professional|casual|character|narrative, style ∈
    conversational|narrative|assistant|educational|promotional|character)."""
    voice_selection_guide = {
        "podcast": {"features_needed": ["speed_control"]},
        "audiobook": {"features_needed": ["pitch_control", "speed_control"]},
        "e_learning": {"features_needed": ["speed_control"]},
        "marketing": {"features_needed": []},
    }
    for voice in builtin_voices:
        assert voice["category"] in BUILTIN_CATEGORIES, (voice["name"], voice["category"])
        assert voice["style"] in BUILTIN_STYLES, (voice["name"], voice["style"])
        for needs in voice_selection_guide.values():
            for feature in needs["features_needed"]:
                assert isinstance(voice["supported_features"][feature], bool)


# --------------------------------------------------------------------------------------------
# Error Handling
# --------------------------------------------------------------------------------------------


def test_error_404_voice_not_found(
    base_url: str, api_key: str, stranger: dict[str, str], builtin_voices: list[dict[str, Any]]
) -> None:
    """Seed 000 "404 Not Found - Voice Not Found":
    a voice ID that doesn't exist, or someone else's private voice."""
    for voice_id in ("999999999", "voice_doesnotexist", stranger["private"]):
        r = requests.get(
            f"{base_url}/api/v1/voice/voices/{voice_id}/status",
            headers={"X-API-Key": api_key},
            timeout=TIMEOUT,
        )
        assert r.status_code == 404, (voice_id, r.text)
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]


def test_error_400_invalid_parameters(
    base_url: str, api_key: str, builtin_voices: list[dict[str, Any]], live: LiveApp, account: Account
) -> None:
    """Seed 000 "400 Bad Request - Invalid Parameters": an invalid filter, malformed collection data, empty
    preview text."""
    before = live.balance(account)
    bad = [
        requests.get(
            f"{base_url}/api/v1/voice/voice-profiles",
            headers={"X-API-Key": api_key},
            params={"voice_type": "PREMIUM"},
            timeout=TIMEOUT,
        ),
        _create_collection(base_url, api_key, {"name": "x", "voice_ids": "voice_abc123"}),
        requests.post(
            f"{base_url}/api/v1/voice/preview/batch",
            headers={"X-API-Key": api_key, "Content-Type": "application/json"},
            json={"voice_ids": [builtin_voices[0]["voice_id"]], "text": ""},
            timeout=TIMEOUT,
        ),
    ]
    for r in bad:
        assert r.status_code == 400, (r.request.method, r.request.url, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert live.balance(account) == before


def test_error_403_access_denied(
    base_url: str, api_key: str, stranger: dict[str, str], builtin_voices: list[dict[str, Any]]
) -> None:
    """Seed 000 "403 Forbidden - Access Denied": modifying another user's custom voice (or a built-in one)."""
    for voice_id in (stranger["public"], builtin_voices[0]["voice_id"]):
        r = requests.patch(
            f"{base_url}/api/v1/voice/voices/{voice_id}",
            headers={"X-API-Key": api_key, "Content-Type": "application/json"},
            json={"name": "Mine now"},
            timeout=TIMEOUT,
        )
        assert r.status_code == 403, (voice_id, r.text)
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]
        r = requests.delete(
            f"{base_url}/api/v1/voice/voices/{voice_id}", headers={"X-API-Key": api_key}, timeout=TIMEOUT
        )
        assert r.status_code == 403, (voice_id, r.text)
