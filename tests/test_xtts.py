"""XTTS engine and XTTS cloning on a tiny random-weight XTTS (tests/xtts_tiny.py).

Needs coqui-tts (the `gpu` extra, part of the dev install). Without it the tests skip with
the reason, and fail under CI=true (a broken install must not look green).
"""

from __future__ import annotations

import importlib.util
import io
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from app.audio import DecodedAudio
from app.core.config import Settings
from app.core.errors import InvalidInput
from tests.plugins.waiting import wait_until
from tests.xtts_tiny import build_tiny_xtts

TWO_SENTENCES = "Hello there. This is the second sentence!"
THREE_SENTENCES = "One small test. Another one here? And the last one."


def _require_coqui() -> None:
    needed = ("TTS", "torchaudio", "torchcodec", "transformers")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        message = f"XTTS tests need the gpu extra (coqui-tts); missing: {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: `make install` installs it)", pytrace=False)
        pytest.skip(message)


def _decode(wav: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0, rate


@pytest.fixture(scope="session")
def xtts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_coqui()
    return build_tiny_xtts(tmp_path_factory.mktemp("xtts") / "tiny", max_audio_tokens=16)


@pytest.fixture(scope="session")
def xtts_engine(xtts_dir: Path):  # -> XTTSEngine
    from app.engines.tts.xtts import XTTSEngine

    return XTTSEngine(xtts_dir, device="cpu")


@pytest.fixture(scope="session")
def speech(speech_wav_bytes: bytes) -> tuple[np.ndarray, int]:
    return _decode(speech_wav_bytes)


@pytest.fixture(scope="session")
def xtts_latents(xtts_engine, speech):  # -> dict[str, torch.Tensor]
    samples, rate = speech
    return xtts_engine.compute_latents([samples], rate)


# --------------------------------------------------------------------------- engine


def test_missing_weights_directory_is_an_operator_error(tmp_path: Path) -> None:
    from app.engines.tts.xtts import XTTSEngine, XTTSUnavailable

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(XTTSUnavailable, match=r"model\.pth, vocab\.json"):
        XTTSEngine(tmp_path)


def test_engine_loads_tiny_weights_like_real_ones(xtts_engine, xtts_dir: Path) -> None:
    assert sorted(p.name for p in xtts_dir.iterdir()) == ["config.json", "model.pth", "vocab.json"]
    assert xtts_engine.sample_rate == 24_000
    assert xtts_engine.device == "cpu"
    assert xtts_engine.model_dim == 64
    assert "en" in xtts_engine.languages and "zh-cn" in xtts_engine.languages
    assert xtts_engine.resolve_language("en_US") == "en"
    assert xtts_engine.resolve_language("zh") == "zh-cn"
    assert xtts_engine.resolve_language(None) == "en"


def test_latents_from_speech_round_trip_through_bytes(xtts_engine, xtts_latents) -> None:
    import torch

    from app.engines.tts.xtts import latents_to_bytes

    gpt, spk = xtts_latents["gpt_cond_latent"], xtts_latents["speaker_embedding"]
    assert tuple(gpt.shape) == (1, 32, 64)  # perceiver resampler: 32 latents of the GPT width
    assert tuple(spk.shape) == (1, 512, 1)
    assert torch.isfinite(gpt).all() and torch.isfinite(spk).all()
    data = latents_to_bytes(xtts_latents)
    assert isinstance(data, bytes) and 0 < len(data) < 64_000
    back = xtts_engine.latents_from_bytes(data)
    assert torch.equal(back["gpt_cond_latent"], gpt)
    assert torch.equal(back["speaker_embedding"], spk)


def test_latents_differ_between_speakers(xtts_engine, xtts_latents, speech) -> None:
    import torch

    samples, rate = speech
    rng = np.random.default_rng(1)
    other = xtts_engine.compute_latents([(0.1 * rng.standard_normal(len(samples))).astype(np.float32)], rate)
    assert not torch.allclose(other["speaker_embedding"], xtts_latents["speaker_embedding"])


def test_foreign_or_mismatched_latents_are_refused(xtts_engine, xtts_latents) -> None:
    import torch

    from app.engines.tts.xtts import latents_from_bytes, latents_to_bytes

    with pytest.raises(ValueError, match="Not an XTTS latents artifact"):
        latents_from_bytes(b"not a torch file")
    buf = io.BytesIO()
    torch.save({"format": "something else"}, buf)
    with pytest.raises(ValueError, match="Not an XTTS latents artifact"):
        latents_from_bytes(buf.getvalue())
    wider = dict(xtts_latents, gpt_cond_latent=torch.zeros(1, 32, 1024))
    with pytest.raises(ValueError, match="different XTTS weights"):
        xtts_engine.latents_from_bytes(latents_to_bytes(wider))


def test_synthesis_gives_float32_audio_at_24k(xtts_engine, xtts_latents) -> None:
    audio = xtts_engine.synthesize(TWO_SENTENCES, xtts_latents, "en")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) > 0.1 * xtts_engine.sample_rate
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    assert np.abs(audio).max() > 0  # random weights: noise, but not silence


