"""Secrets: API key generation and hashing, JWTs, and signed expiring tokens for downloads."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import jwt

from app.core.config import Settings
from app.core.errors import Unauthorized

JWT_ALGORITHM = "HS256"
# Characters of a key kept in clear for display and lookup ("ap_" + 8).
KEY_DISPLAY_CHARS = 8


def new_api_key(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_api_key(key: str, secret: str) -> str:
    """Keyed hash: a stolen database alone cannot be used to test guesses offline."""
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def display_prefix(key: str, prefix: str) -> str:
    return key[: len(prefix) + KEY_DISPLAY_CHARS]


def keys_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def issue_jwt(user_id: int, settings: Settings) -> tuple[str, int]:
    now = int(time.time())
    ttl = settings.jwt_ttl_seconds
    token = jwt.encode(
        {"sub": str(user_id), "iat": now, "exp": now + ttl, "typ": "access"},
        settings.secret,
        algorithm=JWT_ALGORITHM,
    )
    return token, ttl


def decode_jwt(token: str, settings: Settings) -> int:
    try:
        claims = jwt.decode(token, settings.secret, algorithms=[JWT_ALGORITHM])
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid or expired credentials") from exc
    if claims.get("typ") != "access":
        raise Unauthorized("Invalid or expired credentials")
    return int(claims["sub"])


def sign_token(payload: dict[str, Any], purpose: str, ttl_seconds: int, secret: str) -> str:
    """A compact signed token carrying `payload`, valid for one purpose for `ttl_seconds`."""
    return sign_token_until(payload, purpose, int(time.time()) + ttl_seconds, secret)


def sign_token_until(payload: dict[str, Any], purpose: str, expires_at: int, secret: str) -> str:
    """sign_token with a fixed expiry (Unix seconds): the same inputs make the same token."""
    return jwt.encode({**payload, "pur": purpose, "exp": expires_at}, secret, algorithm=JWT_ALGORITHM)


def verify_token(token: str, purpose: str, secret: str) -> dict[str, Any]:
    """Payload of a token made by sign_token; raises Unauthorized when forged, expired or misused."""
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM])
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid or expired link") from exc
    if claims.get("pur") != purpose:
        raise Unauthorized("Invalid or expired link")
    return claims
