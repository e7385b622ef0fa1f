"""Seed 002 (voices API with a `{code, message, data}` envelope) run against a live Chorus.

The seed (../shared/seeds/002_d4f167b5de142210.txt) is an API reference, not code: four
operations, each with "Authorizations: Authorization string Required" and no scheme word. Each
test is what a client written from it sends: ``Authorization: <key>`` (no "Bearer"), the
documented query or multipart fields, and reads `code`, `message`, `data`. API.md wins where it
differs (e.g. sending both `file` and `voice_url` is accepted, the file wins).

`voice_url` is fetched SSRF-safely and loopback is refused by default, so this module runs its
own live server with 127.0.0.1 in `fetch_allow_hosts` and serves the remote audio on loopback.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests

from app.audio import encode_audio
from tests.plugins.services import Account
from tests.test_fetch import LocalServer, running_server
from tests.test_openai_fixtures import LiveApp, _live_app

TIMEOUT = 120  # seconds per HTTP request (a bound on a hang, not a timing)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """Overrides tests/seeds/conftest.py's `live`: the same server, allowed to fetch from loopback."""
    base = tmp_path_factory.getbasetemp()
    yield from _live_app(
        tmp_path_factory.mktemp("seed-002-data"), base / "openai-models", fetch_allow_hosts=["127.0.0.1"]
    )


@pytest.fixture(scope="module")
def remote() -> Iterator[LocalServer]:
    """Where the `voice_url` files live."""
    with running_server() as server:
        yield server


@pytest.fixture(scope="module")
def speech_mp3(speech_samples: tuple[np.ndarray, int]) -> bytes:
    samples, rate = speech_samples
    return encode_audio(samples, rate, "mp3")


def _auth(key: str) -> dict[str, str]:
    """The seed's "Authorization string": the key itself, no scheme."""
    return {"Authorization": key}


def _success(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0, body  # "Status code (0 = success)"
    assert body["message"] == "success"
    return body["data"]


def _error(response: requests.Response, status: int) -> dict[str, Any]:
    """API.md: errors use a non-zero `code` with the matching HTTP status."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == status and body["code"] != 0, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


@pytest.fixture(scope="module")
def cloned(base_url: str, api_key: str, speech_wav_bytes: bytes) -> dict[str, Any]:
    """ "Clone a voice" by upload, with every documented field: file, display_name, denoise, language."""
    response = requests.post(
        f"{base_url}/voices",
        headers=_auth(api_key),
        files={"file": ("anna.wav", io.BytesIO(speech_wav_bytes), "audio/wav")},
        data={"display_name": "Anna Narrator", "denoise": "true", "language": "en"},
        timeout=TIMEOUT,
    )
    return dict(_success(response))


def test_authorization_without_bearer_is_accepted(live: LiveApp, base_url: str, account: Account) -> None:
    """ "Authorizations - Authorization string Required": the header is the key alone
    (API.md: `Authorization: <key>`, seed 002 shows no scheme); Bearer still works; a wrong key is
    401 in the envelope."""
    response = requests.get(f"{base_url}/voices", headers={"Authorization": account.key}, timeout=TIMEOUT)
    _success(response)
    bearer = requests.get(
        f"{base_url}/voices", headers={"Authorization": f"Bearer {account.key}"}, timeout=TIMEOUT
    )
    _success(bearer)
    for headers in ({}, {"Authorization": "not-a-key"}):
        denied = requests.get(f"{base_url}/voices", headers=headers, timeout=TIMEOUT)
        _error(denied, 401)


def test_clone_a_voice_by_upload(cloned: dict[str, Any], live: LiveApp, account: Account) -> None:
    """ "Clone a voice" (POST /voices): "Clone a voice by uploading an audio file" - multipart
    `file` (WAV), `display_name`, `denoise`, `language` ("e.g. "en", "zh"")."""
    assert str(cloned["voice_id"]).strip()
    assert cloned["display_name"] == "Anna Narrator"
    assert cloned["status"] == "pending"  # API.md: the voice (status pending)
    assert cloned["language"] == "en"
    total, held = live.balance(account)
    assert total - held == 200_000 - 1000  # API.md: an envelope clone costs the clone cost (1000)


def test_clone_a_voice_from_voice_url(
    base_url: str, api_key: str, remote: LocalServer, speech_mp3: bytes
) -> None:
    """ "Clone a voice" (POST /voices) with `voice_url` - "URL to a remote audio file (WAV, MP3,
    or M4A)" - and no file."""
    remote.routes["/samples/bob.mp3"] = (200, {"Content-Type": "audio/mpeg"}, speech_mp3)
    response = requests.post(
        f"{base_url}/voices",
        headers=_auth(api_key),
        data={"voice_url": remote.url("/samples/bob.mp3"), "display_name": "Bob", "language": "en"},
        timeout=TIMEOUT,
    )
    voice = _success(response)
    assert voice["display_name"] == "Bob" and voice["status"] == "pending"
    assert len(remote.hits("/samples/bob.mp3")) == 1


