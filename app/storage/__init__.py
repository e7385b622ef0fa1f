"""Blob storage: pick the backend from CHORUS_STORAGE_URL (file:///path or s3://bucket)."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from app.core.config import Settings, get_settings
from app.storage.base import BlobStore, content_type_for, validate_key, validate_prefix
from app.storage.local import LocalStore
from app.storage.s3 import S3Store

__all__ = [
    "BlobStore",
    "LocalStore",
    "S3Store",
    "content_type_for",
    "create_store",
    "existing_store",
    "get_store",
    "reset_store_cache",
    "validate_key",
    "validate_prefix",
]


def create_store(settings: Settings) -> BlobStore:
    """A new store for `settings.resolved_storage_url`; ValueError for an unusable URL."""
    url = settings.resolved_storage_url
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"Storage URL {url!r} must be file:///absolute/path")
        return LocalStore(Path(unquote(parts.path)), settings.secret)
    if parts.scheme == "s3":
        if not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"Storage URL {url!r} must be s3://bucket")
        secret_key = settings.s3_secret_access_key
        return S3Store(
            bucket=parts.netloc,
            endpoint_url=settings.s3_endpoint_url,
            public_url=settings.s3_public_url,
            access_key=settings.s3_access_key_id,
            secret_key=secret_key.get_secret_value() if secret_key is not None else None,
            region=settings.s3_region,
        )
    raise ValueError(f"Unsupported storage URL {url!r}: use file:///path or s3://bucket")


_stores: dict[tuple[str | None, ...], BlobStore] = {}
_stores_lock = threading.Lock()


def _cache_key(settings: Settings) -> tuple[str | None, ...]:
    """Everything create_store reads: two settings that agree on it share one store."""
    url = settings.resolved_storage_url
    # The signing secret only matters (and is only read) for local storage.
    secret = settings.secret if url.startswith("file:") else None
    return (
        url,
        secret,
        settings.s3_endpoint_url,
        settings.s3_public_url,
        settings.s3_access_key_id,
        settings.s3_region,
    )


def get_store(settings: Settings | None = None) -> BlobStore:
    """The process-wide store for these settings (default: get_settings()), created once so
    clients and connection pools are reused."""
    settings = settings or get_settings()
    key = _cache_key(settings)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = create_store(settings)
        return store


def existing_store(settings: Settings) -> BlobStore | None:
    """The store get_store made for these settings, if any; never creates one (creating an S3
    client takes ~0.1 s of CPU, too long for an event loop to wait)."""
    with _stores_lock:
        return _stores.get(_cache_key(settings))


def reset_store_cache() -> None:
    """Forget cached stores (tests that change settings)."""
    with _stores_lock:
        _stores.clear()
