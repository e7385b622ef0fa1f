"""Domain errors: raised by services, rendered by each API family in its own shape."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code: int = 400
    code: str = "INVALID_PARAMETERS"

    def __init__(self, message: str, *, param: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.extra = extra


class InvalidInput(DomainError):
    status_code = 400
    code = "INVALID_PARAMETERS"


class VoiceNotReady(InvalidInput):
    """The voice exists but cannot speak yet (queued, cloning, or failed)."""


class Unauthorized(DomainError):
    status_code = 401
    code = "UNAUTHORIZED"


class InsufficientCredits(DomainError):
    status_code = 402
    code = "USAGE_LIMIT_EXCEEDED"

    def __init__(self, required: int, available: int) -> None:
        super().__init__(
            f"Insufficient credits: {required} required, {available} available",
            required=required,
            available=available,
        )
        self.required = required
        self.available = available


class Forbidden(DomainError):
    status_code = 403
    code = "FORBIDDEN"


class NotFound(DomainError):
    status_code = 404
    code = "NOT_FOUND"


class Conflict(DomainError):
    status_code = 409
    code = "CONFLICT"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMedia(DomainError):
    status_code = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class Unprocessable(DomainError):
    """Idempotency key reused with another body."""

    status_code = 422
    code = "IDEMPOTENCY_MISMATCH"


class RateLimited(DomainError):
    status_code = 429
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class Unavailable(DomainError):
    status_code = 503
    code = "SERVICE_UNAVAILABLE"
