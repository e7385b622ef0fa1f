"""Run every benchmark and write docs/benchmarks.md with their figures, the machine and the date.

Run by hand:  .venv/bin/python bench/report.py [--only engines,openai_speech,...] [--load-seconds 60]

Each bench script prints its own figures; this collects their output verbatim per section,
so the report holds every figure exactly as measured. With --only, the other sections of an
existing report are kept as they were.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BENCHES: dict[str, tuple[str, list[str]]] = {
    "engines": ("Engines: Piper, Whisper, Resemblyzer", ["bench/engines.py"]),
    "voice_bank": (
        "Kokoro voice bank: first audio, RTF, Whisper round trip per language",
        ["bench/voice_matrix.py"],
    ),
    "voice_matrix": ("Built-in voices: similarity matrix and WER", ["bench/voice_matrix.py", "--piper"]),
    "openai_speech": ("OpenAI speech over HTTP vs in-process", ["bench/openai_speech.py"]),
    "openai_speech_one_thread": (
        "OpenAI speech with CHORUS_TTS_THREADS=1 (one core per synthesis)",
        ["bench/openai_speech.py", "--voices", "echo"],
    ),
    "openai_transcribe": ("OpenAI transcription over HTTP vs in-process", ["bench/openai_transcribe.py"]),
    "clone_quality": (
        "Clone quality on real speakers (LibriSpeech)",
        ["bench/clone_quality.py", "--samples-curve", "6", "--languages", "es,fr,it,pt,ja,zh"],
    ),
    "load": ("Load on Postgres + Redis with two workers", ["bench/load.py"]),
    "word_timestamps": ("Word timestamps against Whisper", ["bench/word_timestamps.py"]),
    "speech_stream": (
        "Speech WebSocket: first audio after the first clause",
        ["bench/speech_stream_latency.py", "--repeat", "5"],
    ),
    "idle_memory": ("Idle memory by preload list", ["bench/idle_memory.py"]),
    "transcription_wer": ("Transcription: how the audio is fed to Whisper", ["bench/transcription_wer.py"]),
}
# Settings a bench runs under besides the defaults (its server inherits the environment).
BENCH_ENV: dict[str, dict[str, str]] = {"openai_speech_one_thread": {"CHORUS_TTS_THREADS": "1"}}


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "memory": mem,
        "cpu": cpu,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def run(
    script: list[str], extra: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, *script, *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        output, code = (
            proc.stdout + (("\n" + proc.stderr[-2000:]) if proc.returncode else ""),
            proc.returncode,
        )
    except subprocess.TimeoutExpired as exc:
        output, code = f"timed out after {timeout:.0f} s\n{exc.stdout or ''}", 124
    return code, output.strip(), time.monotonic() - started


def existing_sections(path: Path) -> dict[str, str]:
    """Sections (title -> body) of a report already written, so `--only` refreshes just those."""
    if not path.exists():
        return {}
    sections: dict[str, str] = {}
    for chunk in path.read_text().split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        sections[title.strip()] = body.strip("\n")
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    info = machine()
    sections = existing_sections(args.out)  # benches not run this time keep their last figures
    for name in args.only.split(","):
        title, script = BENCHES[name]
        if not (ROOT / script[0]).exists():
            sections[title] = f"`{script[0]}` is not present in this checkout."
            continue
        extra = ["--seconds", str(args.load_seconds)] if name == "load" else []
        print(f"running {name} …", flush=True)
        env = BENCH_ENV.get(name, {})
        code, output, seconds = run(script, extra, args.timeout, env)
        prefix = "".join(f"{k}={v} " for k, v in env.items())
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        sections[title] = "\n".join(
            [
                f"`{prefix}{' '.join(script + extra)}` — exit {code}, {seconds:.0f} s, measured {when}",
                "",
                "```",
                output,
                "```",
            ]
        )
    lines = [
        "# Chorus benchmarks",
        "",
        "Written by `bench/report.py` (each section says when it was measured).",
        "",
        "| machine | |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
        "Figures are printed by each script below, verbatim. They are measurements, not assertions.",
    ]
    order = [title for title, _ in BENCHES.values()]
    for title in order + [t for t in sections if t not in order]:
        if title in sections:
            lines += ["", f"## {title}", "", sections[title]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
