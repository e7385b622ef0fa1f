"""Audio uploads as every family takes them: read with a byte limit, sniff the container from the
bytes (the client's type and name are never trusted), check it against the family's list. Each
family keeps its own wording and status through the parameters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

from fastapi import UploadFile

from app.audio import SNIFF_BYTES, read_limited_sync, sniff_container
from app.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia

# How long a name taken from a file name may be.
MAX_STEM_CHARS = 100


def read_upload(upload: UploadFile, max_bytes: int, *, param: str, too_large: str | None = None) -> bytes:
    """The upload's bytes; past `max_bytes` a 413 naming `param`, or a 400 with the message
    `too_large` where the family's contract says so."""
    try:
        return read_limited_sync(upload.file, max_bytes)
    except PayloadTooLarge as exc:
        if too_large is not None:
            raise InvalidInput(too_large, param=param) from exc
        raise PayloadTooLarge(exc.message, param=param, **exc.extra) from exc


def check_audio(
    data: bytes,
    *,
    param: str,
    allowed: frozenset[str],
    empty: str,
    unsupported: str,
    unsupported_error: type[InvalidInput] | type[UnsupportedMedia] = UnsupportedMedia,
    unrecognised: Callable[[bytes], bytes | None] | None = None,
) -> bytes:
    """`data` when it is audio in one of the `allowed` containers; else `empty` (400) or
    `unsupported` (as `unsupported_error`), naming `param`. `unrecognised` may turn bytes no
    container is recognised in into acceptable ones (voice.ai's headerless PCM), or return None."""
    if not data:
        raise InvalidInput(empty, param=param)
    try:
        container = sniff_container(data[:SNIFF_BYTES])
    except UnsupportedMedia as exc:
        converted = unrecognised(data) if unrecognised is not None else None
        if converted is not None:
            return converted
        raise unsupported_error(unsupported, param=param) from exc
    if container not in allowed:
        raise unsupported_error(unsupported, param=param)
    return data


def take_audio(
    upload: UploadFile,
    max_bytes: int,
    *,
    param: str,
    allowed: frozenset[str],
    empty: str,
    unsupported: str,
    unsupported_error: type[InvalidInput] | type[UnsupportedMedia] = UnsupportedMedia,
    too_large: str | None = None,
    unrecognised: Callable[[bytes], bytes | None] | None = None,
) -> bytes:
    """`read_upload` then `check_audio`."""
    data = read_upload(upload, max_bytes, param=param, too_large=too_large)
    return check_audio(
        data,
        param=param,
        allowed=allowed,
        empty=empty,
        unsupported=unsupported,
        unsupported_error=unsupported_error,
        unrecognised=unrecognised,
    )


def file_stem(filename: str | None) -> str:
    """A file name without folders or extension (Windows separators too), trimmed."""
    return PurePosixPath((filename or "").replace("\\", "/")).stem.strip()[:MAX_STEM_CHARS]


def default_title(given: str | None, filename: str | None, fallback: str) -> str:
    """The name a client gave, else the uploaded file's name without extension, else `fallback`."""
    return (given or "").strip() or file_stem(filename) or fallback
