"""The voice catalogue: visibility and ownership live in the queries, never in callers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, case, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from app.core.db import affected_rows, after_commit, is_digits, row_id, utcnow
from app.core.errors import Forbidden, InvalidInput, NotFound
from app.jobs.models import JOB_PENDING, JOB_PROCESSING, Job, JobKind
from app.jobs.service import fail_job
from app.storage import BlobStore
from app.voices.models import CollectionVoice, Voice
from app.voices.usage import voice_generations

BUILTIN = "builtin"
CUSTOM = "custom"


def readable_voices(user_id: int) -> Select[Voice]:
    """Voices this user may read and speak with: built-in, own, or someone's public voice."""
    return select(Voice).where(
        Voice.deleted_at.is_(None),
        or_(Voice.kind == BUILTIN, Voice.owner_id == user_id, Voice.is_public.is_(True)),
    )


def _by_ref(query: Select[Voice], ref: str | int) -> Select[Voice]:
    text = str(ref).strip()
    if is_digits(text):
        return query.where(Voice.id == (row_id(text) or 0))
    if text.startswith("voice_"):
        return query.where(Voice.voice_id == text)
    return query.where(Voice.uuid == text)


def get_readable_voice(session: Session, user_id: int, ref: str | int) -> Voice:
    """By integer id, uuid or voice_id; another user's private voice is NotFound."""
    voice = session.scalar(_by_ref(readable_voices(user_id), ref))
    if voice is None:
        raise NotFound("Voice not found")
    return voice


def find_own_voice_by_name(session: Session, user_id: int, name: str) -> Voice | None:
    """The caller's own live voice with this name (case-insensitive; the newest when several)."""
    return session.scalar(
        select(Voice)
        .where(Voice.owner_id == user_id, Voice.deleted_at.is_(None), func.lower(Voice.name) == name.lower())
        .order_by(Voice.created_at.desc(), Voice.id.desc())
        .limit(1)
    )


def get_voice_by_uuid(session: Session, uuid: str) -> Voice:
    """A live voice by uuid, whoever owns it: only for callers holding a server-signed credential."""
    voice = session.scalar(select(Voice).where(Voice.uuid == uuid, Voice.deleted_at.is_(None)))
    if voice is None:
        raise NotFound("Voice not found")
    return voice


def get_changeable_voice(session: Session, user_id: int, ref: str | int) -> Voice:
    """A voice the user may change: readable ones that are not theirs are Forbidden."""
    voice = get_readable_voice(session, user_id, ref)
    if voice.kind == BUILTIN:
        raise Forbidden("Built-in voices cannot be changed")
    if voice.owner_id != user_id:
        raise Forbidden("You can only change your own voices")
    return voice


@dataclass
class VoiceFilters:
    voice_type: str | None = None  # builtin | custom
    owned_only: bool = False
    is_public: bool | None = None
    include_public: bool = True
    category: str | None = None
    language: str | None = None
    gender: str | None = None
    style: str | None = None
    statuses: tuple[str, ...] | None = None
    keyword: str | None = None


def filtered_voices(user_id: int, filters: VoiceFilters) -> Select[Voice]:
    query = readable_voices(user_id)
    if filters.owned_only:
        query = query.where(Voice.owner_id == user_id)
    if not filters.include_public:
        query = query.where(or_(Voice.kind == BUILTIN, Voice.owner_id == user_id))
    if filters.voice_type:
        query = query.where(Voice.kind == filters.voice_type)
    if filters.is_public is not None:
        query = query.where(Voice.is_public.is_(filters.is_public))
    if filters.language:
        # "en" matches en, en-US and en-GB; "en-GB" only en-GB.
        wanted = filters.language.strip().lower().replace("_", "-")
        language = func.lower(func.coalesce(Voice.language, ""))
        query = query.where(or_(language == wanted, language.like(f"{wanted}-%")))
    for column, value in (
        (Voice.category, filters.category),
        (Voice.gender, filters.gender),
        (Voice.style, filters.style),
    ):
        if value:
            query = query.where(func.lower(column) == value.lower())
    if filters.statuses:
        query = query.where(Voice.status.in_(filters.statuses))
    if filters.keyword:
        pattern = f"%{filters.keyword.lower()}%"
        query = query.where(
            or_(
                func.lower(Voice.name).like(pattern),
                func.lower(func.coalesce(Voice.description, "")).like(pattern),
                func.lower(cast(Voice.tags, String)).like(pattern),
            )
        )
    return query


def list_voices(
    session: Session, user_id: int, filters: VoiceFilters, *, skip: int, limit: int, order: Any = None
) -> tuple[list[Voice], int]:
    query = filtered_voices(user_id, filters)
    # Custom voices first (newest first), so a first page shows them; then the built-ins in
    # catalogue order (joe and the English voices lead, as they always have).
    ordering = (
        order
        if order is not None
        else (Voice.kind.desc(), case((Voice.kind == BUILTIN, Voice.id), else_=-Voice.id))
    )
    if not isinstance(ordering, tuple):
        ordering = (ordering,)
    # The total rides on the page's rows (a window count runs before LIMIT): one round trip, not two.
    page = session.execute(
        query.add_columns(func.count().over()).order_by(*ordering).offset(skip).limit(limit)
    ).all()
    if page:
        return [voice for voice, _ in page], int(page[0][1])
    total = session.scalar(select(func.count()).select_from(query.subquery())) if skip else 0
    return [], int(total or 0)


UPDATABLE_FIELDS = (
    "name",
    "description",
    "is_public",
    "tags",
    "category",
    "style",
    "language",
    "gender",
    "age_range",
)


