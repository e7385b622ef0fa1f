"""Streamed speech in the OpenAI shape: raw audio, or SSE `speech.audio.delta` … `speech.audio.done`
(each delta followed by `speech.audio.words` with the words that audio finished saying).

The synthesis, encoding and credit settlement are the speech domain's (app.speech.streaming);
this `ChunkSource` only frames its bytes.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

from app.api.openai.streaming import openai_error_event, sse_event
from app.speech.streaming import StreamedSpeech

# output_tokens in `speech.audio.done` counts audio in 20 ms frames (there are no audio tokens here).
AUDIO_FRAMES_PER_SECOND = 50


@dataclass
class SpeechStream:
    """A `ChunkSource` for one /audio/speech request (raw audio or SSE events)."""

    speech: StreamedSpeech
    sse: bool = False
    _done: bool = False

    def _wrap(self, data: bytes) -> bytes:
        if not self.sse or not data:
            return data
        return sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})

    def usage(self) -> dict[str, int]:
        credits = self.speech.credits
        output = math.ceil(self.speech.duration * AUDIO_FRAMES_PER_SECOND)
        return {"input_tokens": credits, "output_tokens": output, "total_tokens": credits + output}

    def next_chunk(self) -> bytes | None:
        if self._done:
            return None
        data = self.speech.next_bytes()  # settles the credits itself (last audio, or failure)
        if data is None:
            self._done = True
            return None
        chunk = self._wrap(data)
        if self.sse:
            words = self.speech.take_words()
            if words:
                chunk += sse_event({"type": "speech.audio.words", "words": [w.to_dict() for w in words]})
        if self.speech.finished:
            self._done = True
            if self.sse:
                chunk += sse_event({"type": "speech.audio.done", "usage": self.usage()})
        return chunk

    def error_chunk(self, exc: BaseException) -> bytes | None:
        return openai_error_event(exc) if self.sse else None

    def abort(self, delivered: bool) -> None:
        self._done = True
        self.speech.abort(delivered)
