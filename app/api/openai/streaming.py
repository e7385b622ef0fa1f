"""A streaming response that produces its first chunk before sending headers.

Why: a failure before any audio/text (engine refuses the text, model missing) must still be
a proper OpenAI error with the right status, and nothing charged; once the first chunk exists
the headers go out with it, so time-to-first-byte is one sentence of synthesis. Every chunk is
produced in the threadpool (never on the event loop); a client disconnect is watched for the
whole time and settles the source (release, or capture if something was delivered).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

import anyio
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from app.api.errors import OPENAI, render
from app.core.errors import DomainError

log = logging.getLogger(__name__)

# Streamed bodies must not be buffered by proxies (nginx honours X-Accel-Buffering).
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ChunkSource(Protocol):
    """Produces the body. Each method runs in a worker thread, never two at once."""

    def next_chunk(self) -> bytes | None:
        """The next bytes to send (maybe b""), or None when finished. Settles itself on the
        last chunk (success) or before raising (failure)."""

    def abort(self, delivered: bool) -> None:
        """The response ended early (client gone); `delivered`: some bytes were sent. Idempotent."""

    def error_chunk(self, exc: BaseException) -> bytes | None:
        """Bytes that end the stream after a mid-stream failure (an SSE error event), or None
        to break the connection so the client sees an incomplete body."""


def sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def openai_error_response(exc: BaseException) -> Response:
    """The OpenAI-shaped error response for an exception (domain errors keep their message)."""
    if isinstance(exc, DomainError):
        return render(OPENAI, exc.status_code, exc.message, exc)
    return render(OPENAI, 500, "Internal server error")


def openai_error_event(exc: BaseException) -> bytes:
    """An SSE `error` event carrying the OpenAI error object (the SDK raises APIError on it)."""
    body = json.loads(bytes(openai_error_response(exc).body))
    return sse_event({"type": "error", **body})


class _MidStreamFailure(Exception):
    """Raised after the response started so the server drops the connection."""


class PrefetchingStreamingResponse(Response):
    def __init__(
        self,
        source: ChunkSource,
        *,
        media_type: str,
        headers: dict[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.source = source
        self.status_code = 200
        self.media_type = media_type
        self.background = background
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        delivered = False
        settled = False
        failure: BaseException | None = None
        error_response: Response | None = None

        gone = anyio.Event()

        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while True:
                    message: Message = await receive()
                    if message["type"] == "http.disconnect":
                        gone.set()
                        group.cancel_scope.cancel()
                        return

            group.start_soon(watch_disconnect)
            try:
                try:
                    chunk = await run_in_threadpool(self.source.next_chunk)
                except Exception as exc:  # before any byte: a normal error response
                    settled = True
                    if not isinstance(exc, DomainError):
                        log.exception("stream failed before its first chunk")
                    error_response = openai_error_response(exc)
                    return
                # A worker thread is not interrupted by cancellation, and send() need not be a
                # checkpoint: look at the flag so nothing counts as delivered to a closed socket.
                if gone.is_set():
                    return
                await send(
                    {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
                )
                while chunk is not None:
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                        delivered = True
                    try:
                        chunk = await run_in_threadpool(self.source.next_chunk)
                    except Exception as exc:
                        settled = True
                        log.warning("stream failed after it started: %s", exc)
                        tail = self.source.error_chunk(exc)
                        if tail is None:
                            failure = exc
                            return
                        await send({"type": "http.response.body", "body": tail, "more_body": True})
                        chunk = None
                    if gone.is_set():
                        return
                settled = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:  # ASGI 2.4 servers raise on send to a closed connection
                pass
            finally:
                group.cancel_scope.cancel()
                if not settled:
                    with anyio.CancelScope(shield=True):
                        try:
                            await run_in_threadpool(self.source.abort, delivered)
                        except Exception:
                            log.exception("settling an abandoned stream failed")

        if error_response is not None:
            await error_response(scope, receive, send)
            return
        if failure is not None:
            raise _MidStreamFailure(str(failure)) from failure
        if self.background is not None:
            await self.background()
