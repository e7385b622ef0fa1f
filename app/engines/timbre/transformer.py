"""Chunk-by-chunk timbre transformation with WORLD.

Joins: each call analyses the new chunk together with `context_s` of the preceding input
(so F0 tracking and the envelope are not cut at the chunk edge), and the last
`crossfade_s` of every output is held back and cross-faded (equal-gain raised cosine) with
the re-synthesis of the same samples in the next call. Output is therefore sample-aligned
with input, delayed by `crossfade_s` until flush(), and total length equals input length.
Chunks shorter than `min_block_s` are buffered until enough audio has arrived. This works
for any chunking (TTS sentences or a live stream), not only for silence-separated sentences.
"""

from __future__ import annotations

import numpy as np

import app.engines.timbre.world as world
from app.engines.timbre.profile import TimbreProfile


def apply_profile(feats: world.WorldFeatures, profile: TimbreProfile) -> world.WorldFeatures:
    """Apply a profile's F0 mapping, formant warp, EQ and breathiness to WORLD features."""
    f0 = profile.map_f0(world.smooth_f0_edges(feats.f0))
    sp, ap = feats.sp, feats.ap
    if profile.warps or any(profile.eq_gains_db):
        lsp = np.log(sp + 1e-16)
        if profile.warps:
            pos = world.warp_source_positions(
                feats.n_bins,
                feats.sample_rate,
                profile.formant_alpha,
                profile.formant_alpha_high,
                profile.formant_split_hz,
            )
            lsp = world.warp_frequency(lsp, pos)
            ap = np.clip(world.warp_frequency(ap, pos), 0.0, 1.0)
        curve = profile.eq_curve(feats.bin_freqs())
        if curve is not None:
            lsp = lsp + curve[None, :]
        sp = np.exp(lsp)
    if profile.breathiness > 0.0:
        # Raise aperiodicity above ~1 kHz on voiced frames: more noise in the harmonics.
        ramp = np.clip((feats.bin_freqs() - 800.0) / 1500.0, 0.0, 1.0)[None, :]
        power = 1.0 / (1.0 + 3.0 * profile.breathiness * ramp)
        ap = np.clip(ap, 1e-6, 1.0) ** power
    return world.WorldFeatures(f0=f0, sp=sp, ap=ap, sample_rate=feats.sample_rate, n_samples=feats.n_samples)


def _render(y: np.ndarray, sample_rate: int, profile: TimbreProfile) -> np.ndarray:
    """WORLD's output, through the clone's mel band mapping and HiFi-GAN when it has one."""
    mapping = profile.mel_mapping
    if mapping is None:
        return y
    from app.engines.timbre.vocoder import render

    return render(y, sample_rate, mapping)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _level(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`y` at `x`'s RMS level (as it is when silent)."""
    out_rms = _rms(y)
    return y * (_rms(x) / out_rms) if out_rms > 1e-9 else y


def analyse(
    x: np.ndarray, sample_rate: int, *, f0_floor: float = world.F0_FLOOR, f0_ceil: float = world.F0_CEIL
) -> world.WorldFeatures | None:
    """The WORLD analysis `convert` makes of `x` (None for a chunk too short to analyse): it does
    not depend on the profile, so a caller may make it ahead (the clone job's score)."""
    if len(x) < sample_rate * 0.03:
        return None
    return world.analyze(np.asarray(x, dtype=np.float64), sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil)


def convert(
    x: np.ndarray,
    sample_rate: int,
    profile: TimbreProfile,
    *,
    rate: float = 1.0,
    f0_floor: float = world.F0_FLOOR,
    f0_ceil: float = world.F0_CEIL,
) -> np.ndarray:
    """Whole-utterance conversion (optionally time-stretched by `rate`), level-matched to the input.
    A profile with nothing for WORLD to do (`moves_in_world`: a Kokoro clone whose model moved
    the pitch) renders `x` through its mel mapping alone, without WORLD's analysis and colouring."""
    if rate == 1.0 and not profile.moves_in_world:
        y = _render(np.asarray(x, dtype=np.float64), sample_rate, profile)
        return np.clip(_level(y, x), -1.0, 1.0).astype(np.float32)
    feats = analyse(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil)
    return convert_analysed(x, feats, profile, rate=rate)


def convert_analysed(
    x: np.ndarray, feats: world.WorldFeatures | None, profile: TimbreProfile, *, rate: float = 1.0
) -> np.ndarray:
    """`convert` of `x` whose analysis (`analyse`) is `feats`."""
    x = np.asarray(x, dtype=np.float64)
    if feats is None:
        return np.zeros(int(round(len(x) / rate)), dtype=np.float32)
    feats = apply_profile(feats, profile)
    if rate != 1.0:
        feats = world.stretch_time(feats, rate)
    y = _render(world.synthesize(feats), feats.sample_rate, profile)
    return np.clip(_level(y, x), -1.0, 1.0).astype(np.float32)


class TimbreTransformer:
    """Stateful transformer: feed chunks with process(), end the stream with flush().

    Not thread-safe (it carries state): make one per stream.
    """

    def __init__(
        self,
        profile: TimbreProfile,
        sample_rate: int,
        *,
        context_s: float = 0.15,
        crossfade_s: float = 0.04,
        min_block_s: float = 0.25,
        f0_floor: float = world.F0_FLOOR,
        f0_ceil: float = world.F0_CEIL,
    ) -> None:
        if crossfade_s >= context_s:
            raise ValueError("crossfade_s must be shorter than context_s")
        self.profile = profile
        self.sample_rate = sample_rate
        self.context = int(round(context_s * sample_rate))
        self.xfade = max(1, int(round(crossfade_s * sample_rate)))
        self.min_block = max(self.xfade + 1, int(round(min_block_s * sample_rate)))
        self.f0_floor = f0_floor
        self.f0_ceil = f0_ceil
        self._fade_in = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, self.xfade))
        self.reset()

    def reset(self) -> None:
        self._history = np.zeros(0, dtype=np.float64)  # input already converted (context source)
        self._pending_in = np.zeros(0, dtype=np.float64)  # input not yet converted
        self._held_out = np.zeros(0, dtype=np.float64)  # output held back for the cross-fade

    def _convert(self, seg: np.ndarray) -> np.ndarray:
        if len(seg) < self.sample_rate * 0.03 or not np.any(seg):
            return np.zeros(len(seg))
        if self.profile.moves_in_world:
            feats = world.analyze(seg, self.sample_rate, f0_floor=self.f0_floor, f0_ceil=self.f0_ceil)
            y = world.synthesize(apply_profile(feats, self.profile), len(seg))
        else:  # the model moved the pitch: only the mel mapping is left (see `convert`)
            y = seg
        return _level(_render(y, self.sample_rate, self.profile), seg)

    def _run(self, final: bool) -> np.ndarray:
        new = self._pending_in
        self._pending_in = np.zeros(0, dtype=np.float64)
        ctx = self._history[-self.context :] if len(self._history) else self._history
        y = self._convert(np.concatenate([ctx, new]))
        n_ctx = len(ctx)
        held = self._held_out
        out_parts: list[np.ndarray] = []
        if len(held):
            k = len(held)
            fin = self._fade_in if k == self.xfade else 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))
            out_parts.append(held * (1.0 - fin) + y[n_ctx - k : n_ctx] * fin)
        body = y[n_ctx:]
        if final:
            out_parts.append(body)
            self._held_out = np.zeros(0, dtype=np.float64)
        else:
            keep = min(self.xfade, len(body))
            out_parts.append(body[: len(body) - keep])
            self._held_out = body[len(body) - keep :].copy()
        self._history = np.concatenate([self._history[-self.context :], new])
        out = np.concatenate(out_parts) if out_parts else np.zeros(0)
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Convert the next chunk; returns the audio that is final so far (may be empty)."""
        chunk = np.asarray(chunk, dtype=np.float64).reshape(-1)
        self._pending_in = np.concatenate([self._pending_in, chunk])
        if len(self._pending_in) < self.min_block:
            return np.zeros(0, dtype=np.float32)
        return self._run(final=False)

    def flush(self) -> np.ndarray:
        """Emit everything still buffered or held back, and reset for a new stream."""
        out = self._run(final=True) if len(self._pending_in) else self._held_out.astype(np.float32)
        self.reset()
        return out
