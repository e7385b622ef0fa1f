"""How heavy work fares when the host is busy for reasons of its own.

Run by hand:  .venv/bin/python bench/priority.py [--nice 10,0] [--hogs 2] [--repeat 2]

For each CHORUS_COMPUTE_NICE value: starts the deployed shape of bench/load.py (API, one worker,
Postgres, Redis) and times one transcription of ≈ 45 s of Piper speech over HTTP, on a quiet
host and with `--hogs` unrelated busy-loop processes at normal priority (load ≈ hogs + 1 on
this machine's cores), and the list-voices latency (median of 20) beside it. Reported, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import Deployment  # noqa: E402
from openai_speech import TEXT_130  # noqa: E402
from openai_transcribe import speech_wav  # noqa: E402

HOG = "while True: pass"


def list_voices_ms(client: httpx.Client, headers: dict[str, str]) -> float:
    times = []
    for _ in range(20):
        started = time.perf_counter()
        client.get("/api/v1/voice/voice-profiles", params={"limit": 20}, headers=headers).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def transcribe_s(client: httpx.Client, headers: dict[str, str], wav: bytes) -> float:
    started = time.perf_counter()
    r = client.post(
        "/v1/audio/transcriptions",
        headers=headers,
        files={"file": ("a.wav", wav, "audio/wav")},
        data={"model": "whisper-1"},
    )
    r.raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nice", default="10,0")
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    wav, seconds = speech_wav(TEXT_130)
    print(f"speech: {seconds:.1f} s; hogs: {args.hogs} busy processes at nice 0", flush=True)
    print(f"{'nice':>4} {'quiet s':>8} {'hogged s':>9} {'list ms quiet':>14} {'list ms hogged':>15}")
    for nice in (int(n) for n in args.nice.split(",")):
        deployment = Deployment(workers=1, nice=nice)
        try:
            key = deployment.start()
            headers = {"X-API-Key": key}
            with httpx.Client(base_url=deployment.base, timeout=600) as client:
                transcribe_s(client, headers, wav)  # first use loads nothing new, but settles caches
                quiet = [transcribe_s(client, headers, wav) for _ in range(args.repeat)]
                list_quiet = list_voices_ms(client, headers)
                hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
                try:
                    time.sleep(1)
                    hogged = [transcribe_s(client, headers, wav) for _ in range(args.repeat)]
                    list_hogged = list_voices_ms(client, headers)
                finally:
                    for hog in hogs:
                        hog.kill()
                        hog.wait()
        finally:
            deployment.stop()
        print(
            f"{nice:>4} {statistics.median(quiet):>8.1f} {statistics.median(hogged):>9.1f} "
            f"{list_quiet:>14.1f} {list_hogged:>15.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
