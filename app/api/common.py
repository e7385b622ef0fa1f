"""Small rendering helpers every family shares."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from app.core.config import Settings
from app.storage import BlobStore


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def download_url(request: Request, settings: Settings, store: BlobStore, key: str) -> str:
    """A signed, expiring link to a stored blob."""
    return store.url(key, expires_in=settings.signed_url_ttl_seconds, base_url=base_url(request))


class CamelModel(BaseModel):
    """A response shape whose keys are camelCase on the wire (the clone family's, the credits routes')."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
