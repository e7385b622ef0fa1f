"""Pitch measurements for tests: Harvest F0 (WORLD) over 5 ms frames, 0 where unvoiced.

The floor is 40 Hz so that a voice shifted down an octave (joe at -12 semitones) is still tracked.
"""

from __future__ import annotations

import numpy as np

from app.engines.timbre import world

F0_FLOOR = 40.0


def median_f0(x: np.ndarray, rate: int) -> float:
    """Median F0 over voiced frames: a voice's register, not a way to compare two renderings."""
    f0 = world.f0_track(np.asarray(x, dtype=np.float64), rate, f0_floor=F0_FLOOR)
    return float(np.median(f0[f0 > 0]))


def f0_ratio(shifted: np.ndarray, base: np.ndarray, rate: int) -> float:
    """Median over frames voiced in both of F0(shifted) / F0(base), for two renderings of the same
    timing. Robust to tracker octave slips; the ratio of two medians is not (the shifted take has
    other frames voiced: +4 semitones read as x1.13-1.36 that way, x1.255-1.259 frame by frame)."""
    a = world.f0_track(np.asarray(shifted, dtype=np.float64), rate, f0_floor=F0_FLOOR)
    b = world.f0_track(np.asarray(base, dtype=np.float64), rate, f0_floor=F0_FLOOR)
    n = min(len(a), len(b))
    both = (a[:n] > 0) & (b[:n] > 0)
    assert both.sum() > 100, "too few frames voiced in both renderings to compare"
    return float(np.median(a[:n][both] / b[:n][both]))
