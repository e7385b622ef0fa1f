"""Seed 003 ("Voice Clone & Text-to-Speech API"), every example run against a live Chorus.

Each test ports one example of ../shared/seeds/003_608b8610c4e75f51.txt (cURL, JavaScript
fetch/axios, Python `requests`) with only the base URL and the key changed: the same method,
path, form fields or JSON body, ``Authorization: Bearer <key>``, the same fields read and the
same `response.ok` / `raise_for_status()` checks. API.md wins where it differs from the seed.

Cloning is slow (tens of seconds), so requests that are byte-for-byte the same share one clone:
the JavaScript (Fetch), Node.js and Python clone examples send the same form (one clone), and
"cURL - Basic" sends what best practice 1 sends after its credit check (one clone). The Fetch
voice clone is the voice the list, TTS and status examples then use (the "Typical Usage Flow").
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import requests

from app.audio import decode_audio, encode_audio
from tests.plugins.audio_samples import wav_bytes
from tests.plugins.services import Account
from tests.plugins.waiting import wait_until
from tests.test_openai_fixtures import LiveApp

TIMEOUT = 120  # seconds per HTTP request (a bound on a hang, not a timing)
SEED_TEXT = "Hello, this is a test speech."  # 29 UTF-8 bytes
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 512


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _json_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def _ok(response: requests.Response) -> bool:
    """fetch's `response.ok`."""
    return 200 <= response.status_code < 300


def _assert_rate_limit_headers(response: requests.Response) -> None:
    """ "Rate limit headers are included in all responses"."""
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert re.fullmatch(r"\d+", response.headers.get(name, "")), (name, dict(response.headers))


# --- shared state -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def voice_mp3(speech_samples: tuple[np.ndarray, int]) -> bytes:
    """The seed's `/path/to/voice.mp3`: ≈ 6 s of real speech as MP3."""
    samples, rate = speech_samples
    return encode_audio(samples, rate, "mp3")


@dataclass
class BestPractice:
    """What checkCreditsAndCloneVoice saw: the balance it read, and the clone's response."""

    account: Account
    balance_status: int
    credits_before: int
    clone: requests.Response | None


def check_credits_and_clone_voice(
    base_url: str, key: str, audio: bytes
) -> tuple[requests.Response, requests.Response | None]:
    """Best practice 1, ported: read the balance (`/api/user/credits`), clone only when ≥ 1000.

    `const { credits } = await balance.json()` then `if (credits < 1000) return`: as in JavaScript,
    a missing `credits` (undefined) does not stop the clone."""
    balance = requests.get(f"{base_url}/api/user/credits", headers=_auth(key), timeout=TIMEOUT)
    try:
        credits = balance.json().get("credits")
    except ValueError:
        credits = None
    if credits is not None and credits < 1000:
        return balance, None  # 'Insufficient credits. Need 1000, have', credits
    response = requests.post(
        f"{base_url}/api/v1/voice-clone",
        headers={"Authorization": f"Bearer {key}"},
        files={"voice": ("voice.mp3", io.BytesIO(audio), "audio/mpeg")},
        timeout=TIMEOUT,
    )
    return balance, response


@pytest.fixture(scope="module")
def best_practice(live: LiveApp, base_url: str, voice_mp3: bytes) -> BestPractice:
    account = live.make_user(credits=1500)
    balance, clone = check_credits_and_clone_voice(base_url, account.key, voice_mp3)
    credits = balance.json().get("credits", -1) if balance.status_code == 200 else -1
    return BestPractice(account, balance.status_code, credits, clone)


