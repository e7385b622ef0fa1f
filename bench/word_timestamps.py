"""Word timestamps of generated speech against forced alignment by Whisper, and by an acoustic aligner.

For joe (Piper), a Kokoro voice (af_heart) and a clone (LibriSpeech speaker M_1040, from
tests/librispeech/), Harvard lists 1 and 2 are spoken at speed 1.0 and 1.25 with the words
timed by the engines' own durations (`app.engines.base.timed_stream`, what the API returns).
Whisper base transcribes the same audio with word timestamps; the two word lists are matched
by spelling (difflib; a stretch misheard word for word is paired by position), and the error of
each matched word's start is reported: median and 95th percentile (goal: <= 60 ms and <= 150
ms), with the share of words matched; and the median signed error (ours - Whisper's: Whisper's
word starts run early, its timestamps come from attention weights, not an acoustic aligner) with
the errors around that bias.

Then, at speed 1.0, the same errors split by where the word is: first in its sentence (after a
pause) or inside a sentence; and, independent of Whisper, where the audio's spectral change lies
around our word starts in both positions (`spectral_change_shift`).

A second judge, an acoustic forced aligner (pocketsphinx's HMM with its en-us model, told the
text: `aligned_starts`), times the same audio: the same error table against it, by position; and
its own bias where the truth is known (words after a pause: the energy onset - its start).

The last table judges by the audio itself too: words read after a pause (joe pauses at commas,
Kokoro between one-word sentences) start where their sound does, so each word's start is
compared with the energy onset after the silence before it (signed median: ours - the onset).

    .venv/bin/python bench/word_timestamps.py
"""

from __future__ import annotations

import difflib
import re
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

from app.audio import decode_audio  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.engines import registry  # noqa: E402
from app.engines.base import Synthesizer, timed_stream  # noqa: E402
from app.engines.stt.whisper import resample_to_16k  # noqa: E402
from app.engines.timing import TimedChunk, WordTiming  # noqa: E402
from bench.voice_matrix import HARVARD_1, HARVARD_2  # noqa: E402

HARVARD = (HARVARD_1, HARVARD_2)
SPEEDS = (1.0, 1.25)
CLONE_SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "librispeech" / "M_1040-133433-0000.flac"


def _key(word: str, keep: str = "") -> str:
    """The word lower-cased, letters and digits only (and `keep`'s characters)."""
    return re.sub(rf"[^a-z0-9{re.escape(keep)}]", "", word.lower())


def onsets_after_silence(samples: np.ndarray, rate: int, quiet_s: float) -> list[float]:
    """Seconds where sound starts after at least `quiet_s` of quiet (5 ms RMS frames, sound at
    5% of the loudest frame): where a word after a pause begins, to check word timestamps by."""
    hop = int(0.005 * rate)
    x = np.asarray(samples, dtype=np.float64)
    frames = len(x) // hop
    if frames == 0:
        return []
    rms = np.sqrt(np.mean(x[: frames * hop].reshape(-1, hop) ** 2, axis=1))
    loud = rms > 0.05 * rms.max()
    gap = int(quiet_s / 0.005)
    return [i * 0.005 for i in range(1, len(loud)) if loud[i] and not loud[max(0, i - gap) : i].any()]


