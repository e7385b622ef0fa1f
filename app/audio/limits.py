"""Byte limits enforced while reading, so an oversized upload is refused before it is held."""

from __future__ import annotations

from typing import Any, BinaryIO, Protocol

from app.core.errors import PayloadTooLarge

CHUNK_BYTES = 256 * 1024


class AsyncReadable(Protocol):
    """What we need from Starlette's UploadFile (and anything shaped like it)."""

    async def read(self, size: int = -1) -> Any: ...


def _too_large(max_bytes: int) -> PayloadTooLarge:
    if max_bytes >= 1024 * 1024:
        human = f"{max_bytes / (1024 * 1024):g} MiB"
    elif max_bytes >= 1024:
        human = f"{max_bytes / 1024:g} KiB"
    else:
        human = f"{max_bytes} bytes"
    return PayloadTooLarge(f"File is larger than the limit of {human}", max_bytes=max_bytes)


async def read_limited(stream: AsyncReadable, max_bytes: int) -> bytes:
    """Read an UploadFile in chunks; raise PayloadTooLarge (413) once more than max_bytes arrive.

    At most max_bytes + 1 bytes are ever read, whatever the client claims in headers.
    """
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = await stream.read(min(CHUNK_BYTES, max_bytes + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(max_bytes)
        parts.append(bytes(chunk))
    return b"".join(parts)


def read_limited_sync(stream: BinaryIO, max_bytes: int) -> bytes:
    """Synchronous twin of `read_limited` for a binary file object."""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(CHUNK_BYTES, max_bytes + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(max_bytes)
        parts.append(bytes(chunk))
    return b"".join(parts)
