"""Speech-to-text engines (faster-whisper)."""

from app.engines.stt.whisper import Segment, Transcript, WhisperEngine, Word, assemble_whisper_base

__all__ = ["Segment", "Transcript", "WhisperEngine", "Word", "assemble_whisper_base"]
