"""Word timestamps of generated speech: the engines' own durations, checked against the audio
(Whisper's word timestamps of the same audio), through speed changes and the timbre transfer."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from app.engines import registry
from app.engines.base import Synthesizer, timed_stream
from app.engines.stt.whisper import resample_to_16k
from app.engines.timbre.profile import TimbreProfile
from app.engines.timing import (
    PhonemeRun,
    WordTiming,
    character_timings,
    phoneme_word_spans,
    sentence_words,
    with_duration_output,
)
from bench.word_timestamps import aligned_starts, onsets_after_silence, start_errors

TEXT = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
# espeak joins "of the" and "on the" into one run of phonemes each.
JOINED = "The source of the huge river is the clear spring. The birch canoe slid on the smooth planks."


def _heard(audio: np.ndarray, rate: int) -> list[tuple[str, float]]:
    stt = registry.get_stt("base")
    transcript = stt.transcribe(
        resample_to_16k(audio, rate), language="en", word_timestamps=True, vad_filter=False
    )
    return [(w.word, w.start) for w in transcript.words]


def _timed(voice: Synthesizer, text: str, speed: float = 1.0) -> tuple[np.ndarray, list[WordTiming]]:
    chunks = list(timed_stream(voice, text, speed=speed))
    return np.concatenate([c.audio for c in chunks]), [w for c in chunks for w in c.words]


def _kokoro(profile: TimbreProfile | None = None) -> Synthesizer:
    from app.core.config import Settings
    from app.engines.tts.kokoro import KokoroSynthesizer, get_kokoro_engine

    return KokoroSynthesizer("af_heart", get_kokoro_engine(Settings()), (("af_heart", 1.0),), profile=profile)


def _voices() -> dict[str, Synthesizer]:
    from app.engines.tts.piper import PiperSynthesizer

    joe = registry.get_piper_engine("joe")
    return {
        "joe": joe,
        "kokoro": _kokoro(),
        # the clone path: a timbre profile through the streaming WORLD transformer
        "joe+profile": PiperSynthesizer(
            "clone", joe, TimbreProfile(f0_shift_semitones=3.0, formant_alpha=1.1)
        ),
        "kokoro+profile": _kokoro(TimbreProfile(f0_shift_semitones=-2.0, formant_alpha=0.95)),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "speed"), [("joe", 1.0), ("kokoro", 1.0), ("joe+profile", 1.3), ("kokoro+profile", 1.3)]
)
def test_word_times_match_where_whisper_hears_the_words(name: str, speed: float) -> None:
    voice = _voices()[name]
    audio, words = _timed(voice, TEXT, speed)
    rate = voice.sample_rate
    assert [w.word for w in words] == TEXT.split()
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in words)
    assert words[-1].end == pytest.approx(len(audio) / rate, abs=0.35)  # the last word ends the audio
    # Whisper's own word starts run early and wander (its timestamps come from attention, not
    # an aligner): bench/word_timestamps.py reports the figures; this catches words timed
    # against the wrong stretch of audio (a misplaced sentence or word is off by > 0.3 s).
    errors = [abs(e) for e in start_errors(words, _heard(audio, rate))]
    assert len(errors) >= 0.7 * len(words), errors
    assert float(np.median(errors)) < 0.15, errors
    assert float(np.percentile(errors, 80)) < 0.3, errors


@pytest.mark.parametrize("name", ["joe", "kokoro", "kokoro+profile"])
def test_word_starts_match_an_acoustic_aligner(name: str) -> None:
    """pocketsphinx, told the text, finds each word in the audio with an HMM (not attention
    weights): words inside sentences, and words the phonemizer joined, start where it finds them
    (it runs 20-50 ms early on words after a pause, where the truth is the energy onset)."""
    voice = _voices()[name]
    audio, words = _timed(voice, JOINED)
    found = aligned_starts(audio, voice.sample_rate, [w.word for w in words])
    errors = [abs(e) for e in start_errors(words, found)]
    assert len(errors) == len(words), found
    assert float(np.median(errors)) < 0.08, errors
    assert max(errors) < 0.16, errors


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("joe", "Table, window, garden, pencil, rocket, summer."),  # joe pauses at commas
        ("kokoro", "Table. Window. Garden. Pencil. Rocket. Summer."),  # Kokoro only between sentences
    ],
)
def test_words_start_where_their_sound_starts(name: str, text: str) -> None:
    """Every word follows a silence, so its first sound is an energy onset: the engine's word
    starts are within 40 ms of it (median). Kokoro's durations run ~70 ms behind its audio (the
    decoder's look-ahead, measured on other words); the engine corrects for it."""
    voice = _voices()[name]
    audio, words = _timed(voice, text)
    onsets = onsets_after_silence(audio, voice.sample_rate, quiet_s=0.15)
    assert len(onsets) == len(words) == 6, (onsets, words)
    errors = [abs(w.start - o) for w, o in zip(words, onsets, strict=True)]
    assert max(errors) < 0.08, (words, onsets)
    assert float(np.median(errors)) < 0.04, (words, onsets)


