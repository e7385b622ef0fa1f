"""How long a clone job takes for a 30 s upload (issue goal: <= 15 s on 2 cores).

Run by hand:  .venv/bin/python bench/clone_speed.py [--speaker F_1069] [--seconds 30] [--runs 3]

One LibriSpeech speaker's utterance (../shared/data/librispeech-dev/, CC BY 4.0), repeated to
`--seconds`, goes through the clone pipeline (`build_voice`: base choice, statistics, tuning,
held-out score) once to warm every model and the voice bank's embeddings, then `--runs` times;
prints each run and min / median / max. The machine should be otherwise quiet.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audio import DecodedAudio, decode_audio  # noqa: E402
from app.core.config import Settings  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech-dev"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--speaker", default="F_1069")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from app.cloning.pipeline import WORK_RATE, build_voice

    path = next(DATA.glob(f"{args.speaker}*.flac"))
    one = decode_audio(path.read_bytes(), target_rate=WORK_RATE, max_seconds=600, max_sample_rate=192_000)
    repeats = int(np.ceil(args.seconds * WORK_RATE / len(one.samples)))
    samples = np.tile(np.asarray(one.samples, dtype=np.float32), repeats)[: int(args.seconds * WORK_RATE)]
    upload = DecodedAudio(samples, WORK_RATE, len(samples) / WORK_RATE, one.container, one.source_rate)
    settings = Settings(env="test", data_dir=Path(tempfile.mkdtemp()), secret_key="bench-" + "x" * 40)
    print(f"{path.stem}: {upload.duration:.1f} s upload", flush=True)
    build_voice([upload], settings, lambda p: None)  # warm: models, the bank's embeddings
    times = []
    for n in range(args.runs):
        started = time.perf_counter()
        result = build_voice([upload], settings, lambda p: None)
        times.append(time.perf_counter() - started)
        print(f"run {n + 1}: {times[-1]:.1f} s (held-out similarity {result.quality_similarity})", flush=True)
    print(f"clone job: min {min(times):.1f} / median {statistics.median(times):.1f} / max {max(times):.1f} s")


if __name__ == "__main__":
    main()
