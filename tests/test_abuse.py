"""Hostile input gets a clear 4xx, memory stays bounded, nothing is stored or charged."""

from __future__ import annotations

import resource
import struct

import pytest

from tests.plugins.services import AppHarness, blob_files

V = "/api/v1/voice"


def _clone(h: AppHarness, headers: dict[str, str], data: bytes, name: str = "x.wav") -> tuple[int, str]:
    r = h.client.post(
        f"{V}/voice-profiles",
        headers=headers,
        data={"name": "abuse"},
        files={"file": (name, data, "audio/wav")},
    )
    body = r.json()
    return r.status_code, body["detail"] if isinstance(body.get("detail"), str) else str(body)


def _wav_header(data_bytes: int, rate: int = 16000) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def test_broken_and_lying_audio_files(embedded: AppHarness, speech_wav_bytes: bytes) -> None:
    account = embedded.make_user(credits=10_000)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000
    cases = {
        "truncated to its header": (speech_wav_bytes[:60], 400),
        "corrupt body": (b"RIFF" + b"\xff" * 4000, 415),
        "png named .wav": (png, 415),
        "header claims hours": (_wav_header(16000 * 2 * 3600 * 3) + b"\x00\x01" * 16000, 400),
        "mp3 sync then garbage": (b"\xff\xfb\x90\x00" + bytes(range(256)) * 20, 400),
    }
    for label, (data, status) in cases.items():
        code, message = _clone(embedded, account.headers, data)
        assert code in (status, 400, 415), (label, code, message)
        assert code < 500 and message, label
    assert blob_files(embedded.settings) == []
    assert embedded.client.get("/api/v1/credits", headers=account.headers).json()["credits"] == 10_000


@pytest.mark.slow
def test_an_hour_of_silence_is_refused_without_decoding_it_all(embedded: AppHarness) -> None:
    account = embedded.make_user()
    hour = _wav_header(8000 * 2 * 3600, rate=8000) + b"\x00" * (8000 * 2 * 3600)  # 57.6 MB of real data
    r = embedded.client.post(
        f"{V}/voice-profiles",
        headers=account.headers,
        data={"name": "x"},
        files={"file": ("hour.wav", hour, "audio/wav")},
    )
    assert r.status_code == 413  # over the 25 MiB upload limit before decoding starts
    code, message = _clone(embedded, account.headers, hour[: 20 * 1024 * 1024])  # ~21 minutes, under the cap
    assert code == 400 and "longer than" in message


def test_oversized_upload_is_refused_while_streaming(embedded: AppHarness) -> None:
    account = embedded.make_user()
    limit = embedded.settings.max_upload_bytes
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    big = _wav_header(limit + 1024) + b"\x00" * (limit + 1024)
    code, message = _clone(embedded, account.headers, big)
    assert code == 413 and "larger" in message.lower()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 300, f"peak memory grew {grown_mb:.0f} MB for a {limit // 2**20} MiB upload"
    assert blob_files(embedded.settings) == []


def test_ten_thousand_form_fields(embedded: AppHarness) -> None:
    account = embedded.make_user()
    fields = {f"f{n}": "x" for n in range(10_000)}
    r = embedded.client.post(
        f"{V}/voice-profiles",
        headers=account.headers,
        data=fields,
        files={"file": ("a.wav", b"RIFF", "audio/wav")},
    )
    assert r.status_code == 400, r.text
    r = embedded.client.post(f"{V}/voices/1/generate", headers=account.headers, data=fields)
    assert 400 <= r.status_code < 500, r.text


def test_deeply_nested_json(embedded: AppHarness) -> None:
    account = embedded.make_user()
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in (f"{V}/collections", f"{V}/voices/1/generate", "/v1/audio/speech", "/api/v1/tts"):
        r = embedded.client.post(
            path, headers={**account.headers, "Content-Type": "application/json"}, content=deep
        )
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])


@pytest.mark.parametrize(
    "text",
    [
        "مرحبا بالعالم. This line mixes right-to-left text.",
        "Emoji everywhere 🎉🎉🎉 and a family 👨‍👩‍👧 in one sentence.",
        "Combining marks: Z̷̢̛a̶l̸g̵o̴ text and cafe\u0301.",
        "Null byte \x00 in the middle of a sentence.",
        "\u202e\u202d\u200b\ufeff zero-width and bidi controls.",
    ],
)
def test_unicode_edge_cases_in_text(embedded: AppHarness, text: str) -> None:
    """Accepted (and charged by UTF-8 bytes) or refused with a clear 400 — never a 5xx."""
    from app.core.db import session_scope
    from app.voices.models import Voice

    account = embedded.make_user(credits=100_000)
    with session_scope(embedded.settings) as session:
        joe = session.query(Voice).filter(Voice.builtin_key == "joe").one().voice_id
    r = embedded.client.post(f"{V}/voices/{joe}/generate", headers=account.headers, json={"input_text": text})
    assert r.status_code in (202, 400), r.text
    if r.status_code == 202:
        assert r.json()["credits_reserved"] == len(text.encode("utf-8"))
