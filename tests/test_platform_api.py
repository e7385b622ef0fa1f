"""Platform behaviour on every response: errors per family, limits, headers, probes, metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.services import AppHarness


def test_each_family_renders_errors_in_its_own_shape(embedded: AppHarness) -> None:
    c = embedded.client
    native = c.get("/api/v1/voice/voice-profiles")
    assert native.status_code == 401 and native.json() == {"detail": "Invalid or missing API key"}

    clone = c.get("/api/v1/voices")
    assert clone.status_code == 401 and clone.json() == {
        "code": "UNAUTHORIZED",
        "error": "Invalid or missing API key",
    }

    voiceai = c.get("/api/v1/tts/voices")
    assert voiceai.status_code == 401 and voiceai.json() == {"detail": "Invalid or missing API key"}

    envelope = c.get("/voices")
    assert envelope.status_code == 401
    assert envelope.json() == {"code": 401, "message": "Invalid or missing API key", "data": None}

    for prefix in ("/v1", "/api/v1"):
        openai = c.get(f"{prefix}/models")
        assert openai.status_code == 401
        assert openai.json()["error"]["type"] == "invalid_request_error"
        assert openai.json()["error"]["code"] == "invalid_api_key"


def test_validation_errors_are_400_in_every_family(embedded: AppHarness) -> None:
    account = embedded.make_user()
    c, h = embedded.client, account.headers
    r = c.get("/api/v1/voice/voice-profiles", params={"skip": -1}, headers=h)
    assert r.status_code == 400 and "skip" in r.json()["detail"]
    r = c.get("/api/v1/voices", params={"limit": 101}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETERS"
    r = c.get("/api/v1/voices", params={"sortBy": "loudness"}, headers=h)
    assert r.status_code == 400 and "sortBy" in r.json()["error"]
    r = c.get("/voices", params={"skip": "abc"}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == 400 and r.json()["data"] is None


def test_malformed_json_is_400_in_the_family_shape(embedded: AppHarness) -> None:
    account = embedded.make_user()
    headers = {**account.headers, "Content-Type": "application/json"}
    c = embedded.client
    native = c.post("/api/v1/voice/collections", content=b"{not json", headers=headers)
    assert native.status_code == 400 and isinstance(native.json()["detail"], str)
    clone = c.post("/api/v1/tts", content=b"{not json", headers=headers)
    assert clone.status_code == 400 and clone.json()["code"] == "INVALID_PARAMETERS"
    openai = c.post("/v1/audio/speech", content=b"{not json", headers=headers)
    assert openai.status_code == 400 and openai.json()["error"]["type"] == "invalid_request_error"
    assert c.get("/api/v1/credits", headers=account.headers).json()["credits"] == 10_000


def test_unknown_route_is_404_in_the_family_shape(embedded: AppHarness) -> None:
    account = embedded.make_user()
    assert (
        embedded.client.get("/v1/nowhere", headers=account.headers).json()["error"]["message"] == "Not found"
    )
    assert embedded.client.get("/api/v1/voice/nowhere", headers=account.headers).json() == {
        "detail": "Not found"
    }


def test_every_response_has_request_id_and_rate_limit_headers(embedded: AppHarness) -> None:
    account = embedded.make_user()
    for r in (
        embedded.client.get("/api/v1/credits", headers=account.headers),
        embedded.client.get("/api/v1/voices"),  # an error response too
    ):
        assert len(r.headers["X-Request-Id"]) == 32
        assert int(r.headers["X-RateLimit-Limit"]) == embedded.settings.rate_limit_per_minute
        assert int(r.headers["X-RateLimit-Remaining"]) >= 0
        assert int(r.headers["X-RateLimit-Reset"]) > 1_700_000_000


@pytest.fixture
def tight(tmp_path: object) -> object:
    from tests.plugins.services import _build_harness, make_settings

    yield from _build_harness(make_settings(tmp_path / "d", rate_limit_per_minute=3))  # type: ignore[operator]


def test_rate_limit_429_with_retry_after_in_family_shape(tight: AppHarness) -> None:
    account = tight.make_user()
    statuses = [tight.client.get("/api/v1/voices", headers=account.headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = tight.client.get("/api/v1/voices", headers=account.headers)
    assert limited.status_code == 429
    assert limited.json() == {"code": "RATE_LIMITED", "error": "Rate limit exceeded; retry later"}
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    openai = tight.client.get("/v1/models", headers=account.headers)
    assert openai.status_code == 429 and openai.json()["error"]["code"] == "rate_limit_exceeded"
    other = tight.make_user()
    assert tight.client.get("/api/v1/voices", headers=other.headers).status_code == 200  # per key


def test_oversized_body_is_413_before_it_is_read(embedded: AppHarness) -> None:
    account = embedded.make_user()
    limit = embedded.settings.max_body_bytes
    big = b"{" + b" " * (limit + 10) + b"}"
    r = embedded.client.post(
        "/api/v1/auth/token", content=big, headers={**account.headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = embedded.client.post(
        "/v1/audio/speech", content=chunks(), headers={**account.headers, "Content-Type": "application/json"}
    )
    assert r.status_code in (404, 413)


def test_health_ready_metrics_docs(embedded: AppHarness) -> None:
    c = embedded.client
    assert c.get("/health").json() == {"status": "ok"}
    ready = c.get("/ready")
    assert ready.status_code == 200, ready.json()
    assert {"database", "queue", "storage"} <= set(ready.json()["checks"])
    account = embedded.make_user()
    c.get("/api/v1/credits", headers=account.headers)
    metrics = c.get("/metrics").text
    assert 'chorus_http_requests_total{method="GET",route="/api/v1/credits",status="200"}' in metrics
    assert "chorus_http_request_duration_seconds_bucket" in metrics
    assert "chorus_queue_depth" in metrics
    # Models: what is loaded (the preload list: joe and Whisper base) and the process's memory.
    loaded = ready.json()["checks"]["models"]["loaded"]
    assert {"piper:joe", "whisper:base"} <= set(loaded)
    assert 'chorus_model_loaded{model="piper:joe"} 1.0' in metrics
    assert 'chorus_model_loads_total{model="piper:joe"}' in metrics
    assert "process_resident_memory_bytes" in metrics
    assert c.get("/openapi.json").status_code == 200
    assert c.get("/docs").status_code == 200


def test_ready_reports_a_broken_dependency(tmp_path: object) -> None:
    from tests.plugins.services import _build_harness, make_settings

    settings = make_settings(tmp_path / "d", redis_url="redis://127.0.0.1:1/0")  # type: ignore[operator]
    for harness in _build_harness(settings):
        r = harness.client.get("/ready")
        assert r.status_code == 503
        assert r.json()["checks"]["queue"].startswith("error")
        assert r.json()["checks"]["database"] == "ok"


class _SilentRedis:
    """A TCP listener that accepts connections and never answers: Redis hung or unreachable."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[Any] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def test_a_hung_redis_does_not_stall_other_requests(tmp_path: Path) -> None:
    """The Redis rate limiter runs off the event loop: while one request waits on an unanswering
    Redis (up to its 2 s socket timeout), others are served; after the failure it limits in
    memory for a while instead of making every request wait the timeout out again."""
    import threading

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from app.api.middleware import PlatformMiddleware
    from app.core.ratelimit import RedisRateLimiter
    from tests.plugins.services import make_settings

    redis = _SilentRedis()
    try:
        limiter = RedisRateLimiter(f"redis://127.0.0.1:{redis.port}/0", limit=100)

        async def ok(request: Any) -> PlainTextResponse:
            return PlainTextResponse("ok")

        inner = Starlette(routes=[Route("/health", ok), Route("/api/v1/thing", ok)])
        app = PlatformMiddleware(inner, make_settings(tmp_path), limiter)
        with TestClient(app) as client:
            answers: dict[str, Any] = {}
            waiting = threading.Thread(target=lambda: answers.setdefault("a", client.get("/api/v1/thing")))
            waiting.start()
            deadline = time.monotonic() + 5
            while not redis.accepted and time.monotonic() < deadline:
                time.sleep(0.01)
            assert redis.accepted, "the limiter never reached the (silent) Redis"
            health = client.get("/health")  # not rate limited: needs only the event loop
            assert health.status_code == 200
            assert waiting.is_alive(), "the health check waited for the hung Redis call"
            waiting.join(timeout=10)
            limited = answers["a"]
            assert limited.status_code == 200 and limited.headers["X-RateLimit-Limit"] == "100"
            again = client.get("/api/v1/thing")  # limited in memory now, no second wait on Redis
            assert again.status_code == 200 and int(again.headers["X-RateLimit-Remaining"]) == 98
            assert len(redis.accepted) == 1
    finally:
        redis.close()


def test_the_served_api_keeps_what_start_up_made_out_of_full_collections(tmp_path: Path) -> None:
    """`chorus serve` freezes start-up's objects (modules, schemas, routes, loaded models): a full
    garbage collection then scans only what requests made since, instead of holding every request
    while it scans ~270k objects (~160 ms under load, bench/load.py)."""
    import gc

    from fastapi.testclient import TestClient

    from app.core.migrate import upgrade
    from app.main import create_app
    from tests.plugins.services import make_settings

    settings = make_settings(tmp_path, warm_models=False)
    upgrade(settings)
    gc.unfreeze()
    with TestClient(create_app(settings)) as client:  # an app built for tests: nothing frozen
        assert client.get("/health").status_code == 200
        assert gc.get_freeze_count() == 0
    try:
        with TestClient(create_app(settings, freeze_startup=True)) as client:
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() > 50_000
    finally:
        gc.unfreeze()
