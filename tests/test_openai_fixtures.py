"""Shared harness for the OpenAI-family tests: one app per module, reachable through
Starlette's TestClient and through a real uvicorn server on loopback (for the official SDK
and for observing chunked streaming, which TestClient buffers). No tests live here."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.config import Settings
from app.core.db import dispose_engines, session_scope
from app.core.migrate import upgrade
from app.jobs.models import Job
from app.jobs.queue import reset_queues
from tests.plugins.audio_samples import wav_bytes
from tests.plugins.services import Account, AppHarness, make_settings
from tests.plugins.waiting import JOB_WAIT_S, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveApp:
    """The harness plus a live server URL (`base_url` + "/v1" or "/api/v1")."""

    harness: AppHarness
    base_url: str

    @property
    def client(self) -> TestClient:
        return self.harness.client

    @property
    def settings(self) -> Settings:
        return self.harness.settings

    def make_user(self, credits: int = 100_000) -> Account:
        return self.harness.make_user(credits=credits)

    def sdk(self, account: Account | None = None, *, key: str | None = None, prefix: str = "/v1") -> Any:
        import openai

        return openai.OpenAI(
            api_key=key or (account.key if account else "none"),
            base_url=self.base_url + prefix,
            max_retries=0,
            timeout=120,
        )

    def balance(self, account: Account) -> tuple[int, int]:
        """(total credits, held credits)."""
        from app.billing import service as billing

        with session_scope(self.settings) as session:
            b = billing.balance(session, account.user_id)
            return b.total, b.held

    def jobs(self, account: Account, kind: str | None = None) -> list[Job]:
        with session_scope(self.settings) as session:
            query = select(Job).where(Job.owner_id == account.user_id).order_by(Job.id)
            if kind:
                query = query.where(Job.kind == kind)
            rows = list(session.scalars(query))
            session.expunge_all()
            return rows

    def wait_for(self, predicate: Callable[[], bool], timeout: float = JOB_WAIT_S) -> None:
        """Poll a server-side condition (a wait, not a timing assertion)."""
        wait_until(predicate, timeout=timeout, interval=0.05)


def _live_app(data_dir: Path, models_dir: Path, **overrides: Any) -> Iterator[LiveApp]:
    """The app on a live loopback server; `overrides` are extra settings (e.g. fetch_allow_hosts)."""
    from app.main import create_app
    from app.storage import reset_store_cache

    settings = make_settings(data_dir, models_dir=models_dir, rate_limit_per_minute=100_000, **overrides)
    reset_store_cache()
    upgrade(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", access_log=False
            )
        )
        thread = threading.Thread(target=server.run, name="openai-test-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        try:
            yield LiveApp(AppHarness(settings, client), f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(timeout=15)
    reset_queues()
    reset_store_cache()
    dispose_engines()


def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """Body of each module's `live` fixture: models are shared by every module of the session."""
    base = tmp_path_factory.getbasetemp()
    yield from _live_app(tmp_path_factory.mktemp("openai-data"), base / "openai-models")


def first_sentence_wav(speech_sentences: tuple[list[np.ndarray], int]) -> bytes:
    """The first Piper sentence alone (≈ 2.5 s): "The quick brown fox jumps over the lazy dog." """
    sentences, rate = speech_sentences
    return wav_bytes(sentences[0], rate)


def audio_file(data: bytes, name: str = "speech.wav") -> tuple[str, io.BytesIO, str]:
    return (name, io.BytesIO(data), "application/octet-stream")


def decoded_seconds(data: bytes) -> float:
    from app.audio import decode_audio

    return decode_audio(data, max_seconds=600, max_sample_rate=192_000).duration


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    import json

    events = []
    for block in raw.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    return events
