"""When each word is spoken, from the engines' own phoneme durations (no second recognition pass).

Piper and Kokoro both predict how many frames each phoneme lasts; their ONNX graphs compute it
but do not return it, so `with_duration_output` adds that tensor to the graph's outputs when the
model is loaded. A sentence's phonemes come back as runs separated by spaces (one run per
spoken word); `sentence_words` maps the sentence's written words onto those runs: one to one
when the counts agree, else in groups (words the phonemizer joins share their run; a number it
reads as several words takes all of them).

Times are in seconds from the start of the utterance and are carried through speed changes,
sentence pauses and the timbre transfer by `app.engines.delivery` (WORLD conversion keeps
timing; a time-stretch scales it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

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


class PhonemeRun(NamedTuple):
    """One spoken run of phonemes between spaces or punctuation: a word, or words the phonemizer
    joined ("of the" -> "ʌvðə"). Samples from the start of the audio, and its symbols."""

    start: int
    end: int
    phonemes: str = ""

    def moved(self, offset: int, limit: int | None = None) -> PhonemeRun:
        """Shifted by `offset` samples, never before 0 (nor after `limit` when given)."""
        start, end = max(self.start + offset, 0), max(self.end + offset, 0)
        if limit is not None:
            start, end = min(start, limit), min(end, limit)
        return self._replace(start=start, end=end)

    def scaled(self, factor: float) -> PhonemeRun:
        return self._replace(start=round(self.start * factor), end=round(self.end * factor))


def phoneme_word_spans(symbols: Sequence[str], samples: Sequence[int]) -> list[PhonemeRun]:
    """Each spoken run of phonemes: symbols and their durations in samples, in order; spaces and
    punctuation separate runs and are not part of any."""
    runs: list[PhonemeRun] = []
    position = 0
    start: int | None = None
    said: list[str] = []
    for symbol, n in zip(symbols, samples, strict=True):
        if symbol in _SILENT or not symbol.strip():
            if start is not None:
                runs.append(PhonemeRun(start, position, "".join(said)))
                start, said = None, []
        else:
            if start is None:
                start = position
            said.append(symbol)
        position += int(n)
    if start is not None:
        runs.append(PhonemeRun(start, position, "".join(said)))
    return runs


def written_words(sentence: str) -> list[str]:
    """The sentence's words as written (punctuation stays on its word, as in Whisper's words);
    text without spaces (Chinese, Japanese) is one word per character run between punctuation."""
    words = [w for w in sentence.split() if any(ch.isalnum() for ch in w)]
    if len(words) == 1 and len(words[0]) > 4 and not re.search(r"[A-Za-z]", words[0]):
        return [w for w in re.findall(r"\w+[^\w\s]*", words[0])] or words
    return words


def sentence_words(
    sentence: str, spans: Sequence[PhonemeRun], rate: int, *, length: int | None = None
) -> list[WordTiming]:
    """The written words of `sentence` timed by the phoneme runs `spans` (samples at `rate`).

    Same count: word k takes run k. Otherwise the words and runs are paired in order by
    `group_words_and_runs` (espeak joins an unstressed short word to the next, "of the" ->
    "ʌvðə"; a number is read as several runs), so a difference stays inside its group instead of
    shifting every word of the sentence. No runs at all (an engine without durations): the words
    share `length` samples by letters."""
    words = written_words(sentence)
    if not words:
        return []
    if len(spans) == len(words):
        return [
            WordTiming(w, round(run.start / rate, 3), round(run.end / rate, 3))
            for w, run in zip(words, spans, strict=True)
        ]
    if not spans:
        return _by_letters(words, [PhonemeRun(0, int(length or 0))], rate)
    out: list[WordTiming] = []
    for (w0, w1), (r0, r1) in group_words_and_runs([_letters(w) for w in words], spans):
        out += _by_letters(words[w0:w1], spans[r0:r1], rate)
    return out


def _letters(word: str) -> int:
    """How long a written word is to say, roughly: its letters, a digit as three (numbers are
    read out as words)."""
    return sum(3 if ch.isdigit() else 1 for ch in word if ch.isalnum()) or 1


# Pairing words with phoneme runs: a group of several words or several runs costs this much per
# extra member, and so does each primary stress in a run that joins words (espeak joins only
# unstressed words: "of the", "on the", "than a").
_EXTRA_MEMBER_COST = 0.5
_JOINED_STRESS_COST = 1.0
_MAX_GROUP = 4
_NOT_SOUNDS = frozenset("ˈˌː")


def _sounds(run: PhonemeRun) -> int:
    return sum(ch not in _NOT_SOUNDS for ch in run.phonemes)


def group_words_and_runs(
    letters: Sequence[int], runs: Sequence[PhonemeRun]
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Consecutive words paired with consecutive phoneme runs, one side of each pair a single
    item: ((first word, end), (first run, end)) in order, covering both. Chosen by dynamic
    programming: each group's share of the sentence's letters as near as it can be to its share
    of the runs' phonemes (of their time when the runs carry no symbols), |log ratio|, plus the
    costs above for every group that is not one to one."""
    n_words, n_runs = len(letters), len(runs)
    with_symbols = all(run.phonemes for run in runs)
    sizes = [max(_sounds(r) if with_symbols else r.end - r.start, 1) for r in runs]
    word_at = np.concatenate([[0.0], np.cumsum(letters)]) / float(sum(letters))
    run_at = np.concatenate([[0.0], np.cumsum(sizes)]) / float(sum(sizes))

    def cost(w0: int, w1: int, r0: int, r1: int) -> float:
        share = float(np.log((word_at[w1] - word_at[w0]) / (run_at[r1] - run_at[r0])))
        extra = (w1 - w0 - 1) + (r1 - r0 - 1)
        stressed = runs[r0].phonemes.count("ˈ") if w1 - w0 > 1 else 0
        return abs(share) + _EXTRA_MEMBER_COST * extra + _JOINED_STRESS_COST * stressed

    # A word may take many runs where the writing has no spaces (a Chinese clause is one "word").
    most_runs = max(_MAX_GROUP, -(-2 * n_runs // n_words))
    steps = [(m, 1) for m in range(1, _MAX_GROUP + 1)] + [(1, m) for m in range(2, most_runs + 1)]
    best = np.full((n_words + 1, n_runs + 1), np.inf)
    back: dict[tuple[int, int], tuple[int, int]] = {}
    best[0, 0] = 0.0
    for i in range(n_words + 1):
        for k in range(n_runs + 1):
            if not np.isfinite(best[i, k]):
                continue
            for dw, dr in steps:
                i2, k2 = i + dw, k + dr
                if i2 <= n_words and k2 <= n_runs:
                    value = best[i, k] + cost(i, i2, k, k2)
                    if value < best[i2, k2]:
                        best[i2, k2] = value
                        back[(i2, k2)] = (i, k)
    if not np.isfinite(best[n_words, n_runs]):  # groups too large to pair: all in one
        return [((0, n_words), (0, n_runs))]
    pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []
    at = (n_words, n_runs)
    while at != (0, 0):
        before = back[at]
        pairs.append(((before[0], at[0]), (before[1], at[1])))
        at = before
    return pairs[::-1]


def _by_letters(words: Sequence[str], spans: Sequence[PhonemeRun], rate: int) -> list[WordTiming]:
    """`words` sharing the spoken time of `spans` by letters (cumulative letters mapped onto
    cumulative spoken time, gaps skipped, so words keep their order and never overlap)."""
    durations = np.array([run.end - run.start for run in spans], dtype=np.float64)
    spoken = np.concatenate([[0.0], np.cumsum(durations)])
    total = spoken[-1] or 1.0

    def at(progress: float) -> float:
        """Sample position `progress` of the way through the spoken runs (gaps skipped)."""
        target = progress * total
        k = int(np.clip(np.searchsorted(spoken, target, side="right") - 1, 0, len(spans) - 1))
        return spans[k].start + min(target - spoken[k], durations[k])

    letters = np.array([_letters(w) for w in words], dtype=np.float64)
    edges = np.concatenate([[0.0], np.cumsum(letters)]) / letters.sum()
    out = []
    for k, word in enumerate(words):
        start = at(edges[k])
        end = at(edges[k + 1] - 1e-9) if k + 1 < len(words) else spans[-1].end
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
