"""Operator commands with their exit codes and output: doctor, jobs, voices import."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.auth import service as auth
from app.billing import service as billing
from app.cli import cli
from app.core.config import get_settings
from app.core.db import dispose_engines, session_scope
from app.jobs.models import Job
from app.jobs.queue import reset_queues
from app.voices.models import Voice

runner = CliRunner()


@pytest.fixture
def operator_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHORUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHORUS_ENV", "test")
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield tmp_path
    reset_queues()
    get_settings.cache_clear()
    dispose_engines()


def test_doctor_says_what_to_fix(operator_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unmigrated = runner.invoke(cli, ["doctor"])
    assert unmigrated.exit_code == 1
    assert "chorus migrate" in unmigrated.output
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    healthy = runner.invoke(cli, ["doctor"])
    assert healthy.exit_code == 0, healthy.output
    for name in ("database", "queue", "storage", "models", "disk"):
        assert name in healthy.output
    assert "FAIL" not in healthy.output
    monkeypatch.setenv("CHORUS_REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    broken = runner.invoke(cli, ["doctor"])
    assert broken.exit_code == 1 and "CHORUS_REDIS_URL" in broken.output


def _user_with_jobs(statuses: list[str]) -> tuple[int, list[int]]:
    settings = get_settings()
    with session_scope(settings) as session:
        user = auth.create_user(session, "ops")
        billing.grant(session, user.id, 1000)
        ids = []
        for n, status in enumerate(statuses):
            job = Job(
                public_id=f"job_{n}",
                kind="diagnostic",
                owner_id=user.id,
                status=status,
                credits_held=100,
                params={"seconds": 0},
            )
            session.add(job)
            session.flush()
            if status != "failed":
                billing.hold(session, user.id, job.id, 100)
            ids.append(job.id)
        return user.id, ids


def test_jobs_list_cancel_retry(operator_env: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    user_id, (pending_id, failed_id) = _user_with_jobs(["pending", "failed"])
    listed = runner.invoke(cli, ["jobs", "list"])
    assert listed.exit_code == 0 and "job_0" in listed.output and "job_1" in listed.output
    only_failed = runner.invoke(cli, ["jobs", "list", "--status", "failed"])
    assert "job_1" in only_failed.output and "job_0" not in only_failed.output

    cancelled = runner.invoke(cli, ["jobs", "cancel", str(pending_id)])
    assert cancelled.exit_code == 0, cancelled.output
    with session_scope() as session:
        job = session.get(Job, pending_id)
        assert job is not None and job.status == "failed" and job.error == "Cancelled by the operator"
        assert billing.balance(session, user_id).held == 0
    again = runner.invoke(cli, ["jobs", "cancel", str(pending_id)])
    assert again.exit_code == 1 and "already failed" in again.output

    retried = runner.invoke(cli, ["jobs", "retry", str(failed_id)])
    assert retried.exit_code == 0, retried.output
    with session_scope() as session:
        newest = session.query(Job).order_by(Job.id.desc()).first()
        assert newest is not None and newest.id > failed_id and newest.params == {"seconds": 0}
    assert runner.invoke(cli, ["jobs", "retry", "999"]).exit_code == 1


@pytest.mark.slow
def test_voices_import_clones_a_folder(
    operator_env: Path, speech_wav_bytes: bytes, silence_wav_bytes: bytes
) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    assert runner.invoke(cli, ["users", "create", "importer"]).exit_code == 0
    assert runner.invoke(cli, ["credits", "grant", "importer", "10000"]).exit_code == 0
    folder = operator_env / "voices"
    (folder / "duo").mkdir(parents=True)
    (folder / "solo.wav").write_bytes(speech_wav_bytes)
    (folder / "duo" / "a.wav").write_bytes(speech_wav_bytes)
    (folder / "duo" / "b.wav").write_bytes(speech_wav_bytes)
    (folder / "quiet.wav").write_bytes(silence_wav_bytes)
    (folder / "notes.txt").write_text("ignored")
    result = runner.invoke(cli, ["voices", "import", str(folder), "--user", "importer"])
    assert result.exit_code == 1  # one file was rejected
    assert "No speech found" in result.output
    with session_scope() as session:
        voices = {v.name: v.status for v in session.query(Voice).filter(Voice.kind == "custom")}
    assert voices == {"solo": "completed", "duo": "completed"}
