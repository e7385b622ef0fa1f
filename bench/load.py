"""Load test on loopback against the deployed shape: Postgres, Redis/RQ with two workers.

Run by hand:  .venv/bin/python bench/load.py [--seconds 60] [--steps 1,2,4,8,16] [--json out.json]
              [--workers 2] [--transcribe-on workers|api] [--mix mixed|transcribe] [--preload LIST]
              [--nice N] [--warmup 5] [--ramp 2] [--poll-interval 0.1]

Starts the API (`chorus serve`) and `--workers` `chorus worker` processes on a fresh Postgres database
(127.0.0.1:5432/test as the admin connection), Redis db 12, and a local blob folder; creates a
user; then drives a mix of requests — list voices, previews, generate+poll, transcriptions —
at rising concurrency, splitting --seconds evenly between the steps. Prints throughput,
p50/p95/p99 and error rate per route and step, the concurrency at which list-voices p50
latency first doubles over the lowest step, and the step where total throughput saturates, and
the resident memory (RSS) of the API and of each worker when ready (idle) and after the run (warm).
`--mix transcribe` sends transcriptions only (throughput of the workers); `--mix list` list-voices
only (the API's own capacity, e.g. with `--workers 0`); `--mix poll` speech jobs and their polls.
Each step's clients start spread over --ramp seconds, and requests started in its first --warmup
seconds are not counted (the p99 of list-voices with them is printed beside): a load test measures
the load it holds, not the moment all of its clients fire together. Per step it also prints each
status poll's latency (`status_poll`) and the cores' worth of CPU the API and each worker used.
Bounded in time and count; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

PG_ADMIN = os.environ.get("CHORUS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("CHORUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
SECRET = "load-secret-" + "x" * 32
MIXES = {
    "mixed": (("list_voices", 0.6), ("preview", 0.2), ("generate_poll", 0.1), ("transcribe", 0.1)),
    "transcribe": (("transcribe", 1.0),),
    "list": (("list_voices", 1.0),),  # the API's own capacity for its cheapest authenticated read
    "poll": (("generate_poll", 1.0),),  # speech jobs and their status polls (--workers 0: polls only)
}
MIX = MIXES["mixed"]
MAX_REQUESTS = 20_000  # a hard bound whatever the timing
LOOP_LAG = "client_loop_lag"
Samples = dict[str, list[tuple[float, bool]]]  # per request kind: (seconds, succeeded)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def speech_wav() -> bytes:
    from app.engines.registry import get_tts

    engine = get_tts("joe")
    audio = np.concatenate(list(engine.stream("The load test speaks one short sentence for transcription.")))
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(engine.sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def rss_mb(pid: int) -> float:
    """Resident memory of one process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


class Deployment:
    def __init__(
        self,
        *,
        workers: int = 2,
        transcribe_on: str = "workers",
        preload: str | None = None,
        nice: int | None = None,
    ) -> None:
        self.workers = workers
        self.tmp = tempfile.TemporaryDirectory(prefix="chorus-load-")
        self.db = f"chorus_load_{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{self.db}"'))
        admin.dispose()
        self.env = {
            **os.environ,
            "CHORUS_ENV": "production",
            "CHORUS_SECRET_KEY": SECRET,
            "CHORUS_DATA_DIR": self.tmp.name,
            "CHORUS_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{self.db}",
            "CHORUS_REDIS_URL": REDIS,
            "CHORUS_RATE_LIMIT_PER_MINUTE": "1000000",
            "CHORUS_PORT": str(self.port),
            "CHORUS_TRANSCRIBE_ON": transcribe_on,
        }
        if preload is not None:
            self.env["CHORUS_PRELOAD_MODELS"] = preload
        if nice is not None:
            self.env["CHORUS_COMPUTE_NICE"] = str(nice)

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "app", *args], env=self.env, capture_output=True, text=True, check=True
        )
        return out.stdout

    def start(self) -> str:
        from redis import Redis

        Redis.from_url(REDIS).flushdb()
        self.cli("migrate")
        self.cli("users", "create", "load")
        self.cli("credits", "grant", "load", "100000000")
        key = self.cli("keys", "create", "load").strip().splitlines()[-1]
        log = open(Path(self.tmp.name) / "server.log", "wb")  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "app", "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        )
        for _ in range(self.workers):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "app", "worker"],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200 and self._workers_ready():
                    return key
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server did not become ready")

    def _workers_ready(self) -> bool:
        from redis import Redis
        from rq import Worker

        return Worker.count(connection=Redis.from_url(REDIS)) >= self.workers

    def memory(self) -> dict[str, float]:
        """RSS in MB: the API, then each worker."""
        names = ["api"] + [f"worker{i + 1}" for i in range(len(self.procs) - 1)]
        return {name: rss_mb(p.pid) for name, p in zip(names, self.procs, strict=True)}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'))
        admin.dispose()
        self.tmp.cleanup()


