"""Users and API keys. Keys are shown once; only a keyed hash and a display prefix are stored."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.auth.models import ApiKey, User
from app.billing import service as billing
from app.core.config import Settings
from app.core.db import affected_rows, after_commit, session_scope, utcnow
from app.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from app.core.security import decode_jwt, display_prefix, hash_api_key, keys_match, new_api_key

INVALID_CREDENTIALS = "Invalid or missing API key"
log = logging.getLogger(__name__)
# `last_used_at` is kept to the minute: a write per request would cost every request a commit.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, and the API key used (None for a JWT)."""

    user_id: int
    name: str
    is_admin: bool
    api_key_id: int | None


class _RecentKeys:
    """Keys this process authenticated in the last few seconds, by their keyed digest (never the
    key itself), so a client's burst of cheap requests does not query the database for each."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, digest: str, ttl: float) -> Principal | None:
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry[0] >= ttl:
            return None
        return entry[1]

    def put(self, digest: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()  # a flood of distinct keys only costs lookups again
            self._entries[digest] = (time.monotonic(), principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_recent_keys = _RecentKeys()


def create_user(session: Session, name: str, *, is_admin: bool = False) -> User:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("User name must be 1-100 characters")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"User {name!r} already exists")
    user = User(name=name, is_admin=is_admin)
    session.add(user)
    session.flush()
    billing.ensure_account(session, user.id)
    return user


def get_user_by_name(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"No user named {name!r}")
    return user


def create_api_key(
    session: Session, settings: Settings, user_id: int, name: str = "default"
) -> tuple[ApiKey, str]:
    """Returns the row and the key itself, which is never retrievable again."""
    key = new_api_key(settings.api_key_prefix)
    row = ApiKey(
        user_id=user_id,
        name=name,
        prefix=display_prefix(key, settings.api_key_prefix),
        key_hash=hash_api_key(key, settings.secret),
    )
    session.add(row)
    session.flush()
    return row, key


def list_api_keys(session: Session, user_id: int) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id)))


def revoke_api_key(session: Session, prefix: str) -> int:
    result = session.execute(
        update(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    if affected_rows(result) == 0:
        raise NotFound(f"No active key with prefix {prefix!r}")
    # After the commit: cleared earlier, a request in between could trust the key again.
    after_commit(session, _recent_keys.clear)
    return affected_rows(result)


def remembered_key(settings: Settings, key: str | None) -> Principal | None:
    """Who an API key names if this process authenticated it within auth_cache_seconds; None
    otherwise (then ask authenticate_api_key). Waits on nothing: no database, no network."""
    if not key or settings.auth_cache_seconds <= 0:
        return None
    if not key.startswith(settings.api_key_prefix) or len(key) > 200:
        return None
    return _recent_keys.get(hash_api_key(key, settings.secret), settings.auth_cache_seconds)


def authenticate_api_key(session: Session, settings: Settings, key: str) -> Principal:
    """Unknown and revoked keys get the same answer, so neither can be told apart."""
    if not key.startswith(settings.api_key_prefix) or len(key) > 200:
        raise Unauthorized(INVALID_CREDENTIALS)
    if known := remembered_key(settings, key):
        return known
    digest = hash_api_key(key, settings.secret)
    row = session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.prefix == display_prefix(key, settings.api_key_prefix))
    ).all()
    for api_key, user in row:
        # Constant-time comparison of digests; the prefix lookup only narrows the candidates.
        if keys_match(api_key.key_hash, digest) and api_key.revoked_at is None and user.is_active:
            principal = Principal(user.id, user.name, user.is_admin, api_key.id)
            if settings.auth_cache_seconds > 0:
                _recent_keys.put(digest, principal)
            _record_use(settings, api_key)
            return principal
    raise Unauthorized(INVALID_CREDENTIALS)


def _record_use(settings: Settings, api_key: ApiKey) -> None:
    """Sets the key's `last_used_at` (shown by `chorus keys list`) when it is a minute old or
    more. In a transaction of its own, committed at once: in the request's, the row would stay
    locked for the whole request (a transcription's, say) against every request with the key."""
    now = utcnow()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    try:
        with session_scope(settings) as session:
            session.execute(update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=now))
    except SQLAlchemyError:  # bookkeeping: a request the key may make must not fail on it
        log.warning("could not record the last use of API key %s", api_key.prefix, exc_info=True)


def authenticate_bearer(session: Session, settings: Settings, token: str) -> Principal:
    """A Bearer value is an API key when it has the key prefix, else a JWT."""
    if token.startswith(settings.api_key_prefix):
        return authenticate_api_key(session, settings, token)
    user_id = decode_jwt(token, settings)
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized(INVALID_CREDENTIALS)
    return Principal(user.id, user.name, user.is_admin, None)


def ensure_first_admin(session: Session, settings: Settings) -> str | None:
    """On an empty database: an admin with starter credits; returns its new key (shown once)."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    admin = create_user(session, "admin", is_admin=True)
    if settings.starter_credits > 0:
        billing.grant(session, admin.id, settings.starter_credits, note="starter credits")
    _, key = create_api_key(session, settings, admin.id, name="first admin key")
    return key