def test_stream_yields_one_chunk_per_sentence(xtts_engine, xtts_latents) -> None:
    chunks = list(xtts_engine.stream(THREE_SENTENCES, xtts_latents, language="en"))
    assert len(chunks) == 3
    assert all(c.dtype == np.float32 and len(c) > 0 for c in chunks)


def test_speed_is_applied_to_the_same_codes(xtts_engine, xtts_latents) -> None:
    import torch

    torch.manual_seed(7)
    normal = xtts_engine.synthesize("Speed test.", xtts_latents, "en", 1.0)
    torch.manual_seed(7)
    fast = xtts_engine.synthesize("Speed test.", xtts_latents, "en", 2.0)
    assert 0.4 < len(fast) / len(normal) < 0.6


def test_bad_requests_fail_before_synthesis(xtts_engine, xtts_latents) -> None:
    with pytest.raises(InvalidInput, match="language"):
        xtts_engine.stream("Hello.", xtts_latents, language="sv")
    with pytest.raises(InvalidInput, match="speed"):
        xtts_engine.stream("Hello.", xtts_latents, speed=9.0)
    with pytest.raises(InvalidInput, match="pitch"):
        xtts_engine.stream("Hello.", xtts_latents, pitch=30.0)
    with pytest.raises(InvalidInput, match="empty"):
        xtts_engine.stream(" ... ", xtts_latents)


# --------------------------------------------------------------------------- cloning


def test_clone_with_xtts_and_speak(xtts_dir: Path, speech, tmp_path: Path) -> None:
    from app.cloning.xtts import build_xtts_voice
    from app.engines.registry import reset as reset_engines
    from app.engines.tts.xtts import xtts_synthesizer as xtts_speaker

    samples, rate = speech
    settings = Settings(env="test", data_dir=tmp_path, clone_engine="xtts", xtts_model_dir=xtts_dir)
    decoded = [
        DecodedAudio(
            samples=samples, sample_rate=rate, duration=len(samples) / rate, container="wav", source_rate=rate
        )
    ]
    steps: list[int] = []
    data, meta = build_xtts_voice(decoded, settings, steps.append)
    assert steps == sorted(steps) and steps[-1] == 90
    assert meta["engine"] == "xtts" and meta["language"] == "en"
    assert meta["latents"]["bytes"] == len(data)
    assert meta["model"]["gpt_width"] == 64 and meta["model"]["sample_rate"] == 24_000
    assert "non-commercial" in meta["licence"]
    assert -1.0 <= meta["quality"]["similarity"] <= 1.0
    assert len(meta["embedding"]) == 256
    assert set(meta["timings"]) == {"prepare", "load", "latents", "embed", "score"}

    speaker = xtts_speaker(data, settings, name="my voice")
    assert speaker.sample_rate == 24_000
    chunks = list(speaker.stream(TWO_SENTENCES, speed=1.0, pitch=2.0, language=None))
    assert len(chunks) == 2 and all(c.dtype == np.float32 and len(c) > 0 for c in chunks)

    with pytest.raises(InvalidInput, match="cannot speak with the installed XTTS model"):
        xtts_speaker(b"garbage", settings, name="broken")
    reset_engines()


