"""Native family: voice collections (/api/v1/voice/collections). Routes only translate;
the rules (ownership, readable voices, ordering) live in app.voices.collections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints

from app.api.common import iso
from app.api.deps import CurrentUser, SessionDep
from app.api.families import NATIVE, FamilyRouter
from app.api.native.schemas import Collection, CollectionList
from app.voices import collections as service

router = FamilyRouter(family=NATIVE, prefix="/api/v1/voice", tags=["native"])

MAX_PAGE = 100

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
VoiceRef = Annotated[StrictStr | StrictInt, Field(description="integer id, uuid or voice_id")]
Description = Annotated[str, StringConstraints(max_length=5000)]
CollectionRef = Annotated[str, Path(max_length=100)]
VoicePathRef = Annotated[str, Path(max_length=100)]


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description | None = None
    voice_ids: list[VoiceRef] = Field(default_factory=list, max_length=100)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    is_public: bool = False


class CollectionUpdate(BaseModel):
    """PATCH body: only the fields sent change. `description: null` clears it; the other
    fields may be left out but not set to null (the service refuses that with a 400)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    is_public: bool | None = None


class CollectionVoicesAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice_ids: list[VoiceRef] = Field(min_length=1, max_length=100)


def native_collection(view: service.CollectionView) -> dict[str, Any]:
    return {
        "collection_id": view.collection_id,
        "name": view.name,
        "description": view.description,
        "voice_ids": list(view.voice_ids),
        "tags": list(view.tags),
        "is_public": view.is_public,
        "created_at": iso(view.created_at),
        "updated_at": iso(view.updated_at),
    }


@router.post("/collections", status_code=201, response_model=Collection)
def create_collection(body: CollectionCreate, principal: CurrentUser, session: SessionDep) -> dict[str, Any]:
    view = service.create_collection(
        session,
        principal.user_id,
        name=body.name,
        description=body.description,
        voice_refs=body.voice_ids,
        tags=body.tags,
        is_public=body.is_public,
    )
    return native_collection(view)


@router.get("/collections", response_model=CollectionList)
def list_collections(
    principal: CurrentUser,
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    rows, total = service.list_collections(session, principal.user_id, skip=skip, limit=limit)
    return {
        "collections": [native_collection(v) for v in rows],
        "total": total,
        "hasMore": skip + len(rows) < total,
    }


@router.get("/collections/{collection_id}", response_model=Collection)
def get_collection(
    collection_id: CollectionRef, principal: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    return native_collection(service.get_collection(session, principal.user_id, collection_id))


@router.patch("/collections/{collection_id}", response_model=Collection)
def update_collection(
    collection_id: CollectionRef, body: CollectionUpdate, principal: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return native_collection(service.update_collection(session, principal.user_id, collection_id, changes))


@router.delete("/collections/{collection_id}", status_code=204)
def delete_collection(collection_id: CollectionRef, principal: CurrentUser, session: SessionDep) -> Response:
    service.delete_collection(session, principal.user_id, collection_id)
    return Response(status_code=204)


@router.post("/collections/{collection_id}/voices", response_model=Collection)
def add_collection_voices(
    collection_id: CollectionRef, body: CollectionVoicesAdd, principal: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    view = service.add_voices(session, principal.user_id, collection_id, body.voice_ids)
    return native_collection(view)


@router.delete("/collections/{collection_id}/voices/{voice}", response_model=Collection)
def remove_collection_voice(
    collection_id: CollectionRef, voice: VoicePathRef, principal: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    return native_collection(service.remove_voice(session, principal.user_id, collection_id, voice))
