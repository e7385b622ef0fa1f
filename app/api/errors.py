"""Error rendering per API family. Services raise domain errors; each family shows them its way.

Each router declares its family (app.api.families): an error raised inside a route takes the
matched route's family; one given before any route matched (413 and 429 from the middleware,
unknown paths) takes the family of the path, from the prefix table built from the mounted routes.
Validation failures are 400, never 422.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.families import CLONE, ENVELOPE, NATIVE, OPENAI, VOICEAI, family_for
from app.core.db import OperationalError
from app.core.errors import DomainError, InsufficientCredits, RateLimited

log = logging.getLogger(__name__)

__all__ = ["CLONE", "ENVELOPE", "NATIVE", "OPENAI", "VOICEAI", "install_error_handlers", "render"]

_HTTP_CODES = {
    400: "INVALID_PARAMETERS",
    401: "UNAUTHORIZED",
    402: "USAGE_LIMIT_EXCEEDED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "IDEMPOTENCY_MISMATCH",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def _openai_type(status: int, error: DomainError | None) -> tuple[str, str | None]:
    if isinstance(error, InsufficientCredits):
        return "insufficient_quota", "insufficient_quota"
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def render(family: str, status: int, message: str, error: DomainError | None = None) -> JSONResponse:
    """One error response in the family's shape."""
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    body: Any
    if family == CLONE:
        if isinstance(error, InsufficientCredits):
            # The clone family reports exhausted credits as 429 USAGE_LIMIT_EXCEEDED.
            status = 429
            body = {
                "code": "USAGE_LIMIT_EXCEEDED",
                "error": message,
                "credits": error.available,
                "needCredits": error.required,
            }
        else:
            code = error.code if error is not None else _HTTP_CODES.get(status, "INTERNAL_ERROR")
            body = {"code": code, "error": message}
    elif family == OPENAI:
        if isinstance(error, InsufficientCredits):
            status = 429
        err_type, err_code = _openai_type(status, error)
        param = error.param if error is not None else None
        body = {"error": {"message": message, "type": err_type, "param": param, "code": err_code}}
    elif family == ENVELOPE:
        body = {"code": status, "message": message, "data": None}
    else:  # native and voice.ai
        if isinstance(error, InsufficientCredits):
            body = {"detail": {"message": message, "required": error.required, "available": error.available}}
        else:
            body = {"detail": message}
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "Invalid request", None
    first = errors[0]
    loc = [
        str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "form", "header")
    ]
    param = ".".join(loc) or None
    msg = str(first.get("msg", "invalid value"))
    if first.get("type") == "json_invalid":
        return "Request body is not valid JSON", None
    if first.get("type") == "missing":
        return f"Missing required parameter: {param}", param
    return (f"Invalid parameter {param}: {msg}" if param else msg), param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return render(family_for(request.scope), exc.status_code, exc.message, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc)
        err = DomainError(message, param=param)
        return render(family_for(request.scope), 400, message, err)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = 400 if exc.status_code == 422 else exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if status == 404 and message == "Not Found":
            message = "Not found"
        response = render(family_for(request.scope), status, message)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return render(family_for(request.scope), 503, "Database is unavailable; try again shortly")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(family_for(request.scope), 500, "Internal server error")
