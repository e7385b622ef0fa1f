"""Text normalisation and sentence chunking for TTS."""

from __future__ import annotations

import pytest

from app.core.errors import InvalidInput
from app.engines.text import normalise_text, number_to_words, split_sentences


def test_normalise_strips_nul_and_control_characters() -> None:
    out = normalise_text("Hel\x00lo\x07 there\u200b,\x1b friend\ufeff.")
    assert out == "Hello there, friend."
    assert not any(ord(c) < 32 for c in out)


def test_normalise_collapses_whitespace_and_keeps_paragraphs() -> None:
    assert normalise_text("  one \t two\r\n three  ") == "one two three"
    assert normalise_text("First para\n\n\n\nsecond   para") == "First para\n\nsecond para"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I have 3 cats.", "I have three cats."),
        ("It costs $3.50 today.", "It costs three dollars and fifty cents today."),
        ("Growth was 25% & rising.", "Growth was twenty five percent and rising."),
        ("The 2nd of 1,200 items.", "The second of one thousand two hundred items."),
        ("Pi is 3.14 roughly.", "Pi is three point one four roughly."),
        ("Born in 1984.", "Born in nineteen eighty four."),
        ("It was -5 degrees.", "It was minus five degrees."),
    ],
)
def test_normalise_expands_simple_english_numbers_and_symbols(text: str, expected: str) -> None:
    assert normalise_text(text) == expected


def test_normalise_leaves_digits_to_espeak_for_other_languages() -> None:
    assert normalise_text("Ich habe 3 Katzen.", language="de") == "Ich habe 3 Katzen."


def test_number_words() -> None:
    assert number_to_words(0) == "zero"
    assert number_to_words(42) == "forty two"
    assert number_to_words(1_000_001) == "one million and one"
    assert number_to_words(315) == "three hundred and fifteen"


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01", "... !!! ???", "\u200b\u200b"])
def test_nothing_speakable_is_invalid(text: str) -> None:
    with pytest.raises(InvalidInput, match="Text is empty"):
        normalise_text(text)
    with pytest.raises(InvalidInput, match="Text is empty"):
        split_sentences(text)


def test_split_sentences_basic_and_abbreviations() -> None:
    text = "Hello there! Dr. Smith met Mr. Brown, e.g. at noon. Did he? Yes… Then J. R. left."
    assert split_sentences(text) == [
        "Hello there!",
        "Dr. Smith met Mr. Brown, e.g. at noon.",
        "Did he?",
        "Yes…",
        "Then J. R. left.",
    ]


def test_split_sentences_paragraph_without_stop_is_a_sentence() -> None:
    assert split_sentences("A title\n\nThe body text.") == ["A title", "The body text."]


def test_long_sentence_is_cut_at_commas_then_spaces() -> None:
    clause = "the quick brown fox jumps over the lazy dog"
    text = ", ".join([clause] * 12) + "."
    chunks = split_sentences(text, max_chars=120)
    assert all(len(c) <= 120 for c in chunks)
    assert all(c.endswith((",", ".")) for c in chunks)  # cut after a comma, not mid-clause
    assert " ".join(chunks).replace(" ", "") == text.replace(" ", "")
    words = " ".join(["word"] * 200)
    chunks = split_sentences(words, max_chars=50)
    assert all(len(c) <= 50 for c in chunks) and all(not c.startswith(" ") for c in chunks)
    assert " ".join(chunks) == words


def test_unbreakable_run_is_hard_cut() -> None:
    chunks = split_sentences("x" * 250, max_chars=100)
    assert [len(c) for c in chunks] == [100, 100, 50]


def test_stray_punctuation_is_not_its_own_chunk() -> None:
    assert split_sentences("Hello. ... Bye.") == ["Hello....", "Bye."]