async def run_step(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    voices: list[str],
    wav: bytes,
    concurrency: int,
    seconds: float,
    budget: list[int],
    mix: tuple[tuple[str, float], ...] = MIX,
    poll_interval: float = 0.1,
    warmup: float = 0.0,
    ramp: float = 0.0,
    on_warm: Callable[[], Awaitable[None]] | None = None,
) -> tuple[Samples, Samples]:
    """Samples of requests started after `warmup` seconds, and of those started before it.
    Client i starts after i/concurrency of `ramp` seconds: all clients firing in the same
    millisecond is a burst no steady load has (16 requests queued on the API at once)."""
    samples: Samples = defaultdict(list)
    warming: Samples = defaultdict(list)
    step_start = time.monotonic()
    stop_at = step_start + seconds
    warm_at = step_start + warmup

    def record(kind: str, started_mono: float, sample: tuple[float, bool]) -> None:
        (samples if started_mono >= warm_at else warming)[kind].append(sample)

    names = [n for n, _ in mix]
    weights = [w for _, w in mix]

    async def one(kind: str) -> bool:
        if kind == "list_voices":
            r = await client.get("/api/v1/voice/voice-profiles", params={"limit": 20}, headers=headers)
            return r.status_code == 200
        if kind == "preview":
            voice = random.choice(voices)
            r = await client.get(f"/api/v1/voice/voice-profiles/{voice}/preview", headers=headers)
            return r.status_code == 200
        if kind == "generate_poll":
            voice = random.choice(voices)
            r = await client.post(
                f"/api/v1/voice/voices/{voice}/generate",
                headers=headers,
                json={"input_text": "A short line for the load test.", "audio_format": "mp3"},
            )
            if r.status_code != 202:
                return False
            job = r.json()["job_id"]
            for _ in range(int(60 / poll_interval)):
                polled, polled_mono = time.perf_counter(), time.monotonic()
                s = await client.get(f"/api/v1/voice/tts-jobs/{job}/status", headers=headers)
                record("status_poll", polled_mono, (time.perf_counter() - polled, s.status_code == 200))
                status = s.json().get("status")
                if status == "completed":
                    return True
                if status == "failed" or s.status_code != 200:
                    return False
                await asyncio.sleep(poll_interval)
            return False
        r = await client.post(
            "/v1/audio/transcriptions",
            headers=headers,
            files={"file": ("a.wav", wav, "audio/wav")},
            data={"model": "whisper-1"},
        )
        return r.status_code == 200

    async def worker(index: int) -> None:
        await asyncio.sleep(ramp * index / concurrency)
        while time.monotonic() < stop_at and budget[0] > 0:
            budget[0] -= 1
            kind = random.choices(names, weights)[0]
            started, started_mono = time.perf_counter(), time.monotonic()
            try:
                ok = await one(kind)
            except httpx.HTTPError:
                ok = False
            record(kind, started_mono, (time.perf_counter() - started, ok))

    async def loop_lag() -> None:
        """How late this client's own event loop wakes: its share of the measured latencies."""
        while time.monotonic() < stop_at:
            started, started_mono = time.perf_counter(), time.monotonic()
            await asyncio.sleep(0.01)
            record(LOOP_LAG, started_mono, (time.perf_counter() - started - 0.01, True))

    async def warmed() -> None:
        await asyncio.sleep(max(0.0, warm_at - time.monotonic()))
        if on_warm is not None:
            await on_warm()

    await asyncio.gather(warmed(), loop_lag(), *(worker(i) for i in range(concurrency)))
    return samples, warming


def server_side_over_100ms(metrics: str) -> dict[str, tuple[int, int]]:
    """Per GET route: (requests, of them over 100 ms) as the API itself timed them (/metrics)."""
    counts: dict[str, dict[str, float]] = defaultdict(dict)
    for line in metrics.splitlines():
        if line.startswith("chorus_http_request_duration_seconds_bucket{") and 'method="GET"' in line:
            labels, value = line.split("} ")
            route = labels.split('route="')[1].split('"')[0]
            le = labels.split('le="')[1].split('"')[0]
            counts[route][le] = float(value)
    return {r: (int(b["+Inf"]), int(b["+Inf"] - b["0.1"])) for r, b in counts.items() if "0.1" in b}


