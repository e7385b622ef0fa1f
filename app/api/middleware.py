"""One pure-ASGI middleware for what every response needs: request id, rate-limit headers,
the body-size limit (checked while the body streams in), and request metrics."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import anyio.to_thread
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import render
from app.api.families import family_for
from app.core.config import Settings
from app.core.errors import RateLimited
from app.core.ratelimit import RateLimiter

REQUESTS = Counter("chorus_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "chorus_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# Paths that are neither limited nor counted against a key (probes, scrapes, docs).
UNLIMITED_PATHS = ("/health", "/ready", "/metrics", "/docs", "/openapi.json", "/redoc")


def _identity(scope: Scope) -> str:
    """The credential the caller presented (hashed), else its address."""
    headers = dict(scope.get("headers") or [])
    credential = headers.get(b"x-api-key") or headers.get(b"authorization")
    if credential:
        return "k:" + hashlib.sha256(credential).hexdigest()[:32]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class PlatformMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, limiter: RateLimiter) -> None:
        self.app, self.settings, self.limiter = app, settings, limiter

    def _body_limit(self, scope: Scope) -> int:
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if content_type.startswith("multipart/"):
            return self.settings.max_upload_bytes * 5 + 1024 * 1024  # up to 5 samples per request
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        request_id = uuid.uuid4().hex
        extra_headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        status_holder = {"status": 500}

        decision = None
        if not path.startswith(UNLIMITED_PATHS) and not path.startswith("/api/v1/files/"):
            identity = _identity(scope)
            # A Redis round trip must not hold the event loop: every other request would wait on it
            # (up to the socket timeout when Redis is unreachable).
            decision = (
                await anyio.to_thread.run_sync(self.limiter.hit, identity)
                if self.limiter.blocking
                else self.limiter.hit(identity)
            )
            extra_headers += [
                (b"x-ratelimit-limit", str(decision.limit).encode()),
                (b"x-ratelimit-remaining", str(decision.remaining).encode()),
                (b"x-ratelimit-reset", str(decision.reset_at).encode()),
            ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message = {**message, "headers": list(message.get("headers", [])) + extra_headers}
            await send(message)

        try:
            if decision is not None and not decision.allowed:
                error = RateLimited("Rate limit exceeded; retry later", retry_after=decision.retry_after)
                response = render(family_for(scope), 429, error.message, error)
                await response(scope, receive, send_with_headers)
                return

            limit = self._body_limit(scope)
            headers = dict(scope.get("headers") or [])
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                response = render(family_for(scope), 413, f"Request body is larger than {limit} bytes")
                await response(scope, receive, send_with_headers)
                return

            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        # Raised inside the route's body parsing; rendered in the family's shape.
                        raise HTTPException(413, f"Request body is larger than {limit} bytes")
                return message

            await self.app(scope, limited_receive, send_with_headers)
        finally:
            route = _route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status_holder["status"])).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    return template or "unmatched"
