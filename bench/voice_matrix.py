"""Built-in voices, measured.

Run: .venv/bin/python bench/voice_matrix.py [--voices all|graded] [--piper [--takes N]]

Default: Kokoro's voice bank (docs/benchmarks.md keeps the figures).
- Per voice: first audio (streaming, the 12-word sentence of its language; median of 3) and RTF on
  the long passage of its language (processing time / audio duration; median of 2).
- Per language: round trip through Whisper base (language given; simplified-Chinese prompt for zh):
  WER for en/es/fr/it/pt, CER for zh/ja/hi, pooled over 3 passages x up to 4 voices of the language
  (Kokoro is deterministic, so a "take" is another voice or passage). Goals: en <= 8%, others <= 15%.

--piper: the Piper built-ins (joe and the WORLD-derived voices): Resemblyzer similarity matrix and
Whisper WER over Harvard lists 1 and 2, mean/min/max over N takes (Piper samples noise on every
call). The catalogue promises: every pair < 0.87 similarity, every voice <= 12% WER.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jiwer
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

from app.core.config import Settings  # noqa: E402
from app.engines import catalogue, registry  # noqa: E402
from app.engines.speaker.encoder import cosine  # noqa: E402
from app.engines.stt.whisper import resample_to_16k  # noqa: E402
from app.engines.text import number_to_words  # noqa: E402

HARVARD_1 = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
    "It's easy to tell the depth of a well. These days a chicken leg is a rare dish. "
    "Rice is often served in round bowls. The juice of lemons makes fine punch. "
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage. "
    "Four hours of steady work faced us. A large size in stockings is hard to sell."
)
HARVARD_2 = (
    "The boy was there when the sun rose. A rod is used to catch pink salmon. "
    "The source of the huge river is the clear spring. Kick the ball straight and follow through. "
    "Help the woman get back to her feet. A pot of tea helps to pass the evening. "
    "Smoky fires lack flame and heat. The soft cushion broke the man's fall. "
    "The salt breeze came across from the sea. The girl at the booth sold fifty bonds."
)


def norm_words(text: str) -> str:
    """Lowercase, digits to words, punctuation and apostrophes removed (tests/test_engines_voices.py
    judges with it too)."""
    s = re.sub(r"\d+", lambda m: f" {number_to_words(int(m.group()))} ", text.lower())
    s = re.sub(r"[^a-z' ]", " ", s.replace("-", " ")).replace("'", "")
    return " ".join(s.split())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--takes", type=int, default=3)
    ap.add_argument("--piper", action="store_true", help="the Piper built-ins instead of Kokoro's bank")
    ap.add_argument("--voices", choices=("all", "graded"), default="all", help="graded: C+ or better only")
    ap.add_argument("--language", help="only this language's voices and round trip (e.g. hi)")
    ap.add_argument("--round-trip-only", action="store_true", help="skip the per-voice speed table")
    args = ap.parse_args()
    if not args.piper:
        from bench.kokoro_bank import run_bank

        run_bank(
            every_voice=args.voices == "all", language=args.language, round_trip_only=args.round_trip_only
        )
        return
    models_env = os.environ.get("CHORUS_MODELS_DIR")
    tmp = None if models_env else tempfile.TemporaryDirectory(prefix="chorus-bench-")
    models_dir = Path(models_env) if models_env else Path(tmp.name)  # type: ignore[union-attr]
    settings = Settings(env="dev", data_dir=models_dir.parent, models_dir=models_dir)
    stt = registry.get_stt("base", settings)
    enc = registry.get_speaker_encoder()
    enc.warm()
    refs = [norm_words(HARVARD_1), norm_words(HARVARD_2)]
    voices = catalogue.BUILTIN_VOICES
    emb: dict[str, np.ndarray] = {}
    print(f"{'voice':7s} {'gender':7s} {'WER mean':>8s} {'min':>6s} {'max':>6s} {'RTF':>6s}  profile")
    for v in voices:
        speaker = registry.get_tts(v.key)
        wers, rtfs = [], []
        for take in range(args.takes):
            hyps = []
            for text in (HARVARD_1, HARVARD_2):
                t0 = time.perf_counter()
                y = speaker.synthesize(text)
                rtfs.append((time.perf_counter() - t0) / (len(y) / speaker.sample_rate))
                if take == 0 and text is HARVARD_1:
                    emb[v.key] = enc.embed(y, speaker.sample_rate)
                heard = stt.transcribe(resample_to_16k(y, speaker.sample_rate), language="en")
                hyps.append(norm_words(heard.text))
            wers.append(jiwer.wer(refs, hyps))
        p = v.profile
        desc = (
            "plain Piper"
            if p is None
            else (
                f"f0 {p.f0_shift_semitones:+g} st, range x{p.f0_range_scale:g}, alpha {p.formant_alpha:g}"
                + (
                    f"/{p.formant_alpha_high:g} above {p.formant_split_hz:g} Hz"
                    if p.formant_alpha_high
                    else ""
                )
                + (f", EQ {list(zip(p.eq_freqs_hz, p.eq_gains_db, strict=True))}" if p.eq_gains_db else "")
            )
        )
        print(
            f"{v.key:7s} {v.gender:7s} {np.mean(wers):8.3f} {min(wers):6.3f} {max(wers):6.3f} "
            f"{np.mean(rtfs):6.3f}  {desc}",
            flush=True,
        )
    keys = [v.key for v in voices]
    print("\nResemblyzer cosine similarity (same text, one take each):")
    print("        " + " ".join(f"{k:>6s}" for k in keys))
    worst = max((cosine(emb[a], emb[b]), a, b) for i, a in enumerate(keys) for b in keys[i + 1 :])
    for a in keys:
        print(f"{a:7s} " + " ".join(f"{cosine(emb[a], emb[b]):6.3f}" for b in keys))
    print(f"\nclosest pair: {worst[1]}/{worst[2]} {worst[0]:.3f} (limit 0.87)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