def aligned_starts(samples: np.ndarray, rate: int, words: list[str]) -> list[tuple[str, float]]:
    """Where an acoustic forced aligner puts each word's start (seconds): pocketsphinx's HMM with
    its en-us model and dictionary, told the text. A second judge beside Whisper, whose word
    times come from attention weights; a word missing from its dictionary is left out."""
    from pocketsphinx import Decoder

    x = resample_to_16k(np.asarray(samples, dtype=np.float32), rate)
    decoder = Decoder(samprate=16_000, bestpath=False, loglevel="FATAL")
    decoder.set_align_text(" ".join(k for k in (_key(w, keep="'") for w in words) if k))
    decoder.start_utt()
    decoder.process_raw((np.clip(x, -1.0, 1.0) * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    return [
        (re.sub(r"\(\d+\)$", "", seg.word), seg.start_frame / 100)  # "was(2)": a pronunciation variant
        for seg in decoder.seg()
        if not seg.word.startswith(("<", "["))  # silences and fillers
    ]


def start_errors(ours: list[WordTiming], heard: list[tuple[str, float]]) -> list[float]:
    """Our start - Whisper's, for each word both spell the same, aligned by text (difflib). A
    stretch Whisper misheard word for word ("glue" as "blue") is paired by position: Piper's
    sampling noise changes from run to run which words Whisper mishears, and the words are still
    the same words in the same places. tests/test_timestamps.py judges with this too."""
    return [error for _, error in indexed_start_errors(ours, heard)]


def indexed_start_errors(ours: list[WordTiming], heard: list[tuple[str, float]]) -> list[tuple[int, float]]:
    """As `start_errors`, each error with the index of our word it belongs to."""
    a, b = [_key(w.word) for w in ours], [_key(w) for w, _ in heard]
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return [
        (i1 + k, ours[i1 + k].start - heard[j1 + k][1])
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1)
        for k in range(i2 - i1)
    ]


INITIAL, INSIDE = "sentence-initial", "inside a sentence"


def positions(chunks: list[TimedChunk]) -> list[str]:
    """For each word of the chunks in order: INITIAL for the first of its sentence (a chunk is
    a sentence; a pause comes before it), INSIDE for the rest."""
    return [INITIAL if k == 0 else INSIDE for chunk in chunks for k in range(len(chunk.words))]


def by_position(chunks: list[TimedChunk], errors: list[tuple[int, float]]) -> dict[str, list[float]]:
    """Errors split into sentence-initial words and words inside a sentence."""
    where = positions(chunks)
    out: dict[str, list[float]] = {INITIAL: [], INSIDE: []}
    for index, error in errors:
        out[where[index]].append(error)
    return out


FLUX_SHIFTS_MS = np.arange(-200, 101, 5)


def spectral_change_shift(voice: Synthesizer, takes: int = 3) -> dict[str, tuple[int, float, float]]:
    """Where the audio's spectral change lines up with our word starts: for sentence-initial words
    and words inside a sentence, the shift (ms) of our starts at which the mean positive spectral
    flux (log power, 5 ms frames, the largest within +-10 ms) is highest, that mean, and the mean
    at -100 ms. A start on the sound has its change at shift ~0; Whisper's starts sit ~100 ms
    before ours inside sentences, so a shift of -100 ms is where they would be."""
    from scipy.signal import stft

    curves: dict[str, list[list[float]]] = {INITIAL: [], INSIDE: []}
    for _ in range(takes):  # Piper samples its durations: each take differs (Kokoro does not)
        for text in HARVARD:
            chunks = list(timed_stream(voice, text))
            audio = np.concatenate([c.audio for c in chunks]).astype(np.float64)
            hop = int(0.005 * voice.sample_rate)
            _, _, spectrum = stft(audio, voice.sample_rate, nperseg=4 * hop, noverlap=3 * hop)
            power = np.log(np.abs(spectrum) ** 2 + 1e-10)
            flux = np.concatenate([[0.0], np.maximum(np.diff(power, axis=1), 0.0).sum(axis=0)])
            flux /= flux.mean()
            words = [w for c in chunks for w in c.words]
            for word, position in zip(words, positions(chunks), strict=True):
                row = []
                for shift in FLUX_SHIFTS_MS:
                    i = int(round((word.start + shift / 1000) * voice.sample_rate / hop))
                    lo, hi = max(0, i - 2), min(len(flux), i + 3)
                    row.append(float(flux[lo:hi].max()) if hi > lo else 0.0)
                curves[position].append(row)
    out = {}
    at_minus_100 = FLUX_SHIFTS_MS.tolist().index(-100)
    for position, rows in curves.items():
        mean = np.mean(rows, axis=0)
        best = int(np.argmax(mean))
        out[position] = (int(FLUX_SHIFTS_MS[best]), float(mean[best]), float(mean[at_minus_100]))
    return out


def clone_voice(settings: Settings) -> Synthesizer:
    from app.cloning.pipeline import build_voice
    from app.engines.voices import VoiceContext

    sample = decode_audio(CLONE_SAMPLE.read_bytes(), max_seconds=60, max_sample_rate=48_000)
    result = build_voice([sample], settings, lambda p: None)
    return result.voice_artifact.synthesizer(VoiceContext("clone", settings, lambda key: b""))


# Words after a pause: joe pauses at commas, Kokoro only between sentences.
PAUSED_WORDS = (
    ("Table", "window", "garden", "pencil", "rocket", "summer"),
    ("Basket", "yellow", "forest", "candle", "mirror", "thunder"),
    ("Market", "bottle", "silver", "pocket", "lemon", "ticket"),
)


def onset_errors(voice: Synthesizer, separator: str) -> tuple[list[float], list[float]]:
    """For each word read after a pause, in seconds: our start - the sound's onset, and the
    onset - the acoustic aligner's start (how early the aligner itself runs)."""
    ours: list[float] = []
    aligner: list[float] = []
    for words in PAUSED_WORDS:
        chunks = list(timed_stream(voice, separator.join(words) + "."))
        audio = np.concatenate([c.audio for c in chunks])
        timed = [w for c in chunks for w in c.words]
        onsets = onsets_after_silence(audio, voice.sample_rate, quiet_s=0.15)
        if len(onsets) == len(timed):  # else a pause was too short to find every onset: skipped
            ours += [w.start - onset for w, onset in zip(timed, onsets, strict=True)]
            found = aligned_starts(audio, voice.sample_rate, list(words))
            if len(found) == len(onsets):
                aligner += [onset - start for onset, (_, start) in zip(onsets, found, strict=True)]
    return ours, aligner


def _table_row(name: str, speed: float, total: int, errors: list[float]) -> str:
    signed = np.array(errors) * 1000
    e = np.abs(signed)
    bias = float(np.median(signed))
    spread = np.abs(signed - bias)
    return (
        f"{name:22} {speed:5.2f} {total:5d} {len(e) / total:7.0%} {np.median(e):9.0f} "
        f"{np.percentile(e, 95):7.0f} {e.max():7.0f} {bias:+8.0f} {np.median(spread):8.0f} "
        f"{np.percentile(spread, 95):7.0f}"
    )


def _position_rows(judge: str, by_place: dict[str, dict[str, list[float]]]) -> None:
    print(
        f"\n{'voice, speed 1.0, vs ' + judge:30} {'position':18} {'words':>5} "
        f"{'signed median':>13} {'|e| median':>10} {'p95':>5}"
    )
    for name, placed in by_place.items():
        for position, found in placed.items():
            signed = np.array(found) * 1000
            print(
                f"{name:30} {position:18} {len(signed):5d} {np.median(signed):+13.0f} "
                f"{np.median(np.abs(signed)):10.0f} {np.percentile(np.abs(signed), 95):5.0f}"
            )


def main() -> None:
    settings = Settings()
    stt = registry.get_stt("base", settings)
    from app.engines.tts.kokoro import KokoroSynthesizer, get_kokoro_engine

    voices: list[tuple[str, Synthesizer]] = [
        ("joe", registry.get_piper_engine("joe", settings)),
        (
            "af_heart (Kokoro)",
            KokoroSynthesizer("af_heart", get_kokoro_engine(settings), (("af_heart", 1.0),)),
        ),
        ("clone of M_1040", clone_voice(settings)),
    ]
    header = (
        f"{'voice':22} {'speed':>5} {'words':>5} {'matched':>7} {'median ms':>9} {'p95 ms':>7} {'max ms':>7}"
        f" {'bias ms':>8} {'|e-bias|':>8} {'p95':>7}"
    )
    judges = ("Whisper", "the aligner")
    rows: dict[str, list[str]] = {judge: [] for judge in judges}
    by_place: dict[str, dict[str, dict[str, list[float]]]] = {judge: {} for judge in judges}
    for name, voice in voices:
        for speed in SPEEDS:
            errors: dict[str, list[float]] = {judge: [] for judge in judges}
            placed: dict[str, dict[str, list[float]]] = {judge: {} for judge in judges}
            total = 0
            for text in HARVARD:
                chunks = list(timed_stream(voice, text, speed=speed))
                audio = np.concatenate([c.audio for c in chunks])
                words = [w for c in chunks for w in c.words]
                transcript = stt.transcribe(
                    resample_to_16k(audio, voice.sample_rate),
                    language="en",
                    word_timestamps=True,
                    vad_filter=False,
                )
                found = {
                    "Whisper": [(w.word, w.start) for w in transcript.words],
                    "the aligner": aligned_starts(audio, voice.sample_rate, [w.word for w in words]),
                }
                for judge in judges:
                    indexed = indexed_start_errors(words, found[judge])
                    errors[judge] += [e for _, e in indexed]
                    for position, some in by_position(chunks, indexed).items():
                        placed[judge].setdefault(position, []).extend(some)
                total += len(words)
            for judge in judges:
                rows[judge].append(_table_row(name, speed, total, errors[judge]))
                if speed == 1.0:
                    by_place[judge][name] = placed[judge]
    for judge in judges:
        print(f"\nword starts: ours - {judge}'s (bias: the signed median)")
        print(header)
        for row in rows[judge]:
            print(row, flush=True)
    for judge in judges:
        _position_rows(judge, by_place[judge])
    print(
        f"\n{'voice, spectral change':30} {'position':18} "
        f"{'best shift ms':>13} {'flux there':>10} {'at -100 ms':>10}"
    )
    for name, voice in voices[:2]:
        for position, (shift, peak, early) in spectral_change_shift(voice).items():
            print(f"{name:30} {position:18} {shift:+13d} {peak:10.2f} {early:10.2f}")
    print(
        f"\n{'voice, words after a pause':28} {'words':>5} {'signed median ms':>16} {'|error| median ms':>17}"
        f" {'onset - aligner ms':>18}"
    )
    for name, voice, separator in ((*voices[0], ", "), (*voices[1], ". ")):
        ours, aligner = onset_errors(voice, separator)
        signed = np.array(ours) * 1000
        print(
            f"{name:28} {len(signed):5d} {np.median(signed):+16.0f} {np.median(np.abs(signed)):17.0f}"
            f" {1000 * np.median(aligner):+18.0f}"
        )


if __name__ == "__main__":
    main()
