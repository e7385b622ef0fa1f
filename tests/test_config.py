from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import INSECURE_DEFAULT_SECRET, Settings


def test_insecure_default_secret_is_refused_outside_dev(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="insecure default"):
        Settings(data_dir=tmp_path, secret_key=INSECURE_DEFAULT_SECRET)
    assert Settings(data_dir=tmp_path, secret_key=INSECURE_DEFAULT_SECRET, env="dev").secret == "change-me"


def test_server_database_requires_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY must be set"):
        Settings(data_dir=tmp_path, database_url="postgresql+psycopg://u@h/db")


def test_embedded_default_generates_and_keeps_a_secret(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).secret
    assert len(first) >= 40
    assert Settings(data_dir=tmp_path).secret == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_environment_variables_use_the_chorus_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHORUS_API_KEY_PREFIX", "ck_")
    monkeypatch.setenv("CHORUS_COSTS__CLONE", "500")
    settings = Settings()
    assert settings.api_key_prefix == "ck_"
    assert settings.costs.clone == 500
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'chorus.db').resolve()}"
    assert settings.resolved_storage_url == f"file://{(tmp_path / 'blobs').resolve()}"
