"""Database engine, sessions, and the declarative base.

One session per request (or per task), committed by its owner; services only flush.
Work that must happen after the commit (enqueueing jobs, deleting blobs) is registered
with `after_commit(session, fn)` so a worker never sees a row that was rolled back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator, create_engine, event
from sqlalchemy import text as sql_text
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import OperationalError as OperationalError  # re-exported: a database outage
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.core.config import Settings, get_settings

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def utcnow() -> datetime:
    return datetime.now(UTC)


def public_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args)


@lru_cache
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    if settings.embedded_database:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return _engine_for(settings.resolved_database_url)


def dispose_engines() -> None:
    """Drop pooled connections; called in a worker after fork and by tests."""
    for engine in list(_engine_sessionmakers):
        engine.dispose()
    _engine_for.cache_clear()
    _engine_sessionmakers.clear()


_engine_sessionmakers: dict[Engine, sessionmaker[Session]] = {}


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    engine = get_engine(settings)
    maker = _engine_sessionmakers.get(engine)
    if maker is None:
        maker = sessionmaker(bind=engine, expire_on_commit=False)
        _engine_sessionmakers[engine] = maker
    return maker


def after_commit(session: Session, fn: Callable[[], object]) -> None:
    """Run `fn` once the surrounding transaction has committed (dropped on rollback)."""
    session.info.setdefault("after_commit", []).append(fn)


def on_rollback(session: Session, fn: Callable[[], object]) -> None:
    """Run `fn` if the surrounding transaction rolls back (e.g. delete blobs written for it)."""
    session.info.setdefault("on_rollback", []).append(fn)


def run_on_rollback(session: Session) -> None:
    session.info.pop("after_commit", None)
    for fn in session.info.pop("on_rollback", []):
        try:
            fn()
        except Exception:
            log.exception("rollback clean-up failed")


def run_after_commit(session: Session) -> None:
    session.info.pop("on_rollback", None)
    callbacks: list[Callable[[], object]] = session.info.pop("after_commit", [])
    for fn in callbacks:
        try:
            fn()
        except Exception:  # an enqueue failing must not turn a committed request into an error
            log.exception("after-commit callback failed")


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error, then run after-commit work."""
    session = session_factory(settings)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        run_on_rollback(session)
        raise
    finally:
        session.close()
    run_after_commit(session)


MAX_ROW_ID = 2**63 - 1


def is_digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts '²' and friends, which int() refuses."""
    return text.isascii() and text.isdigit()


def row_id(ref: object) -> int | None:
    """`ref` as a database integer id when it is one (digits within BIGINT), else None.

    Client-given ids beyond the column's range would otherwise overflow the driver (a 500)."""
    text = str(ref).strip()
    if not is_digits(text) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ROW_ID else None


def affected_rows(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE changed (conditional updates decide races by this count)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def ping_database(settings: Settings | None = None) -> None:
    """One round trip to the database (readiness); raises when it cannot be reached."""
    with session_factory(settings)() as session:
        session.execute(sql_text("SELECT 1"))
