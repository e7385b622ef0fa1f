"""Blobs as files under one directory, served through signed `/api/v1/files/{token}` links.

The embedded default: nothing to run besides the server. Writes are atomic (temp file in
the same directory, then os.replace) so a reader never sees half a file, and every path is
resolved and checked to stay under the root, symlinks included.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.core.errors import NotFound, Unauthorized, Unavailable
from app.core.security import sign_token, verify_token
from app.storage.base import (
    CHUNK_SIZE,
    content_type_for,
    validate_key,
    validate_prefix,
)

# Purpose bound into download tokens: a token minted for anything else is refused.
DOWNLOAD_PURPOSE = "download"
# Temp files carry `~`, a character no valid key has: they never collide with or pass for blobs.
_TEMP_PREFIX = ".~tmp-"


@dataclass(frozen=True)
class DownloadGrant:
    """What a valid download token allows: one key, served with this type and filename."""

    key: str
    content_type: str
    filename: str | None


class LocalStore:
    """BlobStore on the local filesystem."""

    def __init__(self, root: Path, secret: str) -> None:
        self.root = Path(root).resolve()
        self._secret = secret

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- paths -------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file for `key`; ValueError when the key is malformed or escapes the root."""
        validate_key(key)
        path = (self.root / key).resolve()
        if path == self.root or not path.is_relative_to(self.root):
            raise ValueError(f"Invalid storage key: {key!r}")
        return path

    def _temp_file(self, path: Path) -> tuple[int, str]:
        """A temp file next to `path` (same filesystem, so os.replace is atomic)."""
        for _attempt in range(3):
            path.parent.mkdir(parents=True, exist_ok=True)
            # The folder may be reached through a symlink created after _path's check.
            if not path.parent.resolve().is_relative_to(self.root):
                raise ValueError(f"Invalid storage path: {path}")
            try:
                return tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
            except FileNotFoundError:
                # A concurrent delete pruned the (then empty) folder; make it again.
                continue
        raise Unavailable(f"Cannot create a file in {path.parent}")

    def _file(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"Blob not found: {key}")
        return path

    # -- BlobStore ---------------------------------------------------------------------

    def put(self, key: str, data: bytes | BinaryIO, content_type: str) -> None:
        """Write atomically; the content type is not stored (it follows from the extension)."""
        path = self._path(key)
        fd, tmp_name = self._temp_file(path)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, CHUNK_SIZE)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._file(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFound(f"Blob not found: {key}") from exc

    def open(self, key: str) -> Iterator[bytes]:
        return self.open_with_size(key)[1]

    def open_with_size(self, key: str) -> tuple[int, Iterator[bytes]]:
        """Size and chunks of one and the same file, even if the key is replaced meanwhile."""
        try:
            handle = self._file(key).open("rb")
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFound(f"Blob not found: {key}") from exc
        size = os.fstat(handle.fileno()).st_size
        return size, _read_chunks(handle)

    def size(self, key: str) -> int:
        try:
            return self._file(key).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"Blob not found: {key}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            return
        self._prune_empty_dirs(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for key in self.iter_keys(prefix):
            path = self._path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            count += 1
            self._prune_empty_dirs(path.parent)
        return count

    def url(self, key: str, *, expires_in: int, base_url: str, filename: str | None = None) -> str:
        validate_key(key)
        token = sign_token(
            {"k": key, "ct": content_type_for(key), "fn": filename},
            purpose=DOWNLOAD_PURPOSE,
            ttl_seconds=expires_in,
            secret=self._secret,
        )
        return f"{base_url.rstrip('/')}/api/v1/files/{token}"

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"Blob storage directory {self.root} cannot be created: {exc}") from exc
        if not self.root.is_dir():
            raise Unavailable(f"Blob storage path {self.root} is not a directory")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise Unavailable(f"Blob storage directory {self.root} is not writable")

    # -- extras ------------------------------------------------------------------------

    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Keys starting with `prefix` (S3 string-prefix semantics), in no particular order."""
        validate_prefix(prefix)
        # Only the folder part of the prefix can be walked; the rest filters names.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / folder if folder else self.root
        start_resolved = start.resolve()
        if not start_resolved.is_relative_to(self.root) or not start_resolved.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(start_resolved):
            for name in filenames:
                if name.startswith(_TEMP_PREFIX) or os.path.islink(os.path.join(dirpath, name)):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def resolve_token(self, token: str) -> DownloadGrant:
        """The grant in a download token; NotFound when forged, expired or meant for another use
        (one error for all, so a caller learns nothing about which keys exist)."""
        try:
            claims = verify_token(token, DOWNLOAD_PURPOSE, self._secret)
            key = validate_key(claims["k"])
        except (Unauthorized, KeyError, ValueError, TypeError) as exc:
            raise NotFound("File not found or link expired") from exc
        content_type = claims.get("ct")
        filename = claims.get("fn")
        return DownloadGrant(
            key=key,
            content_type=content_type if isinstance(content_type, str) else content_type_for(key),
            filename=filename if isinstance(filename, str) and filename else None,
        )

    def _prune_empty_dirs(self, directory: Path) -> None:
        """Remove now-empty folders up to (not including) the root, so deletes leave no litter."""
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent


def _read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk
