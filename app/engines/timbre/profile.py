"""TimbreProfile: how to move the source voice (Piper joe) toward another voice.

A profile is plain data (JSON-serialisable) so the cloning pipeline can compute one per
speaker from its samples and store it as the voice artifact. It holds:

- F0 mapping: log-F0 mean/std matching when both source and target stats are known,
  otherwise a range (expressiveness) scale around the source mean, then a fixed shift
  in semitones. Stats are natural-log F0 (mean given in Hz for readability). WORLD applies
  it, unless `f0_by_model`: then the base model moves its own predicted pitch (a Kokoro
  clone: `model_f0_map`, the same mapping as a power law) and WORLD is not used at all when
  nothing else needs it (`moves_in_world`).
- formant warp factor alpha: the spectral envelope's frequency axis is scaled by alpha
  (> 1 raises formants: shorter vocal tract, e.g. female/child; < 1 deepens); optionally
  a different factor above `formant_split_hz` (alpha_high) to change the upper formants
  separately, which moves a voice further from the source for speaker encoders.
- EQ: a long-term spectral envelope correction given as (Hz, dB) points, interpolated on
  any FFT grid, so it does not depend on sample rate.
- breathiness: raises aperiodicity above ~1 kHz (0 = none, 1 = very breathy).
- mel band mapping (clones): after WORLD, each of the 80 log-mel bands of the speech is scaled
  and offset (`mel_scale`, `mel_offset`) to the person's mean and spread, and HiFi-GAN renders
  it (`app.engines.timbre.vocoder`); then the first 20 cepstral coefficients of each frame are
  mixed (`mel_mix`, a 20x20 matrix, around `mel_mix_centre`) so the bands move together as the
  person's do. Then a residual codebook (`mel_residual_keys`, `mel_residual`: up to 128
  entries of 20 cepstral coefficients) adds, frame by frame, what those two still miss, learnt
  from the clone reading what the person said in the upload, averaged over
  `mel_residual_smoothing` frames. Empty for built-in voices and
  clones made before them (the mix and the residual also for narrowband uploads).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.engines.timbre.vocoder import MelMapping

PROFILE_VERSION = 1
MEL_BANDS = 80  # app.engines.timbre.vocoder.N_MELS
MIX_COEFFS = 20  # app.engines.timbre.vocoder.MIX_COEFFS
RESIDUAL_COEFFS = 20  # app.engines.timbre.vocoder.RESIDUAL_COEFFS
RESIDUAL_MAX_ENTRIES = 256
# Clones whose residual was learnt before it was paired by what was said (stop 33) were tuned
# with their corrections averaged over 13 frames; a profile that does not say keeps that.
RESIDUAL_SMOOTHING_BEFORE_CONTENT_PAIRS = 13
RESIDUAL_MAX_SMOOTHING = 63


@dataclass(frozen=True)
class TimbreProfile:
    f0_shift_semitones: float = 0.0
    f0_source_mean_hz: float | None = None
    f0_source_std: float | None = None
    f0_target_mean_hz: float | None = None
    f0_target_std: float | None = None
    f0_range_scale: float = 1.0
    f0_by_model: bool = False  # the base model applies the F0 mapping (`model_f0_map`), not WORLD
    formant_alpha: float = 1.0
    formant_alpha_high: float | None = None
    formant_split_hz: float = 1500.0
    eq_freqs_hz: tuple[float, ...] = field(default_factory=tuple)
    eq_gains_db: tuple[float, ...] = field(default_factory=tuple)
    breathiness: float = 0.0
    mel_scale: tuple[float, ...] = field(default_factory=tuple)
    mel_offset: tuple[float, ...] = field(default_factory=tuple)
    mel_mix: tuple[float, ...] = field(default_factory=tuple)
    mel_mix_centre: tuple[float, ...] = field(default_factory=tuple)
    mel_residual_keys: tuple[float, ...] = field(default_factory=tuple)
    mel_residual: tuple[float, ...] = field(default_factory=tuple)
    mel_residual_smoothing: int = (
        RESIDUAL_SMOOTHING_BEFORE_CONTENT_PAIRS  # frames the corrections are averaged over
    )
    version: int = PROFILE_VERSION

    def __post_init__(self) -> None:
        if len(self.eq_freqs_hz) != len(self.eq_gains_db):
            raise ValueError("eq_freqs_hz and eq_gains_db must have the same length")
        if list(self.eq_freqs_hz) != sorted(self.eq_freqs_hz):
            raise ValueError("eq_freqs_hz must be increasing")
        if not 0.5 <= self.formant_alpha <= 2.0:
            raise ValueError("formant_alpha must be within 0.5..2.0")
        if self.formant_alpha_high is not None and not 0.5 <= self.formant_alpha_high <= 2.0:
            raise ValueError("formant_alpha_high must be within 0.5..2.0")
        if not 200.0 <= self.formant_split_hz <= 6000.0:
            raise ValueError("formant_split_hz must be within 200..6000")
        if not -24.0 <= self.f0_shift_semitones <= 24.0:
            raise ValueError("f0_shift_semitones must be within -24..24")
        if not 0.0 <= self.breathiness <= 1.0:
            raise ValueError("breathiness must be within 0..1")
        if self.f0_range_scale <= 0:
            raise ValueError("f0_range_scale must be positive")
        if len(self.mel_scale) != len(self.mel_offset) or len(self.mel_scale) not in (0, MEL_BANDS):
            raise ValueError(f"mel_scale and mel_offset must both hold {MEL_BANDS} numbers, or none")
        if not all(0.0 < v <= 10.0 for v in self.mel_scale):
            raise ValueError("mel_scale must be within 0..10")
        _check_within("mel_offset", self.mel_offset, 50.0)
        if (len(self.mel_mix), len(self.mel_mix_centre)) not in ((0, 0), (MIX_COEFFS**2, MIX_COEFFS)):
            raise ValueError(
                f"mel_mix must hold {MIX_COEFFS**2} numbers and mel_mix_centre {MIX_COEFFS}, or both none"
            )
        if self.mel_mix and not self.mel_scale:
            raise ValueError("mel_mix needs mel_scale and mel_offset")
        _check_within("mel_mix", self.mel_mix, 10.0)
        _check_within("mel_mix_centre", self.mel_mix_centre, 1000.0)
        entries = len(self.mel_residual_keys)
        if (
            entries != len(self.mel_residual)
            or entries % RESIDUAL_COEFFS
            or entries > RESIDUAL_MAX_ENTRIES * RESIDUAL_COEFFS
        ):
            raise ValueError(
                f"mel_residual_keys and mel_residual must hold the same number of {RESIDUAL_COEFFS}-number "
                f"entries (at most {RESIDUAL_MAX_ENTRIES}), or none"
            )
        if self.mel_residual and not self.mel_scale:
            raise ValueError("mel_residual needs mel_scale and mel_offset")
        _check_within("mel_residual_keys", self.mel_residual_keys, 1000.0)
        _check_within("mel_residual", self.mel_residual, 100.0)
        if not 1 <= self.mel_residual_smoothing <= RESIDUAL_MAX_SMOOTHING:
            raise ValueError(f"mel_residual_smoothing must be within 1..{RESIDUAL_MAX_SMOOTHING} frames")
        for name in ("f0_source_mean_hz", "f0_target_mean_hz", "f0_source_std", "f0_target_std"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number")
        if self.f0_by_model and (self.f0_source_mean_hz is None or self.f0_target_mean_hz is None):
            raise ValueError("f0_by_model needs f0_source_mean_hz and f0_target_mean_hz")

    @property
    def is_identity(self) -> bool:
        """True when applying the profile would change nothing but WORLD's vocoder colouring."""
        return (
            self.f0_shift_semitones == 0.0
            and self.f0_target_mean_hz is None
            and self.f0_range_scale == 1.0
            and not self.warps
            and not any(self.eq_gains_db)
            and self.breathiness == 0.0
            and not self.mel_scale
        )

    @property
    def moves_in_world(self) -> bool:
        """True when WORLD has work to do: pitch (unless the model moves it), warp, EQ, breathiness."""
        pitch = self.f0_shift_semitones != 0.0 or (
            not self.f0_by_model and (self.f0_target_mean_hz is not None or self.f0_range_scale != 1.0)
        )
        return pitch or self.warps or any(self.eq_gains_db) or self.breathiness != 0.0

    def model_f0_map(self, semitones: float = 0.0) -> tuple[float, float]:
        """(exponent, gain) for a model moving its own pitch (f0 -> gain * f0 ** exponent): this
        profile's F0 mapping (`map_f0` with its source mean set), plus `semitones`."""
        if self.f0_source_mean_hz is None or self.f0_target_mean_hz is None:
            raise ValueError("the model's F0 mapping needs the source and target means")
        exponent = self.f0_range_scale
        if self.f0_source_std and self.f0_target_std:
            exponent *= self.f0_target_std / self.f0_source_std
        shift = (self.f0_shift_semitones + semitones) * math.log(2.0) / 12.0
        log_gain = math.log(self.f0_target_mean_hz) - exponent * math.log(self.f0_source_mean_hz) + shift
        return exponent, math.exp(log_gain)

    def without_f0(self) -> TimbreProfile:
        """The profile with no pitch mapping (what is left once the model moved the pitch)."""
        return replace(
            self,
            f0_shift_semitones=0.0,
            f0_source_mean_hz=None,
            f0_source_std=None,
            f0_target_mean_hz=None,
            f0_target_std=None,
            f0_range_scale=1.0,
            f0_by_model=False,
        )

    @property
    def warps(self) -> bool:
        """True when the envelope's frequency axis is changed."""
        return self.formant_alpha != 1.0 or (
            self.formant_alpha_high is not None and self.formant_alpha_high != 1.0
        )

    def with_shift(self, semitones: float) -> TimbreProfile:
        """The same profile with an extra pitch shift (the request's `pitch`)."""
        if semitones == 0.0:
            return self
        return replace(self, f0_shift_semitones=self.f0_shift_semitones + semitones)

    def for_vocoder(self, vocoder: str) -> TimbreProfile:
        """The profile as the operator's CHORUS_CLONE_VOCODER renders it: "world" drops the mel
        band mapping (WORLD alone), "hifigan" keeps it."""
        if vocoder == "hifigan":
            return self
        return replace(self.without_residual(), mel_scale=(), mel_offset=(), mel_mix=(), mel_mix_centre=())

    def without_residual(self) -> TimbreProfile:
        """The profile without its residual codebook (the band mapping and mix kept)."""
        if not self.mel_residual:
            return self
        return replace(self, mel_residual_keys=(), mel_residual=())

    @property
    def mel_mapping(self) -> MelMapping | None:
        """The clone's mel mapping for the vocoder, or None (rendered by WORLD alone)."""
        if not self.mel_scale:
            return None
        from app.engines.timbre.vocoder import MelMapping

        return MelMapping(
            self.mel_scale,
            self.mel_offset,
            self.mel_mix,
            self.mel_mix_centre,
            self.mel_residual_keys,
            self.mel_residual,
            self.mel_residual_smoothing,
        )

    def with_mel_mapping(self, mapping: MelMapping) -> TimbreProfile:
        """The profile rendering through `mapping` (the inverse of `mel_mapping`)."""
        return replace(
            self,
            mel_scale=mapping.scale,
            mel_offset=mapping.offset,
            mel_mix=mapping.mix,
            mel_mix_centre=mapping.centre,
            mel_residual_keys=mapping.residual_keys,
            mel_residual=mapping.residual,
            mel_residual_smoothing=mapping.smoothing,
        )

    def map_f0(self, f0: np.ndarray) -> np.ndarray:
        """Map an F0 track (Hz, 0 = unvoiced) to the target voice."""
        voiced = f0 > 0
        if not voiced.any():
            return f0
        lf0 = np.log(f0[voiced])
        if self.f0_source_mean_hz is not None:
            src_mean = math.log(self.f0_source_mean_hz)
        else:
            src_mean = float(np.median(lf0))
        dev = lf0 - src_mean
        if self.f0_source_std and self.f0_target_std:
            dev = dev * (self.f0_target_std / self.f0_source_std)
        dev = dev * self.f0_range_scale
        centre = math.log(self.f0_target_mean_hz) if self.f0_target_mean_hz is not None else src_mean
        out = f0.copy()
        out[voiced] = np.exp(centre + dev + self.f0_shift_semitones * math.log(2.0) / 12.0)
        return out

    def eq_curve(self, bin_freqs: np.ndarray) -> np.ndarray | None:
        """EQ in natural-log power per bin (held flat beyond the outermost points)."""
        if not any(self.eq_gains_db):
            return None
        gains = np.interp(bin_freqs, np.asarray(self.eq_freqs_hz), np.asarray(self.eq_gains_db))
        return gains * (np.log(10.0) / 10.0)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["eq_freqs_hz"] = list(self.eq_freqs_hz)
        d["eq_gains_db"] = list(self.eq_gains_db)
        d["mel_scale"] = list(self.mel_scale)
        d["mel_offset"] = list(self.mel_offset)
        d["mel_mix"] = list(self.mel_mix)
        d["mel_mix_centre"] = list(self.mel_mix_centre)
        d["mel_residual_keys"] = list(self.mel_residual_keys)
        d["mel_residual"] = list(self.mel_residual)
        return d

    @classmethod
    def from_stored(cls, raw: object) -> TimbreProfile | None:
        """An artifact's "profile" value: an object, or null/empty for the base voice as it is."""
        if isinstance(raw, dict):
            return cls.from_dict(raw) if raw else None
        if raw:
            raise ValueError(f"profile is not an object ({raw!r})")
        return None

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TimbreProfile:
        """Build from a dict (unknown keys are ignored so newer artifacts still load).

        ValueError or TypeError when a value is not what the field holds."""
        version = int(_number(data.get("version", PROFILE_VERSION), "version"))
        if version > PROFILE_VERSION:
            raise ValueError(f"Timbre profile version {version} is newer than this server understands")
        default = cls()

        def number(name: str, fallback: float) -> float:
            return _number(data.get(name, fallback), name)

        def optional(name: str) -> float | None:
            value = data.get(name)
            return None if value is None else _number(value, name)

        def whole(name: str, fallback: int) -> int:
            value = number(name, fallback)
            if not math.isfinite(value) or value != int(value):  # int(inf) would raise OverflowError
                raise ValueError(f"{name} must be a whole number")
            return int(value)

        def flag(name: str) -> bool:
            value = data.get(name, False)
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be true or false, not {value!r}")
            return value

        def points(name: str) -> tuple[float, ...]:
            value = data.get(name, ())
            if not isinstance(value, list | tuple):
                raise TypeError(f"{name} must be a list of numbers")
            return tuple(_number(v, name) for v in value)

        return cls(
            f0_shift_semitones=number("f0_shift_semitones", default.f0_shift_semitones),
            f0_source_mean_hz=optional("f0_source_mean_hz"),
            f0_source_std=optional("f0_source_std"),
            f0_target_mean_hz=optional("f0_target_mean_hz"),
            f0_target_std=optional("f0_target_std"),
            f0_range_scale=number("f0_range_scale", default.f0_range_scale),
            f0_by_model=flag("f0_by_model"),
            formant_alpha=number("formant_alpha", default.formant_alpha),
            formant_alpha_high=optional("formant_alpha_high"),
            formant_split_hz=number("formant_split_hz", default.formant_split_hz),
            eq_freqs_hz=points("eq_freqs_hz"),
            eq_gains_db=points("eq_gains_db"),
            breathiness=number("breathiness", default.breathiness),
            mel_scale=points("mel_scale"),
            mel_offset=points("mel_offset"),
            mel_mix=points("mel_mix"),
            mel_mix_centre=points("mel_mix_centre"),
            mel_residual_keys=points("mel_residual_keys"),
            mel_residual=points("mel_residual"),
            mel_residual_smoothing=whole("mel_residual_smoothing", default.mel_residual_smoothing),
            version=version,
        )


def _check_within(name: str, values: tuple[float, ...], bound: float) -> None:
    """ValueError unless every value is within -bound..bound (NaN is not)."""
    if not all(abs(v) <= bound for v in values):
        raise ValueError(f"{name} must be within -{bound:g}..{bound:g}")


def _number(value: object, name: str) -> float:
    """A JSON number (or numeric string) as a float; TypeError for anything else."""
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"{name} must be a number, not {value!r}")
