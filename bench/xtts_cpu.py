"""Benchmark: the XTTS path on this CPU with a tiny random-weight XTTS (tests/xtts_tiny.py).

Run by hand (not a test):  .venv/bin/python bench/xtts_cpu.py [--repeat 3] [--tokens 60] [--model-dir DIR]

Builds the tiny model (2-layer 64-wide GPT; the HiFi-GAN decoder and the speaker encoder keep
XTTS's real sizes, and the decoder dominates synthesis) unless --model-dir points at real
XTTS-v2 weights, then prints: load time, conditioning-latents time for ≈ 6 s of Piper speech,
and the real-time factor (synthesis seconds / audio seconds) of whole-text synthesis and the
time to the first streamed sentence. Random weights speak noise; the figures are about cost.
Reported, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEXT = (
    "The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things. "
    "We will meet at the station at noon."
)


def piper_speech() -> tuple[np.ndarray, int]:
    from app.engines import registry

    engine = registry.get_tts("joe")
    text = "The boy was there when the sun rose. A rod is used to catch pink salmon. Help her get back up."
    return np.concatenate(list(engine.stream(text))), int(engine.sample_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=60, help="tiny model: GPT audio tokens per sentence")
    parser.add_argument("--model-dir", type=Path, default=None, help="real XTTS-v2 weights instead")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch

    from app.engines.tts.xtts import XTTSEngine

    samples, rate = piper_speech()
    with tempfile.TemporaryDirectory() as tmp:
        if args.model_dir is None:
            from tests.xtts_tiny import build_tiny_xtts

            start = time.perf_counter()
            model_dir = build_tiny_xtts(Path(tmp) / "tiny", max_audio_tokens=args.tokens)
            print(
                f"tiny model built in {time.perf_counter() - start:.2f} s "
                f"({(model_dir / 'model.pth').stat().st_size / 1e6:.0f} MB checkpoint)"
            )
        else:
            model_dir = args.model_dir
        start = time.perf_counter()
        engine = XTTSEngine(model_dir, device=args.device)
        print(
            f"load: {time.perf_counter() - start:.2f} s on {engine.device}, torch threads "
            f"{torch.get_num_threads()}"
        )

        engine.compute_latents([samples], rate)  # warm-up
        lat_times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            latents = engine.compute_latents([samples], rate)
            lat_times.append(time.perf_counter() - start)
        print(
            f"latents for {len(samples) / rate:.1f} s of speech: "
            f"median {statistics.median(lat_times):.2f} s "
            f"({', '.join(f'{t:.2f}' for t in lat_times)})"
        )
        start = time.perf_counter()
        data = engine.to_bytes(latents)
        engine.latents_from_bytes(data)
        ms = 1000 * (time.perf_counter() - start)
        print(f"latents artifact: {len(data)} bytes, round trip {ms:.1f} ms")

        rtfs, firsts, seconds = [], [], []
        for i in range(args.repeat):
            torch.manual_seed(i)
            start = time.perf_counter()
            stream = engine.stream(TEXT, latents, "en")
            chunks = [next(stream)]
            firsts.append(time.perf_counter() - start)
            chunks.extend(stream)
            elapsed = time.perf_counter() - start
            audio_s = sum(len(c) for c in chunks) / engine.sample_rate
            seconds.append(audio_s)
            rtfs.append(elapsed / audio_s)
        print(
            f"synthesis of {len(TEXT)} chars (3 sentences, {statistics.median(seconds):.1f} s audio): "
            f"RTF median {statistics.median(rtfs):.2f} ({', '.join(f'{r:.2f}' for r in rtfs)}), "
            f"first sentence after {statistics.median(firsts):.2f} s"
        )


if __name__ == "__main__":
    main()
