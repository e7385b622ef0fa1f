"""The blob store interface shared by the local-disk and S3 backends, and the rules on keys.

Keys are always built by the server (e.g. ``clones/42/sample.wav``), never taken from a
client, but every store validates them anyway so that a bug upstream cannot turn into a
path traversal on disk or a write outside the server's key space in a bucket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import quote

# Bytes per chunk when streaming a blob out.
CHUNK_SIZE = 64 * 1024

_KEY_RE = re.compile(r"[a-z0-9][a-z0-9/_.-]{0,255}")

# Content types by extension (LocalStore has no metadata store; the key's extension is it).
_CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
    "webm": "audio/webm",
    "m4a": "audio/mp4",
    "json": "application/json",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def _check_shape(value: str, what: str) -> None:
    # fullmatch, not `$`: `$` would accept a trailing newline.
    if not isinstance(value, str) or not _KEY_RE.fullmatch(value):
        raise ValueError(f"Invalid storage {what}: {value!r}")
    if ".." in value or "//" in value:
        raise ValueError(f"Invalid storage {what}: {value!r}")
    if any(segment == "." for segment in value.split("/")):
        raise ValueError(f"Invalid storage {what}: {value!r}")


def validate_key(key: str) -> str:
    """Return `key` unchanged when it is a well-formed object key; raise ValueError otherwise.

    Accepted: ``^[a-z0-9][a-z0-9/_.-]{0,255}$`` with no ``..``, no ``//``, no ``.`` segment
    and no trailing ``/`` (a key names an object, not a folder).
    """
    _check_shape(key, "key")
    if key.endswith("/"):
        raise ValueError(f"Invalid storage key: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Like validate_key, but a trailing ``/`` is allowed; an empty prefix is refused so that
    a bug cannot wipe the whole store."""
    _check_shape(prefix, "prefix")
    return prefix


def content_type_for(key: str) -> str:
    """Content type derived from the key's extension (application/octet-stream when unknown)."""
    name = key.rsplit("/", 1)[-1]
    if "." not in name:
        return DEFAULT_CONTENT_TYPE
    return _CONTENT_TYPES.get(name.rsplit(".", 1)[-1].lower(), DEFAULT_CONTENT_TYPE)


def content_disposition(filename: str) -> str:
    """An `attachment` Content-Disposition that is safe for any filename.

    The plain `filename` is reduced to printable ASCII without quotes or backslashes (no
    header injection, no broken quoting); the exact name travels in RFC 5987 `filename*`.
    """
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in filename)
    fallback = fallback.strip() or "download"
    encoded = quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


@runtime_checkable
class BlobStore(Protocol):
    """Where generated audio, uploads and other blobs live; one instance per process."""

    def put(self, key: str, data: bytes | BinaryIO, content_type: str) -> None:
        """Store `data` under `key`, replacing any previous blob atomically."""
        ...

    def get(self, key: str) -> bytes:
        """The whole blob; NotFound when missing."""
        ...

    def open(self, key: str) -> Iterator[bytes]:
        """The blob in chunks, for streaming; NotFound is raised by this call, not mid-stream."""
        ...

    def size(self, key: str) -> int:
        """Size in bytes; NotFound when missing."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing key is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob whose key starts with `prefix` (a string prefix, as in S3: end
        it with ``/`` to mean a folder); returns how many were removed."""
        ...

    def url(self, key: str, *, expires_in: int, base_url: str, filename: str | None = None) -> str:
        """A download URL valid for `expires_in` seconds; `filename` makes it an attachment."""
        ...

    def check(self) -> None:
        """Raise Unavailable with a clear message when the backend cannot be used (/ready)."""
        ...
