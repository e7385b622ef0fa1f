"""`Idempotency-Key` on job- and voice-creating POSTs, for every family (pure ASGI).

Which routes honour it, each route declares (`openapi_extra=IDEMPOTENT`, app.api.families); the
keys are kept by app.jobs.idempotency. With the header set on such a route, for the
authenticated caller:

- a new key is claimed (row `in_progress`) before the route runs; a 2xx answer is stored
  with the key for 24 h, any other answer frees the key (nothing was created or charged,
  so the client may fix the request and retry with the same key);
- the same key and the same request again: the stored answer is replayed (same status
  and body, plus `Idempotent-Replayed: true`), and the route does not run;
- the same key with another request: 422; while the first is still running: 409.

A request is identified by sha256(method, path, query, body). Multipart bodies are
hashed with their boundary replaced by a fixed token, because clients draw a new random
boundary for each attempt of the same form. The body is spooled (memory, then disk) while
it is hashed, then handed to the route unchanged. Errors are rendered in the family's shape.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from collections.abc import Iterable, Iterator
from functools import cache
from typing import IO, Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import render
from app.api.families import RouteTable, build_route_table, family_for, route_table_for
from app.auth.service import authenticate_api_key, authenticate_bearer
from app.core.config import Settings
from app.core.db import session_scope
from app.core.errors import DomainError, InvalidInput
from app.jobs.idempotency import (
    KEY_TTL,
    STALE_AFTER,
    Claimed,
    Decision,
    Stored,
    claim_key,
    forget_key,
    purge_expired_keys,
    store_answer,
)

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255
SPOOL_MEMORY_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024
_KEY_CHARS = re.compile(r"^[\x21-\x7e]{1,255}$")

__all__ = [
    "KEY_TTL",
    "STALE_AFTER",
    "Claimed",
    "Decision",
    "IdempotencyMiddleware",
    "Stored",
    "applies_to",
    "claim_key",
    "fingerprint",
    "purge_expired_keys",
]


@cache
def _default_table() -> RouteTable:
    """The table of an app with every family mounted (for callers without an app at hand)."""
    from fastapi import FastAPI

    from app.api.routers import include_routers

    app = FastAPI()
    include_routers(app)
    return build_route_table(app.routes)


def applies_to(method: str, path: str, table: RouteTable | None = None) -> bool:
    """Whether `method path` is a route that declared itself idempotent (app.api.families)."""
    return (table or _default_table()).is_idempotent(method, path)


def fingerprint(method: str, path: str, query: bytes, chunks: Iterable[bytes], content_type: str = "") -> str:
    """sha256 of the request; a multipart boundary is replaced by a fixed token first."""
    digest = hashlib.sha256(f"{method.upper()}\n{path}\n".encode() + query + b"\n")
    boundary = _boundary(content_type)
    stream: Iterable[bytes] = chunks
    if boundary:
        stream = _replace_stream(chunks, b"--" + boundary, b"--chorus-boundary")
    for chunk in stream:
        digest.update(chunk)
    return digest.hexdigest()


def _boundary(content_type: str) -> bytes | None:
    if not content_type.lower().startswith("multipart/"):
        return None
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    return match.group(1).encode("latin-1") if match else None


def _replace_stream(chunks: Iterable[bytes], marker: bytes, replacement: bytes) -> Iterator[bytes]:
    """`chunk.replace(marker, replacement)` over a stream, including markers split across chunks."""
    keep = len(marker) - 1
    carry = b""
    for chunk in chunks:
        buf = carry + chunk
        cut = max(0, len(buf) - keep)
        straddling = buf.find(marker, max(0, cut - keep))
        if straddling != -1 and straddling < cut:
            cut = straddling
        yield buf[:cut].replace(marker, replacement)
        carry = buf[cut:]
    yield carry.replace(marker, replacement)


class IdempotencyMiddleware:
    """Pure ASGI: sits inside PlatformMiddleware (rate limit, body cap) and outside the routes."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies_to(scope["method"], scope["path"], route_table_for(scope)):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        family = family_for(scope)
        if not _KEY_CHARS.match(key):
            error = InvalidInput(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters")
            await render(family, 400, error.message, error)(scope, receive, send)
            return
        user_id = await run_in_threadpool(self._user_id, headers)
        if user_id is None:  # the route answers 401 in its own shape
            await self.app(scope, receive, send)
            return
        try:
            spool = await _spool_body(receive)
        except HTTPException as exc:  # the platform body cap, raised while reading
            await render(family, exc.status_code, str(exc.detail))(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send, family, user_id, key, headers, spool)
        finally:
            spool.close()

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        family: str,
        user_id: int,
        key: str,
        headers: Headers,
        spool: IO[bytes],
    ) -> None:
        print_ = await run_in_threadpool(
            fingerprint,
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            _chunks(spool),
            headers.get("content-type", ""),
        )
        try:
            decision = await run_in_threadpool(self._claim, user_id, key, print_)
        except Exception:
            log.exception("idempotency store failed")
            response = render(family, 503, "Idempotency store is unavailable; try again shortly")
            await response(scope, receive, send)
            return
        if isinstance(decision, DomainError):
            await render(family, decision.status_code, decision.message, decision)(scope, receive, send)
            return
        if isinstance(decision, Stored):
            await _replay(decision, send)
            return

        spool.seek(0)
        captured: dict[str, Any] = {"status": 500, "content_type": "", "body": []}

        async def replay_receive() -> Message:
            chunk = spool.read(CHUNK_BYTES)
            if chunk:
                return {"type": "http.request", "body": chunk, "more_body": True}
            if not captured.get("body_done"):
                captured["body_done"] = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return await receive()

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["content_type"] = Headers(raw=message.get("headers", [])).get("content-type", "")
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            await run_in_threadpool(self._forget, decision.row_id)
            raise
        await run_in_threadpool(
            self._finish,
            decision.row_id,
            captured["status"],
            b"".join(captured["body"]),
            captured["content_type"],
        )

    # -- database work, on the thread pool ----------------------------------------------------

    def _user_id(self, headers: Headers) -> int | None:
        """The caller, resolved the way app.api.deps does; None when unauthenticated."""
        api_key = headers.get("x-api-key")
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        try:
            with session_scope(self.settings) as session:
                if api_key:
                    return authenticate_api_key(session, self.settings, api_key).user_id
                if scheme.lower() == "bearer" and credentials.strip():
                    return authenticate_bearer(session, self.settings, credentials.strip()).user_id
        except DomainError:
            return None
        return None

    def _claim(self, user_id: int, key: str, print_: str) -> Decision:
        with session_scope(self.settings) as session:
            return claim_key(session, user_id, key, print_)

    def _finish(self, row_id: int, status: int, body: bytes, content_type: str) -> None:
        """Keep a 2xx answer; any other outcome frees the key."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if not 200 <= status < 300 or text is None:
            self._forget(row_id)
            return
        with session_scope(self.settings) as session:
            store_answer(session, row_id, status, text, content_type)

    def _forget(self, row_id: int) -> None:
        try:
            with session_scope(self.settings) as session:
                forget_key(session, row_id)
        except Exception:  # the key then goes stale and is taken over after STALE_AFTER
            log.exception("could not free idempotency key %s", row_id)


async def _spool_body(receive: Receive) -> IO[bytes]:
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            spool.write(message.get("body", b""))
            if not message.get("more_body", False):
                break
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(CHUNK_BYTES):
        yield chunk


async def _replay(stored: Stored, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": stored.status,
            "headers": [
                (b"content-type", stored.content_type.encode("latin-1")),
                (b"content-length", str(len(stored.body)).encode()),
                (b"idempotent-replayed", b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": stored.body})
