"""How fast the HiFi-GAN vocoder renders a clone's speech: the checkpoint's PyTorch generator
against the ONNX export the server runs (onnxruntime), on the same mel spectrogram of real speech,
one utterance at a time and two at once (as the clone job's score stage renders sentences).

Speech: the longest LibriSpeech utterance of `../shared/data/librispeech-dev/`, cut to --seconds.
Reports min / median / max wall seconds of --runs and the real-time factor of the median, and the
largest difference between the two outputs.

Usage: .venv/bin/python bench/vocoder_speed.py [--seconds 8] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audio import resample  # noqa: E402
from app.engines.timbre import vocoder  # noqa: E402
from bench.clone_quality import DATA, real_speakers  # noqa: E402


def timed(render: Callable[[], object], runs: int) -> list[float]:
    render()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        render()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import torch

    longest = max((audio for _, audio in real_speakers(Path(args.data))), key=lambda a: a.duration)
    x = resample(np.asarray(longest.samples, dtype=np.float32), longest.sample_rate, vocoder.RATE)
    x = x[: int(args.seconds * vocoder.RATE)]
    mel = vocoder.log_mel(x, vocoder.RATE)
    halves = np.array_split(mel, 2, axis=1)
    generator = vocoder.torch_generator()
    session = vocoder._load()

    def run_torch(m: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return np.asarray(generator(torch.from_numpy(np.ascontiguousarray(m))[None]).reshape(-1).numpy())

    def run_onnx(m: np.ndarray) -> np.ndarray:
        feed = {vocoder.EXPORT_INPUT: np.ascontiguousarray(m[None])}
        return np.asarray(session.run([vocoder.EXPORT_OUTPUT], feed)[0]).reshape(-1)

    seconds = len(x) / vocoder.RATE
    print(
        f"{seconds:.1f} s of speech ({longest.duration:.1f} s utterance), "
        f"torch threads {torch.get_num_threads()}, onnxruntime threads {vocoder.THREADS}"
    )
    for label, run in (("pytorch", run_torch), ("onnxruntime", run_onnx)):
        with ThreadPoolExecutor(max_workers=2) as pool:
            whole = timed(lambda run=run: run(mel), args.runs)
            halved = timed(lambda run=run: list(pool.map(run, halves)), args.runs)
            for way, t in (("whole", whole), ("two halves at once", halved)):
                median = statistics.median(t)
                print(
                    f"{label:12} {way:19} {min(t):.2f} / {median:.2f} / {max(t):.2f} s  "
                    f"RTF {median / seconds:.2f}"
                )
    diff = np.max(np.abs(run_torch(mel) - run_onnx(mel)))
    print(
        f"largest difference between the two outputs: {diff:.1e} (peak {np.max(np.abs(run_torch(mel))):.2f})"
    )


if __name__ == "__main__":
    main()
