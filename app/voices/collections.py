"""Voice collections: named, ordered groups of voices owned by one user.

Rules (kept in the queries, as for voices):
- The owner reads and changes a collection. Another user may READ a public collection
  (like a public voice) but never change it: 403. A private collection of someone else
  is 404, so its existence is not revealed. Listing shows only the caller's own collections.
- A collection only holds voices its owner may read (built-in, own, or someone's public voice).
- What a viewer sees in `voice_ids` is the collection's voices that the viewer may read right
  now, in insertion order: soft-deleted voices, and voices made private by their owner since,
  drop out without anyone having to rewrite the collection, and a public collection never
  reveals someone's private voice ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.orm import Session

from app.core.db import affected_rows, is_digits, row_id, utcnow
from app.core.errors import Forbidden, InvalidInput, NotFound
from app.voices.models import Collection, CollectionVoice, Voice
from app.voices.service import readable_voices

COLLECTION_NOT_FOUND = "Collection not found"
UPDATABLE_FIELDS = frozenset({"name", "description", "tags", "is_public"})


@dataclass
class CollectionView:
    """What a route renders: plain values, no ORM object leaves the service."""

    collection_id: str
    owner_id: int
    name: str
    description: str | None
    tags: list[str]
    is_public: bool
    created_at: datetime
    updated_at: datetime
    voice_ids: list[str] = field(default_factory=list)


def readable_collections(user_id: int) -> Select[Collection]:
    """Collections this user may read: their own, or anyone's public one."""
    return select(Collection).where(or_(Collection.owner_id == user_id, Collection.is_public.is_(True)))


def owned_collections(user_id: int) -> Select[Collection]:
    return select(Collection).where(Collection.owner_id == user_id)


def _get_readable(session: Session, user_id: int, ref: str) -> Collection:
    collection = session.scalar(readable_collections(user_id).where(Collection.collection_id == str(ref)))
    if collection is None:
        raise NotFound(COLLECTION_NOT_FOUND)
    return collection


def _get_changeable(session: Session, user_id: int, ref: str) -> Collection:
    """Readable but not owned is 403; unreadable is 404 (never reveal private ones)."""
    collection = _get_readable(session, user_id, ref)
    if collection.owner_id != user_id:
        raise Forbidden("You can only change your own collections")
    return collection


def _visible_voice_ids(
    session: Session, viewer_id: int, collection_ids: Sequence[int]
) -> dict[int, list[str]]:
    """Public voice ids per collection, restricted to voices the viewer may read; one query."""
    result: dict[int, list[str]] = {cid: [] for cid in collection_ids}
    if not collection_ids:
        return result
    rows = session.execute(
        select(CollectionVoice.collection_id, Voice.voice_id)
        .join(Voice, Voice.id == CollectionVoice.voice_id)
        .where(CollectionVoice.collection_id.in_(collection_ids))
        .where(readable_voices(viewer_id).whereclause)  # type: ignore[arg-type]
        .order_by(CollectionVoice.collection_id, CollectionVoice.position, CollectionVoice.added_at)
    ).all()
    for cid, voice_public_id in rows:
        result[cid].append(voice_public_id)
    return result


def _view(collection: Collection, voice_ids: list[str]) -> CollectionView:
    return CollectionView(
        collection_id=collection.collection_id,
        owner_id=collection.owner_id,
        name=collection.name,
        description=collection.description,
        tags=list(collection.tags or []),
        is_public=collection.is_public,
        created_at=collection.created_at,
        updated_at=collection.updated_at,
        voice_ids=voice_ids,
    )


def _render(session: Session, viewer_id: int, collection: Collection) -> CollectionView:
    return _view(collection, _visible_voice_ids(session, viewer_id, [collection.id])[collection.id])


def _resolve_voices(session: Session, owner_id: int, refs: Iterable[str | int]) -> list[Voice]:
    """Voices for refs (int id, uuid or voice_id) that the owner may read, deduplicated, in
    the order given. Any unknown or unreadable ref fails the whole call with its name."""
    texts = [str(ref).strip() for ref in refs]
    if not texts:
        return []
    ints = {row_id(t) or 0 for t in texts if is_digits(t)}
    public = {t for t in texts if t.startswith("voice_")}
    uuids = {t for t in texts if not is_digits(t) and not t.startswith("voice_")}
    found = session.scalars(
        readable_voices(owner_id).where(
            or_(Voice.id.in_(ints), Voice.voice_id.in_(public), Voice.uuid.in_(uuids))
        )
    ).all()
    by_id = {v.id: v for v in found}
    by_public = {v.voice_id: v for v in found}
    by_uuid = {v.uuid: v for v in found}
    voices: list[Voice] = []
    seen: set[int] = set()
    for text in texts:
        if is_digits(text):
            voice = by_id.get(row_id(text) or 0)
        elif text.startswith("voice_"):
            voice = by_public.get(text)
        else:
            voice = by_uuid.get(text)
        if voice is None:
            raise NotFound(f"Voice not found: {text}")
        if voice.id not in seen:
            seen.add(voice.id)
            voices.append(voice)
    return voices


