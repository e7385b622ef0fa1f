"""Speaker embeddings (Resemblyzer)."""

from app.engines.speaker.encoder import SpeakerEncoder, cosine

__all__ = ["SpeakerEncoder", "cosine"]
