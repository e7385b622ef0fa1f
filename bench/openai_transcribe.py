"""Benchmark: OpenAI-compatible transcription over HTTP versus Whisper in-process.

Run by hand (not a test):  .venv/bin/python bench/openai_transcribe.py [--repeat 3]

Makes ≈ 20 s of real speech with Piper, starts the server as bench/openai_speech.py does, and
prints the real-time factor (processing seconds / audio seconds) of Whisper base in this
process (decode + transcribe) and of POST /v1/audio/transcriptions over loopback (upload,
decode, credits, Whisper, response), and the HTTP overhead (goal ≤ 10%). Reported, not asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import wave
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from openai_speech import TEXT_130, running_server  # noqa: E402


def speech_wav(text: str) -> tuple[bytes, float]:
    """Piper speech as 16-bit WAV bytes and its duration."""
    from app.engines import registry

    engine = registry.get_tts("joe")
    audio = np.concatenate(list(engine.stream(text)))
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(engine.sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue(), len(audio) / engine.sample_rate


def inprocess(engine: object, data: bytes) -> float:
    """Seconds to decode the upload bytes and transcribe them in this process."""
    from app.audio import decode_audio

    start = time.perf_counter()
    audio = decode_audio(data, target_rate=16_000, max_seconds=600, max_sample_rate=192_000)
    engine.transcribe(audio.samples)  # type: ignore[attr-defined]
    return time.perf_counter() - start


def over_http(base_url: str, headers: dict[str, str], data: bytes, client: httpx.Client) -> tuple[float, str]:
    start = time.perf_counter()
    response = client.post(
        base_url + "/v1/audio/transcriptions",
        files={"file": ("speech.wav", data, "audio/wav")},
        data={"model": "whisper-1"},
        headers=headers,
    )
    response.raise_for_status()
    return time.perf_counter() - start, response.json()["text"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    args = parser.parse_args()

    print(f"cpus: {os.cpu_count()}  load average: {os.getloadavg()[0]:.2f}")
    data, seconds = speech_wav(TEXT_130)
    print(f"audio: {seconds:.1f} s of Piper speech ({len(data) / 1e6:.1f} MB WAV)")

    with running_server() as server, httpx.Client(timeout=600) as client:
        from app.engines.stt.whisper import WhisperEngine, resolve_model_dir

        model_dir = resolve_model_dir("base", server.settings.resolved_models_dir)
        # Built as the server builds it (registry.get_stt). That is not cosmetic: with CTranslate2's
        # threads at the priority of the Python thread that drives decoding, the same transcription
        # is ~1.6x slower on 2 cores (see WhisperEngine).
        engine = WhisperEngine(model_dir, name="base", nice=server.settings.compute_nice)
        inprocess(engine, data)  # warm
        over_http(server.base_url, server.headers, data, client)  # warm: loads Whisper in the server

        local_runs: list[float] = []
        remote_runs: list[tuple[float, str]] = []
        for _ in range(args.repeat):  # interleaved, so drift in machine load hits both alike
            local_runs.append(inprocess(engine, data))
            remote_runs.append(over_http(server.base_url, server.headers, data, client))
        local = statistics.median(local_runs)
        remote = statistics.median(r[0] for r in remote_runs)
        print(f"\nmedian of {args.repeat}")
        print(f"in-process (decode + Whisper base): {local:6.2f} s   RTF {local / seconds:.3f}")
        print(f"HTTP /v1/audio/transcriptions:      {remote:6.2f} s   RTF {remote / seconds:.3f}")
        print(f"HTTP overhead: {100 * (remote - local) / local:+.1f}%  (goal ≤ 10%)")
        print(f"text: {remote_runs[0][1][:100]}…")


if __name__ == "__main__":
    main()
