"""stream=true transcription: OpenAI's `transcript.text.delta` … `transcript.text.done` events."""

from __future__ import annotations

from collections.abc import Iterator

from app.api.openai.streaming import openai_error_event, sse_event
from app.engines.stt.whisper import Segment
from app.transcription.formats import billed_seconds
from app.transcription.service import RunningTranscription


class TranscriptEvents:
    """A `ChunkSource`: one delta per decoded segment (deltas concatenate to the final text)."""

    def __init__(self, running: RunningTranscription) -> None:
        self.running = running
        self._segments: Iterator[Segment] | None = None
        self._parts: list[str] = []
        self._done = False

    def next_chunk(self) -> bytes | None:
        if self._done:
            return None
        if self._segments is None:
            self._segments = self.running.segments()
        for segment in self._segments:  # settles the job itself when exhausted or on failure
            text = segment.text.strip()
            if not text:
                continue
            delta = text if not self._parts else " " + text
            self._parts.append(text)
            return sse_event({"type": "transcript.text.delta", "delta": delta})
        self._done = True
        return sse_event(
            {"type": "transcript.text.done", "text": " ".join(self._parts), "usage": self._usage()}
        )

    def _usage(self) -> dict[str, object]:
        """Token-shaped usage (what the SDK's done event declares): input counts billed audio seconds."""
        audio = billed_seconds(self.running.duration)
        output = sum(len(s.tokens) for s in self.running.collected)
        return {
            "type": "tokens",
            "input_tokens": audio,
            "output_tokens": output,
            "total_tokens": audio + output,
            "input_token_details": {"audio_tokens": audio, "text_tokens": 0},
        }

    def error_chunk(self, exc: BaseException) -> bytes | None:
        return openai_error_event(exc)

    def abort(self, delivered: bool) -> None:
        self._done = True
        if self._segments is not None and hasattr(self._segments, "close"):
            self._segments.close()
        self.running.abort(delivered)
