"""WORLD (pyworld) analysis, modification and resynthesis of speech.

Everything that changes a voice on the CPU goes through here: pitch shift, time stretch,
and the timbre profiles of the built-in and cloned voices. Harvest is the F0 tracker:
dio is ~3x faster but makes octave errors on Piper's joe voice (measured), which come out
as audible squeaks after resynthesis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyworld as pw

FRAME_PERIOD_MS = 5.0
F0_FLOOR = 60.0
F0_CEIL = 600.0
LN_PER_DB = np.log(10.0) / 10.0  # dB -> natural-log power


@dataclass
class WorldFeatures:
    """One utterance's WORLD parameters: F0 (Hz, 0 = unvoiced), spectral envelope, aperiodicity."""

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    sample_rate: int
    n_samples: int

    @property
    def n_bins(self) -> int:
        return int(self.sp.shape[1])

    def bin_freqs(self) -> np.ndarray:
        return np.linspace(0.0, self.sample_rate / 2.0, self.n_bins)


def analyze(
    x: np.ndarray, sample_rate: int, *, f0_floor: float = F0_FLOOR, f0_ceil: float = F0_CEIL
) -> WorldFeatures:
    """Harvest F0 + CheapTrick envelope + D4C aperiodicity."""
    xd = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pw.harvest(xd, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=FRAME_PERIOD_MS)
    sp = pw.cheaptrick(xd, f0, t, sample_rate)
    ap = pw.d4c(xd, f0, t, sample_rate)
    return WorldFeatures(f0=f0, sp=sp, ap=ap, sample_rate=sample_rate, n_samples=len(xd))


def f0_track(
    x: np.ndarray, sample_rate: int, *, f0_floor: float = F0_FLOOR, f0_ceil: float = F0_CEIL
) -> np.ndarray:
    """Harvest F0 only (Hz per 5 ms frame, 0 where unvoiced): for measurements and stats."""
    f0, _ = pw.harvest(
        np.ascontiguousarray(x, dtype=np.float64),
        sample_rate,
        f0_floor=f0_floor,
        f0_ceil=f0_ceil,
        frame_period=FRAME_PERIOD_MS,
    )
    return f0


def synthesize(feats: WorldFeatures, n_samples: int | None = None) -> np.ndarray:
    """Resynthesize; the result is trimmed/padded to n_samples (default: the analysed length)."""
    y = pw.synthesize(
        np.ascontiguousarray(feats.f0),
        np.ascontiguousarray(feats.sp),
        np.ascontiguousarray(feats.ap),
        feats.sample_rate,
        FRAME_PERIOD_MS,
    )
    n = feats.n_samples if n_samples is None else n_samples
    if len(y) >= n:
        return y[:n]
    return np.pad(y, (0, n - len(y)))


def warp_source_positions(
    n_bins: int, sample_rate: int, alpha: float, alpha_high: float | None = None, split_hz: float = 1500.0
) -> np.ndarray:
    """For each output bin, the (fractional) input bin it takes its value from.

    new(f) = old(f / alpha) below alpha * split_hz; above it the slope is 1 / alpha_high,
    continuous at the split. alpha > 1 raises formants; a different alpha_high changes
    the upper formants (F2/F3 and above, "vocal-tract shape") independently of F1.
    """
    nyq = sample_rate / 2.0
    f = np.linspace(0.0, nyq, n_bins)
    if alpha_high is None or alpha_high == alpha:
        src = f / alpha
    else:
        knee = alpha * split_hz
        src = np.where(f <= knee, f / alpha, split_hz + (f - knee) / alpha_high)
    return np.clip(src / nyq * (n_bins - 1), 0.0, n_bins - 1.0)


def warp_frequency(m: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Resample the last axis of m at fractional bin positions (see warp_source_positions)."""
    n = m.shape[-1]
    i0 = np.minimum(np.floor(positions).astype(np.int64), n - 2)
    w = positions - i0
    return m[..., i0] * (1.0 - w) + m[..., i0 + 1] * w


def stretch_time(feats: WorldFeatures, rate: float) -> WorldFeatures:
    """Play `rate` times faster (rate 2 halves the duration), pitch unchanged.

    Frames are resampled along time: F0 by nearest frame (keeps voiced/unvoiced edges sharp),
    envelope and aperiodicity linearly.
    """
    n = len(feats.f0)
    m = max(2, int(round(n / rate)))
    pos = np.linspace(0.0, n - 1.0, m)
    i0 = np.minimum(np.floor(pos).astype(np.int64), n - 2) if n > 1 else np.zeros(m, np.int64)
    w = (pos - i0)[:, None]
    i1 = np.minimum(i0 + 1, n - 1)
    sp = feats.sp[i0] * (1.0 - w) + feats.sp[i1] * w
    ap = feats.ap[i0] * (1.0 - w) + feats.ap[i1] * w
    f0 = feats.f0[np.rint(pos).astype(np.int64)]
    return WorldFeatures(
        f0=f0, sp=sp, ap=ap, sample_rate=feats.sample_rate, n_samples=int(round(feats.n_samples / rate))
    )


def smooth_f0_edges(f0: np.ndarray) -> np.ndarray:
    """Drop isolated 1-2 frame voiced blips (tracker noise) that turn into chirps when shifted."""
    v = f0 > 0
    out = f0.copy()
    n = len(f0)
    i = 0
    while i < n:
        if v[i]:
            j = i
            while j < n and v[j]:
                j += 1
            if j - i <= 2:
                out[i:j] = 0.0
            i = j
        else:
            i += 1
    return out
