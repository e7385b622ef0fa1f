"""`GET /v1/audio/speech/stream`: text in as an LLM writes it, audio and word timings out, over a
real WebSocket (uvicorn on loopback, the `websockets` client)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.plugins.services import Account
from tests.plugins.waiting import wait_until
from tests.test_openai_fixtures import LiveApp, live_app


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from live_app(tmp_path_factory)


def _socket(live: LiveApp, account: Account | None, *, query: str = "") -> ClientConnection:
    url = live.base_url.replace("http://", "ws://") + "/v1/audio/speech/stream" + query
    headers = {"Authorization": f"Bearer {account.key}"} if account else {}
    return connect(url, additional_headers=headers, open_timeout=10, close_timeout=10)


def _until_closed(ws: ClientConnection) -> tuple[bytes, list[dict[str, Any]]]:
    """Everything the server sends until it closes: audio bytes, and the JSON messages."""
    audio, messages = b"", []
    try:
        while True:
            message = ws.recv(timeout=120)
            if isinstance(message, bytes):
                audio += message
            else:
                messages.append(json.loads(message))
    except ConnectionClosed:
        return audio, messages


@pytest.mark.slow
def test_clauses_are_spoken_as_they_complete(live: LiveApp) -> None:
    account = live.make_user(credits=1000)
    with _socket(live, account) as ws:
        ws.send(json.dumps({"voice": "joe", "response_format": "pcm"}))
        ws.send(json.dumps({"text": "Hello there, this is"}))
        # "Hello there," is complete: its audio comes before any more text is sent.
        first = ws.recv(timeout=60)
        assert isinstance(first, bytes) and len(first) > 0
        for piece in (" a streamed", " reply. And it keeps", " going"):
            ws.send(json.dumps({"text": piece}))
        ws.send(json.dumps({"close": True}))
        rest, messages = _until_closed(ws)
        assert ws.close_code == 1000
    samples = np.frombuffer(first + rest, dtype="<i2")
    seconds = len(samples) / 24_000  # pcm: 24 kHz s16le
    assert 3.0 < seconds < 9.0 and np.abs(samples).max() > 3000
    words = [w for m in messages if m["type"] == "words" for w in m["words"]]
    spoken = "Hello there, this is a streamed reply. And it keeps going"
    assert [w["word"] for w in words] == spoken.split()
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and words[-1]["end"] == pytest.approx(seconds, abs=0.4)
    done = messages[-1]
    assert done["type"] == "done" and done["usage"]["seconds"] == pytest.approx(seconds, abs=0.05)
    # Pieces are charged as spoken: "Hello there," + "this is a streamed reply." + "And it keeps going"
    assert done["usage"]["credits"] == len(spoken.encode()) - 2  # the two spaces between pieces
    assert live.balance(account) == (1000 - done["usage"]["credits"], 0)


@pytest.mark.slow
def test_key_in_the_query_and_a_kokoro_voice_in_mp3(live: LiveApp) -> None:
    account = live.make_user(credits=1000)
    with _socket(live, None, query=f"?key={account.key}") as ws:
        ws.send(json.dumps({"voice": "alloy", "response_format": "mp3"}))
        ws.send(json.dumps({"text": "Streaming works in a browser too"}))
        ws.send(json.dumps({"flush": True}))
        ws.send(json.dumps({"close": True}))
        audio, messages = _until_closed(ws)
    from tests.test_openai_fixtures import decoded_seconds

    assert 1.0 < decoded_seconds(audio) < 5.0
    assert [w["word"] for m in messages if m["type"] == "words" for w in m["words"]] == [
        "Streaming",
        "works",
        "in",
        "a",
        "browser",
        "too",
    ]


@pytest.mark.parametrize(
    ("config", "param", "fragment"),
    [
        ({"voice": "joe", "response_format": "wav"}, "response_format", "piece by piece"),
        ({"voice": "joe", "speed": 9}, "speed", "between"),
        ({"voice": "nobody-here"}, "voice", "nobody-here"),
        ({"voice": "joe", "speed": "fast"}, "speed", "number"),
        ({"voice": "joe", "instructions": "whisper", "sample_rate": 123}, "sample_rate", "sample_rate"),
        ({"response_format": "pcm"}, None, "first message"),
    ],
)
def test_a_bad_configuration_is_an_error_and_costs_nothing(
    live: LiveApp, config: dict[str, Any], param: str | None, fragment: str
) -> None:
    account = live.make_user(credits=1000)
    with _socket(live, account) as ws:
        ws.send(json.dumps(config))
        # The server may refuse the configuration and close before the text arrives (seen under
        # load): the client's send then fails, and what the server said is still there to read.
        with contextlib.suppress(ConnectionClosed):
            ws.send(json.dumps({"text": "Hello there.", "close": True}))
        _, messages = _until_closed(ws)
        assert ws.close_code == 1008
    error = messages[-1]
    assert error["type"] == "error" and error["error"]["param"] == param
    assert fragment in error["error"]["message"]
    assert live.balance(account) == (1000, 0)
    assert live.jobs(account) == []


def test_without_a_key_nothing_is_spoken(live: LiveApp) -> None:
    with _socket(live, None) as ws:
        _, messages = _until_closed(ws)
        assert ws.close_code == 1008
    assert messages[-1]["error"]["message"] == "Invalid or missing API key"


@pytest.mark.slow
def test_a_dropped_connection_is_charged_only_for_audio_sent(live: LiveApp) -> None:
    account = live.make_user(credits=1000)
    ws = _socket(live, account)
    ws.send(json.dumps({"voice": "joe", "response_format": "pcm"}))
    ws.send(json.dumps({"text": "Hello there, "}))
    while True:  # the first piece, until its words arrive (all its audio is out)
        message = ws.recv(timeout=60)
        if isinstance(message, str) and json.loads(message)["type"] == "words":
            break
    long = " ".join(["This sentence is here to keep the voice busy for a while."] * 6)
    ws.send(json.dumps({"text": long, "flush": True}))
    ws.close()  # gone before the second piece's audio could reach it

    def settled() -> tuple[int, int]:
        return live.balance(account)

    time.sleep(0.5)
    balance = wait_until(settled, lambda b: b[1] == 0, 60, interval=0.2)
    assert balance == (1000 - len(b"Hello there,"), 0)
