"""Speech from text that is still being written (an LLM's tokens): the WebSocket route's rules.

Text arrives in pieces; a clause is spoken as soon as it is complete (it ends in . ! ? ; : , or a
CJK stop followed by a space, or a line ends), so the first audio leaves after the first clause,
not the whole reply. `flush` speaks what is buffered even mid-clause; `close` flushes and ends.
Each spoken piece is a `StreamedSpeech` of its own: its credits are held when it starts and
captured once its audio has gone out, so a dropped connection is charged only for pieces whose
audio reached the client (a piece cut off mid-way counts once some of it was sent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.audio import parse_format
from app.core.errors import InvalidInput

# A clause ends at punctuation followed by whitespace, or at a line end.
_CLAUSE_END = re.compile(r"[.!?;:,…。！？；：，、](?=\s)|\n")
# CJK punctuation ends a clause without a following space.
_CJK_END = re.compile(r"[。！？；：，、]")
MAX_BUFFER_CHARS = 4096  # text waiting for a clause end; more is spoken as it is
# Formats whose pieces can follow each other in one byte stream: raw samples, and MP3 frames.
LIVE_CODECS = frozenset({"pcm", "ulaw", "alaw", "mp3"})


@dataclass
class ClauseBuffer:
    """Text received and not yet spoken."""

    text: str = ""

    def add(self, text: str) -> str:
        """Append `text`; return the complete clauses now ready (maybe "")."""
        self.text += text
        cut = 0
        for match in _CLAUSE_END.finditer(self.text):
            cut = match.end()
        for match in _CJK_END.finditer(self.text):
            cut = max(cut, match.end())
        if cut == 0 and len(self.text) > MAX_BUFFER_CHARS:
            cut = len(self.text)
        ready, self.text = self.text[:cut], self.text[cut:]
        return ready.strip()

    def flush(self) -> str:
        ready, self.text = self.text.strip(), ""
        return ready


def check_live_format(fmt: str, sample_rate: int | None = None) -> str:
    """Formats a live stream can send piece after piece: pcm (any rate), ulaw_8000, alaw_8000, mp3."""
    spec = parse_format(fmt, sample_rate=sample_rate)
    if spec.codec not in LIVE_CODECS:
        raise InvalidInput(
            f"response_format '{fmt}' cannot be streamed piece by piece; use pcm, pcm_<rate>, "
            "ulaw_8000, alaw_8000 or mp3",
            param="response_format",
        )
    return spec.name
