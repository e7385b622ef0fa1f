"""SIGKILL an RQ worker in the middle of a real clone job and of a real TTS job (Postgres,
Redis, workers in subprocesses, real engines): the reconciler re-queues the job and a new
worker completes it; nothing stays processing, and the credits end up captured exactly once."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.billing import service as billing
from app.cloning import service as cloning
from app.core.config import Settings
from app.core.db import dispose_engines, session_scope
from app.core.migrate import upgrade
from app.jobs.queue import reset_queues
from app.jobs.reconciler import reconcile
from app.speech import service as speech
from app.storage import get_store, reset_store_cache
from app.voices.builtin import sync_builtin_voices
from tests.plugins.services import make_settings
from tests.test_jobs import _check_ledger, _final, _new_user, _start_worker, _stop, _wait_for

LONG_TEXT = " ".join(
    f"Sentence number {n} is here so that the worker is still speaking when it is stopped." for n in range(40)
)


@pytest.fixture
def deployed(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    settings = make_settings(
        tmp_path,
        database_url=postgres_url,
        redis_url=redis_url,
        job_lease_seconds=3,
        reconcile_interval_seconds=3600,
        storage_url=f"file://{tmp_path / 'blobs'}",
    )
    upgrade(settings)
    sync_builtin_voices(settings)
    yield settings
    reset_queues()
    reset_store_cache()
    dispose_engines()


def _kill_mid_job_then_recover(settings: Settings, job_id: int) -> None:
    worker = _start_worker(settings)
    try:
        _wait_for(settings, job_id, lambda j: j.status == "processing" and j.progress >= 5)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        _stop(worker)
    time.sleep(settings.job_lease_seconds + 0.5)
    assert reconcile(settings, pending_grace_seconds=0).requeued_expired == 1
    survivor = _start_worker(settings, burst=True)
    try:
        job = _wait_for(settings, job_id, _final)
    finally:
        _stop(survivor)
    assert (job.status, job.attempts) == ("completed", 2), job.error


@pytest.mark.slow
def test_tts_job_survives_a_killed_worker(deployed: Settings) -> None:
    user = _new_user(deployed, credits=10_000)
    with session_scope(deployed) as session:
        from app.voices.models import Voice

        joe = session.query(Voice).filter(Voice.builtin_key == "joe").one().voice_id
        job = speech.create_tts_job(
            session,
            deployed,
            user_id=user,
            voice_ref=joe,
            request=speech.SpeechRequest(LONG_TEXT[:4000], format="mp3"),
        )
        job_id = job.id
    cost = len(LONG_TEXT[:4000].encode())
    _kill_mid_job_then_recover(deployed, job_id)
    assert get_store(deployed).exists(f"speech/{user}/{job_id}.mp3")
    _check_ledger(deployed, user, 10_000 - cost)


@pytest.mark.slow
def test_clone_job_survives_a_killed_worker(deployed: Settings, speech_wav_bytes: bytes) -> None:
    user = _new_user(deployed, credits=10_000)
    with session_scope(deployed) as session:
        voice, job = cloning.create_cloned_voice(
            session,
            deployed,
            get_store(deployed),
            owner_id=user,
            draft=cloning.VoiceDraft(name="killed"),
            uploads=[cloning.Upload(speech_wav_bytes, "a.wav")],
            cost=deployed.costs.clone,
        )
        job_id = job.id
    _kill_mid_job_then_recover(deployed, job_id)
    with session_scope(deployed) as session:
        from app.voices.models import Voice

        row = session.query(Voice).filter(Voice.name == "killed").one()
        assert row.status == "completed" and row.artifact_key
        assert billing.balance(session, user).held == 0
    _check_ledger(deployed, user, 10_000 - deployed.costs.clone)
