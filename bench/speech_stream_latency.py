"""Benchmark: first audio over the speech WebSocket after the first complete clause.

Run by hand (not a test):  .venv/bin/python bench/speech_stream_latency.py [--repeat 5]

Starts the server as bench/openai_speech.py does (uvicorn subprocess, fresh data dir), then for
joe (Piper) and alloy (a Kokoro voice) plays an LLM: a reply sent word by word every 40 ms. The
clock starts when the word that completes the first clause ("Sure, ") is sent and stops at the
first binary audio frame. Goal (issue 17): <= 0.3 s for joe, <= 0.8 s for a Kokoro voice on 2
cores. Also prints the time from that word to the end of the whole reply's audio. Reported,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from openai_speech import running_server  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

REPLY = (
    "Sure, here is what I found. The train leaves at nine in the morning, "
    "and the trip takes about two hours. Would you like me to book a seat?"
)
WORD_INTERVAL_S = 0.04


def one_session(base_url: str, key: str, voice: str) -> tuple[float, float]:
    url = base_url.replace("http://", "ws://") + "/v1/audio/speech/stream"
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        ws.send(json.dumps({"voice": voice, "response_format": "pcm"}))
        words = REPLY.split(" ")
        clause_sent = threading.Event()
        marks: dict[str, float] = {}

        def writer() -> None:
            for n, word in enumerate(words):
                ws.send(json.dumps({"text": word + " "}))
                if n == 0:  # "Sure, " completes the first clause
                    marks["clause"] = time.perf_counter()
                    clause_sent.set()
                time.sleep(WORD_INTERVAL_S)
            ws.send(json.dumps({"close": True}))

        thread = threading.Thread(target=writer)
        thread.start()
        first = last = None
        for message in ws:
            if isinstance(message, bytes):
                last = time.perf_counter()
                first = first or last
        thread.join()
        assert first is not None and last is not None and clause_sent.is_set()
        return first - marks["clause"], last - marks["clause"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with running_server() as server:
        print(f"{'voice':10} {'first audio s (min/median/max)':32} {'whole reply s (median)':>22}")
        for voice in ("joe", "alloy"):
            one_session(server.base_url, server.key, voice)  # warm: models load on first use
            runs = [one_session(server.base_url, server.key, voice) for _ in range(args.repeat)]
            firsts = [r[0] for r in runs]
            print(
                f"{voice:10} {min(firsts):.3f} / {statistics.median(firsts):.3f} / {max(firsts):.3f}"
                f"{'':12} {statistics.median(r[1] for r in runs):>10.2f}"
            )


if __name__ == "__main__":
    main()
