"""When each word is spoken, from the engines' own phoneme durations (no second recognition pass).

Piper and Kokoro both predict how many frames each phoneme lasts; their ONNX graphs compute it
but do not return it, so `with_duration_output` adds that tensor to the graph's outputs when the
model is loaded. A sentence's phonemes come back as runs separated by spaces (one run per
spoken word); `sentence_words` maps the sentence's written words onto those runs: one to one
when the counts agree, else by position (a number or an abbreviation the phonemizer reads as
several words shares their time).

Times are in seconds from the start of the utterance and are carried through speed changes,
sentence pauses and the timbre transfer by `app.engines.delivery` (WORLD conversion keeps
timing; a time-stretch scales it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Phoneme symbols that are not sounds: word separators and punctuation the phonemizers keep.
_SILENT = frozenset(" ,.!?;:—…-\"'()[]¡¿«»“”‘’、。，！？；：^$_")


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float  # seconds from the start of the utterance
    end: float

    def shifted(self, seconds: float) -> WordTiming:
        return WordTiming(self.word, round(self.start + seconds, 3), round(self.end + seconds, 3))

    def to_dict(self) -> dict[str, object]:
        return {"word": self.word, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class TimedChunk:
    """Audio and the words of the sentence it carries, timed from the start of the utterance.
    A chunk's audio may lag its sentence a little (the streaming WORLD transformer holds a
    block back): a consumer sends a word once that much audio has gone out."""

    audio: NDArray[np.float32]
    words: list[WordTiming]


def with_duration_output(model: bytes, tensor: str | None = None) -> tuple[bytes, str | None]:
    """The model with its per-phoneme duration tensor added as a second output, and that
    tensor's name (None, and the model unchanged, when the graph has none we recognise).
    `tensor` names it; otherwise the input of the CumSum that builds the alignment (Piper/VITS:
    the Ceil of the predicted durations)."""
    import onnx

    proto = onnx.load_from_string(model)
    graph = proto.graph
    names = {o for node in graph.node for o in node.output}
    if tensor is None:
        producers = {o: node for node in graph.node for o in node.output}
        for node in graph.node:
            source = producers.get(node.input[0]) if node.op_type == "CumSum" and node.input else None
            if source is not None and source.op_type == "Ceil":
                tensor = node.input[0]
                break
    if tensor is None or tensor not in names:
        return model, None
    if all(o.name != tensor for o in graph.output):
        graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    return proto.SerializeToString(), tensor


def phoneme_word_spans(symbols: Sequence[str], samples: Sequence[int]) -> list[tuple[int, int]]:
    """(start, end) sample of each spoken run of phonemes: symbols and their durations in
    samples, in order; spaces and punctuation separate runs and are not part of any."""
    spans: list[tuple[int, int]] = []
    position = 0
    start: int | None = None
    for symbol, n in zip(symbols, samples, strict=True):
        if symbol in _SILENT or not symbol.strip():
            if start is not None:
                spans.append((start, position))
                start = None
        elif start is None:
            start = position
        position += int(n)
    if start is not None:
        spans.append((start, position))
    return spans


def written_words(sentence: str) -> list[str]:
    """The sentence's words as written (punctuation stays on its word, as in Whisper's words);
    text without spaces (Chinese, Japanese) is one word per character run between punctuation."""
    words = [w for w in sentence.split() if any(ch.isalnum() for ch in w)]
    if len(words) == 1 and len(words[0]) > 4 and not re.search(r"[A-Za-z]", words[0]):
        return [w for w in re.findall(r"\w+[^\w\s]*", words[0])] or words
    return words


def sentence_words(
    sentence: str, spans: Sequence[tuple[int, int]], rate: int, *, length: int | None = None
) -> list[WordTiming]:
    """The written words of `sentence` timed by the phoneme runs `spans` (samples at `rate`).

    Same count: word k takes run k. Otherwise each word takes the share of the runs' phoneme
    time that its share of the sentence's letters points to (cumulative letters mapped onto
    cumulative spoken time, so words keep their order and never overlap). No runs at all
    (an engine without durations): the words share `length` samples by letters."""
    words = written_words(sentence)
    if not words:
        return []
    if len(spans) == len(words):
        return [
            WordTiming(w, round(a / rate, 3), round(b / rate, 3))
            for w, (a, b) in zip(words, spans, strict=True)
        ]
    if not spans:
        spans = [(0, int(length or 0))]
    # Spoken time as a piecewise-linear function of "progress through the letters" in [0, 1].
    durations = np.array([b - a for a, b in spans], dtype=np.float64)
    spoken = np.concatenate([[0.0], np.cumsum(durations)])
    total = spoken[-1] or 1.0

    def at(progress: float) -> float:
        """Sample position `progress` of the way through the spoken runs (gaps skipped)."""
        target = progress * total
        k = int(np.clip(np.searchsorted(spoken, target, side="right") - 1, 0, len(spans) - 1))
        return spans[k][0] + min(target - spoken[k], durations[k])

    letters = np.array([sum(ch.isalnum() for ch in w) or 1 for w in words], dtype=np.float64)
    edges = np.concatenate([[0.0], np.cumsum(letters)]) / letters.sum()
    out = []
    for k, word in enumerate(words):
        start = at(edges[k])
        end = at(edges[k + 1] - 1e-9) if k + 1 < len(words) else spans[-1][1]
        out.append(WordTiming(word, round(start / rate, 3), round(max(end, start) / rate, 3)))
    return out


def character_timings(words: Sequence[WordTiming]) -> list[dict[str, object]]:
    """ElevenLabs-style alignment of the words joined by spaces: each word's characters share
    its time evenly; the space between two words spans the gap between them."""
    out: list[dict[str, object]] = []
    for k, word in enumerate(words):
        if k:
            gap_start = words[k - 1].end
            out.append({"char": " ", "start": gap_start, "end": max(gap_start, word.start)})
        step = (word.end - word.start) / max(len(word.word), 1)
        for i, ch in enumerate(word.word):
            out.append(
                {
                    "char": ch,
                    "start": round(word.start + i * step, 3),
                    "end": round(word.start + (i + 1) * step, 3),
                }
            )
    return out
