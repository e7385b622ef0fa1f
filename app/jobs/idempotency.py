"""The store behind `Idempotency-Key` (app.api.idempotency): claim a key for a request, keep the
answer of a request that succeeded, free the key of one that did not, and expire keys after 24 h."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db import affected_rows, utcnow
from app.core.errors import Conflict, DomainError, Unprocessable
from app.jobs.models import IdempotencyKey

KEY_TTL = timedelta(hours=24)
# An in_progress key older than this belongs to a request that died with its process.
STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Claimed:
    row_id: int


Decision = Stored | Claimed | DomainError


def claim_key(session: Session, user_id: int, key: str, print_: str) -> Decision:
    """Claim `key` for this request, or say why not (stored answer, 409, 422).

    Meant for its own short transaction (it may roll back after losing an insert race)."""
    for _ in range(2):
        now = utcnow()
        row = session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        )
        if row is not None and row.expires_at <= now:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
            session.flush()
            row = None
        if row is not None:
            if row.fingerprint != print_:
                return Unprocessable("Idempotency-Key was already used with a different request")
            if row.status == "completed" and row.response_status is not None:
                return Stored(
                    row.response_status,
                    (row.response_body or "").encode(),
                    row.response_content_type or "application/json",
                )
            if row.created_at > now - STALE_AFTER:
                return Conflict("A request with this Idempotency-Key is still being processed")
            taken = session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == row.id, IdempotencyKey.created_at == row.created_at)
                .values(created_at=now, status="in_progress")
            )
            if affected_rows(taken) == 1:
                return Claimed(row.id)
            return Conflict("A request with this Idempotency-Key is still being processed")
        new = IdempotencyKey(
            user_id=user_id,
            key=key,
            fingerprint=print_,
            status="in_progress",
            created_at=now,
            expires_at=now + KEY_TTL,
        )
        session.add(new)
        try:
            session.flush()
        except IntegrityError:  # a concurrent request claimed it first: look again
            session.rollback()
            continue
        return Claimed(new.id)
    return Conflict("A request with this Idempotency-Key is still being processed")


def store_answer(session: Session, row_id: int, status: int, body: str, content_type: str) -> None:
    """Keep the answer of the request that holds the key, to replay it."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == row_id)
        .values(
            status="completed",
            response_status=status,
            response_body=body,
            response_content_type=content_type[:100] or "application/json",
        )
    )


def forget_key(session: Session, row_id: int) -> None:
    """Free a key whose request did not succeed (only while it is still in progress)."""
    session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.id == row_id, IdempotencyKey.status == "in_progress")
    )


def purge_expired_keys(session: Session, now: datetime | None = None) -> int:
    """Delete keys past their 24 h; returns how many (for a periodic pass)."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= (now or utcnow())))
    return affected_rows(result)
