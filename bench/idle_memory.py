"""Benchmark: resident memory of the API process at rest, by preload list.

Run by hand:  .venv/bin/python bench/idle_memory.py

Starts the server as bench/openai_speech.py does (uvicorn subprocess, fresh data dir) with
CHORUS_PRELOAD_MODELS set to each list below, waits until /health answers and 5 s more, and
reads VmRSS from /proc; then speaks once with alloy (Kokoro) and transcribes once (warm RSS).
Goal (issue 18): idle RSS <= 250 MB with nothing preloaded. Reported, never asserted.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from openai_speech import running_server  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    print(f"{'preload':28} {'idle MB':>8} {'warm MB':>8}")
    for preload in ("", "joe,whisper-base", "joe,kokoro,whisper-base,speaker-encoder"):
        os.environ["CHORUS_PRELOAD_MODELS"] = preload
        with running_server() as server:
            time.sleep(5)
            idle = rss_mb(server.process.pid)
            speech = httpx.post(
                server.base_url + "/v1/audio/speech",
                json={
                    "model": "tts-1",
                    "voice": "alloy",
                    "input": "Hello there, how are you?",
                    "response_format": "wav",
                },
                headers=server.headers,
                timeout=120,
            )
            httpx.post(
                server.base_url + "/v1/audio/transcriptions",
                files={"file": ("a.wav", io.BytesIO(speech.content), "audio/wav")},
                data={"model": "whisper-1"},
                headers=server.headers,
                timeout=120,
            )
            warm = rss_mb(server.process.pid)
        print(f"{preload or '(nothing)':28} {idle:8.0f} {warm:8.0f}")


if __name__ == "__main__":
    main()
