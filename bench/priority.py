"""How heavy work fares when the host is busy for reasons of its own.

Run by hand (as root for `cgroups`):
    .venv/bin/python bench/priority.py [--nice 10,0] [--hogs 2] [--repeat 2]
                                      [--placements same,session,cgroups]

For each CHORUS_COMPUTE_NICE value: starts the deployed shape of bench/load.py (API, one worker,
Postgres, Redis) and times one transcription of ≈ 45 s of Piper speech over HTTP and the
list-voices latency (median of 20) on a quiet host, then with `--hogs` unrelated busy-loop
processes at normal priority placed three ways:
- `same`: in the server's own session, so one scheduling group with it (the worst case: nice
  then ranks the worker below the hogs as well as below the API);
- `session`: in a session of their own, as a service or a shell on the host would be (Linux's
  autogroup gives each session its share; nice ranks only inside one);
- `cgroups`: API, worker and hogs each in a cgroup of equal weight (cgroup v1 cpu.shares under
  /sys/fs/cgroup/cpu/chorus-bench), as containers or systemd services are.
Reported, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import CPU_CGROUPS, Deployment, into_cpu_cgroup, remove_cpu_cgroups  # noqa: E402
from openai_speech import TEXT_130  # noqa: E402
from openai_transcribe import speech_wav  # noqa: E402

HOG = "while True: pass"
CGROUP_ROOT = CPU_CGROUPS / "chorus-bench"
PLACEMENTS = ("same", "session", "cgroups")


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


@contextlib.contextmanager
def hogs_placed(placement: str, count: int, deployment: Deployment) -> Iterator[None]:
    hogs = [
        subprocess.Popen([sys.executable, "-c", HOG], start_new_session=placement != "same")
        for _ in range(count)
    ]
    server = [p.pid for p in deployment.procs]
    try:
        if placement == "cgroups":
            into_cpu_cgroup(CGROUP_ROOT / "api", deployment.procs[0].pid)
            for n, worker in enumerate(deployment.procs[1:]):
                into_cpu_cgroup(CGROUP_ROOT / f"worker{n}", worker.pid)
            for hog in hogs:
                into_cpu_cgroup(CGROUP_ROOT / "hogs", hog.pid)
        time.sleep(1)
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        if placement == "cgroups":
            remove_cpu_cgroups(CGROUP_ROOT, server)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nice", default="10,0")
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--placements", default=",".join(PLACEMENTS))
    args = parser.parse_args()
    placements = [p for p in args.placements.split(",") if p]
    unknown = set(placements) - set(PLACEMENTS)
    if unknown:
        parser.error(f"unknown placement(s) {', '.join(sorted(unknown))}")
    wav, seconds = speech_wav(TEXT_130)
    print(f"speech: {seconds:.1f} s; hogs: {args.hogs} busy processes at nice 0", flush=True)
    print(f"{'nice':>4} {'hogs':>8} {'transcribe s':>13} {'list ms':>8}", flush=True)
    for nice in (int(n) for n in args.nice.split(",")):
        deployment = Deployment(workers=1, nice=nice)
        try:
            key = deployment.start()
            headers = {"X-API-Key": key}
            with httpx.Client(base_url=deployment.base, timeout=600) as client:
                transcribe_s(client, headers, wav)  # first use loads nothing new, but settles caches
                rows = {
                    "none": (
                        [transcribe_s(client, headers, wav) for _ in range(args.repeat)],
                        list_voices_ms(client, headers),
                    )
                }
                for placement in placements:
                    with hogs_placed(placement, args.hogs, deployment):
                        rows[placement] = (
                            [transcribe_s(client, headers, wav) for _ in range(args.repeat)],
                            list_voices_ms(client, headers),
                        )
                    print(
                        f"{nice:>4} {placement:>8} {statistics.median(rows[placement][0]):>13.1f} "
                        f"{rows[placement][1]:>8.1f}",
                        flush=True,
                    )
                print(
                    f"{nice:>4} {'none':>8} {statistics.median(rows['none'][0]):>13.1f} "
                    f"{rows['none'][1]:>8.1f}",
                    flush=True,
                )
        finally:
            deployment.stop()


if __name__ == "__main__":
    main()
