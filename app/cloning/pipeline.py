"""From decoded samples to a cloned voice: a timbre profile on a Piper base voice, tuned and scored.

Stages (progress in brackets):
1. prepare [12]: trim silence, loudness-normalise, require speech in every sample.
2. embed [22]: speaker embedding per sample; refuse samples of different speakers. The last
   ~30% of every sample (>= 2 s) is held out; only the rest is used to estimate and tune,
   so the quality score is measured on audio the tuning never saw.
3. base voice [30]: Whisper transcribes the start of the upload (<= PARALLEL_SECONDS; the
   speaker's statistics are computed meanwhile) and each candidate base reads those words, or
   the calibration text when Whisper heard fewer than READING_MIN_WORDS of the clone's language.
   The base is the voice bank's blend nearest the speaker, or a Piper voice (joe, or an
   operator-installed one of the language) whose reading is nearer the speaker than the blend's
   by a margin (PIPER_BASE_MARGIN). When Whisper heard the person's words (a wideband upload,
   rendered by HiFi-GAN: `pitch_by_model`), the blend reads them with the person's pitch moved
   inside Kokoro (`_pitched_base`: the blend's own predicted F0 curve mapped to the person's
   log-F0 centre and spread), and WORLD plays no part in the clone.
4. statistics [42]: the base's reading is paired with the person's speech by what was said
   (Whisper's encoder frames, dynamic time warping). Otherwise the reading is also
   WORLD-analysed (its statistics for a bank base; a Piper base's come from SOURCE_PASSAGE,
   once per process). The test text is read (by the bank's blend from stage 3 on, and
   WORLD-analysed when WORLD will convert it) in the background meanwhile.
5. nearest built-in [50]: the derived built-in voices (profiles on the same base) scored on
   the base's reading; their warp shapes also seed the search, so a clone may start from e.g.
   "ava" while its profile stays relative to the base voice's raw output.
6. tune [50-85]: the WORLD way (a Piper base, the calibration text, a narrowband upload, WORLD
   rendering alone) moves the base's pitch to the person's and searches candidate profiles
   (formant warps, EQ strength and detail, breathiness) applied to the analysed reading, scored
   by speaker-encoder cosine to the calibration audio; the best one wins. A pitched blend has
   nothing to tune (PITCH_BY_MODEL).
6b. mel mapping [88]: each log-mel band of the clone's reading (WORLD's output, or Kokoro's
   own when it moved the pitch) is moved to the speaker's mean and spread (both over the frames
   the VAD calls speech: the room between a reader's words is not their voice), then its first
   cepstral coefficients are mixed half way to the speaker's covariance; then a residual
   codebook adds what those miss frame by frame, learnt from the same reading as parallel
   speech: the clone's reading is compared with the person's speech frame by frame where stage
   4 paired them. The clone's speech is then rendered by HiFi-GAN from that mel spectrogram
   (app.engines.timbre.vocoder). The mapping is learnt twice: from the calibration part alone
   for the score, and from the whole upload for the voice that is stored.
7. score [92]: a different text, spoken through the real speaking path with the profile whose
   mapping never heard the held-out audio, against that audio -> `quality_similarity`; the base
   voice's score is kept too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from app.audio import DecodedAudio, loudness_normalise, resample, speech_seconds, trim_silence
from app.cloning.analysis import VoiceStats, alpha_from_formants, features_stats, make_profile, voice_stats
from app.cloning.texts import CALIBRATION_TEXT, SOURCE_PASSAGE, TEST_TEXT
from app.core.config import Settings
from app.core.errors import InvalidInput
from app.engines.base import SpeakerEmbedder
from app.engines.timbre.profile import TimbreProfile
from app.engines.timbre.vocoder import RESIDUAL_COEFFS, band_limit
from app.engines.voices import VoiceArtifact

if TYPE_CHECKING:
    from app.engines.stt.whisper import WhisperEngine
    from app.engines.timbre.world import WorldFeatures
    from app.engines.tts.piper import PiperEngine

log = logging.getLogger(__name__)

DEFAULT_BASE_VOICE = "joe"
# A Piper base wins over the voice bank's blend only when its reading (of the person's words or
# the calibration text) is this much nearer the speaker. Raw similarity before the transfer is a
# weak guide to the finished clone: joe's reading varies by ~0.01 from take to take (Piper's
# sampling noise) and won a real speaker by that much, whose clone on the blend then scored 0.89
# against 0.81 on joe; on six real speakers cloned on both, the blend's clone was as good or
# better on every one (docs/benchmarks.md).
PIPER_BASE_MARGIN = 0.05
WORK_RATE = 22_050  # samples are decoded at the base voices' rate (Piper joe)
TARGET_LUFS = -20.0
MIN_SPEECH_SECONDS = 1.0
# Resemblyzer cosine between two recordings: same speaker >= 0.91, different <= 0.84 (measured).
# Below this the uploads are almost certainly different people (or one is not the speaker).
SAME_SPEAKER_MIN = 0.75
# The d-vector judge on the same LibriSpeech pairs: same speaker >= 0.70, different 0.41 mean.
SECOND_JUDGE_SAME_MIN = 0.6
HELD_OUT_FRACTION = 0.3
HELD_OUT_MIN_SECONDS = 2.0
SCORED_MIN_SPEECH_SECONDS = 4.0  # less speech in all: nothing held out, no score (held_out_parts)
GAP_SECONDS = 0.25  # silence between concatenated parts for the embeddings
COARSE_ALPHAS = (0.90, 0.97, 1.04, 1.11, 1.18, 1.25)
TUNE_THREADS = 2
READING_MIN_WORDS = 8  # a transcript shorter than this pairs too few frames for the residual
# The residual codebook learns from at most this much of the calibration part: 6-9 s gave 350-700
# frame pairs on the LibriSpeech uploads; a longer part costs transcription, reading and analysis.
PARALLEL_SECONDS = 9.0
PITCH_BY_MODEL = "pitch by the model"  # Kokoro moves the pitch, the mel mapping the rest (no WORLD)
PITCH_MIN_FRAMES = 50  # voiced frames of the blend's F0 curve (~0.6 s) to measure its pitch on

Progress = Callable[[int], None]


@dataclass
class CloneResult:
    voice_artifact: VoiceArtifact  # what is stored for the voice (TimbreArtifact or KokoroCloneArtifact)
    embedding: list[float]
    quality_similarity: float | None
    clean_samples: list[np.ndarray] = field(default_factory=list)  # trimmed, normalised, at sample_rate
    sample_rate: int = 22_050

    @property
    def artifact(self) -> dict[str, object]:
        """The artifact as stored (JSON object)."""
        return self.voice_artifact.to_json()


@dataclass
class _Sample:
    audio: np.ndarray  # float32 mono at the working rate, trimmed and normalised
    band_rate: int  # the rate it was recorded at (bounds its bandwidth)
    speech_seconds: float


# --------------------------------------------------------------------------- preparation


def prepare_samples(samples: list[DecodedAudio], rate: int) -> list[_Sample]:
    """Resample to the working rate, trim, loudness-normalise; a sample without speech fails the clone."""
    many = len(samples) > 1
    out = []
    for n, s in enumerate(samples, start=1):
        label = f"Sample {n}" if many else "The sample"
        x = np.asarray(s.samples, dtype=np.float32).reshape(-1)
        if s.sample_rate != rate:
            x = resample(x, s.sample_rate, rate)
        x = trim_silence(x, rate)
        speech = speech_seconds(x, rate) if len(x) else 0.0
        if speech < MIN_SPEECH_SECONDS:
            raise InvalidInput(
                f"{label} has no speech"
                if speech == 0.0
                else f"{label} has only {speech:.1f} s of speech; record at least 3 s of someone talking"
            )
        x = loudness_normalise(x, rate, TARGET_LUFS)
        out.append(_Sample(x, int(s.source_rate or s.sample_rate), speech))
    return out


def split_held_out(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """One recording as (upload, held-out) by duration: the last ~30% (>= 2 s, <= half) cut at
    the quietest 20 ms near the mark. How the tests cut a LibriSpeech utterance into what a clone
    is made from and what it is judged on (bench/clone_quality.py did too until stop 45); the job
    and the bench divide by speech (`held_out_share`, `split_speech`)."""
    n = len(x)
    held = min(max(HELD_OUT_FRACTION * n, HELD_OUT_MIN_SECONDS * rate), 0.5 * n)
    mark = quietest_near(x, rate, int(n - held), int(n - held) + int(0.4 * rate))
    return x[:mark], x[mark:]


def held_out_share(speech: float) -> float:
    """The share of `speech` seconds to hold out for the score: ~30% (>= 2 s, <= half); none of
    no speech (the bench calls it on whole recordings, the job only past SCORED_MIN_SPEECH_SECONDS)."""
    if speech <= 0.0:
        return 0.0
    return min(max(HELD_OUT_FRACTION * speech, HELD_OUT_MIN_SECONDS), 0.5 * speech) / speech


def held_out_parts(samples: list[_Sample], rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(calibration, held-out) of each prepared sample: the held-out parts, at the samples'
    ends and cut at pauses, hold ~30% of all the speech (>= 2 s, <= half). Divided by speech,
    not duration: a LibriSpeech reader's upload that ends in 2.5 s of room noise held out noise
    (0.06 s of speech), and the job scored his clone 0.45 where it scores 0.67 on his other
    speech. With less than SCORED_MIN_SPEECH_SECONDS of speech in all, nothing is held out: the
    voice needs every second of it, and what could be spared is too little to judge on (the
    clone then has no held-out score)."""
    total = sum(s.speech_seconds for s in samples)
    if total < SCORED_MIN_SPEECH_SECONDS:
        return [(s.audio, s.audio[:0]) for s in samples]
    share = held_out_share(total)
    return [split_speech(s.audio, rate, share) for s in samples]


