"""Fixtures for real services (Postgres, Redis) and for apps built on them or on the embedded default.

Under CI=true a missing service fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import dispose_engines, session_scope
from app.core.migrate import upgrade
from app.jobs.queue import reset_queues

POSTGRES_ADMIN_URL = os.environ.get(
    "CHORUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _redis_test_url() -> str:
    """Database 13, or 13 + n for pytest-xdist's worker gw<n>: each worker flushes its own database
    and its RQ workers take only its own jobs."""
    base = os.environ.get("CHORUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    root, _, db = base.rpartition("/")
    if not db.isdigit():  # a URL without a database number means database 0
        root, db = base.rstrip("/"), "0"
    return f"{root}/{int(db) + int(worker.removeprefix('gw'))}"


REDIS_TEST_URL = _redis_test_url()
TEST_SECRET = "test-secret-" + "x" * 32


def start_worker(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A `chorus worker` process on the settings' database, Redis, storage and models, warming no
    model (it starts in a second); `args` and `env` add to or override that."""
    environment = {
        **os.environ,
        "CHORUS_ENV": "test",
        "CHORUS_DATA_DIR": str(settings.data_dir),
        "CHORUS_MODELS_DIR": str(settings.resolved_models_dir),
        "CHORUS_DATABASE_URL": settings.resolved_database_url,
        "CHORUS_REDIS_URL": settings.redis_url or "",
        "CHORUS_STORAGE_URL": settings.resolved_storage_url,
        "CHORUS_SECRET_KEY": TEST_SECRET,
        "CHORUS_WARM_MODELS": "false",
        **(env or {}),
    }
    # Logs go to a file: an unread pipe fills up and blocks a chatty worker.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = open(settings.data_dir / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker", *args], env=environment, stdout=log, stderr=subprocess.STDOUT
    )


def stop_worker(worker: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """Ends a worker if it still runs (a stopped one is continued first): `kill` at once, else a
    warm shutdown given 20 s."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGCONT)
        if kill:
            worker.kill()
        else:
            worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    worker.wait(timeout=10)


def service_missing(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable: {exc}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: integration services must be running)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        service_missing("PostgreSQL", exc)
    finally:
        engine.dispose()
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"chorus_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    from redis import Redis

    client = Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        service_missing("Redis", exc)
    client.flushdb()
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()


def blob_files(settings: Settings) -> list[Path]:
    """Every file the embedded (file://) store holds: what a test checks was or was not left behind."""
    root = settings.data_dir / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"env": "test", "data_dir": data_dir, "secret_key": TEST_SECRET}
    values.update(overrides)
    return Settings(**values)


@dataclass
class Account:
    user_id: int
    name: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


@dataclass
class AppHarness:
    settings: Settings
    client: TestClient

    def make_user(self, name: str | None = None, credits: int = 10_000, *, admin: bool = False) -> Account:
        from app.auth import service as auth
        from app.billing import service as billing

        name = name or f"user-{uuid.uuid4().hex[:8]}"
        with session_scope(self.settings) as session:
            user = auth.create_user(session, name, is_admin=admin)
            if credits:
                billing.grant(session, user.id, credits)
            _, key = auth.create_api_key(session, self.settings, user.id)
            return Account(user.id, name, key)


def _build_harness(settings: Settings) -> Iterator[AppHarness]:
    from app.main import create_app
    from app.storage import reset_store_cache

    reset_store_cache()
    upgrade(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        yield AppHarness(settings, client)
    reset_queues()
    reset_store_cache()
    dispose_engines()


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    return lambda **overrides: make_settings(tmp_path / "data", **overrides)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[AppHarness]:
    """The embedded default: SQLite, local folder, in-process worker threads."""
    yield from _build_harness(make_settings(tmp_path / "data"))


@pytest.fixture
def served(postgres_url: str, redis_url: str, s3_server: Any, tmp_path: Path) -> Iterator[AppHarness]:
    """The deployed shape: Postgres, Redis/RQ (no worker unless a test starts one), SeaweedFS S3."""
    bucket = f"chorus-{uuid.uuid4().hex[:10]}"
    settings = make_settings(
        tmp_path / "data",
        database_url=postgres_url,
        redis_url=redis_url,
        storage_url=f"s3://{bucket}",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key_id=s3_server.access_key,
        s3_secret_access_key=s3_server.secret_key,
    )
    yield from _build_harness(settings)
