"""Webhooks against a real HTTP receiver on loopback (allow-listed): events, HMAC signatures,
retries with backoff, giving up after five attempts, and request-time URL checks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.core.db import session_scope, utcnow
from app.jobs import webhooks
from app.jobs.models import Job, WebhookDelivery
from app.storage import get_store
from tests.plugins.services import Account
from tests.plugins.waiting import JOB_WAIT_S, wait_until
from tests.test_credits_full import (
    Harness,
    add_voice,
    available,
    build_harness,
    clone_job_of,
    finish_job,
    job_id_of,
    stored_things,
)
from tests.test_fetch import LocalServer, Seen, running_server


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setattr(webhooks, "BACKOFF_BASE_SECONDS", 0.05)
    yield from build_harness(tmp_path)


@pytest.fixture
def receiver() -> Iterator[LocalServer]:
    with running_server() as server:
        server.routes["/hook"] = (200, {}, b"thanks")
        yield server


def _wait(condition: Callable[[], Any], timeout: float = JOB_WAIT_S) -> Any:
    return wait_until(condition, timeout=timeout, interval=0.05)


def _deliveries(h: Harness, job_id: int) -> list[WebhookDelivery]:
    with session_scope(h.settings) as session:
        rows = list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)))
        for row in rows:
            session.expunge(row)
        return rows


def _settled(h: Harness, job_id: int) -> list[WebhookDelivery]:
    return _wait(lambda: [d for d in _deliveries(h, job_id) if d.status != "pending"])


def _speak(h: Harness, account: Account, voice_id: str, text: str, callback: str) -> Any:
    return h.client.post(
        "/api/v1/tts",
        headers=account.headers,
        json={"text": text, "voiceId": voice_id, "callbackUrl": callback},
    )


def _event(seen: Seen, secret: str) -> dict[str, Any]:
    timestamp = seen.headers["x-chorus-timestamp"]
    assert webhooks.verify(secret, timestamp, seen.body, seen.headers["x-chorus-signature"])
    assert seen.headers["content-type"] == "application/json"
    event = json.loads(seen.body)
    assert seen.headers["x-chorus-event"] == event["type"]
    assert seen.headers["x-chorus-delivery"] == event["id"]
    return event


def test_speech_completed_event_is_signed(harness: Harness, receiver: LocalServer) -> None:
    account = harness.make_user(credits=100)
    voice = add_voice(harness.settings, account.user_id)
    r = _speak(harness, account, voice.voice_id, "Hook me", receiver.url("/hook"))
    assert r.status_code == 200, r.text
    speech_id = r.json()["speechId"]
    job_id = job_id_of(harness.settings, speech_id)
    assert receiver.seen == []  # nothing before the final state
    key = f"speech/{account.user_id}/{job_id}.mp3"
    get_store(harness.settings).put(key, b"ID3audio", "audio/mpeg")
    finish_job(harness.settings, job_id, result_key=key, duration=0.8)

    (delivery,) = _settled(harness, job_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.event == "speech.completed" and delivery.delivered_at is not None
    (seen,) = receiver.hits("/hook")
    assert seen.method == "POST"
    event = _event(seen, harness.settings.secret)
    assert event["type"] == "speech.completed" and event["id"] == f"evt_{delivery.id}"
    data = event["data"]
    assert (data["job_id"], data["status"], data["voice_id"]) == (speech_id, "completed", voice.voice_id)
    assert data["duration"] == 0.8 and data["error"] is None
    assert "/api/v1/files/" in data["output_url"]
    path = data["output_url"].split("/api/v1/files/", 1)[1]
    assert harness.client.get(f"/api/v1/files/{path}").content == b"ID3audio"


def test_failed_speech_and_voice_events(
    harness: Harness, receiver: LocalServer, speech_wav_bytes: bytes
) -> None:
    account = harness.make_user(credits=3000)
    voice = add_voice(harness.settings, account.user_id)
    r = _speak(harness, account, voice.voice_id, "Fail me", receiver.url("/hook"))
    job_id = job_id_of(harness.settings, r.json()["speechId"])
    finish_job(harness.settings, job_id, ok=False, error="engine exploded")
    _settled(harness, job_id)
    event = _event(receiver.hits("/hook")[0], harness.settings.secret)
    assert event["type"] == "speech.failed" and event["data"]["error"] == "engine exploded"
    assert event["data"]["output_url"] is None and event["data"]["status"] == "failed"

    clone = harness.client.post(
        "/api/v1/voice-clone",
        headers=account.headers,
        data={"callbackUrl": receiver.url("/hook")},
        files={"voice": ("v.wav", speech_wav_bytes, "audio/wav")},
    )
    assert clone.status_code == 200, clone.text
    voice_id = clone.json()["voiceId"]
    clone_job = clone_job_of(harness.settings, voice_id)
    finish_job(harness.settings, clone_job, result_key="voices/x/artifact.json")
    _settled(harness, clone_job)
    event = _event(receiver.hits("/hook")[1], harness.settings.secret)
    assert event["type"] == "voice.completed" and event["data"]["voice_id"] == voice_id
    assert event["data"]["voice_status"] == "completed" and event["data"]["output_url"] is None

    envelope = harness.client.post(
        "/voices",
        headers=account.headers,
        data={"callback_url": receiver.url("/hook")},
        files={"file": ("v.wav", speech_wav_bytes, "audio/wav")},
    )
    voiceai = harness.client.post(
        "/api/v1/tts/clone-voice",
        headers=account.headers,
        data={"callback_url": receiver.url("/hook")},
        files={"file": ("v.wav", speech_wav_bytes, "audio/wav")},
    )
    for created in (envelope.json()["data"]["voice_id"], voiceai.json()["voice_id"]):
        job = clone_job_of(harness.settings, created)
        finish_job(harness.settings, job, ok=False, error="no speech")
        _settled(harness, job)
    events = [_event(s, harness.settings.secret) for s in receiver.hits("/hook")[2:]]
    assert [e["type"] for e in events] == ["voice.failed", "voice.failed"]
    assert all(e["data"]["voice_status"] == "failed" for e in events)


def test_retries_with_backoff_then_delivered(harness: Harness, receiver: LocalServer) -> None:
    answers = iter([500, 503, 200])
    receiver.routes["/flaky"] = lambda seen: (next(answers), {}, b"")
    account = harness.make_user(credits=100)
    voice = add_voice(harness.settings, account.user_id)
    r = _speak(harness, account, voice.voice_id, "Retry", receiver.url("/flaky"))
    job_id = job_id_of(harness.settings, r.json()["speechId"])
    finish_job(harness.settings, job_id)
    (delivery,) = _settled(harness, job_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert delivery.last_error is None
    hits = receiver.hits("/flaky")
    assert len(hits) == 3
    assert len({json.loads(h.body)["id"] for h in hits}) == 1  # the same event each time


def test_gives_up_after_five_attempts(harness: Harness, receiver: LocalServer) -> None:
    receiver.routes["/down"] = (500, {}, b"down")
    account = harness.make_user(credits=100)
    voice = add_voice(harness.settings, account.user_id)
    r = _speak(harness, account, voice.voice_id, "Nobody home", receiver.url("/down"))
    job_id = job_id_of(harness.settings, r.json()["speechId"])
    finish_job(harness.settings, job_id, ok=False)
    (delivery,) = _settled(harness, job_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 5, 500)
    assert delivery.last_error == "The receiver answered HTTP 500" and delivery.next_attempt_at is None
    assert len(receiver.hits("/down")) == 5
    assert webhooks.backoff_seconds(1) * 8 == webhooks.backoff_seconds(4)
    assert available(harness, account) == 100  # a webhook never affects credits


def test_lost_attempts_are_redriven(harness: Harness, receiver: LocalServer) -> None:
    account = harness.make_user()
    with session_scope(harness.settings) as session:
        job = Job(
            public_id="speech_lost",
            kind="speech",
            owner_id=account.user_id,
            status="completed",
            callback_url=receiver.url("/hook"),
            completed_at=utcnow(),
        )
        session.add(job)
        session.flush()
        job_id = job.id
        session.add(
            WebhookDelivery(
                job_id=job_id,
                event="speech.completed",
                url=job.callback_url,
                status="pending",
                next_attempt_at=utcnow().replace(year=2020),
            )
        )
    assert webhooks.redeliver_due(harness.settings) == 1
    (delivery,) = _settled(harness, job_id)
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert webhooks.redeliver_due(harness.settings) == 0


def test_webhook_url_is_checked_at_request_time(harness: Harness) -> None:
    account = harness.make_user(credits=1000)
    voice = add_voice(harness.settings, account.user_id)
    refused = [
        ("ftp://example.com/hook", "http or https"),
        ("mailto:me@example.com", "http or https"),
        ("http://169.254.169.254/latest", "metadata"),
        ("http://10.0.0.1/hook", "private"),
        ("http://localhost:9/hook", "private or loopback"),
    ]
    for url, message in refused:
        r = _speak(harness, account, voice.voice_id, "hi", url)
        assert r.status_code == 400 and message in r.json()["error"], (url, r.text)
        assert r.json()["error"].startswith("callbackUrl")
    assert stored_things(harness.settings, account.user_id) == (1, 0, 0)
    assert available(harness, account) == 1000


def test_refused_at_delivery_time_is_recorded(harness: Harness, tmp_path: Path) -> None:
    """A URL that became unsafe after the request (allow-list changed, DNS moved) is not called."""
    account = harness.make_user()
    with session_scope(harness.settings) as session:
        job = Job(
            public_id="speech_x",
            kind="speech",
            owner_id=account.user_id,
            status="failed",
            callback_url="http://127.0.0.3:9/hook",
            completed_at=utcnow(),
            error="boom",
        )
        session.add(job)
        session.flush()
        delivery_id = webhooks.record_delivery(session, job.id)
        job_id = job.id
    assert delivery_id is not None
    assert webhooks.deliver(delivery_id, harness.settings) == "pending"  # then retried on timers
    (row,) = _settled(harness, job_id)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 5, None)
    assert row.last_error == "callback_url must not point at a private or loopback address"


def test_signature_helpers() -> None:
    body = b'{"type":"speech.completed"}'
    now = time.time()
    signature = webhooks.sign("s3cret", str(int(now)), body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert webhooks.verify("s3cret", str(int(now)), body, signature)
    assert not webhooks.verify("s3cret", str(int(now)), body + b" ", signature)
    assert not webhooks.verify("other", str(int(now)), body, signature)
    assert not webhooks.verify(
        "s3cret", str(int(now) - 3600), body, webhooks.sign("s3cret", str(int(now) - 3600), body)
    )
    assert not webhooks.verify("s3cret", "yesterday", body, signature)


def test_attempts_run_on_rq_workers(tmp_path: Path, redis_url: str, receiver: LocalServer) -> None:
    """With Redis configured, attempts are RQ jobs (delayed ones in the scheduled registry)."""
    from redis import Redis
    from rq import Queue, SimpleWorker
    from rq.registry import ScheduledJobRegistry

    from app.core.db import dispose_engines
    from app.core.migrate import upgrade
    from app.jobs.queue import GENERAL_QUEUE, RQQueue
    from tests.plugins.services import make_settings

    settings = make_settings(tmp_path / "data", redis_url=redis_url, fetch_allow_hosts=["127.0.0.1"])
    upgrade(settings)
    webhooks.install(settings)
    try:
        with session_scope(settings) as session:
            from app.auth import service as auth

            user = auth.create_user(session, "rq")
            job = Job(
                public_id="speech_rq",
                kind="speech",
                owner_id=user.id,
                status="failed",
                error="x",
                callback_url=receiver.url("/hook"),
                completed_at=utcnow(),
            )
            session.add(job)
            session.flush()
            first, job_id = webhooks.record_delivery(session, job.id), job.id
        assert first is not None
        webhooks.schedule(first, 0.0, settings)
        webhooks.schedule(first, 60.0, settings)  # a later wake-up waits in the scheduler
        connection = Redis.from_url(redis_url)
        queue = Queue(GENERAL_QUEUE, connection=connection)
        scheduled = ScheduledJobRegistry(queue=queue).get_job_ids()
        assert len(scheduled) == 1 and scheduled[0].startswith(f"webhook-{first}-")
        assert RQQueue(redis_url, 60).queued_ids() == set()  # not mistaken for job ids
        SimpleWorker([queue], connection=connection).work(burst=True)
        with session_scope(settings) as session:
            row = session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).one()
            assert (row.status, row.attempts) == ("delivered", 1)
        assert json.loads(receiver.hits("/hook")[0].body)["type"] == "speech.failed"
        connection.close()
    finally:
        webhooks.install(None)
        dispose_engines()
