"""Engine figures on this machine: Piper speed and first-audio time, Whisper RTF, embedding time, memory.

Run: .venv/bin/python bench/engines.py  (uses CHORUS_MODELS_DIR if set, else a temp folder for Whisper base)
RTF = processing time / audio duration (lower is faster). Timings are wall-clock, single request.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

from app.core.config import Settings  # noqa: E402
from app.engines import registry  # noqa: E402
from app.engines.stt.whisper import resample_to_16k  # noqa: E402

SHORT = "Please remember to bring your umbrella because it might rain later today."
LONG = (
    "The old lighthouse stood at the edge of the harbor for more than a century. "
    "Every evening the keeper climbed the narrow stairs, cleaned the heavy glass, and lit the lamp before "
    "the sun went down. Sailors who passed the rocky point at night trusted that steady beam more than any "
    "chart or compass. When the town finally installed an automatic light, the keeper retired to a small "
    "cottage near the water. He spent his mornings repairing fishing nets and his afternoons telling stories "
    "to the children who gathered on the pier. They asked him about storms, shipwrecks, and the strange "
    "lights he claimed to have seen far out at sea. Nobody knew which of his stories were true, but everyone "
    "agreed that the harbor felt safer while he was watching it."
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def tts_figures(voice_key: str, text: str, runs: int = 3) -> tuple[float, float, float]:
    """(first audio s, total s, RTF), medians over runs."""
    voice = registry.get_tts(voice_key)
    firsts, totals, durs = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        it = voice.stream(text)
        first = next(it)
        firsts.append(time.perf_counter() - t0)
        n = len(first) + sum(len(c) for c in it)
        totals.append(time.perf_counter() - t0)
        durs.append(n / voice.sample_rate)
    total = float(np.median(totals))
    return float(np.median(firsts)), total, total / float(np.median(durs))


def speech_of(seconds: float) -> np.ndarray:
    """Piper speech, 16 kHz, exactly `seconds` long (the long passage repeated as needed)."""
    engine = registry.get_tts("joe")
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < seconds * engine.sample_rate:
        parts.append(engine.synthesize(LONG))
    x = resample_to_16k(np.concatenate(parts), engine.sample_rate)
    return x[: int(seconds * 16_000)]


def main() -> None:
    models_env = os.environ.get("CHORUS_MODELS_DIR")
    tmp = None if models_env else tempfile.TemporaryDirectory(prefix="chorus-bench-")
    models_dir = Path(models_env) if models_env else Path(tmp.name)  # type: ignore[union-attr]
    settings = Settings(env="dev", data_dir=models_dir.parent, models_dir=models_dir)
    print(f"cores available: {len(os.sched_getaffinity(0))}; models dir: {models_dir}")
    print(f"peak RSS at start: {peak_rss_mb():.0f} MB")

    t0 = time.perf_counter()
    registry.get_piper_engine("joe", settings)
    print(f"\nPiper joe load: {time.perf_counter() - t0:.2f} s; peak RSS {peak_rss_mb():.0f} MB")
    print(f"{'voice':8s} {'text':6s} {'words':>5s} {'first audio':>11s} {'total':>7s} {'RTF':>6s}")
    for key in ("joe", "ava"):
        for label, text in (("short", SHORT), ("long", LONG)):
            first, total, rtf = tts_figures(key, text)
            print(f"{key:8s} {label:6s} {len(text.split()):5d} {first:10.3f}s {total:6.2f}s {rtf:6.3f}")
    for label, kwargs in (
        ("speed 1.5", {"speed": 1.5}),
        ("speed 3.0", {"speed": 3.0}),
        ("pitch +4", {"pitch": 4}),
    ):
        t0 = time.perf_counter()
        y = registry.get_tts("joe").synthesize(LONG, **kwargs)
        dt = time.perf_counter() - t0
        print(
            f"joe long {label}: {dt:.2f} s for {len(y) / 22050:.1f} s audio, RTF {dt / (len(y) / 22050):.3f}"
        )
    print(f"peak RSS after TTS: {peak_rss_mb():.0f} MB")

    x10, x60 = speech_of(10), speech_of(60)
    for name in ("base", "tiny.en"):
        t0 = time.perf_counter()
        stt = registry.get_stt(name, settings)
        print(f"\nWhisper {name} load (base: assembled on first use): {time.perf_counter() - t0:.2f} s")
        stt.transcribe(x10[:16_000], language="en")  # first-call overheads
        for label, x in (("10 s", x10), ("60 s", x60)):
            t0 = time.perf_counter()
            out = stt.transcribe(x, language="en")
            dt = time.perf_counter() - t0
            rtf = dt / (len(x) / 16_000)
            print(f"Whisper {name:7s} {label}: {dt:.2f} s, RTF {rtf:.3f} ({len(out.text.split())} words)")
        print(f"peak RSS: {peak_rss_mb():.0f} MB")

    enc = registry.get_speaker_encoder()
    t0 = time.perf_counter()
    enc.warm()
    print(f"\nResemblyzer warm-up (numba JIT, first call): {time.perf_counter() - t0:.2f} s")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        enc.embed(x10, 16_000)
        times.append(time.perf_counter() - t0)
    print(f"embedding per 10 s of audio: {np.median(times):.3f} s (median of 5)")
    print(f"\npeak RSS (all engines loaded): {peak_rss_mb():.0f} MB")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
