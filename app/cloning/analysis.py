"""Speaker statistics and the timbre profile that moves one voice toward another.

A voice is summarised by what a WORLD timbre transform can change: log-F0 centre and
spread, the long-term average log spectral envelope (LTAS) and the median F2/F3 formant
frequencies. `make_profile` turns source (base voice) and target (speaker) statistics
into a `TimbreProfile`: F0 matching, a formant warp and a long-term EQ that corrects
what the warp leaves, expressed as (Hz, dB) points so it does not depend on sample rate.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyworld as pw
from scipy.linalg import LinAlgError, solve_toeplitz

from app.audio import resample
from app.engines.timbre import world
from app.engines.timbre.profile import TimbreProfile

LN_PER_DB = math.log(10.0) / 10.0  # dB -> natural-log power
LPC_RATE = 11_025
LPC_ORDER = 12
EQ_MAX_DB = 15.0
EQ_LOW_HZ = 100.0
EQ_POINTS_PER_OCTAVE = 6
LOUD_FRAME_DB = 40.0  # LTAS frames: voiced and within this of the loudest frames
ALPHA_MIN, ALPHA_MAX = 0.80, 1.30
# Statistics need ~20 s of speech: more changes them little and costs Harvest time (linear).
ANALYSIS_PIECE_S = 6.0
MAX_ANALYSIS_S = 12.0
ANALYSIS_THREADS = 2


@dataclass(frozen=True)
class VoiceStats:
    """What the timbre transform can match, measured over voiced, non-quiet frames."""

    lf0_centre: float  # centre of log F0 (natural-log Hz): mean of the 5-95% range
    lf0_spread: float  # std of log F0 over the same range
    ltas: np.ndarray  # mean natural-log power per CheapTrick bin
    formants: np.ndarray  # median F1, F2, F3 (Hz)
    fmax: float  # highest frequency the recording carries (Hz)
    sample_rate: int
    voiced_seconds: float

    @property
    def f0_hz(self) -> float:
        return math.exp(self.lf0_centre)

    def bin_freqs(self) -> np.ndarray:
        return np.linspace(0.0, self.sample_rate / 2.0, len(self.ltas))

    def summary(self) -> dict[str, Any]:
        """JSON-friendly figures for the artifact (what a person might want to see)."""
        return {
            "f0_centre_hz": round(self.f0_hz, 1),
            "f0_spread_semitones": round(self.lf0_spread * 12.0 / math.log(2.0), 2),
            "formants_hz": [round(float(v)) for v in self.formants],
            "bandwidth_hz": round(self.fmax),
            "voiced_seconds": round(self.voiced_seconds, 2),
        }


def f0_track(x: np.ndarray, rate: int) -> np.ndarray:
    """Harvest F0 at 5 ms frames (dio makes octave errors on Piper voices), tracker blips removed."""
    return world.smooth_f0_edges(world.f0_track(np.asarray(x, dtype=np.float64), rate))


def envelope(x: np.ndarray, rate: int, f0: np.ndarray) -> np.ndarray:
    """CheapTrick spectral envelope (power) for the given F0 track."""
    xd = np.ascontiguousarray(x, dtype=np.float64)
    t = np.arange(len(f0)) * world.FRAME_PERIOD_MS / 1000.0
    return pw.cheaptrick(xd, np.ascontiguousarray(f0, dtype=np.float64), t, rate)


def lpc_formants(x: np.ndarray, rate: int, frames: np.ndarray) -> np.ndarray | None:
    """Median F1-F3 from LPC roots of 25 ms frames centred on the given 5 ms frame indices."""
    y = resample(np.asarray(x, dtype=np.float32), rate, LPC_RATE).astype(np.float64)
    if len(y) < 2:
        return None
    y = np.append(y[0], y[1:] - 0.63 * y[:-1])  # pre-emphasis
    n = int(0.025 * LPC_RATE)
    win = np.hamming(n)
    found = []
    for i in frames[::2]:
        c = int(i * world.FRAME_PERIOD_MS / 1000.0 * LPC_RATE) - n // 2
        if c < 0 or c + n > len(y):
            continue
        fr = y[c : c + n] * win
        r = np.correlate(fr, fr, "full")[n - 1 : n + LPC_ORDER + 1]
        if r[0] <= 1e-10:
            continue
        try:
            a = solve_toeplitz(r[:LPC_ORDER], -r[1 : LPC_ORDER + 1])
        except (LinAlgError, ValueError):
            continue
        roots = np.roots(np.r_[1.0, a])
        roots = roots[np.imag(roots) > 0]
        freq = np.angle(roots) * LPC_RATE / (2 * np.pi)
        bw = -np.log(np.abs(roots) + 1e-12) * LPC_RATE / np.pi
        freq = np.sort(freq[(bw < 400) & (freq > 200) & (freq < 4500)])
        if len(freq) >= 3:
            found.append(freq[:3])
    if len(found) < 5:
        return None
    return np.median(np.asarray(found), axis=0)


@dataclass
class _SegmentStats:
    lf0: np.ndarray  # log F0 of voiced frames
    lsp: np.ndarray  # log envelope of voiced, loud frames
    formants: np.ndarray | None
    voiced_frames: int


def _segment_stats(
    x: np.ndarray, rate: int, f0: np.ndarray | None = None, sp: np.ndarray | None = None
) -> _SegmentStats | None:
    """One stretch of speech; `f0`/`sp` when a WORLD analysis of it was already made."""
    if len(x) < rate * 0.3:
        return None
    if f0 is None:
        f0 = f0_track(x, rate)
    v = f0 > 0
    if v.sum() < 10:
        return None
    lsp = np.log((sp if sp is not None else envelope(x, rate, f0)) + 1e-16)
    energy = lsp.mean(axis=1)
    loud = energy > np.percentile(energy[v], 99) - LOUD_FRAME_DB * LN_PER_DB
    keep = v & loud
    return _SegmentStats(np.log(f0[v]), lsp[keep], lpc_formants(x, rate, np.flatnonzero(keep)), int(v.sum()))


def analysis_pieces(segments: list[np.ndarray], rate: int) -> list[np.ndarray]:
    """Segments cut into pieces of at most ANALYSIS_PIECE_S (so threads share the work), at most
    MAX_ANALYSIS_S in all, spread evenly over the speech when there is more."""
    size = int(ANALYSIS_PIECE_S * rate)
    pieces = [x[i : i + size] for x in segments for i in range(0, len(x), size)]
    pieces = [p for p in pieces if len(p) >= rate * 0.3]
    total = sum(len(p) for p in pieces)
    if total <= MAX_ANALYSIS_S * rate:
        return pieces
    keep = max(1, int(MAX_ANALYSIS_S * rate // size))
    picks = np.unique(np.linspace(0, len(pieces) - 1, keep).round().astype(int))
    return [pieces[i] for i in picks]


def voice_stats(
    segments: list[np.ndarray], rate: int, *, band_rate: int | None = None, threads: int = ANALYSIS_THREADS
) -> VoiceStats:
    """Statistics pooled over several recordings of one voice.

    `band_rate` is the rate the audio was recorded at: a 16 kHz upload resampled to 22.05
    kHz carries nothing above ~7.4 kHz, and the EQ must not try to "correct" that band.
    Pieces are analysed on `threads` threads: WORLD's Harvest (most of the time: 7.4 s of the
    8.6 s for 30 s of speech on one core) releases the GIL.
    """
    pieces = analysis_pieces(segments, rate)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        found = list(pool.map(lambda x: _segment_stats(x, rate), pieces))
    return pool_stats([f for f in found if f is not None], rate, band_rate)


def features_stats(x: np.ndarray, feats: world.WorldFeatures) -> VoiceStats:
    """Statistics of one utterance from its WORLD analysis (the tuner's), without a second Harvest."""
    one = _segment_stats(x, feats.sample_rate, feats.f0, feats.sp)
    return pool_stats([one] if one is not None else [], feats.sample_rate, None)


def lf0_moments(lf0: np.ndarray) -> tuple[float, float]:
    """(centre, spread) of voiced frames' log F0: mean and std of its 5-95% range."""
    lo, hi = np.percentile(lf0, [5, 95])
    core = lf0[(lf0 >= lo) & (lf0 <= hi)]
    return float(core.mean()), max(float(core.std()), 0.01)


def pool_stats(found: list[_SegmentStats], rate: int, band_rate: int | None) -> VoiceStats:
    if not found:
        raise ValueError("no voiced speech to analyse")
    # Trimmed mean/std, not median/MAD: Piper joe's F0 is bimodal (creak near 90 Hz, a second
    # mode near 200 Hz), where the median jumps between modes; the profile's map is linear in
    # log F0, so matching mean and std of the trimmed distribution is what it reproduces.
    centre, spread = lf0_moments(np.concatenate([f.lf0 for f in found]))
    ltas = np.concatenate([f.lsp for f in found]).mean(axis=0)
    with_formants = [f for f in found if f.formants is not None]
    if with_formants:
        fm = np.average(
            np.stack([f.formants for f in with_formants if f.formants is not None]),
            axis=0,
            weights=np.asarray([len(f.lsp) for f in with_formants], dtype=np.float64),
        )
    else:
        fm = np.array([500.0, 1500.0, 2500.0])
    return VoiceStats(
        lf0_centre=centre,
        lf0_spread=spread,
        ltas=ltas,
        formants=fm,
        fmax=0.46 * min(rate, band_rate or rate),
        sample_rate=rate,
        voiced_seconds=sum(f.voiced_frames for f in found) * world.FRAME_PERIOD_MS / 1000.0,
    )


def alpha_from_formants(source: VoiceStats, target: VoiceStats) -> float:
    """Warp factor from the F2 and F3 ratios (F1 moves with vowel and F0 far more than with speaker)."""
    ratio = np.asarray(target.formants[1:3]) / np.asarray(source.formants[1:3])
    return float(np.clip(np.exp(np.mean(np.log(ratio))), ALPHA_MIN, ALPHA_MAX))


def warped_ltas(stats: VoiceStats, alpha: float, alpha_high: float | None, split_hz: float) -> np.ndarray:
    """The source LTAS after the same frequency warp the transformer applies to every frame."""
    pos = world.warp_source_positions(len(stats.ltas), stats.sample_rate, alpha, alpha_high, split_hz)
    return world.warp_frequency(stats.ltas, pos)


def eq_points(
    source: VoiceStats,
    target: VoiceStats,
    alpha: float,
    alpha_high: float | None,
    split_hz: float,
    per_octave: int = EQ_POINTS_PER_OCTAVE,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Long-term envelope difference (target - warped source) as smoothed (Hz, dB) points.

    Points sit every 1/6 octave from 100 Hz to the target's bandwidth; each is the mean
    difference over +-1/6 octave (at least +-150 Hz), so formant detail is left to the warp
    and only the broad balance is corrected. Overall gain is removed; gains clip at +-15 dB.
    """
    if len(source.ltas) != len(target.ltas):
        raise ValueError("source and target statistics are on different frequency grids")
    f = target.bin_freqs()
    diff = (target.ltas - warped_ltas(source, alpha, alpha_high, split_hz)) / LN_PER_DB
    top = min(target.fmax, source.fmax)
    n = int(math.floor(math.log2(top / EQ_LOW_HZ) * per_octave)) + 1
    centres = EQ_LOW_HZ * 2.0 ** (np.arange(n) / per_octave)
    half = 2.0 ** (1.0 / per_octave)
    min_half = 900.0 / per_octave  # +-150 Hz at 6 points per octave
    gains = []
    for fc in centres:
        lo = max(min(fc / half, fc - min_half), 50.0)
        hi = min(max(fc * half, fc + min_half), top)
        sel = (f >= lo) & (f <= hi)
        gains.append(float(diff[sel].mean()) if sel.any() else 0.0)
    g = np.asarray(gains)
    g = np.clip(g - g.mean(), -EQ_MAX_DB, EQ_MAX_DB)
    return tuple(round(float(v), 2) for v in centres), tuple(round(float(v), 2) for v in g)


def pitch_profile(
    source_centre: float, source_spread: float, target: VoiceStats, *, by_model: bool = False
) -> TimbreProfile:
    """The profile moving a voice whose log F0 has `source_centre` and `source_spread`
    (lf0_moments) to the target's centre and spread (the spread's ratio held to 0.4..2.5);
    `by_model`: the base model moves its own pitch (TimbreProfile.f0_by_model)."""
    spread_ratio = float(np.clip(target.lf0_spread / source_spread, 0.4, 2.5))
    return TimbreProfile(
        f0_source_mean_hz=round(math.exp(source_centre), 2),
        f0_source_std=round(source_spread, 4),
        f0_target_mean_hz=round(target.f0_hz, 2),
        f0_target_std=round(source_spread * spread_ratio, 4),
        f0_by_model=by_model,
    )


def make_profile(
    source: VoiceStats,
    target: VoiceStats,
    *,
    alpha: float,
    alpha_high: float | None = None,
    split_hz: float = 1500.0,
    eq_strength: float = 1.0,
    eq_per_octave: int = EQ_POINTS_PER_OCTAVE,
    breathiness: float = 0.0,
) -> TimbreProfile:
    """F0 matching + formant warp + long-term EQ (scaled by eq_strength) from source to target."""
    alpha = float(np.clip(alpha, ALPHA_MIN, ALPHA_MAX))
    if alpha_high is not None:
        alpha_high = float(np.clip(alpha_high, ALPHA_MIN, ALPHA_MAX))
        if abs(alpha_high - alpha) < 1e-6:
            alpha_high = None
    freqs: tuple[float, ...] = ()
    gains: tuple[float, ...] = ()
    if eq_strength > 0:
        freqs, full = eq_points(source, target, alpha, alpha_high, split_hz, eq_per_octave)
        gains = tuple(round(v * eq_strength, 2) for v in full)
    return replace(
        pitch_profile(source.lf0_centre, source.lf0_spread, target),
        formant_alpha=round(alpha, 4),
        formant_alpha_high=None if alpha_high is None else round(alpha_high, 4),
        formant_split_hz=split_hz,
        eq_freqs_hz=freqs,
        eq_gains_db=gains,
        breathiness=breathiness,
    )