def test_an_xtts_clone_stopped_at_its_end_writes_nothing(xtts_dir: Path, speech, tmp_path: Path) -> None:
    """A voice deleted as its XTTS clone finishes: the job reports progress once more before it
    stores the latents (as the CPU path does), and a report is where a deleted voice's job
    stops, so nothing is written under the deleted voice."""
    from app.cloning.tasks import _run_xtts
    from app.jobs.tasks import JobContext
    from app.storage import get_store
    from tests.plugins.services import blob_files

    class VoiceDeleted(Exception):
        pass

    def report(pct: int) -> None:
        if pct > 90:  # the latents are computed and scored (build_xtts_voice ends at 90)
            raise VoiceDeleted

    samples, rate = speech
    settings = Settings(env="test", data_dir=tmp_path, clone_engine="xtts", xtts_model_dir=xtts_dir)
    ctx = JobContext(1, 1, 1, {}, 1, settings, report)
    decoded = [DecodedAudio(samples, rate, len(samples) / rate, "wav", rate)]
    with pytest.raises(VoiceDeleted):
        _run_xtts(ctx, get_store(settings), "deleted-voice", decoded, "en")
    assert blob_files(settings) == []


def test_clone_refuses_samples_without_speech(xtts_dir: Path, tmp_path: Path) -> None:
    from app.cloning.xtts import build_xtts_voice

    settings = Settings(env="test", data_dir=tmp_path, clone_engine="xtts", xtts_model_dir=xtts_dir)
    silence = DecodedAudio(
        samples=np.zeros(22_050 * 3, dtype=np.float32),
        sample_rate=22_050,
        duration=3.0,
        container="wav",
        source_rate=22_050,
    )
    with pytest.raises(InvalidInput, match="no speech"):
        build_xtts_voice([silence], settings, lambda _pct: None)


def test_xtts_without_a_model_directory_is_unavailable(tmp_path: Path) -> None:
    from app.engines.registry import get_xtts_engine as get_engine
    from app.engines.tts.xtts import XTTSUnavailable

    settings = Settings(env="test", data_dir=tmp_path, clone_engine="xtts")
    with pytest.raises(XTTSUnavailable, match="CHORUS_XTTS_MODEL_DIR"):
        get_engine(settings)


@pytest.mark.slow
def test_xtts_clone_and_speech_through_http(xtts_dir: Path, tmp_path: Path, speech_wav_bytes: bytes) -> None:
    """CHORUS_CLONE_ENGINE=xtts end to end: upload → clone job stores latents → a TTS job speaks."""

    from tests.plugins.services import _build_harness, make_settings

    settings = make_settings(
        tmp_path / "data", clone_engine="xtts", xtts_model_dir=xtts_dir, warm_models=False
    )
    for harness in _build_harness(settings):
        account = harness.make_user(credits=10_000)
        c, h = harness.client, account.headers
        r = c.post(
            "/api/v1/voice/voice-profiles",
            headers=h,
            data={"name": "xtts voice", "language": "en"},
            files={"file": ("a.wav", speech_wav_bytes, "audio/wav")},
        )
        assert r.status_code == 200, r.text
        voice_id = r.json()["voice_id"]
        voice_url = f"/api/v1/voice/voices/{voice_id}/status"
        status = wait_until(
            lambda c=c, h=h, url=voice_url: c.get(url, headers=h).json(),
            lambda body: body["status"] in ("COMPLETED", "FAILED"),
            interval=0.3,
        )
        assert status["status"] == "COMPLETED", status
        blobs = [p.name for p in (settings.data_dir / "blobs").rglob("*") if p.is_file()]
        assert "xtts_latents.pt" in blobs
        job = c.post(
            f"/api/v1/voice/voices/{voice_id}/generate",
            headers=h,
            json={"input_text": "Random weights still make sound.", "audio_format": "wav"},
        )
        assert job.status_code == 202, job.text
        job_url = f"/api/v1/voice/tts-jobs/{job.json()['job_id']}/status"
        js = wait_until(
            lambda c=c, h=h, url=job_url: c.get(url, headers=h).json(),
            lambda body: body["status"] in ("completed", "failed"),
            interval=0.3,
        )
        assert js["status"] == "completed", js
        assert js["duration"] > 0