def test_clone_a_voice_with_file_and_voice_url_the_file_wins(
    base_url: str, api_key: str, remote: LocalServer, speech_wav_bytes: bytes, tone_wav_bytes: bytes
) -> None:
    """ "Clone a voice": "Provide either file (upload) or voice_url (remote URL), at least one is
    required." API.md: both is accepted and the file wins - the voice's sample is the upload."""
    remote.routes["/samples/other.wav"] = (200, {"Content-Type": "audio/wav"}, tone_wav_bytes)
    response = requests.post(
        f"{base_url}/voices",
        headers=_auth(api_key),
        files={"file": ("carol.wav", io.BytesIO(speech_wav_bytes), "audio/wav")},
        data={"voice_url": remote.url("/samples/other.wav"), "display_name": "Carol"},
        timeout=TIMEOUT,
    )
    voice = _success(response)
    assert voice["display_name"] == "Carol" and voice["status"] == "pending"

    # Which audio was kept: the clone family lists each voice's first sample as `audioUrl`.
    listed = requests.get(
        f"{base_url}/api/v1/voices",
        params={"type": "USER", "limit": 100},
        headers=_auth(api_key),
        timeout=TIMEOUT,
    )
    assert listed.status_code == 200, listed.text
    row = next(v for v in listed.json()["voices"] if v["id"] == voice["voice_id"])
    sample = requests.get(row["audioUrl"], timeout=TIMEOUT)
    assert sample.status_code == 200 and sample.content == speech_wav_bytes

    deleted = _success(
        requests.delete(f"{base_url}/voices/{voice['voice_id']}", headers=_auth(api_key), timeout=TIMEOUT)
    )
    assert deleted["voice_id"] == voice["voice_id"]


def test_clone_a_voice_needs_file_or_voice_url(base_url: str, api_key: str) -> None:
    """ "Clone a voice": "Either file or voice_url must be provided" - neither is an error."""
    response = requests.post(
        f"{base_url}/voices", headers=_auth(api_key), data={"display_name": "Nobody"}, timeout=TIMEOUT
    )
    _error(response, 400)


def test_clone_a_voice_only_wav_mp3_m4a(base_url: str, api_key: str) -> None:
    """ "Clone a voice": "Only WAV, MP3, and M4A formats are supported" - an OGG upload is refused
    with a non-zero code and the matching HTTP status."""
    ogg = b"OggS" + b"\0" * 400
    response = requests.post(
        f"{base_url}/voices",
        headers=_auth(api_key),
        files={"file": ("voice.ogg", io.BytesIO(ogg), "audio/ogg")},
        timeout=TIMEOUT,
    )
    assert 400 <= response.status_code < 500
    _error(response, response.status_code)


def test_get_user_voices(base_url: str, api_key: str, cloned: dict[str, Any], live: LiveApp) -> None:
    """ "Get user voices or system voices" (GET /voices): `voice_type` "custom for user-created
    voices (default)", `skip` page number from 0 (default 0), `limit` (default 10)."""
    data = _success(requests.get(f"{base_url}/voices", headers=_auth(api_key), timeout=TIMEOUT))
    assert (data["skip"], data["limit"]) == (0, 10)
    assert data["total"] >= 1 and cloned["voice_id"] in {v["voice_id"] for v in data["voices"]}
    assert all(v["voice_type"] == "custom" for v in data["voices"])
    explicit = _success(
        requests.get(
            f"{base_url}/voices", params={"voice_type": "custom"}, headers=_auth(api_key), timeout=TIMEOUT
        )
    )
    assert explicit["total"] == data["total"]

    stranger = live.make_user(credits=0)
    theirs = _success(requests.get(f"{base_url}/voices", headers=_auth(stranger.key), timeout=TIMEOUT))
    assert cloned["voice_id"] not in {v["voice_id"] for v in theirs["voices"]}  # "user-created" = mine


