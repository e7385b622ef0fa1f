"""WORLD-based timbre transformation (CPU voice modification and DSP clone)."""

from app.engines.timbre.profile import TimbreProfile
from app.engines.timbre.transformer import TimbreTransformer, apply_profile, convert

__all__ = ["TimbreProfile", "TimbreTransformer", "apply_profile", "convert"]