def test_a_faster_reading_has_earlier_words() -> None:
    voice = registry.get_piper_engine("joe")
    slow_audio, slow = _timed(voice, TEXT, 1.0)
    fast_audio, fast = _timed(voice, TEXT, 2.0)
    ratio = slow[-1].start / fast[-1].start
    assert ratio == pytest.approx(len(slow_audio) / len(fast_audio), rel=0.12)
    assert ratio > 1.6


def test_the_models_return_their_durations() -> None:
    joe = registry.get_piper_engine("joe")
    assert joe.duration_output is not None
    from app.core.config import Settings
    from app.engines.tts.kokoro import get_kokoro_engine

    assert get_kokoro_engine(Settings()).duration_output is not None
    # A graph without a duration tensor is left as it is.
    import onnx

    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = onnx.helper.make_model(graph).SerializeToString()
    assert with_duration_output(model) == (model, None)


def test_phoneme_runs_become_words() -> None:
    symbols = ["^", "h", "ə", "l", "oʊ", ",", " ", "w", "ɜː", "l", "d", ".", "$"]
    samples = [100, 10, 10, 10, 10, 50, 20, 10, 10, 10, 10, 80, 100]
    runs = phoneme_word_spans(symbols, samples)
    assert runs == [PhonemeRun(100, 140, "həloʊ"), PhonemeRun(210, 250, "wɜːld")]
    words = sentence_words("Hello, world.", runs, 100)
    assert words == [WordTiming("Hello,", 1.0, 1.4), WordTiming("world.", 2.1, 2.5)]


def test_words_the_phonemizer_joins_share_their_run_and_the_rest_keep_theirs() -> None:
    # espeak joins unstressed words: "of the" is one run, "huge" and "river" keep their own;
    # Kokoro's own durations (frames) for af_heart, gaps between runs as it spoke them.
    said = [("ðə", 3), ("sˈɔɹs", 11), ("ʌvðə", 5), ("hjˈuʤ", 10), ("ɹˈɪvəɹɹ", 20), ("ɪz", 4), ("ðə", 2),
            ("klˈɪɹ", 10), ("spɹˈɪŋ", 26)]  # fmt: skip
    runs, at = [], 0
    for phonemes, frames in said:
        runs.append(PhonemeRun(at, at + frames, phonemes))
        at += frames + 2
    words = sentence_words("The source of the huge river is the clear spring.", runs, 40)
    by_word = {w.word: w for w in words[2:6]}
    assert by_word["of"].start == runs[2].start / 40 and by_word["the"].end == runs[2].end / 40
    assert (by_word["huge"].start, by_word["huge"].end) == (runs[3].start / 40, runs[3].end / 40)
    assert (by_word["river"].start, by_word["river"].end) == (runs[4].start / 40, runs[4].end / 40)
    assert words[-1].start == runs[-1].start / 40


def test_words_the_phonemizer_splits_share_its_runs_in_order() -> None:
    # "2024" is read as three words; "Dr." as one: counts differ, times stay ordered and inside.
    spans = [PhonemeRun(a, a + 80) for a in (0, 120, 220, 320, 420, 520)]
    words = sentence_words("In 2024 Dr. Smith left.", spans, 1000)
    assert [w.word for w in words] == ["In", "2024", "Dr.", "Smith", "left."]
    assert words[0].start == 0.0 and words[-1].end == 0.6
    for a, b in zip(words, words[1:], strict=False):
        assert a.start < a.end <= b.start < b.end
    # No durations at all: the words share the length by letters.
    even = sentence_words("ab abcd", [], 600, length=600)
    assert even[1].start == pytest.approx(0.333, abs=0.01) and even[1].end == 1.0


def test_characters_follow_their_words() -> None:
    chars = character_timings([WordTiming("Hi", 0.0, 0.2), WordTiming("you", 0.3, 0.6)])
    assert "".join(str(c["char"]) for c in chars) == "Hi you"
    assert chars[2] == {"char": " ", "start": 0.2, "end": 0.3}
    assert chars[-1]["end"] == 0.6 and chars[3]["start"] == 0.3


def test_a_voice_without_durations_shares_each_sentence_by_letters() -> None:
    """XTTS and other engines that only stream audio: each sentence chunk's words share it."""

    class Plain:
        sample_rate = 1000
        languages = frozenset({"en"})

        def stream(self, text: str, **_: object) -> Iterator[np.ndarray]:
            yield np.zeros(1000, dtype=np.float32)  # "Hi there." takes 1 s
            yield np.zeros(500, dtype=np.float32)  # "Go." takes 0.5 s

    chunks = list(timed_stream(Plain(), "Hi there. Go."))
    words = [w for c in chunks for w in c.words]
    assert [w.word for w in words] == ["Hi", "there.", "Go."]
    assert words[0].start == 0.0 and words[1].end == 1.0
    assert words[2].start == 1.0 and words[2].end == 1.5