@pytest.fixture(scope="module")
def form_clone(base_url: str, api_key: str, voice_mp3: bytes) -> requests.Response:
    """The form of the JavaScript (Fetch), Node.js (FormData) and Python clone examples."""
    form = {
        "title": "My Voice Clone",
        "description": "A custom voice",
        "tags": json.dumps(["male", "energetic"]),  # JSON.stringify(['male', 'energetic'])
    }
    return requests.post(
        f"{base_url}/api/v1/voice-clone",
        headers={"Authorization": f"Bearer {api_key}"},
        files={"voice": ("voice.mp3", io.BytesIO(voice_mp3), "audio/mpeg")},
        data=form,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def metadata_clone(base_url: str, api_key: str, voice_mp3: bytes) -> requests.Response:
    """cURL - With Metadata: -F voice=@/path/to/voice.mp3 -F title=... -F description=...
    -F coverImage=https://example.com/cover.jpg -F 'tags=["male","young","energetic"]'."""
    return requests.post(
        f"{base_url}/api/v1/voice-clone",
        headers={"Authorization": f"Bearer {api_key}"},
        files={
            "voice": ("voice.mp3", io.BytesIO(voice_mp3), "audio/mpeg"),
            "title": (None, "My Voice Clone"),
            "description": (None, "A custom voice description"),
            "coverImage": (None, "https://example.com/cover.jpg"),
            "tags": (None, '["male","young","energetic"]'),
        },
        timeout=TIMEOUT,
    )


def _list_mine(base_url: str, key: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{base_url}/api/v1/voices", params={"page": 1, "limit": 100}, headers=_auth(key), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return list(response.json()["voices"])


def _wait_voice_settled(base_url: str, key: str, voice_id: str) -> dict[str, Any]:
    """Poll the voices list until the voice is no longer PROCESSING (a bound, not a timing)."""

    def read() -> dict[str, Any]:
        found = [v for v in _list_mine(base_url, key) if v["id"] == voice_id]
        assert found, f"voice {voice_id} is not listed"
        return found[0]

    return wait_until(read, lambda v: v["status"] != "PROCESSING", interval=2.0)


@pytest.fixture(scope="module")
def voice_id(base_url: str, api_key: str, form_clone: requests.Response) -> str:
    """Typical Usage Flow step 2-3: the clone completes and is selected from
    `/api/v1/voices?status=COMPLETED`."""
    assert form_clone.status_code == 200, form_clone.text
    cloned = str(form_clone.json()["voiceId"])
    settled = _wait_voice_settled(base_url, api_key, cloned)
    assert settled["status"] == "COMPLETED", settled
    return cloned


def generate_speech(base_url: str, key: str, voice_id: str) -> requests.Response:
    """The body of every "Text-to-Speech API" example."""
    return requests.post(
        f"{base_url}/api/v1/tts",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        json={"text": SEED_TEXT, "voiceId": voice_id, "format": "mp3"},
        timeout=TIMEOUT,
    )


def _speech_settled(base_url: str, key: str, speech_id: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        response = requests.get(f"{base_url}/api/v1/tts/{speech_id}", headers=_auth(key), timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return dict(response.json()["speech"])

    return wait_until(read, lambda s: s["status"] != "PROCESSING", interval=1.0)


@pytest.fixture(scope="module")
def speech_id(base_url: str, api_key: str, voice_id: str) -> str:
    """A finished speech of the seed's text, for the "Get Speech Status API" examples."""
    response = generate_speech(base_url, api_key, voice_id)
    assert response.status_code == 200, response.text
    made = str(response.json()["speechId"])
    assert _speech_settled(base_url, api_key, made)["status"] == "COMPLETED"
    return made


# --- Voice Clone API ----------------------------------------------------------------------------


def _check_clone_body(body: dict[str, Any]) -> dict[str, Any]:
    assert body["success"] is True
    voice = body["voice"]
    assert body["voiceId"] == voice["id"]
    for field in (
        "id",
        "title",
        "description",
        "coverImage",
        "audioUrl",
        "duration",
        "tags",
        "status",
        "createdAt",
    ):
        assert field in voice, (field, voice)
    assert voice["status"] == "PROCESSING"
    assert voice["duration"] == pytest.approx(6.0, abs=2.5)
    return dict(voice)


def test_curl_basic_voice_file_only(best_practice: BestPractice, base_url: str) -> None:
    """ "cURL - Basic (voice file only)": curl -X POST .../api/v1/voice-clone
    -H "Authorization: Bearer YOUR_API_KEY" -F "voice=@/path/to/voice.mp3"
    ("title: Voice name (auto-generated if not provided)")."""
    clone = best_practice.clone
    assert clone is not None, "best practice 1 did not clone (see test_best_practice_check_credits)"
    assert clone.status_code == 200, clone.text
    voice = _check_clone_body(clone.json())
    assert isinstance(voice["title"], str) and voice["title"].strip()  # auto-generated
    assert voice["tags"] == [] and voice["coverImage"] is None
    _assert_rate_limit_headers(clone)


def test_curl_with_metadata(metadata_clone: requests.Response, base_url: str, api_key: str) -> None:
    """ "cURL - With Metadata": title, description, coverImage and tags as a JSON array."""
    assert metadata_clone.status_code == 200, metadata_clone.text
    voice = _check_clone_body(metadata_clone.json())
    assert voice["title"] == "My Voice Clone"
    assert voice["description"] == "A custom voice description"
    assert voice["coverImage"] == "https://example.com/cover.jpg"
    assert voice["tags"] == ["male", "young", "energetic"]
    listed = next(v for v in _list_mine(base_url, api_key) if v["id"] == voice["id"])
    assert (listed["title"], listed["coverImage"], listed["tags"]) == (
        "My Voice Clone",
        "https://example.com/cover.jpg",
        ["male", "young", "energetic"],
    )
    assert listed["type"] == "USER"


def test_javascript_fetch_clone_voice(form_clone: requests.Response) -> None:
    """Voice Clone "JavaScript (Fetch)": cloneVoice(audioFile) - FormData voice, title
    'My Voice Clone', description 'A custom voice', tags JSON.stringify(['male', 'energetic']);
    if (response.ok) logs data.voiceId and data.voice.audioUrl."""
    data = form_clone.json()
    assert _ok(form_clone), data
    lines = [
        "Voice cloned successfully!",
        f"Voice ID: {data['voiceId']}",
        f"Audio URL: {data['voice']['audioUrl']}",
    ]
    assert lines[1] == f"Voice ID: {data['voice']['id']}"
    voice = _check_clone_body(data)
    assert (voice["title"], voice["description"], voice["tags"]) == (
        "My Voice Clone",
        "A custom voice",
        ["male", "energetic"],
    )
    audio = requests.get(voice["audioUrl"], timeout=TIMEOUT)  # the seed shows a playable URL
    assert audio.status_code == 200 and len(audio.content) > 1000
    assert decode_audio(audio.content, max_seconds=600, max_sample_rate=192_000).duration > 3


def test_javascript_nodejs_formdata_clone_voice(form_clone: requests.Response) -> None:
    """Voice Clone "JavaScript (Node.js with FormData)": axios.post(url, formData, {headers:
    {'Authorization': 'Bearer YOUR_API_KEY', ...formData.getHeaders()}}); logs
    response.data.voiceId (axios throws on a non-2xx status)."""
    assert 200 <= form_clone.status_code < 300, form_clone.text
    assert str(form_clone.json()["voiceId"]).strip()


def test_python_clone_voice(form_clone: requests.Response) -> None:
    """Voice Clone "Python": clone_voice() - files={'voice': open(...)}, data title/description/
    tags '["male","energetic"]'; response.raise_for_status(); prints result['voiceId'] and
    result['voice']['audioUrl']."""
    form_clone.raise_for_status()
    result = form_clone.json()
    assert f"Voice ID: {result['voiceId']}" == f"Voice ID: {result['voice']['id']}"
    assert f"Audio URL: {result['voice']['audioUrl']}".startswith("Audio URL: http")


def test_clone_error_insufficient_credits(live: LiveApp, base_url: str, voice_mp3: bytes) -> None:
    """Voice Clone "Error Responses - Insufficient Credits": 429 {"error": "Insufficient credits",
    "code": "USAGE_LIMIT_EXCEEDED", "credits": 500, "needCredits": 1000}; the Fetch example logs
    `Need ${data.needCredits} credits, have ${data.credits}`."""
    poor = live.make_user(credits=500)
    response = requests.post(
        f"{base_url}/api/v1/voice-clone",
        headers={"Authorization": f"Bearer {poor.key}"},
        files={"voice": ("voice.mp3", io.BytesIO(voice_mp3), "audio/mpeg")},
        data={"title": "My Voice Clone"},
        timeout=TIMEOUT,
    )
    data = response.json()
    assert not _ok(response) and response.status_code == 429, data
    assert data["code"] == "USAGE_LIMIT_EXCEEDED" and isinstance(data["error"], str)
    assert f"Need {data['needCredits']} credits, have {data['credits']}" == "Need 1000 credits, have 500"
    assert live.balance(poor) == (500, 0)


def test_clone_error_invalid_file_type(base_url: str, api_key: str) -> None:
    """Voice Clone "Error Responses - Invalid File Type": 400 {"code": "INVALID_PARAMETERS",
    "error": "Invalid file type. Supported formats: MP3, WAV, WebM"}."""
    response = requests.post(
        f"{base_url}/api/v1/voice-clone",
        headers=_auth(api_key),
        files={"voice": ("cover.png", io.BytesIO(PNG), "image/png")},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400, response.text
    data = response.json()
    assert data["code"] == "INVALID_PARAMETERS"
    assert data["error"].startswith("Invalid file type. Supported formats: MP3, WAV, WebM"), data


def test_clone_error_file_too_large(live: LiveApp, base_url: str) -> None:
    """Voice Clone "Error Responses - File Too Large": a 21 MB voice file answers 400
    {"code": "INVALID_PARAMETERS", "error": "File size exceeds 20MB limit"}; nothing is charged."""
    account = live.make_user(credits=5000)
    big = wav_bytes(np.zeros(10_500_000, dtype=np.float32), 22_050)  # 21 MB of WAV
    assert 21_000_000 <= len(big) < 21_500_000
    response = requests.post(
        f"{base_url}/api/v1/voice-clone",
        headers=_auth(account.key),
        files={"voice": ("voice.wav", io.BytesIO(big), "audio/wav")},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.json() == {"code": "INVALID_PARAMETERS", "error": "File size exceeds 20MB limit"}
    assert live.balance(account) == (5000, 0)


# --- Get Voices List API ------------------------------------------------------------------------


def _usage_lines(voices: list[dict[str, Any]]) -> list[str]:
    return [f"- {voice['title']} ({voice['status']}), Usage: {voice['usageCount']} times" for voice in voices]


def test_get_voices_javascript_fetch(base_url: str, api_key: str, voice_id: str) -> None:
    """Get Voices List "JavaScript (Fetch)": getVoices(page = 1, limit = 20) -
    `?page=${page}&limit=${limit}&status=COMPLETED&sortBy=createdAt&sortOrder=desc`; logs
    data.pagination.total and `- ${voice.title} (${voice.status}), Usage: ${voice.usageCount} times`."""
    page, limit = 1, 20
    response = requests.get(
        f"{base_url}/api/v1/voices?page={page}&limit={limit}&status=COMPLETED&sortBy=createdAt&sortOrder=desc",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=TIMEOUT,
    )
    data = response.json()
    assert _ok(response), data
    assert data["success"] is True
    assert isinstance(data["pagination"]["total"], int) and data["pagination"]["total"] >= 1
    assert all(voice["status"] == "COMPLETED" for voice in data["voices"])
    mine = next(voice for voice in data["voices"] if voice["id"] == voice_id)
    assert re.fullmatch(r"- My Voice Clone \(COMPLETED\), Usage: \d+ times", _usage_lines([mine])[0])
    created = [voice["createdAt"] for voice in data["voices"]]
    assert created == sorted(created, reverse=True)  # sortBy=createdAt&sortOrder=desc
    assert data["pagination"]["page"] == 1 and data["pagination"]["limit"] == 20
    for key in ("totalPages", "hasNext", "hasPrev"):
        assert key in data["pagination"]


def test_get_voices_curl(base_url: str, api_key: str, voice_id: str) -> None:
    """Get Voices List "cURL": GET "/api/v1/voices?page=1&limit=20&status=COMPLETED"."""
    response = requests.get(
        f"{base_url}/api/v1/voices?page=1&limit=20&status=COMPLETED",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and voice_id in {voice["id"] for voice in body["voices"]}
    row = next(voice for voice in body["voices"] if voice["id"] == voice_id)
    for field in (
        "id",
        "title",
        "description",
        "coverImage",
        "audioUrl",
        "duration",
        "status",
        "type",
        "isPublic",
        "popularity",
        "tags",
        "usageCount",
        "createdAt",
        "updatedAt",
    ):
        assert field in row, field
    assert row["type"] == "USER" and row["isPublic"] is False


def test_get_voices_python(base_url: str, api_key: str, voice_id: str) -> None:
    """Get Voices List "Python": get_voices(page=1, limit=20, status="COMPLETED") with
    params={"page": page, "limit": limit, "status": status}; raise_for_status(); prints
    result['pagination']['total'] and each voice's title, status and usageCount."""
    params: dict[str, Any] = {"page": 1, "limit": 20}
    params["status"] = "COMPLETED"
    response = requests.get(
        f"{base_url}/api/v1/voices",
        headers={"Authorization": f"Bearer {api_key}"},
        params=params,
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    result = response.json()
    assert f"Total voices: {result['pagination']['total']}" != "Total voices: 0"
    lines = _usage_lines(result["voices"])
    assert any(re.fullmatch(r"- My Voice Clone \(COMPLETED\), Usage: \d+ times", line) for line in lines)


# --- Text-to-Speech API -------------------------------------------------------------------------


def test_tts_javascript_fetch(base_url: str, api_key: str, voice_id: str) -> None:
    """Text-to-Speech "JavaScript (Fetch)": POST /api/v1/tts {text: 'Hello, this is a test speech.',
    voiceId, format: 'mp3'}; logs data.speechId, data.creditsUsed, data.speech.status // PROCESSING."""
    response = generate_speech(base_url, api_key, voice_id)
    data = response.json()
    assert _ok(response), data
    assert data["success"] is True and str(data["speechId"]).strip()
    assert data["creditsUsed"] == 29  # 1 credit per UTF-8 byte
    assert data["speech"]["status"] == "PROCESSING"
    assert data["speech"]["id"] == data["speechId"]
    assert (data["speech"]["text"], data["speech"]["format"], data["speech"]["creditsUsed"]) == (
        SEED_TEXT,
        "mp3",
        29,
    )
    assert data["speech"]["createdAt"]


def test_tts_curl(base_url: str, api_key: str, voice_id: str) -> None:
    """Text-to-Speech "cURL": -H "Content-Type: application/json" -d '{"text": "Hello, this is a
    test speech.", "voiceId": "clxxxx", "format": "mp3"}'."""
    body = json.dumps({"text": SEED_TEXT, "voiceId": voice_id, "format": "mp3"})
    response = requests.post(
        f"{base_url}/api/v1/tts", headers=_json_headers(api_key), data=body, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    assert response.json()["creditsUsed"] == 29 and response.json()["speech"]["status"] == "PROCESSING"


def test_tts_python(base_url: str, api_key: str, voice_id: str) -> None:
    """Text-to-Speech "Python": generate_speech() - requests.post(url, headers=headers, json=data);
    raise_for_status(); prints result['speechId'], result['creditsUsed'], result['speech']['status']."""
    response = generate_speech(base_url, api_key, voice_id)
    response.raise_for_status()
    result = response.json()
    printed = [
        f"Speech ID: {result['speechId']}",
        f"Credits used: {result['creditsUsed']}",
        f"Status: {result['speech']['status']}",
    ]
    assert printed[1:] == ["Credits used: 29", "Status: PROCESSING"]


def test_tts_error_invalid_voice(base_url: str, api_key: str) -> None:
    """Text-to-Speech "Error Responses - Invalid Voice": 404 {"code": "NOT_FOUND",
    "error": "Voice not found or not available"} for a voice id that does not exist."""
    response = requests.post(
        f"{base_url}/api/v1/tts",
        headers=_json_headers(api_key),
        json={"text": SEED_TEXT, "voiceId": "clxxxx", "format": "mp3"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 404, response.text
    assert response.json() == {"code": "NOT_FOUND", "error": "Voice not found or not available"}


@pytest.mark.parametrize("status", ["pending", "processing", "failed"])
def test_tts_error_voice_not_available(live: LiveApp, base_url: str, status: str) -> None:
    """Text-to-Speech "Error Responses - Invalid Voice" for a voice that exists but is not ready
    (still cloning, or failed): API.md - NOT_FOUND 404 "Voice not found or not available";
    nothing is charged."""
    from app.core.db import session_scope
    from app.voices.models import Voice

    account = live.make_user(credits=1000)
    with session_scope(live.settings) as session:
        voice = Voice(owner_id=account.user_id, kind="custom", name="Not ready", status=status)
        session.add(voice)
        session.flush()
        not_ready = voice.voice_id
    response = requests.post(
        f"{base_url}/api/v1/tts",
        headers=_json_headers(account.key),
        json={"text": SEED_TEXT, "voiceId": not_ready, "format": "mp3"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 404, response.text
    assert response.json() == {"code": "NOT_FOUND", "error": "Voice not found or not available"}
    assert live.balance(account) == (1000, 0)


def test_tts_error_text_too_long(base_url: str, api_key: str, voice_id: str) -> None:
    """Text-to-Speech "Error Responses - Text Too Long": 400 {"code": "INVALID_PARAMETERS",
    "error": "Text exceeds maximum length of 5000 bytes"}."""
    response = requests.post(
        f"{base_url}/api/v1/tts",
        headers=_json_headers(api_key),
        json={"text": "a" * 5001, "voiceId": voice_id, "format": "mp3"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "code": "INVALID_PARAMETERS",
        "error": "Text exceeds maximum length of 5000 bytes",
    }


def test_tts_error_insufficient_credits(live: LiveApp, base_url: str) -> None:
    """Text-to-Speech "Error Responses - Insufficient Credits": {"error": "Insufficient credits",
    "code": "USAGE_LIMIT_EXCEEDED", "credits": 10, "needCredits": 29}, with a public system voice
    ("voiceId: user's cloned voice or public system voice")."""
    poor = live.make_user(credits=10)
    listed = requests.get(
        f"{base_url}/api/v1/voices", params={"type": "SYSTEM"}, headers=_auth(poor.key), timeout=TIMEOUT
    )
    assert listed.status_code == 200, listed.text
    system = listed.json()["voices"][0]
    assert system["type"] == "SYSTEM"
    response = requests.post(
        f"{base_url}/api/v1/tts",
        headers=_json_headers(poor.key),
        json={"text": SEED_TEXT, "voiceId": system["id"], "format": "mp3"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 429, response.text
    data = response.json()
    assert data["code"] == "USAGE_LIMIT_EXCEEDED" and isinstance(data["error"], str)
    assert (data["credits"], data["needCredits"]) == (10, 29)
    assert live.balance(poor) == (10, 0)


# --- Get Speech Status API ----------------------------------------------------------------------


def _check_completed_speech(speech: dict[str, Any], voice_id: str) -> None:
    assert speech["status"] == "COMPLETED"
    assert speech["audioUrl"] and speech["duration"] > 0.5
    assert (speech["text"], speech["format"], speech["creditsUsed"]) == (SEED_TEXT, "mp3", 29)
    assert speech["createdAt"] and speech["updatedAt"]
    assert speech["voice"]["id"] == voice_id and speech["voice"]["type"] == "USER"
    assert speech["voice"]["title"] == "My Voice Clone" and "coverImage" in speech["voice"]
    audio = requests.get(speech["audioUrl"], timeout=TIMEOUT)
    assert audio.status_code == 200
    decoded = decode_audio(audio.content, max_seconds=600, max_sample_rate=192_000).duration
    assert decoded == pytest.approx(speech["duration"], rel=0.1, abs=0.2)


def test_speech_status_javascript_fetch(base_url: str, api_key: str, speech_id: str, voice_id: str) -> None:
    """Get Speech Status "JavaScript (Fetch)": checkSpeechStatus(speechId) - logs data.speech.status
    and, when 'COMPLETED', data.speech.audioUrl and data.speech.duration."""
    response = requests.get(
        f"{base_url}/api/v1/tts/{speech_id}", headers={"Authorization": f"Bearer {api_key}"}, timeout=TIMEOUT
    )
    data = response.json()
    assert _ok(response), data
    assert data["success"] is True and data["speech"]["id"] == speech_id
    _check_completed_speech(data["speech"], voice_id)


def test_speech_status_curl(base_url: str, api_key: str, speech_id: str) -> None:
    """Get Speech Status "cURL": curl -X GET .../api/v1/tts/clxxxx -H "Authorization: Bearer ..."."""
    response = requests.get(f"{base_url}/api/v1/tts/{speech_id}", headers=_auth(api_key), timeout=TIMEOUT)
    assert response.status_code == 200 and response.json()["speech"]["status"] == "COMPLETED", response.text


def test_speech_status_python(base_url: str, api_key: str, speech_id: str, voice_id: str) -> None:
    """Get Speech Status "Python": check_speech_status(speech_id) - raise_for_status(); prints
    result['speech']['status'] and, when COMPLETED, audioUrl and duration."""
    response = requests.get(
        f"{base_url}/api/v1/tts/{speech_id}", headers={"Authorization": f"Bearer {api_key}"}, timeout=TIMEOUT
    )
    response.raise_for_status()
    result = response.json()
    printed = [f"Status: {result['speech']['status']}"]
    if result["speech"]["status"] == "COMPLETED":
        printed += [f"Audio URL: {result['speech']['audioUrl']}", f"Duration: {result['speech']['duration']}"]
    assert printed[0] == "Status: COMPLETED" and printed[1].startswith("Audio URL: http")
    assert float(printed[2].removeprefix("Duration: ")) > 0.5


def test_speech_status_error_speech_not_found(live: LiveApp, base_url: str, speech_id: str) -> None:
    """Get Speech Status "Error Responses - Speech Not Found": 404 {"code": "NOT_FOUND",
    "error": "Speech not found or access denied"} - for a missing id and for someone else's."""
    stranger = live.make_user(credits=0)
    for key, ref in ((stranger.key, "clxxxx"), (stranger.key, speech_id)):
        response = requests.get(f"{base_url}/api/v1/tts/{ref}", headers=_auth(key), timeout=TIMEOUT)
        assert response.status_code == 404, response.text
        assert response.json() == {"code": "NOT_FOUND", "error": "Speech not found or access denied"}


# --- Get Credits Balance API --------------------------------------------------------------------


def test_credits_javascript_fetch(live: LiveApp, base_url: str) -> None:
    """Get Credits Balance "JavaScript (Fetch)": getCreditsBalance() - logs data.credits,
    data.breakdown.regular, data.breakdown.permanent and data.breakdown.resetAt."""
    account = live.make_user(credits=5000)
    response = requests.get(
        f"{base_url}/api/v1/credits", headers={"Authorization": f"Bearer {account.key}"}, timeout=TIMEOUT
    )
    data = response.json()
    assert _ok(response), data
    assert data["success"] is True and data["credits"] == 5000
    assert data["breakdown"]["regular"] + data["breakdown"]["permanent"] == data["credits"]
    assert "resetAt" in data["breakdown"]
    _assert_rate_limit_headers(response)


def test_credits_curl(live: LiveApp, base_url: str) -> None:
    """Get Credits Balance "cURL": curl -X GET .../api/v1/credits -H "Authorization: Bearer ..."."""
    account = live.make_user(credits=123)
    response = requests.get(f"{base_url}/api/v1/credits", headers=_auth(account.key), timeout=TIMEOUT)
    assert response.status_code == 200 and response.json()["credits"] == 123, response.text


def test_credits_python(live: LiveApp, base_url: str) -> None:
    """Get Credits Balance "Python": get_credits_balance() - raise_for_status(); prints
    result['credits'], result['breakdown']['regular'] and result['breakdown']['permanent']."""
    account = live.make_user(credits=2000)
    response = requests.get(
        f"{base_url}/api/v1/credits", headers={"Authorization": f"Bearer {account.key}"}, timeout=TIMEOUT
    )
    response.raise_for_status()
    result = response.json()
    printed = [
        f"Total credits: {result['credits']}",
        f"Regular credits: {result['breakdown']['regular']}",
        f"Permanent credits: {result['breakdown']['permanent']}",
    ]
    assert printed[0] == "Total credits: 2000"
    regular = int(printed[1].removeprefix("Regular credits: "))
    permanent = int(printed[2].removeprefix("Permanent credits: "))
    assert regular + permanent == 2000


# --- Error Responses ----------------------------------------------------------------------------


def test_error_unauthorized(base_url: str) -> None:
    """ "Error Responses - Unauthorized": 401 {"code": "UNAUTHORIZED", "error": ...} for a missing or
    invalid API key; every error is {"code": "ERROR_CODE", "error": "Error message"}."""
    for headers in ({}, {"Authorization": "Bearer YOUR_API_KEY"}):
        for method, path in (("GET", "/api/v1/credits"), ("GET", "/api/v1/voices"), ("POST", "/api/v1/tts")):
            response = requests.request(
                method, f"{base_url}{path}", headers=headers, json={}, timeout=TIMEOUT
            )
            assert response.status_code == 401, (path, response.text)
            body = response.json()
            assert body["code"] == "UNAUTHORIZED" and isinstance(body["error"], str), body
            _assert_rate_limit_headers(response)


def test_error_invalid_parameters(base_url: str, api_key: str) -> None:
    """ "Error Responses - Invalid Parameters": 400 INVALID_PARAMETERS, e.g. a list query out of range."""
    response = requests.get(
        f"{base_url}/api/v1/voices", params={"page": 0}, headers=_auth(api_key), timeout=TIMEOUT
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_PARAMETERS" and isinstance(response.json()["error"], str)


# --- Best Practices -----------------------------------------------------------------------------


def test_best_practice_check_credits_before_api_calls(
    best_practice: BestPractice, live: LiveApp, base_url: str, voice_mp3: bytes
) -> None:
    """Best Practices "1. Check Credits Before API Calls": checkCreditsAndCloneVoice(audioFile) -
    fetch('/api/user/credits') (API.md: answers as /api/v1/credits), `const { credits }`, clone only
    when credits >= 1000; the clone costs 1000 credits (fixed)."""
    assert best_practice.balance_status == 200
    assert best_practice.credits_before == 1500
    clone = best_practice.clone
    assert clone is not None and clone.status_code == 200, clone.text if clone is not None else None
    voice_id = clone.json()["voiceId"]
    key = best_practice.account.key

    def credits() -> int:
        response = requests.get(f"{base_url}/api/user/credits", headers=_auth(key), timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return int(response.json()["credits"])

    assert credits() == 500  # 1000 taken by the clone at once
    settled = _wait_voice_settled(base_url, key, voice_id)
    assert settled["status"] == "COMPLETED", settled
    assert credits() == 500 and live.balance(best_practice.account) == (500, 0)

    balance, second = check_credits_and_clone_voice(base_url, key, voice_mp3)
    assert second is None  # 'Insufficient credits. Need 1000, have', 500: nothing was sent
    assert balance.json()["credits"] == 500


def test_best_practice_calculate_tts_credits_in_advance(base_url: str, api_key: str, voice_id: str) -> None:
    """Best Practices "2. Calculate TTS Credits in Advance": calculateTTSCredits(text) =
    new TextEncoder().encode(text).length; generateSpeechSafely(text, voiceId) posts {text, voiceId}."""
    text = "Our naïve café charges 5 € — a fair price."

    def calculate_tts_credits(value: str) -> int:
        return len(value.encode("utf-8"))

    required = calculate_tts_credits(text)
    assert required == len(text) + 1 + 1 + 2 + 2  # ï, é: 2 bytes; €, —: 3 bytes
    response = requests.post(
        f"{base_url}/api/v1/tts",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        data=json.dumps({"text": text, "voiceId": voice_id}),
        timeout=TIMEOUT,
    )
    result = response.json()
    assert response.status_code == 200, result
    assert result["creditsUsed"] == required and result["speech"]["creditsUsed"] == required
    assert result["speech"]["format"] == "mp3"  # the default


def generate_and_wait_for_speech(base_url: str, key: str, text: str, voice_id: str) -> dict[str, Any]:
    """Best practice 3, ported. The seed gives up after 30 polls 3 s apart; here the bound is
    the suite's generous job wait (a bound on a hang, not a timing) and the poll is 1 s."""
    create = requests.post(
        f"{base_url}/api/v1/tts",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        data=json.dumps({"text": text, "voiceId": voice_id}),
        timeout=TIMEOUT,
    )
    speech_id = create.json()["speechId"]

    def poll() -> dict[str, Any]:
        status = requests.get(
            f"{base_url}/api/v1/tts/{speech_id}", headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT
        )
        return dict(status.json())

    data = wait_until(poll, lambda d: d["speech"]["status"] in ("COMPLETED", "FAILED"), interval=1.0)
    if data["speech"]["status"] == "FAILED":
        raise AssertionError("Speech generation failed")
    return dict(data["speech"])  # 'Audio ready:', data.speech.audioUrl


def test_best_practice_handle_asynchronous_tts_processing(base_url: str, api_key: str, voice_id: str) -> None:
    """Best Practices "3. Handle Asynchronous TTS Processing": generateAndWaitForSpeech(text, voiceId)
    - create, then poll /api/v1/tts/{speechId} until 'COMPLETED' (returns data.speech) or 'FAILED'."""
    speech = generate_and_wait_for_speech(base_url, api_key, "Welcome to the typical usage flow.", voice_id)
    assert speech["status"] == "COMPLETED" and speech["audioUrl"]
    audio = requests.get(speech["audioUrl"], timeout=TIMEOUT)
    assert audio.status_code == 200
    assert decode_audio(audio.content, max_seconds=600, max_sample_rate=192_000).duration > 0.5


def make_request_with_retry(
    method: str,
    url: str,
    options: dict[str, Any],
    max_retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> requests.Response:
    """Best practice 4, ported: on 429 wait until X-RateLimit-Reset (Unix seconds) or back off."""
    for i in range(max_retries):
        response = requests.request(method, url, timeout=TIMEOUT, **options)
        if response.status_code == 429:
            reset_time = response.headers.get("X-RateLimit-Reset")
            wait_ms = (
                max(1000, int(reset_time) * 1000 - int(time.time() * 1000)) if reset_time else 1000 * 2**i
            )
            sleep(wait_ms / 1000)
            continue
        return response
    raise AssertionError("Max retries exceeded")


def _limiter(live: LiveApp) -> Any:
    """The live app's rate limiter (the one PlatformMiddleware was built with)."""
    for middleware in live.client.app.user_middleware:  # type: ignore[attr-defined]
        limiter = middleware.kwargs.get("limiter")
        if limiter is not None:
            return limiter
    raise AssertionError("no rate limiter found on the app")


def test_best_practice_handle_rate_limits(
    live: LiveApp, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Best Practices "4. Handle Rate Limits": makeRequestWithRetry(url, options, maxRetries = 3) -
    on 429 read X-RateLimit-Reset (Unix seconds), wait `parseInt(resetTime) * 1000 - Date.now()`
    ms, retry. 429 RATE_LIMITED is in the seed's error codes; the limit here is lowered to 1 per minute."""
    account = live.make_user(credits=100)
    url, options = f"{base_url}/api/v1/credits", {"headers": {"Authorization": f"Bearer {account.key}"}}
    first = make_request_with_retry("GET", url, options)
    assert first.status_code == 200 and first.json()["credits"] == 100
    _assert_rate_limit_headers(first)

    limiter = _limiter(live)
    monkeypatch.setattr(limiter, "limit", 1)
    for _ in range(5):
        limited = requests.get(url, timeout=TIMEOUT, **options)
        if limited.status_code == 429:
            break
    assert limited.status_code == 429, limited.text
    assert limited.json()["code"] == "RATE_LIMITED" and isinstance(limited.json()["error"], str)
    _assert_rate_limit_headers(limited)
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    reset = int(limited.headers["X-RateLimit-Reset"])
    assert time.time() - 1 <= reset <= time.time() + 3600  # Unix seconds, as the snippet reads it
    assert int(limited.headers["Retry-After"]) >= 1

    monkeypatch.setattr(limiter, "limit", 0)  # the next request is surely over the limit
    waits: list[float] = []

    def wait_out(seconds: float) -> None:  # the window "passes": the limit is restored
        waits.append(seconds)
        monkeypatch.setattr(limiter, "limit", 100_000)

    retried = make_request_with_retry("GET", url, options, sleep=wait_out)
    assert retried.status_code == 200 and retried.json()["credits"] == 100
    assert len(waits) == 1 and 1.0 <= waits[0] <= 3600


def test_typical_usage_flow(
    base_url: str, api_key: str, form_clone: requests.Response, voice_id: str
) -> None:
    """ "Typical Usage Flow": Clone Voice → Get List `/api/v1/voices?status=COMPLETED` → Select Voice
    (the voiceId from voice-clone) → Generate Speech `/api/v1/tts` → Query Status, poll until done."""
    cloned = form_clone.json()["voiceId"]
    listed = requests.get(
        f"{base_url}/api/v1/voices?status=COMPLETED", headers=_auth(api_key), timeout=TIMEOUT
    )
    assert listed.status_code == 200
    selected = next(voice["id"] for voice in listed.json()["voices"] if voice["id"] == cloned)
    assert selected == voice_id
    speech = generate_and_wait_for_speech(base_url, api_key, SEED_TEXT, selected)
    assert speech["status"] == "COMPLETED" and speech["creditsUsed"] == 29
    usage = next(v for v in _list_mine(base_url, api_key) if v["id"] == selected)["usageCount"]
    assert usage >= 1  # "Number of times this voice has been used for TTS"