def update_voice(session: Session, user_id: int, ref: str | int, changes: dict[str, Any]) -> Voice:
    """Apply a partial update to the caller's own voice (unknown fields are the caller's 400)."""
    voice = get_changeable_voice(session, user_id, ref)
    for name, value in changes.items():
        if name not in UPDATABLE_FIELDS:
            raise InvalidInput(f"Field {name} cannot be changed")
        if name == "name":
            value = (value or "").strip()
            if not value or len(value) > 200:
                raise InvalidInput("Voice name must be 1-200 characters", param="name")
        if name == "tags":
            value = check_tags(value or [])
        setattr(voice, name, value)
    voice.updated_at = utcnow()
    session.flush()
    return voice


def voice_storage_prefix(voice: Voice) -> str:
    """Everything stored for a voice (samples, artifact, previews) lives under this prefix."""
    return f"voices/{voice.uuid}/"


def delete_voice(
    session: Session, store: BlobStore, user_id: int, ref: str | int, *, keep_files: bool = False
) -> Voice:
    """Soft delete; its samples, artifact and previews leave storage once the delete commits,
    unless `keep_files` (the caller's contract promises the files stay). Either way the voice no
    longer lists, resolves or speaks."""
    voice = get_changeable_voice(session, user_id, ref)
    voice.deleted_at = utcnow()
    remove_voice_everywhere(session, voice.id)
    stop_building(session, voice.id)
    if not keep_files:
        prefix = voice_storage_prefix(voice)
        after_commit(session, lambda: store.delete_prefix(prefix))
    session.flush()
    return voice


def stop_building(session: Session, voice_id: int) -> None:
    """The clone job still building a deleted voice ends failed and its hold is released: the
    user is not charged for a voice they deleted, and a worker running it stops at its next
    progress report (its lease is no longer its own) instead of writing files for no voice."""
    building = session.scalars(
        select(Job.id).where(
            Job.voice_id == voice_id,
            Job.kind == JobKind.CLONE,
            Job.status.in_((JOB_PENDING, JOB_PROCESSING)),
        )
    )
    for job_id in list(building):
        fail_job(session, job_id, "The voice was deleted before cloning finished")


def remove_voice_everywhere(session: Session, voice_id: int) -> int:
    """Drop a voice from every collection (called when the voice is deleted); returns rows removed."""
    result = session.execute(delete(CollectionVoice).where(CollectionVoice.voice_id == voice_id))
    session.flush()
    return affected_rows(result)


# -- tags: one rule for every family and every way of setting them --------------------------

MAX_TAGS = 20
MAX_TAG_CHARS = 64
TAGS_RULE = f"At most {MAX_TAGS} tags of up to {MAX_TAG_CHARS} characters each"


def check_tags(tags: Iterable[object]) -> list[str]:
    """Tags trimmed, empty ones dropped; more than MAX_TAGS, or one longer than MAX_TAG_CHARS,
    is a 400 naming `tags` (never silently cut)."""
    cleaned = [text for text in (str(tag).strip() for tag in tags) if text]
    if len(cleaned) > MAX_TAGS or any(len(tag) > MAX_TAG_CHARS for tag in cleaned):
        raise InvalidInput(TAGS_RULE, param="tags")
    return cleaned


def parse_tags(raw: str | None) -> list[str]:
    """Tags sent in one text field (a form): a JSON array of strings or a comma-separated list,
    then `check_tags`."""
    if not raw or not raw.strip():
        return []
    raw = raw.strip()
    if not raw.startswith("["):
        return check_tags(raw.split(","))
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidInput("tags must be a JSON array or a comma-separated list", param="tags") from exc
    if not isinstance(parsed, list) or not all(isinstance(t, str | int | float) for t in parsed):
        raise InvalidInput("tags must be a JSON array of strings or a comma-separated list", param="tags")
    return check_tags(parsed)


# -- lookups the families need ---------------------------------------------------------------


def find_builtin_voice(session: Session, user_id: int, key: str) -> Voice | None:
    """The live built-in voice with this catalogue key."""
    return session.scalar(readable_voices(user_id).where(Voice.kind == BUILTIN, Voice.builtin_key == key))


def find_builtin_voice_by_name(session: Session, user_id: int, name: str) -> Voice | None:
    """A live built-in voice by its key or display name (case-insensitive), e.g. 'joe'."""
    lowered = name.lower()
    return session.scalar(
        readable_voices(user_id)
        .where(Voice.kind == BUILTIN)
        .where((func.lower(Voice.builtin_key) == lowered) | (func.lower(Voice.name) == lowered))
        .order_by(Voice.id)
        .limit(1)
    )


def builtin_and_own_voices(session: Session, user_id: int) -> list[Voice]:
    """Every built-in voice and the caller's own (no one else's public ones): built-ins first,
    then each kind oldest first."""
    query = filtered_voices(user_id, VoiceFilters(include_public=False))
    return list(session.scalars(query.order_by(Voice.kind.asc(), Voice.created_at.asc(), Voice.id.asc())))


SORT_KEYS = ("created", "updated", "name", "duration", "popularity")


def voice_ordering(key: str, *, descending: bool) -> tuple[Any, ...]:
    """An `order` for `list_voices`: by one of SORT_KEYS (popularity: generations across all
    users), then by id."""
    columns: dict[str, Any] = {
        "created": Voice.created_at,
        "updated": Voice.updated_at,
        "name": Voice.name,
        "duration": Voice.sample_seconds,
        "popularity": voice_generations(),
    }
    if key not in columns:
        raise InvalidInput(f"Cannot sort voices by {key}", param="sort")
    column = columns[key]
    return (column.desc() if descending else column.asc(), Voice.id.asc())