def test_get_system_voices(base_url: str, api_key: str) -> None:
    """ "Get user voices or system voices": `voice_type` "built-in" for system voices."""
    data = _success(
        requests.get(
            f"{base_url}/voices", params={"voice_type": "built-in"}, headers=_auth(api_key), timeout=TIMEOUT
        )
    )
    assert data["total"] >= 1 and data["voices"]
    assert all(v["voice_type"] == "built-in" for v in data["voices"])
    assert len(data["voices"]) <= 10  # the default limit


def test_get_voices_keyword_and_pages(base_url: str, api_key: str, cloned: dict[str, Any]) -> None:
    """ "Get user voices or system voices": `keyword` "searches voice name, description, labels";
    `skip` "Page number (starts from 0)", `limit` "Maximum number of items to return per page"."""
    found = _success(
        requests.get(
            f"{base_url}/voices", params={"keyword": "narrator"}, headers=_auth(api_key), timeout=TIMEOUT
        )
    )
    assert [v["voice_id"] for v in found["voices"]] == [cloned["voice_id"]]
    none = _success(
        requests.get(
            f"{base_url}/voices",
            params={"keyword": "zzz-no-such-voice"},
            headers=_auth(api_key),
            timeout=TIMEOUT,
        )
    )
    assert none["total"] == 0 and none["voices"] == []

    everything = _success(
        requests.get(f"{base_url}/voices", params={"limit": 100}, headers=_auth(api_key), timeout=TIMEOUT)
    )
    assert everything["total"] >= 2
    first = _success(
        requests.get(
            f"{base_url}/voices", params={"skip": 0, "limit": 1}, headers=_auth(api_key), timeout=TIMEOUT
        )
    )
    second = _success(
        requests.get(
            f"{base_url}/voices", params={"skip": 1, "limit": 1}, headers=_auth(api_key), timeout=TIMEOUT
        )
    )
    assert (second["skip"], second["limit"]) == (1, 1)
    assert len(first["voices"]) == 1 and len(second["voices"]) == 1
    assert first["voices"][0]["voice_id"] != second["voices"][0]["voice_id"]  # page 1 is the next item
    assert first["total"] == second["total"] == everything["total"]


def test_get_voice_details(base_url: str, api_key: str, cloned: dict[str, Any]) -> None:
    """ "Get voice details" (GET /voices/{voice_id})."""
    voice = _success(
        requests.get(f"{base_url}/voices/{cloned['voice_id']}", headers=_auth(api_key), timeout=TIMEOUT)
    )
    assert voice["voice_id"] == cloned["voice_id"]
    assert voice["display_name"] == "Anna Narrator"
    assert voice["status"] in ("pending", "processing", "completed")
    missing = requests.get(f"{base_url}/voices/voice_does_not_exist", headers=_auth(api_key), timeout=TIMEOUT)
    _error(missing, 404)


def test_delete_a_voice_soft_delete(base_url: str, api_key: str, cloned: dict[str, Any]) -> None:
    """ "Delete a voice (soft delete)" (DELETE /voices/{voice_id}): "Soft delete a voice by setting
    delete_time"; afterwards it is gone from details and lists."""
    voice_id = cloned["voice_id"]
    data = _success(requests.delete(f"{base_url}/voices/{voice_id}", headers=_auth(api_key), timeout=TIMEOUT))
    assert data["voice_id"] == voice_id and data["delete_time"]
    _error(requests.get(f"{base_url}/voices/{voice_id}", headers=_auth(api_key), timeout=TIMEOUT), 404)
    listed = _success(
        requests.get(f"{base_url}/voices", params={"limit": 100}, headers=_auth(api_key), timeout=TIMEOUT)
    )
    assert voice_id not in {v["voice_id"] for v in listed["voices"]}
    _error(requests.delete(f"{base_url}/voices/{voice_id}", headers=_auth(api_key), timeout=TIMEOUT), 404)
