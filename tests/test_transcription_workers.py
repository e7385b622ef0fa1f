"""Transcription on the worker pool (real Postgres, Redis and `chorus worker` processes): the OpenAI
routes answer as before while a worker decodes; a full queue is 429 with Retry-After, a queue no
worker takes or a worker that dies is 503; none of them holds or spends credits, none waits on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from redis import Redis
from rq import Queue

from app.core.config import Settings
from app.core.db import dispose_engines
from app.core.migrate import upgrade
from app.jobs.queue import STT_QUEUE, TTS_QUEUE, reset_queues
from app.transcription.workers import LISTENER_LAPSE_SECONDS, listening_workers
from tests.plugins.audio_samples import wav_bytes
from tests.plugins.services import AppHarness, _build_harness, make_settings, start_worker, stop_worker
from tests.plugins.waiting import wait_until
from tests.test_openai_fixtures import audio_file, first_sentence_wav, sse_events


@pytest.fixture
def stt_app(
    postgres_url: str, redis_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppHarness]:
    """The deployed shape with transcriptions on workers: a short start timeout and silence
    window, so the refusals below come in seconds."""
    settings = make_settings(
        tmp_path / "data",
        database_url=postgres_url,
        redis_url=redis_url,
        models_dir=tmp_path_factory.getbasetemp() / "openai-models",
        warm_models=False,
        rate_limit_per_minute=100_000,
        stt_start_timeout_seconds=4,
        stt_worker_silence_seconds=3,
        reconcile_interval_seconds=3600,
    )
    assert settings.transcribes_on_workers
    upgrade(settings)
    yield from _build_harness(settings)


def _start_worker(settings: Settings, queues: str) -> subprocess.Popen[bytes]:
    """A worker on `queues`, returned once it beats as listening to stt."""
    worker = start_worker(settings, "--queues", queues, env={"CHORUS_RECONCILE_INTERVAL_SECONDS": "3600"})
    wait_until(lambda: listening_workers(settings) > 0 or worker.poll() is not None, timeout=60)
    assert worker.poll() is None, f"worker exited: {list(settings.data_dir.glob('worker-*.log'))}"
    return worker


def _balance(app: AppHarness, user_id: int) -> tuple[int, int]:
    from app.billing import service as billing
    from app.core.db import session_scope

    with session_scope(app.settings) as session:
        b = billing.balance(session, user_id)
        return b.total, b.held


def _job_states(app: AppHarness, user_id: int) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.jobs.models import Job

    with session_scope(app.settings) as session:
        rows = session.execute(select(Job.kind, Job.status).where(Job.owner_id == user_id).order_by(Job.id))
        return [(kind, status) for kind, status in rows]


def _transcribe(app: AppHarness, headers: dict[str, str], data: bytes, **fields: str) -> Any:
    return app.client.post(
        "/v1/audio/transcriptions",
        files={"file": audio_file(data)},
        data={"model": "whisper-1", **fields},
        headers=headers,
    )


class _BackgroundRequest(threading.Thread):
    def __init__(self, send: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.send, self.response = send, None

    def run(self) -> None:
        self.response = self.send()

    def answer(self, within: float) -> Any:
        """The response, which must come within `within` seconds (a hung request fails the test)."""
        self.join(timeout=within)
        assert not self.is_alive(), f"no answer within {within} s"
        return self.response


def _transcribe_in_background(app: AppHarness, headers: dict[str, str], data: bytes) -> _BackgroundRequest:
    request = _BackgroundRequest(lambda: _transcribe(app, headers, data))
    request.start()
    return request


def test_a_worker_transcribes_for_the_api_and_only_its_queues(
    stt_app: AppHarness, speech_wav_bytes: bytes, speech_sentences: Any
) -> None:
    """JSON, word timings and SSE through a `--queues stt` worker, charged once; a speech job
    waits on the tts queue that this worker does not take."""
    worker = _start_worker(stt_app.settings, "stt")
    try:
        account = stt_app.make_user(credits=1000)
        r = _transcribe(
            stt_app,
            account.headers,
            speech_wav_bytes,
            response_format="verbose_json",
            **{"timestamp_granularities[]": "word"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        text = body["text"].lower()
        for word in ("quick", "brown", "fox", "stella", "station", "noon"):
            assert word in text
        assert (
            body["words"] and body["words"][0]["start"] < body["words"][-1]["end"] <= body["duration"] + 0.5
        )
        charged = 1000 - _balance(stt_app, account.user_id)[0]
        assert charged == int(np.ceil(body["duration"]))
        assert _balance(stt_app, account.user_id)[1] == 0

        streamed = _transcribe(stt_app, account.headers, first_sentence_wav(speech_sentences), stream="true")
        assert streamed.status_code == 200, streamed.text
        events = sse_events(streamed.content)
        assert events[-1]["type"] == "transcript.text.done"
        assert "fox" in events[-1]["text"].lower()
        assert any(e["type"] == "transcript.text.delta" for e in events)
        assert [s for _, s in _job_states(stt_app, account.user_id)] == ["completed", "completed"]

        from app.core.db import session_scope
        from app.voices.models import Voice

        with session_scope(stt_app.settings) as session:
            joe = session.query(Voice).filter(Voice.builtin_key == "joe").one().voice_id
        job = stt_app.client.post(
            f"/api/v1/voice/voices/{joe}/generate", headers=account.headers, json={"input_text": "Queued."}
        )
        assert job.status_code == 202, job.text
        tts_queue = Queue(TTS_QUEUE, connection=Redis.from_url(stt_app.settings.redis_url or ""))
        time.sleep(2)  # an stt worker would have taken it by now if it listened to tts
        assert len(tts_queue) == 1
        assert _job_states(stt_app, account.user_id)[-1] == ("speech", "pending")
    finally:
        stop_worker(worker)
    # Stopped cleanly, it takes itself off at once: the next request is refused, not queued.
    assert listening_workers(stt_app.settings) == 0


def test_no_worker_or_a_full_queue_refuses_before_charging(
    stt_app: AppHarness, speech_wav_bytes: bytes
) -> None:
    account = stt_app.make_user(credits=1000)
    r = _transcribe(stt_app, account.headers, speech_wav_bytes)
    assert r.status_code == 503, r.text
    assert "No worker takes transcriptions" in r.json()["error"]["message"]

    worker = _start_worker(stt_app.settings, "stt")
    try:
        worker.send_signal(signal.SIGSTOP)  # registered, but takes nothing now
        queue = Queue(STT_QUEUE, connection=Redis.from_url(stt_app.settings.redis_url or ""))
        # One more than the limit: the stopped worker's blocking dequeue still takes the first.
        for i in range(stt_app.settings.stt_queue_limit + 1):
            queue.enqueue("app.transcription.workers.decode_on_worker", f"filler-{i}", "base", {})
        r = _transcribe(stt_app, account.headers, speech_wav_bytes)
        assert r.status_code == 429, r.text
        assert int(r.headers["Retry-After"]) > 0
        assert r.json()["error"]["type"] in ("rate_limit_error", "rate_limit_exceeded", "requests")
        queue.empty()
    finally:
        stop_worker(worker)
    assert _balance(stt_app, account.user_id) == (1000, 0)
    assert _job_states(stt_app, account.user_id) == []


def test_a_stalled_or_dead_worker_fails_the_request_in_bounded_time(
    stt_app: AppHarness, speech_wav_bytes: bytes, speech_samples: Any
) -> None:
    """Not started within stt_start_timeout_seconds: 503 and nothing left queued; a worker
    killed mid-decode: 503 within the silence window. Credits come back both times."""
    account = stt_app.make_user(credits=1000)
    settings = stt_app.settings
    redis = Redis.from_url(settings.redis_url or "")
    worker = _start_worker(settings, "stt")
    try:
        worker.send_signal(signal.SIGSTOP)
        request = _transcribe_in_background(stt_app, account.headers, speech_wav_bytes)
        r = request.answer(within=settings.stt_start_timeout_seconds + 30)
        assert r.status_code == 503, r.text
        assert "No worker started this transcription" in r.json()["error"]["message"]
        assert len(Queue(STT_QUEUE, connection=redis)) == 0
        assert _balance(stt_app, account.user_id) == (1000, 0)
        worker.send_signal(signal.SIGCONT)

        samples, rate = speech_samples  # ≈ 6 s; ten times over keeps the worker busy long enough
        long_speech = wav_bytes(np.concatenate([samples] * 10), rate)
        request = _transcribe_in_background(stt_app, account.headers, long_speech)
        wait_until(lambda: bool(redis.keys("chorus:stt:*:alive")), timeout=60)
        worker.kill()
        r = request.answer(within=settings.stt_worker_silence_seconds + 30)
        assert r.status_code == 503, r.text
        assert "stopped" in r.json()["error"]["message"]

        # Killed, it cannot take itself off; once its beat lapses a request is refused at once
        # ("no worker"), not after waiting the start timeout for it.
        wait_until(lambda: listening_workers(settings) == 0, timeout=LISTENER_LAPSE_SECONDS + 15)
        r = _transcribe(stt_app, account.headers, speech_wav_bytes)
        assert r.status_code == 503, r.text
        assert "No worker takes transcriptions" in r.json()["error"]["message"]
    finally:
        stop_worker(worker)
    assert _balance(stt_app, account.user_id) == (1000, 0)
    assert [s for _, s in _job_states(stt_app, account.user_id)] == ["failed", "failed"]
    reset_queues()
    dispose_engines()


def test_worker_refuses_unknown_queues(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CHORUS_ENV": "test",
        "CHORUS_DATA_DIR": str(tmp_path),
        "CHORUS_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    run = subprocess.run(
        [sys.executable, "-m", "app", "worker", "--queues", "stt,gpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "unknown queue(s) gpu" in run.stdout + run.stderr
