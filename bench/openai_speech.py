"""Benchmark: OpenAI-compatible streamed speech over HTTP versus the engine in-process.

Run by hand (not a test):  .venv/bin/python bench/openai_speech.py [--repeat 3] [--voices echo,joe]

Starts `uvicorn app.main:app_factory` in a subprocess on loopback with a temporary
CHORUS_DATA_DIR, creates a user and key with app.auth.service, then prints:
- time to first byte (TTFB) and total time for a 12-word and a 130-word input over HTTP
  (mp3 and pcm) versus the first chunk / total of the same voice's Speaker stream in this
  process (echo is Kokoro's am_echo for English text; joe is plain Piper); the key figure is
  TTFB_http / first_chunk_inprocess (goal ≤ 1.3);
- throughput (requests per second) at concurrency 1, 2 and 4
  (goal: concurrency 2 ≥ 1.6 × concurrency 1 on 2 cores).
Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.core.config import Settings  # noqa: E402

SECRET = "bench-secret-" + "x" * 32

TEXT_12 = "The quick brown fox jumps over the lazy dog near the quiet river."
TEXT_130 = (
    "Chorus is a self-hosted voice server that speaks with built-in and cloned voices. "
    "It streams audio sentence by sentence, so a listener hears the first words quickly. "
    "Long answers from an assistant can be read aloud while the rest is still being made. "
    "Every request is billed in credits, held when it starts and captured when audio is out. "
    "If the client goes away before any audio arrives, the hold is simply released. "
    "The same server also turns recorded speech back into text with Whisper. "
    "Subtitles come out as SubRip or WebVTT, and words carry their own timestamps. "
    "Translations into English use the multilingual model on the same machine. "
    "Nothing here needs a network connection once the models are installed. "
    "Operators keep their audio and their users on hardware they control."
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base_url: str
    key: str
    user_id: int
    settings: Settings
    process: subprocess.Popen[bytes]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@contextlib.contextmanager
def running_server(credits: int = 10_000_000) -> Iterator[Server]:
    """A uvicorn subprocess on loopback with a fresh data dir, and a funded user's key."""
    from app.auth import service as auth
    from app.billing import service as billing
    from app.core.db import dispose_engines, session_scope
    from app.core.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        shared_models = ROOT / "data" / "models"  # reuse an assembled Whisper base if there is one
        env = {
            **os.environ,
            "CHORUS_ENV": "test",
            "CHORUS_DATA_DIR": str(data_dir),
            "CHORUS_SECRET_KEY": SECRET,
            "CHORUS_MODELS_DIR": str(shared_models),
            "CHORUS_RATE_LIMIT_PER_MINUTE": "1000000",
        }
        settings = Settings(env="test", data_dir=data_dir, secret_key=SECRET, models_dir=shared_models)
        upgrade(settings)
        with session_scope(settings) as session:
            user = auth.create_user(session, "bench")
            billing.grant(session, user.id, credits)
            _, key = auth.create_api_key(session, settings, user.id)
            user_id = user.id
        dispose_engines()
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "app.main:app_factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                if process.poll() is not None:
                    raise RuntimeError("server exited during start-up")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start in 180 s")
                time.sleep(0.25)
            yield Server(base_url, key, user_id, settings, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def speaker_like_the_server(server: Server, voice: str) -> Any:
    """The Speaker the route builds for `voice` (same voice row, engine and timbre profile)."""
    from app.api.openai.voices import resolve_voice
    from app.core.db import session_scope
    from app.speech.speakers import synthesizer_for as speaker_for
    from app.storage import get_store

    with session_scope(server.settings) as session:
        row = resolve_voice(session, server.user_id, voice)
        session.expunge(row)
    return speaker_for(row, get_store(server.settings), server.settings)


def http_speech(
    server: Server, text: str, fmt: str, client: httpx.Client, voice: str = "alloy"
) -> tuple[float, float, int]:
    """(seconds to first body byte, total seconds, bytes) for one streamed request."""
    body = {"model": "tts-1", "voice": voice, "input": text, "response_format": fmt}
    start = time.perf_counter()
    first = None
    size = 0
    with client.stream("POST", server.base_url + "/v1/audio/speech", json=body, headers=server.headers) as r:
        r.raise_for_status()
        for chunk in r.iter_raw():
            if first is None and chunk:
                first = time.perf_counter() - start
            size += len(chunk)
    total = time.perf_counter() - start
    return first if first is not None else total, total, size


def inprocess_speech(engine: object, text: str) -> tuple[float, float, float]:
    """(first chunk seconds, total seconds, audio seconds) from the Piper stream in this process."""
    start = time.perf_counter()
    first = None
    samples = 0
    for chunk in engine.stream(text):  # type: ignore[attr-defined]
        if first is None:
            first = time.perf_counter() - start
        samples += len(chunk)
    total = time.perf_counter() - start
    return first or total, total, samples / engine.sample_rate  # type: ignore[attr-defined]


def median(values: list[float]) -> float:
    return statistics.median(values)


def throughput(server: Server, text: str, voice: str, concurrency: int, requests: int) -> tuple[float, float]:
    """(requests per second, wall seconds) for `requests` pcm requests with `concurrency` clients."""
    lock = threading.Lock()
    remaining = [requests]

    def worker() -> None:
        with httpx.Client(timeout=300) as client:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                http_speech(server, text, "pcm", client, voice)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return requests / wall, wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per latency figure (median reported)")
    parser.add_argument("--requests", type=int, default=4, help="requests per concurrency level")
    parser.add_argument(
        "--voices", default="echo,joe", help="voice names to time (echo = Kokoro am_echo, joe = Piper)"
    )
    args = parser.parse_args()
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]

    print(f"cpus: {os.cpu_count()}  load average: {os.getloadavg()[0]:.2f}")
    with running_server() as server, httpx.Client(timeout=300) as client:
        print(f"\nlatency (median of {args.repeat}; in-process = the same Speaker the route builds)")
        header = f"{'voice':<8}{'input':<10}{'path':<12}{'first (s)':>10}{'total (s)':>10}{'ratio':>8}"
        print(header)
        print("-" * len(header))
        for voice in voices:
            speaker = speaker_like_the_server(server, voice)
            for _ in range(2):  # warm both paths
                inprocess_speech(speaker, TEXT_12)
                http_speech(server, TEXT_12, "mp3", client, voice)
            for label, text in (("12 words", TEXT_12), ("130 words", TEXT_130)):
                # Interleaved runs, so drift in machine load hits both paths alike.
                local: list[tuple[float, float, float]] = []
                remote: dict[str, list[tuple[float, float, int]]] = {"mp3": [], "pcm": []}
                for _ in range(args.repeat):
                    local.append(inprocess_speech(speaker, text))
                    for fmt in remote:
                        remote[fmt].append(http_speech(server, text, fmt, client, voice))
                first_in = median([r[0] for r in local])
                total_in = median([r[1] for r in local])
                print(f"{voice:<8}{label:<10}{'in-process':<12}{first_in:>10.3f}{total_in:>10.3f}{'':>8}")
                for fmt, runs in remote.items():
                    ttfb = median([h[0] for h in runs])
                    total = median([h[1] for h in runs])
                    print(f"{'':<18}{'HTTP ' + fmt:<12}{ttfb:>10.3f}{total:>10.3f}{ttfb / first_in:>8.2f}")
                print(f"{'':<18}(audio {local[0][2]:.1f} s)")
        print("ratio = TTFB_http / first_chunk_inprocess (goal ≤ 1.3)")

        voice = voices[0]
        print(f"\nthroughput, voice {voice}, 130-word input as pcm, {args.requests} requests per level")
        base_rate = None
        for concurrency in (1, 2, 4):
            rate, wall = throughput(server, TEXT_130, voice, concurrency, args.requests)
            base_rate = base_rate or rate
            speedup = rate / base_rate
            print(f"concurrency {concurrency}: {rate:.2f} req/s  ({wall:.1f} s wall)  x{speedup:.2f} vs c=1")
        print("goal: concurrency 2 ≥ 1.6 × concurrency 1")


if __name__ == "__main__":
    main()
