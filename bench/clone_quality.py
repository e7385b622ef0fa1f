"""Clone quality per target speaker: similarity before/after on a held-out clip, WER, job time, RTF.

Targets are made on this machine without any download: espeak-ng voices (really different
speakers; `apt-get install espeak-ng`) and "synthetic speakers" (joe with a strong, known
timbre profile). For each target the clone is built from one ~15 s sample by the real
pipeline; it is then scored on a clip of different text that was never part of a sample.

Columns:
  base    Resemblyzer cosine of joe (the base voice, unchanged) to the held-out clip
  fixed   the profile without tuning (warp from LPC formants, full EQ): the prototype's method
  clone   the tuned clone (what the job stores), speaking the same text
  score   the job's own quality score (held-out part of the sample, different text)
  WER     Whisper base word error rate of the clone's speech (joe's own is printed once)
  job     clone job wall time (the first one also pays the base voice's statistics)
  RTF     timbre conversion time / audio time (TimbreTransformer, sentence chunks)

Usage: .venv/bin/python bench/clone_quality.py [--targets espeak:en-us+f3,synthetic:deep] [--no-wer]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audio import DecodedAudio, decode_audio  # noqa: E402
from app.core.config import Settings  # noqa: E402

RATE = 22_050
SAMPLE = (
    "Every morning I walk to the corner shop to buy bread and a newspaper. "
    "The owner always asks about my family, and we talk about the weather for a while. "
    "Then I head home, make a pot of coffee, and read the news before starting work."
)
HELD_OUT = (
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish. "
    "The hogs were fed chopped corn and garbage. A large size in stockings is hard to sell."
)
# Harvard lists 1-2 (public domain): what the clone says, for similarity and WER.
SPEAK = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "The boy was there when the sun rose.",
    "Kick the ball straight and follow through.",
    "Smoky fires lack flame and heat.",
    "The salt breeze came across from the sea.",
]
SYNTHETIC = {  # joe with strong, known profiles: the clone should recover them
    "deep": {
        "f0_shift_semitones": -4.0,
        "formant_alpha": 0.88,
        "eq_freqs_hz": (150.0, 6000.0),
        "eq_gains_db": (4.0, -6.0),
    },
    "high": {
        "f0_shift_semitones": 9.0,
        "formant_alpha": 1.2,
        "eq_freqs_hz": (150.0, 6000.0),
        "eq_gains_db": (-5.0, 4.0),
    },
}
DEFAULT_TARGETS = "espeak:en-us+f3,espeak:en+m3,espeak:en-gb+f4,espeak:en-us+m7,synthetic:deep,synthetic:high"


def espeak(voice: str, text: str) -> DecodedAudio:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True)
        return decode_audio(path.read_bytes(), target_rate=RATE, max_seconds=600, max_sample_rate=192_000)


def synthetic(name: str, text: str) -> DecodedAudio:
    from app.engines import registry
    from app.engines.timbre.profile import TimbreProfile
    from app.engines.timbre.transformer import convert

    x = convert(registry.get_tts("joe").synthesize(text), RATE, TimbreProfile(**SYNTHETIC[name]))
    return DecodedAudio(x, RATE, len(x) / RATE, "wav", RATE)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " ")).replace("'", "").split()


def wer(refs: list[str], hyps: list[str]) -> float:
    """Word error rate over all sentences (Levenshtein on words)."""
    errors = total = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = words(ref), words(hyp)
        d = list(range(len(h) + 1))
        for i in range(1, len(r) + 1):
            prev, d[0] = d[0], i
            for j in range(1, len(h) + 1):
                cur = d[j]
                d[j] = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
                prev = cur
        errors += d[len(h)]
        total += len(r)
    return errors / max(total, 1)


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", default=DEFAULT_TARGETS)
    parser.add_argument("--no-wer", action="store_true")
    args = parser.parse_args()

    from app.cloning.analysis import alpha_from_formants, make_profile, voice_stats
    from app.cloning.pipeline import build_voice, source_stats
    from app.engines import registry
    from app.engines.speaker import cosine
    from app.engines.timbre.profile import TimbreProfile
    from app.engines.timbre.transformer import TimbreTransformer

    settings = Settings(env="test", data_dir=Path(tempfile.mkdtemp()), secret_key="bench-" + "x" * 40)
    engine = registry.get_tts("joe")
    encoder = registry.get_speaker_encoder()
    encoder.warm()
    stt: Any = None
    if not args.no_wer:
        try:
            stt = registry.get_stt("base", settings)
        except Exception as exc:  # no Whisper base on this machine: similarity only
            print(f"(no WER: Whisper base unavailable: {exc})")

    def speak(profile: TimbreProfile | None) -> list[np.ndarray]:
        return [engine.synthesize(s, profile=profile) for s in SPEAK]

    def similarity(clips: list[np.ndarray], ref: np.ndarray) -> float:
        gap = np.zeros(int(0.3 * RATE), dtype=np.float32)
        joined = np.concatenate([np.concatenate([c, gap]) for c in clips])
        return cosine(encoder.embed(joined, RATE), ref)

    def word_error(clips: list[np.ndarray]) -> float | None:
        if stt is None:
            return None
        from app.audio import resample

        hyps = [stt.transcribe(resample(c, RATE, 16_000), language="en").text for c in clips]
        return wer(SPEAK, hyps)

    joe_clips = speak(None)
    joe_wer = word_error(joe_clips)
    print(f"joe (base voice) WER {'n/a' if joe_wer is None else f'{100 * joe_wer:.1f}%'}")
    header = (
        f"{'target':22} {'base':>6} {'fixed':>6} {'clone':>6} {'score':>6} {'WER':>6} {'job s':>6} "
        f"{'RTF':>5}  chosen"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for spec in args.targets.split(","):
        kind, name = spec.split(":", 1)
        if kind == "espeak" and shutil.which("espeak-ng") is None:
            print(f"{spec:22} skipped: espeak-ng not installed")
            continue
        make = espeak if kind == "espeak" else synthetic
        sample, held = make(name, SAMPLE), make(name, HELD_OUT)
        ref = encoder.embed(held.samples, RATE)

        t0 = time.perf_counter()
        result = build_voice([sample], settings, lambda p: None)
        job_s = time.perf_counter() - t0
        profile = TimbreProfile.from_dict(result.artifact["profile"])

        source = source_stats("joe", engine)
        target = voice_stats([sample.samples], RATE)
        fixed = make_profile(source, target, alpha=alpha_from_formants(source, target))

        clone_clips = speak(profile)
        base_sim = similarity(joe_clips, ref)
        fixed_sim = similarity(speak(fixed), ref)
        clone_sim = similarity(clone_clips, ref)
        clone_wer = word_error(clone_clips)

        audio_s = sum(len(c) for c in joe_clips) / RATE
        t0 = time.perf_counter()
        for clip in joe_clips:
            tr = TimbreTransformer(profile, RATE)
            tr.process(clip)
            tr.flush()
        rtf = (time.perf_counter() - t0) / audio_s
        wer_s = "n/a" if clone_wer is None else f"{100 * clone_wer:.1f}%"
        print(
            f"{spec:22} {base_sim:6.3f} {fixed_sim:6.3f} {clone_sim:6.3f} {result.quality_similarity:6.3f} "
            f"{wer_s:>6} {job_s:6.1f} {rtf:5.2f}  {result.artifact['tuning']['chosen']}",
            flush=True,
        )
        rows.append((base_sim, fixed_sim, clone_sim, result.quality_similarity, clone_wer, job_s, rtf))
    if rows:
        m = np.array([[r[i] for i in (0, 1, 2, 3, 5, 6)] for r in rows], dtype=float)
        wers = [r[4] for r in rows if r[4] is not None]
        mean_wer = f"{100 * np.mean(wers):.1f}%" if wers else "n/a"
        print("-" * len(header))
        print(
            f"{'mean':22} {m[:, 0].mean():6.3f} {m[:, 1].mean():6.3f} {m[:, 2].mean():6.3f} "
            f"{m[:, 3].mean():6.3f} {mean_wer:>6} {m[:, 4].mean():6.1f} {m[:, 5].mean():5.2f}"
        )


if __name__ == "__main__":
    main()