CPU_CGROUPS = Path("/sys/fs/cgroup/cpu")  # cgroup v1's cpu controller; writing needs root
LOAD_CGROUPS = CPU_CGROUPS / "chorus-load"


def into_cpu_cgroup(group: Path, pid: int, shares: int = 1024) -> None:
    """Move process `pid` (all its threads; its children follow) into `group`, made if needed."""
    group.mkdir(parents=True, exist_ok=True)
    (group / "cpu.shares").write_text(str(shares))
    (group / "cgroup.procs").write_text(str(pid))


def remove_cpu_cgroups(root: Path, pids: list[int]) -> None:
    """Back to the root group for those of `pids` still running, then `root` and its groups go."""
    for pid in pids:
        with contextlib.suppress(OSError):
            (CPU_CGROUPS / "cgroup.procs").write_text(str(pid))
    for group in sorted(root.glob("*/"), reverse=True):
        with contextlib.suppress(OSError):
            group.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    deployment = Deployment(
        workers=args.workers, transcribe_on=args.transcribe_on, preload=args.preload, nice=args.nice
    )
    wav = speech_wav()
    mix = MIXES[args.mix]
    results: dict[str, Any] = {"steps": [], "config": vars(args) | {"json": str(args.json)}}
    try:
        key = deployment.start()
        if args.worker_cpu_shares:  # as containers with cpu_shares would be
            into_cpu_cgroup(LOAD_CGROUPS / "api", deployment.procs[0].pid)
            for worker in deployment.procs[1:]:
                into_cpu_cgroup(LOAD_CGROUPS / "workers", worker.pid, args.worker_cpu_shares)
        time.sleep(3)  # settle after start-up before reading idle memory
        results["rss_idle_mb"] = deployment.memory()
        print("RSS when ready (MB):", results["rss_idle_mb"], flush=True)
        headers = {"X-API-Key": key}
        async with httpx.AsyncClient(base_url=deployment.base, timeout=120) as client:
            listed = (
                await client.get(
                    "/api/v1/voice/voice-profiles", params={"voice_type": "STANDARD"}, headers=headers
                )
            ).json()
            # English voices only: the text is English, and a Spanish voice refuses it (400).
            voices = [v["voice_id"] for v in listed["voices"] if (v.get("language") or "en").startswith("en")]
            for voice in voices:  # warm the preview cache and the models once
                await client.get(f"/api/v1/voice/voice-profiles/{voice}/preview", headers=headers)
            print(f"previews of {len(voices)} voices cached; load steps start", flush=True)
            steps = [int(s) for s in args.steps.split(",")]
            per_step = args.seconds / len(steps)
            budget = [MAX_REQUESTS]
            for concurrency in steps:
                warm: dict[str, Any] = {}

                async def on_warm(warm: dict[str, Any] = warm) -> None:
                    warm["at"] = time.monotonic()
                    warm["metrics"] = server_side_over_100ms((await client.get("/metrics")).text)
                    warm["cpu"] = [cpu_seconds(p.pid) for p in deployment.procs]

                samples, warming = await run_step(
                    client,
                    headers,
                    voices,
                    wav,
                    concurrency,
                    per_step,
                    budget,
                    mix,
                    args.poll_interval,
                    warmup=args.warmup,
                    ramp=args.ramp,
                    on_warm=on_warm,
                )
                before, cpu_before = warm["metrics"], warm["cpu"]
                elapsed = time.monotonic() - warm["at"]
                # Cores' worth of CPU each process used during the step: is the API itself saturated?
                cpu_used = [
                    round((cpu_seconds(p.pid) - b) / elapsed, 2)
                    for p, b in zip(deployment.procs, cpu_before, strict=True)
                ]
                after = server_side_over_100ms((await client.get("/metrics")).text)
                # The client's own loop lag is not a route: kept out of the throughput sums.
                lag = [t for t, _ in samples.pop(LOOP_LAG)]
                whole_list = [t for t, _ in samples.get("list_voices", []) + warming.get("list_voices", [])]
                step: dict[str, Any] = {
                    "concurrency": concurrency,
                    "seconds": round(elapsed, 1),
                    "warmup_seconds": args.warmup,
                    "list_voices_p99_ms_with_warmup": round(pct(whole_list, 99), 1),
                    "routes": {},
                    "client_loop_lag_ms": {"p50": round(pct(lag, 50), 1), "p99": round(pct(lag, 99), 1)},
                    "cpu_cores": {"api": cpu_used[0], "workers": cpu_used[1:]},
                }
                for kind, rows in samples.items():
                    lat = [t for t, _ in rows]
                    errors = sum(1 for _, ok in rows if not ok)
                    step["routes"][kind] = {
                        "requests": len(rows),
                        "rps": round(len(rows) / elapsed, 2),
                        "p50_ms": round(pct(lat, 50), 1),
                        "p95_ms": round(pct(lat, 95), 1),
                        "p99_ms": round(pct(lat, 99), 1),
                        "error_rate": round(errors / len(rows), 4),
                    }
                listed_route = "/api/v1/voice/voice-profiles"
                listed_total, listed_slow = (
                    a - b
                    for a, b in zip(
                        after.get(listed_route, (0, 0)), before.get(listed_route, (0, 0)), strict=True
                    )
                )
                step["list_voices_server_side"] = {"requests": listed_total, "over_100ms": listed_slow}
                results["steps"].append(step)
                print(
                    f"concurrency {concurrency}: "
                    + ", ".join(
                        f"{k} {v['rps']}/s p50 {v['p50_ms']} p95 {v['p95_ms']} "
                        f"p99 {v['p99_ms']} err {v['error_rate']}"
                        for k, v in step["routes"].items()
                    )
                    + f"; list-voices timed by the API: {listed_slow} of {listed_total} over 100 ms"
                    + f"; this client's loop lag p99 {step['client_loop_lag_ms']['p99']} ms"
                    + f"; CPU cores used: {step['cpu_cores']}"
                    + f"; list-voices p99 with the warm-up: {step['list_voices_p99_ms_with_warmup']} ms",
                    flush=True,
                )
        results["rss_warm_mb"] = deployment.memory()
        print("RSS after the run (MB):", results["rss_warm_mb"], flush=True)
    finally:
        deployment.stop()
        if args.worker_cpu_shares:
            remove_cpu_cgroups(LOAD_CGROUPS, [])
    base = results["steps"][0]["routes"].get("list_voices", {}).get("p50_ms")
    doubled = next(
        (
            s["concurrency"]
            for s in results["steps"]
            if base and s["routes"].get("list_voices", {}).get("p50_ms", 0) >= 2 * base
        ),
        None,
    )
    results["latency_doubles_at"] = doubled
    # Saturation: the first step whose total throughput is within 5% of the best step's; past it
    # more clients only queue. The goal is judged there: list-voices p99 < 100 ms.
    totals = [sum(r["rps"] for r in s["routes"].values()) for s in results["steps"]]
    if totals:
        saturated = next(s for s, t in zip(results["steps"], totals, strict=True) if t >= 0.95 * max(totals))
        results["saturated_at"] = saturated["concurrency"]
        results["list_voices_p99_at_saturation_ms"] = saturated["routes"].get("list_voices", {}).get("p99_ms")
        results["total_rps"] = dict(zip([s["concurrency"] for s in results["steps"]], totals, strict=True))
    total = {k: sum(s["routes"].get(k, {}).get("requests", 0) for s in results["steps"]) for k, _ in mix}
    results["total_requests"] = total
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--steps", default="1,2,4,8,16")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--transcribe-on", choices=["workers", "api"], default="workers")
    parser.add_argument("--mix", choices=sorted(MIXES), default="mixed")
    parser.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="seconds at the start of each step whose requests are not counted (0: count all)",
    )
    parser.add_argument(
        "--ramp", type=float, default=2.0, help="seconds over which a step's clients start (0: at once)"
    )
    parser.add_argument("--preload", default=None, help="CHORUS_PRELOAD_MODELS ('' for none)")
    parser.add_argument("--nice", type=int, default=None, help="CHORUS_COMPUTE_NICE")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.1,
        help="seconds between a generate client's status polls (0.1 as before; seed clients wait 2-3 s)",
    )
    parser.add_argument(
        "--worker-cpu-shares",
        type=int,
        default=0,
        help="API and workers in cgroups, workers with these shares (root)",
    )
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(f"list-voices p50 doubles at concurrency: {results['latency_doubles_at']}")
    if "saturated_at" in results:
        print("total throughput per step (req/s):", {c: round(t, 2) for c, t in results["total_rps"].items()})
        print(
            f"saturated at concurrency {results['saturated_at']} (throughput within 5% of the best step); "
            f"list-voices p99 there: {results['list_voices_p99_at_saturation_ms']} ms (goal < 100)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
