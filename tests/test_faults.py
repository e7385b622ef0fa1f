"""Faults in the services below the API: clear 503s in the family's shape, nothing charged,
nothing half-created."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.core.db import dispose_engines, session_scope
from app.core.migrate import upgrade
from app.main import create_app
from app.storage import reset_store_cache
from app.voices.models import Voice
from tests.plugins.services import AppHarness, make_settings


def test_database_unreachable_is_503_in_each_family_shape(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(settings, run_background=False)
    try:
        with TestClient(app) as client:
            headers = {"X-API-Key": "ap_" + "x" * 43}
            native = client.get("/api/v1/voice/voice-profiles", headers=headers)
            assert native.status_code == 503 and "Database is unavailable" in native.json()["detail"]
            clone = client.get("/api/v1/voices", headers=headers)
            assert clone.status_code == 503 and clone.json()["code"] == "SERVICE_UNAVAILABLE"
            openai = client.get("/v1/models", headers=headers)
            assert openai.status_code == 503 and openai.json()["error"]["type"] == "server_error"
            ready = client.get("/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")
    finally:
        dispose_engines()


def test_storage_unreachable_is_503_and_charges_nothing(tmp_path: Path, speech_wav_bytes: bytes) -> None:
    settings = make_settings(
        tmp_path,
        storage_url="s3://chorus",
        s3_endpoint_url="http://127.0.0.1:1",
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    upgrade(settings)
    reset_store_cache()
    app = create_app(settings, run_background=False)
    try:
        with TestClient(app) as client:
            harness = AppHarness(settings, client)
            account = harness.make_user(credits=5000)
            r = client.post(
                "/api/v1/voice/voice-profiles",
                headers=account.headers,
                data={"name": "x"},
                files={"file": ("a.wav", speech_wav_bytes, "audio/wav")},
            )
            assert r.status_code == 503, r.text
            assert isinstance(r.json()["detail"], str)
            assert client.get("/api/v1/credits", headers=account.headers).json()["credits"] == 5000
            with session_scope(settings) as session:
                assert session.query(Voice).filter(Voice.owner_id == account.user_id).count() == 0
            assert client.get("/ready").json()["checks"]["storage"].startswith("error")
    finally:
        reset_store_cache()
        dispose_engines()