def _append_voices(session: Session, collection: Collection, voices: Sequence[Voice]) -> int:
    """Add voices at the end, keeping order; ones already in the collection are ignored."""
    in_this = CollectionVoice.collection_id == collection.id
    existing = set(session.scalars(select(CollectionVoice.voice_id).where(in_this)))
    last = session.scalar(select(func.max(CollectionVoice.position)).where(in_this))
    position = -1 if last is None else int(last)
    added = 0
    now = utcnow()
    for voice in voices:
        if voice.id in existing:
            continue
        position += 1
        session.add(
            CollectionVoice(collection_id=collection.id, voice_id=voice.id, position=position, added_at=now)
        )
        existing.add(voice.id)
        added += 1
    return added


def _clean_tags(tags: Iterable[str] | None) -> list[str]:
    out: list[str] = []
    for tag in tags or []:
        text = str(tag).strip()
        if text and text not in out:
            out.append(text)
    return out


def _clean_name(name: Any) -> str:
    text = str(name).strip() if name is not None else ""
    if not text:
        raise InvalidInput("Collection name must not be empty", param="name")
    if len(text) > 200:
        raise InvalidInput("Collection name must be at most 200 characters", param="name")
    return text


def create_collection(
    session: Session,
    user_id: int,
    *,
    name: str,
    description: str | None = None,
    voice_refs: Sequence[str | int] = (),
    tags: Sequence[str] = (),
    is_public: bool = False,
) -> CollectionView:
    """Create a collection; every voice must be readable by the creator or nothing is made."""
    clean_name = _clean_name(name)
    voices = _resolve_voices(session, user_id, voice_refs)  # before any insert: all or nothing
    now = utcnow()
    collection = Collection(
        owner_id=user_id,
        name=clean_name,
        description=description,
        tags=_clean_tags(tags),
        is_public=bool(is_public),
        created_at=now,
        updated_at=now,
    )
    session.add(collection)
    session.flush()
    _append_voices(session, collection, voices)
    session.flush()
    return _render(session, user_id, collection)


def list_collections(
    session: Session, user_id: int, *, skip: int, limit: int
) -> tuple[list[CollectionView], int]:
    """The caller's own collections, newest first, with the total for paging."""
    query = owned_collections(user_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        session.scalars(
            query.order_by(Collection.created_at.desc(), Collection.id.desc()).offset(skip).limit(limit)
        )
    )
    voice_ids = _visible_voice_ids(session, user_id, [c.id for c in rows])
    return [_view(c, voice_ids[c.id]) for c in rows], int(total)


def get_collection(session: Session, user_id: int, ref: str) -> CollectionView:
    return _render(session, user_id, _get_readable(session, user_id, ref))


def update_collection(session: Session, user_id: int, ref: str, changes: Mapping[str, Any]) -> CollectionView:
    """PATCH semantics: only the keys present change; `description` may be cleared with None."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Unknown field: {sorted(unknown)[0]}", param=sorted(unknown)[0])
    collection = _get_changeable(session, user_id, ref)
    if "name" in changes:
        collection.name = _clean_name(changes["name"])
    if "description" in changes:
        collection.description = changes["description"]
    if "tags" in changes:
        if changes["tags"] is None:
            raise InvalidInput("tags must be a list", param="tags")
        collection.tags = _clean_tags(changes["tags"])
    if "is_public" in changes:
        if changes["is_public"] is None:
            raise InvalidInput("is_public must be true or false", param="is_public")
        collection.is_public = bool(changes["is_public"])
    if changes:
        collection.updated_at = utcnow()
    session.flush()
    return _render(session, user_id, collection)


def delete_collection(session: Session, user_id: int, ref: str) -> None:
    collection = _get_changeable(session, user_id, ref)
    session.execute(delete(CollectionVoice).where(CollectionVoice.collection_id == collection.id))
    session.delete(collection)
    session.flush()


def add_voices(session: Session, user_id: int, ref: str, voice_refs: Sequence[str | int]) -> CollectionView:
    """Append voices the owner may read; one bad ref adds nothing; duplicates are ignored."""
    collection = _get_changeable(session, user_id, ref)
    voices = _resolve_voices(session, user_id, voice_refs)
    if _append_voices(session, collection, voices):
        collection.updated_at = utcnow()
    session.flush()
    return _render(session, user_id, collection)


def remove_voice(session: Session, user_id: int, ref: str, voice_ref: str | int) -> CollectionView:
    """Remove one voice; 404 when it is not among the voices the collection shows."""
    collection = _get_changeable(session, user_id, ref)
    voices = _resolve_voices(session, user_id, [voice_ref])
    result = session.execute(
        delete(CollectionVoice).where(
            CollectionVoice.collection_id == collection.id, CollectionVoice.voice_id == voices[0].id
        )
    )
    if not affected_rows(result):
        raise NotFound(f"Voice not in collection: {str(voice_ref).strip()}")
    collection.updated_at = utcnow()
    session.flush()
    return _render(session, user_id, collection)
