"""POST /v1/audio/transcriptions and /translations: formats, streaming, credits, typed errors."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from app.audio import decode_audio
from tests.plugins.audio_samples import wav_bytes
from tests.test_openai_fixtures import LiveApp, audio_file, first_sentence_wav, live_app, sse_events

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from live_app(tmp_path_factory)


@pytest.fixture(scope="module")
def short_speech_wav(speech_sentences: Any) -> bytes:
    return first_sentence_wav(speech_sentences)


def _cost(data: bytes) -> int:
    seconds = decode_audio(data, target_rate=16_000, max_seconds=600, max_sample_rate=192_000).duration
    return math.ceil(seconds)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


# --- refusals before any decoding or charging ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fields", "status", "param", "fragment"),
    [
        pytest.param(PNG, {}, 415, "file", "PNG", id="png"),
        pytest.param(b"", {}, 400, "file", "empty", id="empty"),
        pytest.param(b"RIFF\x00\x00", {}, 415, "file", "not a supported audio format", id="riff-stub"),
        (None, {"response_format": "docx"}, 400, "response_format", "docx"),
        (None, {"timestamp_granularities[]": "char"}, 400, "timestamp_granularities", "char"),
        (None, {"timestamp_granularities": "sentence"}, 400, "timestamp_granularities", "sentence"),
        (None, {"temperature": "1.5"}, 400, "temperature", "between 0 and 1"),
        (None, {"temperature": "warm"}, 400, "temperature", "temperature"),
        (None, {"language": "xx-klingon"}, 400, "language", "Unsupported language"),
        (None, {"stream": "true", "response_format": "srt"}, 400, "stream", "stream"),
    ],
)
def test_transcription_refusals(
    live: LiveApp,
    short_speech_wav: bytes,
    data: bytes | None,
    fields: dict[str, str],
    status: int,
    param: str,
    fragment: str,
) -> None:
    account = live.make_user(credits=1000)
    response = live.client.post(
        "/v1/audio/transcriptions",
        files={"file": audio_file(short_speech_wav if data is None else data)},
        data={"model": "whisper-1", **fields},
        headers=account.headers,
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert fragment in error["message"]
    assert live.balance(account) == (1000, 0)
    assert live.jobs(account) == []


def test_transcription_missing_file_and_sdk_errors(live: LiveApp, short_speech_wav: bytes) -> None:
    account = live.make_user(credits=1)
    response = live.client.post(
        "/v1/audio/translations", data={"model": "whisper-1"}, headers=account.headers
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"

    client = live.sdk(account)
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.transcriptions.create(model="whisper-1", file=audio_file(b""))
    assert "The uploaded file is empty" in bad.value.message
    assert bad.value.body == {  # type: ignore[comparison-overlap]
        "message": "The uploaded file is empty",
        "type": "invalid_request_error",
        "param": "file",
        "code": None,
    }
    with pytest.raises(openai.APIStatusError) as unsupported:
        client.audio.transcriptions.create(model="whisper-1", file=audio_file(PNG, "image.png"))
    assert unsupported.value.status_code == 415
    with pytest.raises(openai.AuthenticationError):
        live.sdk(key="ap_wrong").audio.transcriptions.create(
            model="whisper-1", file=audio_file(short_speech_wav)
        )
    with pytest.raises(openai.RateLimitError) as quota:  # ≈ 2.6 s of audio costs 3 credits; 1 is left
        client.audio.translations.create(model="whisper-1", file=audio_file(short_speech_wav))
    assert quota.value.code == "insufficient_quota"
    assert live.balance(account) == (1, 0)
    assert live.jobs(account) == []


def test_upload_over_the_limit_is_413(live: LiveApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live.settings, "max_upload_bytes", 4096)
    account = live.make_user(credits=1000)
    response = live.client.post(
        "/v1/audio/transcriptions",
        files={"file": audio_file(b"RIFF" + bytes(8192))},
        data={"model": "whisper-1"},
        headers=account.headers,
    )
    assert response.status_code == 413
    assert response.json()["error"]["param"] == "file"
    assert "4 KiB" in response.json()["error"]["message"]
    assert live.jobs(account) == []


# --- Whisper ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sdk_transcription_json_charges_per_second(live: LiveApp, speech_wav_bytes: bytes) -> None:
    account = live.make_user(credits=1000)
    result = live.sdk(account).audio.transcriptions.create(
        model="whisper-1", file=audio_file(speech_wav_bytes)
    )
    assert {"quick", "brown", "fox", "stella", "station", "noon"} <= _words(result.text), result.text
    cost = _cost(speech_wav_bytes)
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == cost
    assert live.balance(account) == (1000 - cost, 0)
    [job] = live.jobs(account)
    assert (job.kind, job.status) == ("transcription", "completed")


@pytest.mark.slow
def test_sdk_verbose_json_segments_and_words(live: LiveApp, short_speech_wav: bytes) -> None:
    account = live.make_user(credits=1000)
    result = live.sdk(account, prefix="/api/v1").audio.transcriptions.create(
        model="whisper-1",
        file=audio_file(short_speech_wav),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
        temperature=0.0,
    )
    assert result.language == "english"
    assert 2.0 < result.duration < 4.0
    assert {"quick", "brown", "fox", "lazy", "dog"} <= _words(result.text), result.text
    assert result.segments and result.words
    segment = result.segments[0].model_dump()
    assert set(segment) == {
        "id",
        "seek",
        "start",
        "end",
        "text",
        "tokens",
        "temperature",
        "avg_logprob",
        "compression_ratio",
        "no_speech_prob",
    }
    assert segment["tokens"] and 0 <= segment["start"] < segment["end"] <= result.duration + 0.5
    words = [w.word.lower().strip(".,") for w in result.words]
    assert "fox" in words
    assert all(0 <= w.start <= w.end for w in result.words)


@pytest.mark.slow
def test_text_srt_vtt_and_plain_granularity_field(live: LiveApp, short_speech_wav: bytes) -> None:
    account = live.make_user(credits=1000)

    def post(fields: dict[str, Any]) -> Any:
        response = live.client.post(
            "/v1/audio/transcriptions",
            files={"file": audio_file(short_speech_wav, "clip.wav")},
            data={"model": "tiny.en", **fields},  # the faster model: these tests are about the formats
            headers=account.headers,
        )
        assert response.status_code == 200, response.text
        return response

    text = post({"response_format": "text"})
    assert text.headers["content-type"].startswith("text/plain")
    assert "fox" in text.text.lower()

    srt = post({"response_format": "srt"})
    assert re.match(r"1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n\S", srt.text)

    vtt = post({"response_format": "vtt"})
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert re.match(r"WEBVTT\n\n00:00:\d\d\.\d{3} --> 00:00:\d\d\.\d{3}\n\S", vtt.text)

    words_only = post({"response_format": "verbose_json", "timestamp_granularities": "word"}).json()
    assert words_only["words"] and "segments" not in words_only
    assert live.balance(account) == (1000 - 4 * _cost(short_speech_wav), 0)


@pytest.mark.slow
def test_sdk_streamed_transcription_events(live: LiveApp, speech_wav_bytes: bytes) -> None:
    account = live.make_user(credits=1000)
    stream = live.sdk(account).audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=audio_file(speech_wav_bytes), stream=True
    )
    events = list(stream)
    *deltas, done = events
    assert deltas and all(e.type == "transcript.text.delta" for e in deltas)
    assert done.type == "transcript.text.done"
    assert "".join(e.delta for e in deltas) == done.text
    assert {"quick", "fox", "station"} <= _words(done.text), done.text
    assert done.usage is not None and done.usage.input_tokens == _cost(speech_wav_bytes)
    assert live.balance(account) == (1000 - _cost(speech_wav_bytes), 0)


@pytest.mark.slow
def test_streamed_transcription_over_testclient(live: LiveApp, short_speech_wav: bytes) -> None:
    account = live.make_user(credits=1000)
    response = live.client.post(
        "/v1/audio/transcriptions",
        files={"file": audio_file(short_speech_wav)},
        data={"model": "tiny.en", "stream": "true"},
        headers=account.headers,
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    assert [e["type"] for e in events][-1] == "transcript.text.done"
    assert all(e["type"] == "transcript.text.delta" for e in events[:-1])


@pytest.mark.slow
def test_sdk_translation_is_english(live: LiveApp, short_speech_wav: bytes) -> None:
    account = live.make_user(credits=1000)
    client = live.sdk(account)
    verbose = client.audio.translations.create(
        model="whisper-1", file=audio_file(short_speech_wav), response_format="verbose_json"
    )
    assert {"quick", "brown", "fox"} <= _words(verbose.text), verbose.text
    assert verbose.language == "english" and verbose.segments
    assert live.balance(account) == (1000 - _cost(short_speech_wav), 0)
    [job] = live.jobs(account)
    assert (job.kind, job.status, job.params["engine"]) == ("translation", "completed", "base")


@pytest.mark.slow
def test_silence_is_not_charged(live: LiveApp, silence_wav_bytes: bytes) -> None:
    account = live.make_user(credits=1000)
    result = live.sdk(account).audio.transcriptions.create(
        model="tiny.en", file=audio_file(silence_wav_bytes)
    )
    assert result.text == ""
    assert live.balance(account) == (1000, 0)
    [job] = live.jobs(account)
    assert job.status == "completed"


@pytest.mark.slow
def test_noise_without_speech_writes_nothing_and_is_not_charged(live: LiveApp) -> None:
    """30 s of brown noise (a rumble): Whisper alone writes dots on it on some CPUs (the hosts of
    2026-12-01..03; nothing on an AMD EPYC of 2026-12-04); where Silero VAD hears no speech the
    server drops what Whisper wrote, so the answer is "" and nothing is charged either way."""
    walk = np.cumsum(np.random.default_rng(5).standard_normal(30 * 16_000))
    rumble = walk - np.convolve(walk, np.ones(400) / 400, "same")
    upload = wav_bytes(0.05 * rumble / np.abs(rumble).max(), 16_000)

    account = live.make_user(credits=1000)
    result = live.sdk(account).audio.transcriptions.create(
        model="whisper-1", file=audio_file(upload), language="en"
    )
    assert result.text == ""
    assert live.balance(account) == (1000, 0)


@pytest.mark.slow
def test_language_is_told_from_the_speech_not_a_silence_before_it(live: LiveApp) -> None:
    """35 s of silence, then Spanish: Whisper tells the language from the first 30 s, which would be
    the silence (it read this as English and translated it); the server asks it about the speech.
    The silence itself is not decoded: Whisper wrote "y y y" on it, which, carried as the prompt,
    stood for the Spanish too (after test_kokoro.py in the same process, on an AMD EPYC host)."""
    from app.engines.base import synthesize
    from app.engines.stt.whisper import resample_to_16k
    from app.engines.tts.kokoro import KokoroSynthesizer, get_kokoro_engine

    voice = KokoroSynthesizer("ef_dora", get_kokoro_engine(live.settings), (("ef_dora", 1.0),))
    text = "Buenos días. Hoy vamos a hablar del tiempo en la ciudad y de los planes para el fin de semana."
    spanish = resample_to_16k(synthesize(voice, text), voice.sample_rate)
    upload = wav_bytes(np.concatenate([np.zeros(35 * 16_000, dtype=np.float32), spanish]), 16_000)
    account = live.make_user(credits=1000)
    result = live.sdk(account).audio.transcriptions.create(
        model="whisper-1", file=audio_file(upload), response_format="verbose_json"
    )
    assert result.language == "spanish", result.text
    assert {"buenos", "ciudad", "semana"} <= _words(result.text), result.text
    assert result.segments and result.segments[0].start >= 34.0


LIBRISPEECH = Path(__file__).parent / "librispeech"


def _interposed_utterance() -> tuple[np.ndarray, tuple[float, float]]:
    """Three LibriSpeech readers, 0.5 s apart, the second 10 dB quieter (further from the microphone),
    under a -50 dBFS noise floor (16 kHz), and the span of the second in seconds. The first stops
    mid-sentence ("...we have seen how quietly") and the third goes on with it ("he took a resolve
    after this..."), so Whisper's window decoding, led by the text before, jumps over the second
    ("Chapter seventeen. When Wendy grew up..."): it did for each of four noise seeds tried."""
    from app.engines.stt.whisper import resample_to_16k

    names = ("M_1034-121119-0000", "M_1040-133433-0000", "F_1069-133699-0000")
    parts = [
        resample_to_16k(decoded.samples, decoded.sample_rate)
        for decoded in (
            decode_audio((LIBRISPEECH / f"{n}.flac").read_bytes(), max_seconds=60, max_sample_rate=48_000)
            for n in names
        )
    ]
    pause = np.zeros(int(0.5 * 16_000), dtype=np.float32)
    audio = np.concatenate([parts[0], pause, 0.3 * parts[1], pause, parts[2]])
    noise = 10 ** (-50 / 20) * np.random.default_rng(0).standard_normal(len(audio))
    second_starts = (len(parts[0]) + len(pause)) / 16_000
    return (audio + noise).astype(np.float32), (second_starts, second_starts + len(parts[1]) / 16_000)


@pytest.mark.slow
def test_an_utterance_whisper_jumps_over_is_transcribed(
    live: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whisper's own decoding drops the whole middle utterance of this clip (on some CPUs); the
    server notices a segment far too long for its words and decodes its span again, a piece
    between pauses at a time."""
    from app.engines import registry

    audio, (second_start, second_end) = _interposed_utterance()
    upload = wav_bytes(audio, 16_000)
    heard = decode_audio(upload, target_rate=16_000, max_seconds=600, max_sample_rate=192_000).samples
    plain = registry.get_stt("base", live.settings).transcribe(heard, language="en", redecode_skips=False)
    # Whether Whisper skips depends on the CPU's kernels (it did on the hosts of 2026-12-01..03, not
    # on an AMD EPYC of 2026-12-04). Where it does not, every long segment is taken for a skip, so
    # the decoding again by pieces still runs and must still give the whole text in order.
    if "wendy" in _words(plain.text):
        from app.engines.stt import whisper

        monkeypatch.setattr(whisper, "_looks_skipped", lambda s: s.end - s.start >= whisper.SKIP_MIN_SECONDS)

    account = live.make_user(credits=1000)
    result = live.sdk(account).audio.transcriptions.create(
        model="whisper-1",
        file=audio_file(upload),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    words = _words(result.text)
    assert {"quietly", "wendy", "boys", "counted", "resolve", "stackpole", "strongly"} <= words, result.text
    assert "seventeen" in words or "17" in result.text, result.text
    assert result.segments and result.words
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end <= result.duration + 0.5
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    word_starts = [w.start for w in result.words]
    assert word_starts == sorted(word_starts)
    [wendy, *_] = [w for w in result.words if "wendy" in w.word.lower()]
    assert second_start <= wendy.start <= second_end, (wendy, second_start, second_end)
    assert live.balance(account) == (1000 - _cost(upload), 0)