def split_speech(x: np.ndarray, rate: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """`x` cut at the quietest 20 ms near where the last `share` of its speech begins."""
    from app.audio.clean import VAD_FRAME_MS, speech_mask

    mask = speech_mask(x, rate)
    if not mask.any():
        return x, x[:0]
    after = np.cumsum(mask[::-1])[::-1]  # speech frames from each frame to the end
    start = int(np.flatnonzero(after >= share * after[0])[-1])
    mark = int(start * VAD_FRAME_MS * rate / 1000)
    cut = quietest_near(x, rate, mark, mark + int(0.4 * rate))
    return x[:cut], x[cut:]


def quietest_near(x: np.ndarray, rate: int, mark: int, last: int) -> int:
    """The middle of the quietest 20 ms between 0.4 s before `mark` and `last` (a pause to cut
    at), or `mark` when that span is too short."""
    frame = max(1, int(0.02 * rate))
    lo, hi = max(frame, mark - int(0.4 * rate)), min(len(x) - frame, last)
    if hi - lo <= 2 * frame:
        return mark
    starts = np.arange(lo, hi - frame, frame // 2)
    energy = [float(np.mean(np.square(x[s : s + frame], dtype=np.float64))) for s in starts]
    return int(starts[int(np.argmin(energy))] + frame // 2)


def _join(parts: list[np.ndarray], rate: int) -> np.ndarray:
    gap = np.zeros(int(GAP_SECONDS * rate), dtype=np.float32)
    out: list[np.ndarray] = []
    for p in parts:
        out.extend([np.asarray(p, dtype=np.float32), gap])
    return np.concatenate(out[:-1]) if out else np.zeros(0, dtype=np.float32)


def check_same_speaker(embeddings: list[np.ndarray], second: list[np.ndarray] | None = None) -> float:
    """Lowest pairwise cosine; raise naming the least similar pair when it is below
    SAME_SPEAKER_MIN and the second judge (when given) agrees they differ. Short samples of one
    person can fall below the first threshold alone: three ~3 s thirds of one LibriSpeech
    utterance scored 0.74 (measured); the d-vector judge still called them one person."""
    from app.engines.speaker import cosine

    worst, pair = 1.0, (0, 0)
    for i in range(len(embeddings)):
        for j in range(i + 1, len(embeddings)):
            c = cosine(embeddings[i], embeddings[j])
            if c < worst:
                worst, pair = c, (i, j)
    a, b = pair
    if worst < SAME_SPEAKER_MIN and (second is None or cosine(second[a], second[b]) < SECOND_JUDGE_SAME_MIN):
        raise InvalidInput(
            f"Samples {a + 1} and {b + 1} are from different speakers (voice similarity {worst:.2f}); "
            "upload recordings of one person only"
        )
    return worst


# --------------------------------------------------------------------------- base voices


_source_cache: dict[str, VoiceStats] = {}
_source_lock = threading.Lock()


def source_stats(key: str, engine: PiperEngine) -> VoiceStats:
    """The base voice's statistics from ~30 s of it reading a fixed passage; once per process."""
    stats = _source_cache.get(key)
    if stats is None:
        with _source_lock:
            stats = _source_cache.get(key)
            if stats is None:
                rate = int(engine.sample_rate)
                chunks = list(engine.stream(SOURCE_PASSAGE))
                stats = _source_cache[key] = voice_stats([np.asarray(c) for c in chunks], rate)
    return stats


def base_candidates(settings: Settings, language: str | None) -> list[str]:
    """Piper voices a clone can be built on: joe plus operator-installed Piper voices of the language."""
    from app.engines.catalogue import builtin_voices
    from app.engines.languages import language_family

    keys = [DEFAULT_BASE_VOICE]
    family = language_family(language) if language else "en"
    for voice in builtin_voices(settings.resolved_models_dir):
        if voice.backend != "piper" or voice.model_path is None or not voice.engine or voice.engine in keys:
            continue
        if voice.language == family:
            keys.append(voice.engine)
    return keys


def _derived_builtins(base_key: str) -> list[tuple[str, TimbreProfile]]:
    """Built-in voices defined as a timbre profile on this base (their shapes seed the search)."""
    from app.engines.catalogue import BUILTIN_VOICES

    return [
        (v.key, v.profile)
        for v in BUILTIN_VOICES
        if v.profile is not None and v.backend == "piper" and v.engine == base_key
    ]


# --------------------------------------------------------------------------- tuning


class _Tuner:
    """Scores candidate profiles on one pre-analysed calibration utterance (WORLD analysis done once)."""

    def __init__(
        self, calib_audio: np.ndarray, rate: int, target: np.ndarray, encoder: SpeakerEmbedder
    ) -> None:
        from app.engines.timbre import world

        self.rate = rate
        self.target = target
        self.encoder = encoder
        self.feats = world.analyze(np.asarray(calib_audio, dtype=np.float64), rate)
        self.scores: list[dict[str, object]] = []

    def score(self, profile: TimbreProfile, label: str) -> float:
        from app.engines.speaker import cosine
        from app.engines.timbre import world
        from app.engines.timbre.transformer import apply_profile

        y = world.synthesize(apply_profile(self.feats, profile))
        value = cosine(self.encoder.embed(y.astype(np.float32), self.rate), self.target)
        self.scores.append({"candidate": label, "similarity": round(value, 4)})
        return value


@dataclass
class _Candidate:
    alpha: float
    alpha_high: float | None = None
    split_hz: float = 1500.0
    eq_strength: float = 1.0
    breathiness: float = 0.0
    eq_per_octave: int = 6

    def label(self) -> str:
        high = "" if self.alpha_high is None else f"/{self.alpha_high:.3f}@{self.split_hz:.0f}"
        eq = f"{self.eq_strength:g}" + (f"@{self.eq_per_octave}/oct" if self.eq_per_octave != 6 else "")
        return f"warp {self.alpha:.3f}{high} eq {eq} breath {self.breathiness:g}"

    def profile(self, source: VoiceStats, target: VoiceStats) -> TimbreProfile:
        return make_profile(
            source,
            target,
            alpha=self.alpha,
            alpha_high=self.alpha_high,
            split_hz=self.split_hz,
            eq_strength=self.eq_strength,
            eq_per_octave=self.eq_per_octave,
            breathiness=self.breathiness,
        )


def tune(
    tuner: _Tuner,
    source: VoiceStats,
    target: VoiceStats,
    derived: list[tuple[str, TimbreProfile]],
    progress: Callable[[float], None],
) -> tuple[_Candidate, float]:
    """Coarse warp grid (plus the formant estimate and the built-ins' warp shapes), then refine
    the upper-formant warp, EQ strength and detail, and breathiness around the best.
    ~16 evaluations in 5 rounds; each is one WORLD synthesis of the calibration passage and one embedding."""
    cache: dict[tuple[float, float | None, float, float, float, int], float] = {}

    def run(c: _Candidate) -> float:
        c.alpha = round(float(np.clip(c.alpha, 0.8, 1.3)), 3)
        if c.alpha_high is not None:
            c.alpha_high = round(float(np.clip(c.alpha_high, 0.8, 1.3)), 3)
            if c.alpha_high == c.alpha:
                c.alpha_high = None
        key = (c.alpha, c.alpha_high, c.split_hz, c.eq_strength, c.breathiness, c.eq_per_octave)
        if key not in cache:
            cache[key] = tuner.score(c.profile(source, target), c.label())
        return cache[key]

    first = [_Candidate(alpha_from_formants(source, target))]
    first += [_Candidate(a) for a in COARSE_ALPHAS]
    first += [_Candidate(p.formant_alpha, p.formant_alpha_high, p.formant_split_hz) for _, p in derived]
    steps = len(first) + 9
    best, best_score, done = first[0], -2.0, 0
    # Each round on two threads (WORLD synthesis releases the GIL; the encoders are thread-safe):
    # the coarse grid, then pairs of refinements around the best so far; each round depends on
    # the previous one's outcome.
    with ThreadPoolExecutor(max_workers=TUNE_THREADS) as pool:

        def consider(candidates: list[_Candidate]) -> None:
            nonlocal best, best_score, done
            for c, s in zip(candidates, pool.map(run, candidates), strict=True):
                if s > best_score:
                    best, best_score = c, s
            done += len(candidates)
            progress(min(done / steps, 1.0))

        consider(first)
        b = best

        def shifted(da: float) -> _Candidate:  # both warps move together
            high = None if b.alpha_high is None else b.alpha_high + da
            return _Candidate(b.alpha + da, high, b.split_hz)

        consider([shifted(-0.035), shifted(0.035)])
        b = best
        high = b.alpha_high if b.alpha_high is not None else b.alpha
        consider([_Candidate(b.alpha, high + dh, b.split_hz) for dh in (-0.08, 0.08)])
        b = best
        consider(
            [_Candidate(b.alpha, b.alpha_high, b.split_hz, eq_strength=strength) for strength in (0.0, 0.6)]
        )
        b = best
        # Finer EQ (1/12 octave) was chosen for most targets and helped on held-out clips; 1/24
        # raised calibration scores only (measured): it fits the calibration text, not the voice.
        # Breathiness is tried on both EQ details in the same round.
        consider(
            [
                replace(b, eq_per_octave=12),
                replace(b, breathiness=0.3),
                replace(b, eq_per_octave=12, breathiness=0.3),
            ]
        )
    return best, best_score


@dataclass
class HeardSpeech:
    """What the person says at the start of the upload, as Whisper heard it: the text for the
    base voice to read, and the encoder frames to pair that reading with the person's speech."""

    speech: np.ndarray  # at most PARALLEL_SECONDS of the upload's start, cut at a pause
    text: str
    frames: np.ndarray  # Whisper's encoder frames of `speech` (WhisperEngine.content_frames)


def content_timing(
    stt: WhisperEngine, reading: np.ndarray, rate: int, speaker_frames: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """When the reading says what the speaker said: dynamic time warping of the reading's Whisper
    encoder frames against the speaker's (`speaker_frames`, WhisperEngine.content_frames: what
    was said, whoever said it) by cosine distance. Returns (seconds into the reading, seconds
    into the speaker's recording), a point per encoder frame of the reading, both rising.
    Aligned on their spectra instead (cepstra, after the mel mapping) a clone's sounds were often
    paired with the person's neighbouring ones: its residual then blurred the words
    (docs/benchmarks.md "Paired by what was said")."""
    from librosa.sequence import dtw

    from app.engines.stt.whisper import CONTENT_FRAME_SECONDS

    ours = stt.content_frames(resample(reading, rate, 16_000))
    _, path = dtw(X=ours.T, Y=speaker_frames.T, metric="cosine")
    frames = np.arange(len(ours))
    matched = np.bincount(path[:, 0], weights=path[:, 1], minlength=len(ours)) / np.maximum(
        np.bincount(path[:, 0], minlength=len(ours)), 1
    )
    return frames * CONTENT_FRAME_SECONDS, matched * CONTENT_FRAME_SECONDS


def hear_upload(
    settings: Settings, upload: np.ndarray, rate: int, language: str | None
) -> HeardSpeech | None:
    """Whisper's transcript and encoder frames of the upload's start (at most PARALLEL_SECONDS,
    cut at a pause): what the bases read, the tuner converts and the residual codebook pairs.
    None when the transcript is not in the clone's language or too short to pair, or Whisper is
    not available."""
    from app.engines import registry
    from app.engines.languages import language_family

    expected = language_family(language) if language else "en"
    limit = int(PARALLEL_SECONDS * rate)
    speech = upload
    if len(speech) > limit:  # cut at a pause just before the limit
        speech = speech[: quietest_near(speech, rate, limit, limit)]
    try:
        stt = registry.get_stt("base", settings)
        heard_audio = resample(speech, rate, 16_000)
        # The language from the encoding the pairing needs anyway; told it, the transcription
        # does not encode a 30 s window again to detect it.
        frames, spoken = stt.content_frames_and_language(heard_audio)
        if language_family(spoken) != expected:
            return None
        heard = stt.transcribe(heard_audio, language=spoken)
        if len(heard.text.split()) < READING_MIN_WORDS:
            return None
    except Exception:  # the residual is an improvement, never a reason for a clone to fail
        log.warning("no transcript of the sample for the residual codebook", exc_info=True)
        return None
    return HeardSpeech(speech, heard.text, frames)


def reading_timing(
    settings: Settings, heard: HeardSpeech, reading: np.ndarray, rate: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The base's reading of what the person said (`heard`) paired with the person's speech
    (content_timing): parallel speech for the residual codebook. None when it cannot be paired."""
    from app.engines import registry

    try:
        return content_timing(registry.get_stt("base", settings), reading, rate, heard.frames)
    except Exception:  # the residual is an improvement, never a reason for a clone to fail
        log.warning("no parallel reading of the sample for the residual codebook", exc_info=True)
        return None


@dataclass
class MelMappings:
    """The tuned profile with its mel mapping learnt twice: `scored` from the calibration part
    only (what the held-out score measures), `stored` from the whole upload (what the voice
    keeps). The tuning chose the profile's shape without the held-out audio; the mapping is
    statistics of the person's speech, which more speech estimates better."""

    scored: TimbreProfile
    stored: TimbreProfile


def _with_mel_mapping(
    profile: TimbreProfile,
    clone_reading: np.ndarray,
    rate: int,
    band_rate: int,
    seen: np.ndarray,
    upload: np.ndarray,
    timing: tuple[np.ndarray, np.ndarray] | None = None,
) -> MelMappings:
    """The profile with the mel band mapping that moves the clone's reading (the base's reading
    through the profile's pitch: WORLD's output, or Kokoro's own when the model moved the pitch)
    to the person's speech: band by band (mean and spread of each log-mel band), then the bands
    together (covariance of the first cepstral coefficients), learnt from `seen` (the upload with
    its held-out parts silenced) for the score and from `upload` (all of it) for the voice.
    Measured on LibriSpeech speakers, held-out clip: WORLD alone 0.716 / 0.688, band by band
    0.761 / 0.728 (14); band by band 0.754 / 0.715, with the mix half way 0.765 / 0.740 (19;
    Resemblyzer / d-vector; docs/benchmarks.md). With `timing` (the reading is of the person's
    own words, the start of `upload`, paired in time: seconds into the reading, seconds into the
    upload), the residual codebook: what those two still miss, frame by frame (docs/benchmarks.md
    "Parallel speech"); silenced frames pair with nothing, so the scored codebook learns from the
    calibration part alone."""
    from app.engines.timbre import vocoder

    limit = band_limit(band_rate)
    reading = np.asarray(clone_reading, dtype=np.float32)
    # Kokoro's own reading (the model moved the pitch) takes sharper corrections than one WORLD
    # resynthesised.
    smoothing = (
        vocoder.RESIDUAL_SMOOTH_FRAMES if profile.f0_by_model else vocoder.RESIDUAL_SMOOTH_FRAMES_WORLD
    )

    def fitted(person: np.ndarray) -> TimbreProfile:
        mapping = vocoder.learn_mapping(reading, person, rate, limit)
        if timing is not None and mapping.mix:  # wideband, enough speech
            mapping = vocoder.with_residual(mapping, reading, rate, person, rate, timing, smoothing)
        return profile.with_mel_mapping(mapping)

    return MelMappings(scored=fitted(seen), stored=fitted(upload))


@dataclass(frozen=True)
class HeldOutScore:
    """The clone and its base voice reading TEST_TEXT, each against the held-out audio, by both
    judges (cosines)."""

    clone: float
    base: float
    clone_second: float
    base_second: float

    # The artifact's names for them (details["quality"]).
    FIELDS: ClassVar[tuple[str, ...]] = (
        "similarity",
        "base_similarity",
        "second_judge_similarity",
        "second_judge_base_similarity",
    )

    @classmethod
    def of(
        cls, base_test: np.ndarray, clone_test: np.ndarray, rate: int, held: np.ndarray, held_rate: int
    ) -> HeldOutScore:
        from app.engines import registry
        from app.engines.speaker import cosine

        first, second = registry.get_speaker_encoder(), registry.get_second_judge()
        ref, ref_second = first.embed(held, held_rate), second.embed(held, held_rate)
        return cls(
            clone=cosine(first.embed(clone_test, rate), ref),
            base=cosine(first.embed(base_test, rate), ref),
            clone_second=cosine(second.embed(clone_test, rate), ref_second),
            base_second=cosine(second.embed(base_test, rate), ref_second),
        )

    def rounded(self) -> dict[str, float]:
        values = (self.clone, self.base, self.clone_second, self.base_second)
        return {name: round(v, 4) for name, v in zip(self.FIELDS, values, strict=True)}

    def __str__(self) -> str:
        second = f"second judge {self.clone_second:.3f} (base {self.base_second:.3f})"
        return f"{self.clone:.3f} (base {self.base:.3f}), {second}"


# --------------------------------------------------------------------------- the job


@dataclass
class _Base:
    """A base voice the clone may start from, as it sounds before any timbre transfer."""

    label: str  # "joe" (a Piper voice key) or the blend, e.g. "af_heart 0.61 + af_nova 0.25 + ..."
    rate: int
    speak: Callable[[str], list[np.ndarray]]  # the text as the base voice says it, a chunk per sentence
    piper_key: str | None = None  # a Piper base
    blend: tuple[tuple[str, float], ...] = ()  # a voice-bank base
    pitch: TimbreProfile | None = None  # the pitch mapping a bank base already speaks with (by the model)

    def render(self, text: str) -> np.ndarray:
        return np.concatenate(self.speak(text))


def _piper_base(key: str, settings: Settings) -> _Base:
    from app.engines import registry

    engine = registry.get_piper_engine(key, settings)
    return _Base(key, int(engine.sample_rate), lambda text: list(engine.stream(text)), piper_key=key)


def choose_base(bases: list[_Base], scores: dict[str, float]) -> _Base:
    """The base whose reading (the blend's at the person's pitch when its model moves it) is
    nearest the speaker, a Piper voice held to PIPER_BASE_MARGIN over the bank's blend."""
    return max(bases, key=lambda b: scores[b.label] + (PIPER_BASE_MARGIN if b.blend else 0.0))


def _bank_base(
    settings: Settings, encoder: SpeakerEmbedder, target: np.ndarray, language: str | None
) -> _Base | None:
    """The blend of bank voices nearest the speaker (None when the bank is not installed)."""
    from app.cloning.bases import bank_candidates, bank_embeddings, nearest_blend
    from app.core.errors import NotFound
    from app.engines.tts.kokoro import SAMPLE_RATE, KokoroSynthesizer, get_kokoro_engine

    try:
        engine = get_kokoro_engine(settings)
        blend = nearest_blend(target, bank_embeddings(settings, encoder, bank_candidates(language)))
    except NotFound as exc:
        log.warning("voice bank unavailable for cloning (%s); Piper bases only", exc.message)
        return None
    voice = KokoroSynthesizer("clone base", engine, blend)
    label = " + ".join(f"{key} {weight:.2f}" for key, weight in blend)
    return _Base(label, SAMPLE_RATE, lambda text: list(voice.stream(text)), blend=blend)


def pitch_by_model(band_rate: int, vocoder: str) -> bool:
    """Whether a clone on the bank's blend that heard the person's own words moves its pitch
    inside Kokoro (`_pitched_base`, PITCH_BY_MODEL) and renders through the mel mapping with no
    WORLD at all, or goes the WORLD way: pitch by WORLD, then the tuner's search over formant
    warps, EQ and breathiness (`tune`) before the mapping. The mapping learnt from the blend
    reading the person's words moves the envelope itself (the search added ~0.002 after it on 19
    speakers, docs/benchmarks.md "The search after the mapping"), and Kokoro's own pitch costs
    nothing where WORLD's analysis and resynthesis cost time and a vocoder's colouring. The
    WORLD way stays where the mapping does less: a narrowband upload (it leaves the bands above
    its limit and the mix out) or the clone rendered by WORLD alone (CHORUS_CLONE_VOCODER=world);
    and for a Piper base or the calibration text (other words than the person's), decided by the
    caller."""
    return band_limit(band_rate) is None and vocoder == "hifigan"


def _pitched_base(bank: _Base, settings: Settings, text: str, target: VoiceStats) -> _Base | None:
    """The bank's blend speaking with the person's pitch, moved by Kokoro: its own F0 curve for
    `text` (the prosody half of the model; no audio) gives the blend's centre and spread, mapped
    to the person's (`target`). None when the curve has too few voiced frames to tell."""
    from app.cloning.analysis import lf0_moments, pitch_profile
    from app.engines.tts.kokoro import F0_VOICED_HZ, KokoroSynthesizer, get_kokoro_engine

    engine = get_kokoro_engine(settings)
    curve = KokoroSynthesizer("clone base", engine, bank.blend).pitch_curve(text)
    voiced = curve[curve > F0_VOICED_HZ]
    if len(voiced) < PITCH_MIN_FRAMES:
        return None
    centre, spread = lf0_moments(np.log(voiced.astype(np.float64)))
    profile = pitch_profile(centre, spread, target, by_model=True)
    voice = KokoroSynthesizer("clone base", engine, bank.blend, profile=profile)
    return replace(bank, speak=lambda words: list(voice.stream(words)), pitch=profile)


def _world_reading(tuner: _Tuner, profile: TimbreProfile) -> np.ndarray:
    """The tuner's reading through `profile` by WORLD: the clone's reading the mapping learns from."""
    from app.engines.timbre import world
    from app.engines.timbre.transformer import apply_profile

    return world.synthesize(apply_profile(tuner.feats, profile)).astype(np.float32)


def _read_all(bases: list[_Base], text: str) -> list[np.ndarray]:
    """Each base reading `text`, all at once."""
    with ThreadPoolExecutor(max_workers=len(bases)) as pool:
        return list(pool.map(lambda b: b.render(text), bases))


def _read_test_text(base: _Base) -> list[tuple[np.ndarray, WorldFeatures | None]]:
    """The base reading TEST_TEXT, each sentence with the WORLD analysis the speaking path makes
    of it (transformer.analyse; none for a base whose model moves the pitch, which WORLD never
    touches): what the score converts with the finished profile (`_speak_test`)."""
    from app.engines.timbre.transformer import analyse

    sentences = base.speak(TEST_TEXT)
    if base.pitch is not None:
        return [(sentence, None) for sentence in sentences]
    return [(sentence, analyse(sentence, base.rate)) for sentence in sentences]


def _speak_test(
    sentence: tuple[np.ndarray, WorldFeatures | None], profile: TimbreProfile, rate: int
) -> np.ndarray:
    """One test sentence as the speaking path converts it with `profile`: with the WORLD analysis
    made ahead, or (not analysed: the model moved the pitch) as `convert` decides."""
    from app.engines.timbre.transformer import convert, convert_analysed

    audio, feats = sentence
    return convert(audio, rate, profile) if feats is None else convert_analysed(audio, feats, profile)


def _speaker_stats(parts: list[np.ndarray], rate: int, at_rate: int, band_rate: int) -> VoiceStats:
    """The speaker's statistics from the calibration parts, analysed at `at_rate` (the base's)."""
    if at_rate != rate:
        parts = [resample(p, rate, at_rate) for p in parts]
    try:
        return voice_stats(parts, at_rate, band_rate=band_rate)
    except ValueError as exc:
        raise InvalidInput("The samples have too little voiced speech to learn the voice from") from exc


def build_voice(
    samples: list[DecodedAudio],
    settings: Settings,
    progress: Progress,
    *,
    language: str | None = None,
) -> CloneResult:
    """The whole clone; raises InvalidInput with a message a person can act on."""
    from app.engines import registry
    from app.engines.speaker import cosine
    from app.engines.tts.kokoro import KokoroCloneArtifact
    from app.engines.tts.piper import TimbreArtifact

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str, pct: int) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now
        progress(pct)

    if not samples:
        raise InvalidInput("The voice has no samples")
    work_rate = WORK_RATE
    prepared = prepare_samples(samples, work_rate)
    lap("prepare", 12)

    encoder = registry.get_speaker_encoder()
    judge = registry.get_second_judge()
    embeddings = [encoder.embed(s.audio, work_rate) for s in prepared]
    min_pair = None
    if len(embeddings) > 1:
        second = [judge.embed(s.audio, work_rate) for s in prepared]
        min_pair = check_same_speaker(embeddings, second)
    mean = np.mean(np.stack(embeddings), axis=0)
    mean = mean / (np.linalg.norm(mean) or 1.0)
    parts = held_out_parts(prepared, work_rate)
    calib_parts = [p[0] for p in parts]
    held_parts = [p[1] for p in parts]
    scored = any(len(h) for h in held_parts)
    calib_emb = encoder.embed(_join(calib_parts, work_rate), work_rate)
    lap("embed", 22)

    # The whole upload, and the same with its held-out parts silenced (what the score may learn from).
    upload = _join([s.audio for s in prepared], work_rate)
    seen = _join([np.concatenate([c, np.zeros_like(h)]) for c, h in parts], work_rate)
    bases = [_piper_base(key, settings) for key in base_candidates(settings, language)]
    bank = _bank_base(settings, encoder, calib_emb, language)
    bases += [bank] if bank is not None else []
    band_rate = min(s.band_rate for s in prepared)

    with ThreadPoolExecutor(max_workers=3) as background:
        # The speaker's statistics (calibration part, two threads) while Whisper hears the start
        # of the upload; at the rate of the last candidate (the bank's blend when installed, the
        # base nearly every clone takes), and again at the chosen base's rate if it differs.
        likely_rate = bases[-1].rate
        target_job = background.submit(_speaker_stats, calib_parts, work_rate, likely_rate, band_rate)
        heard = hear_upload(settings, upload, work_rate, language)
        # When Whisper heard the person's own words, the bank's blend reads them with the
        # person's pitch, moved inside Kokoro (`pitch_by_model`); the mel mapping then learns from
        # that reading as it is.
        plain_bases, lead = bases, bank
        if bank is not None and heard is not None and pitch_by_model(band_rate, settings.clone_vocoder):
            pitched = _pitched_base(bank, settings, heard.text, target_job.result())
            if pitched is not None:
                bases, lead = [pitched if b is bank else b for b in bases], pitched
        # The bank's blend, the base nearly every clone takes, reads the test text from here on
        # (WORLD-analysing it as the speaking path would, unless its model moves the pitch),
        # beside the readings and the pairing, so that the score at the end only converts it
        # (another base chosen reads it again below).
        early_test = background.submit(_read_test_text, lead) if lead is not None and scored else None
        # The bases read the person's own words when Whisper heard enough of them: that one
        # reading is what the mapping learns from (the residual's parallel speech). Otherwise (a
        # few words, another language, no Whisper) they read the calibration text, and there is
        # no residual. A Piper voice's reading (~0.3 s) fits beside the bank's.
        try:
            readings = _read_all(bases, heard.text if heard is not None else CALIBRATION_TEXT)
        except Exception:
            if heard is None:
                raise
            log.warning("a base could not read the transcript; reading the calibration text", exc_info=True)
            heard, bases = None, plain_bases
            readings = _read_all(bases, CALIBRATION_TEXT)
        raw = {b.label: audio for b, audio in zip(bases, readings, strict=True)}
        base_scores = {b.label: cosine(encoder.embed(raw[b.label], b.rate), calib_emb) for b in bases}
        base = choose_base(bases, base_scores)
        rate = base.rate
        if rate != work_rate:
            upload, seen = resample(upload, work_rate, rate), resample(seen, work_rate, rate)
        lap("base_voice", 30)

        test_reading = None
        if base is lead and early_test is not None:
            test_reading = early_test
        elif scored:
            test_reading = background.submit(_read_test_text, base)
        if base.pitch is not None:  # the model moved the pitch: no WORLD analysis, no search
            timing = None if heard is None else reading_timing(settings, heard, raw[base.label], rate)
            target = target_job.result()
            lap("statistics", 42)
            nearest, builtin_scores = base.blend[0][0], {base.label: base_scores[base.label]}
            lap("nearest_builtin", 50)
            profile, chosen, calib_score = base.pitch, PITCH_BY_MODEL, base_scores[base.label]
            clone_reading, candidates = raw[base.label], []
            source_summary = {
                "f0_centre_hz": profile.f0_source_mean_hz,
                "f0_spread_semitones": round(float(profile.f0_source_std or 0.0) * 12.0 / np.log(2.0), 2),
                "pitch": "Kokoro's predicted F0 curve",
            }
        else:
            # The tuner analyses the base's reading (a bank base's own statistics come from that
            # analysis) while the reading is paired with the person's words.
            tuner_job = background.submit(_Tuner, raw[base.label], rate, calib_emb, encoder)
            timing = None if heard is None else reading_timing(settings, heard, raw[base.label], rate)
            target = target_job.result()
            if rate != likely_rate:
                target = _speaker_stats(calib_parts, work_rate, rate, band_rate)
            tuner = tuner_job.result()
            if base.piper_key is not None:
                source = source_stats(base.piper_key, registry.get_piper_engine(base.piper_key, settings))
            else:
                source = features_stats(raw[base.label], tuner.feats)
            lap("statistics", 42)

            derived = _derived_builtins(base.piper_key) if base.piper_key else []
            builtin_scores = {base.label: base_scores[base.label]}
            for name, candidate in derived:
                builtin_scores[name] = tuner.score(candidate, f"built-in {name}")
            nearest = max(builtin_scores, key=lambda k: builtin_scores[k])
            if base.blend:
                nearest = base.blend[0][0]
            lap("nearest_builtin", 50)

            best, calib_score = tune(tuner, source, target, derived, lambda f: progress(50 + int(35 * f)))
            profile, chosen = best.profile(source, target), best.label()
            clone_reading = _world_reading(tuner, profile)
            candidates, source_summary = tuner.scores, source.summary()
        lap("tune", 85)
        mappings = _with_mel_mapping(profile, clone_reading, rate, band_rate, seen, upload, timing)
        lap("mel_mapping", 88)

        # Scored on a text the tuning never heard, against the held-out audio: the base voice as
        # it is, and through the profile sentence by sentence (as the speaking path converts it,
        # here three sentences at once), by both judges.
        score: HeldOutScore | None = None
        if test_reading is not None:
            test_sentences = test_reading.result()
            # Scored as it will speak: the mapping is stored either way, rendered as the operator chose.
            spoken = mappings.scored.for_vocoder(settings.clone_vocoder)
            converted = list(background.map(lambda s: _speak_test(s, spoken, rate), test_sentences))
            base_test = np.concatenate([s[0] for s in test_sentences])
            score = HeldOutScore.of(
                base_test, np.concatenate(converted), rate, _join(held_parts, work_rate), work_rate
            )
    lap("score", 92)

    details: dict[str, object] = {
        "nearest_builtin": nearest,
        "quality": {
            **(score.rounded() if score is not None else dict.fromkeys(HeldOutScore.FIELDS)),
            "calibration_similarity": round(calib_score, 4),
            "samples_min_similarity": None if min_pair is None else round(min_pair, 4),
            "held_out_seconds": round(sum(len(h) for h in held_parts) / work_rate, 2),
        },
        "tuning": {
            "base": base.label,
            # What the bases read, tuned on: the person's own words, or the calibration text.
            "reading": "transcript" if heard is not None else "calibration text",
            "chosen": chosen,
            "base_voices": {k: round(v, 4) for k, v in base_scores.items()},
            "builtins": {k: round(v, 4) for k, v in builtin_scores.items()},
            "candidates": candidates,
        },
        "statistics": {"speaker": target.summary(), "base": source_summary},
        # The scored clone's codebook (learnt without the held-out audio; the stored one is the
        # artifact's profile).
        "mel_mapping": {"scored_residual_entries": len(mappings.scored.mel_residual) // RESIDUAL_COEFFS},
        "samples": [
            {"seconds": round(len(s.audio) / work_rate, 2), "speech_seconds": round(s.speech_seconds, 2)}
            for s in prepared
        ],
        "timings": timings,
    }
    artifact: TimbreArtifact | KokoroCloneArtifact
    if base.piper_key is not None:
        artifact = TimbreArtifact(base_voice=base.piper_key, profile=mappings.stored, details=details)
    else:
        artifact = KokoroCloneArtifact(voices=base.blend, profile=mappings.stored, details=details)
    log.info("clone on %s (%s): held-out %s", base.label, chosen, score or "none (too little speech)")
    return CloneResult(
        voice_artifact=artifact,
        embedding=[float(v) for v in mean],
        quality_similarity=None if score is None else round(score.clone, 4),
        clean_samples=[s.audio for s in prepared],
        sample_rate=work_rate,
    )
