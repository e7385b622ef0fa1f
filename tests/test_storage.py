"""Blob stores: one contract for LocalStore and S3Store (real SeaweedFS), then each one's own
promises (atomic local writes, path containment, signed local links, S3 public endpoint)."""

from __future__ import annotations

import io
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import files
from app.core.config import Settings, get_settings
from app.core.errors import NotFound, Unavailable
from app.core.security import sign_token
from app.storage import BlobStore, LocalStore, S3Store, create_store, get_store, reset_store_cache
from app.storage.base import CHUNK_SIZE, content_disposition, content_type_for, validate_key
from tests.plugins.seaweedfs import S3Server, _drop_bucket

SECRET = "storage-test-secret-0123456789abcdef"
BASE_URL = "http://testserver"

Fetch = Callable[[str], httpx.Response]


# -- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalStore(tmp_path / "blobs", SECRET)
    return request.getfixturevalue("s3_store")


def _files_app(store: BlobStore) -> TestClient:
    """The real download router in a tiny app, with `store` as the process store."""
    app = FastAPI()
    app.include_router(files.router)
    app.dependency_overrides[files.download_store] = lambda: store
    return TestClient(app, base_url=BASE_URL)


@pytest.fixture
def fetch(store: BlobStore) -> Iterator[Fetch]:
    """GET a URL from store.url(): through the files route for LocalStore, from the S3
    server itself for S3Store."""
    if isinstance(store, LocalStore):
        with _files_app(store) as client:
            yield client.get
    else:
        with httpx.Client(timeout=30) as client:
            yield client.get


def stored_paths(store: BlobStore) -> set[str]:
    """Everything the store holds, seen from outside its API (for 'nothing was written')."""
    if isinstance(store, LocalStore):
        # From the root's parent: a write escaping the root would show up too.
        outside = store.root.parent
        return {p.relative_to(outside).as_posix() for p in outside.rglob("*") if not p.is_dir()}
    assert isinstance(store, S3Store)
    response = store._client.list_objects_v2(Bucket=store.bucket)
    return {item["Key"] for item in response.get("Contents", [])}


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


class NonSeekable(io.RawIOBase):
    """A pipe-like reader: read() only, no seek/tell, short reads."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._data = data
        self._pos = 0
        self._fail_after = fail_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise OSError("reader broke")
        n = min(len(buffer), 10_000, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- key rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a", "clones/42/sample-1_x.wav", "x" * 256, "a.b/c.d/e"])
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../x",
        "a/../b",
        "a/..",
        "/abs",
        "a//b",
        "A B",
        "Upper",
        "a\n",
        "x/",
        "./a",
        "a/./b",
        "x" * 257,
        "a\\b",
        "é",
        ".hidden",
    ],
)
def test_invalid_keys_rejected(key: str) -> None:
    with pytest.raises(ValueError):
        validate_key(key)


def test_content_types_follow_extension() -> None:
    assert content_type_for("a/b.mp3") == "audio/mpeg"
    assert content_type_for("a/b.WAV") == "audio/wav"
    assert content_type_for("a/b.opus") == "audio/ogg"
    assert content_type_for("a/b.m4a") == "audio/mp4"
    assert content_type_for("a/b.json") == "application/json"
    assert content_type_for("a/b") == "application/octet-stream"
    assert content_type_for("a.mp3/b") == "application/octet-stream"


def test_content_disposition_cannot_inject_headers() -> None:
    value = content_disposition('evil"\r\nSet-Cookie: x=1 é.mp3')
    assert "\r" not in value and "\n" not in value
    assert value.startswith('attachment; filename="evil_')
    assert "filename*=UTF-8''evil%22%0D%0ASet-Cookie%3A%20x%3D1%20%C3%A9.mp3" in value


# -- the contract, for both stores -------------------------------------------------------


def test_put_get_exists_size_roundtrip(store: BlobStore) -> None:
    assert not store.exists("voices/1/sample.wav")
    store.put("voices/1/sample.wav", b"RIFF-data", "audio/wav")
    assert store.exists("voices/1/sample.wav")
    assert store.get("voices/1/sample.wav") == b"RIFF-data"
    assert store.size("voices/1/sample.wav") == 9
    # Overwrite replaces the whole blob.
    store.put("voices/1/sample.wav", b"new", "audio/wav")
    assert store.get("voices/1/sample.wav") == b"new"
    assert store.size("voices/1/sample.wav") == 3
    # A folder-like prefix is not a blob.
    assert not store.exists("voices/1")


def test_empty_blob(store: BlobStore) -> None:
    store.put("empty.json", b"", "application/json")
    assert store.exists("empty.json")
    assert store.get("empty.json") == b""
    assert store.size("empty.json") == 0
    assert b"".join(store.open("empty.json")) == b""


def test_put_from_file_like_objects(store: BlobStore, tmp_path: Path) -> None:
    data = random_bytes(300_000)
    store.put("in/bytesio.pcm", io.BytesIO(data), "audio/pcm")
    assert store.get("in/bytesio.pcm") == data

    path = tmp_path / "upload.bin"
    path.write_bytes(data[::-1])
    with path.open("rb") as f:
        store.put("in/file.pcm", f, "audio/pcm")
    assert store.get("in/file.pcm") == data[::-1]

    # Not seekable and larger than one S3 multipart part (8 MiB): streamed, not buffered whole.
    big = random_bytes(9 * 1024 * 1024 + 17)
    store.put("in/pipe.pcm", NonSeekable(big), "audio/pcm")  # type: ignore[arg-type]
    assert store.size("in/pipe.pcm") == len(big)
    assert store.get("in/pipe.pcm") == big


def test_open_streams_in_chunks(store: BlobStore) -> None:
    data = random_bytes(5 * CHUNK_SIZE + 123)
    store.put("stream/a.flac", data, "audio/flac")
    chunks = list(store.open("stream/a.flac"))
    assert len(chunks) > 1
    assert all(0 < len(c) <= CHUNK_SIZE for c in chunks)
    assert b"".join(chunks) == data


def test_missing_blob(store: BlobStore) -> None:
    store.put("present/x.wav", b"x", "audio/wav")
    with pytest.raises(NotFound):
        store.get("present/missing.wav")
    with pytest.raises(NotFound):
        store.open("present/missing.wav")  # raised by the call, before any streaming
    with pytest.raises(NotFound):
        store.size("present/missing.wav")
    with pytest.raises(NotFound):
        store.get("present")  # a "folder" is not a blob
    assert not store.exists("present/missing.wav")


def test_delete_is_idempotent(store: BlobStore) -> None:
    store.put("d/one.wav", b"1", "audio/wav")
    store.put("d/two.wav", b"2", "audio/wav")
    store.delete("d/one.wav")
    assert not store.exists("d/one.wav")
    assert store.exists("d/two.wav")
    store.delete("d/one.wav")
    store.delete("never/existed.wav")
    with pytest.raises(NotFound):
        store.get("d/one.wav")


def test_delete_prefix(store: BlobStore) -> None:
    keys = ["u/1/a.wav", "u/1/b/c.mp3", "u/12/x.wav", "u/2/y.wav", "u/1.json"]
    for key in keys:
        store.put(key, key.encode(), "application/octet-stream")
    assert store.delete_prefix("u/1/") == 2
    assert [k for k in keys if store.exists(k)] == ["u/12/x.wav", "u/2/y.wav", "u/1.json"]
    # A string prefix, as in S3: "u/1" also matches u/12/... and u/1.json.
    assert store.delete_prefix("u/1") == 2
    assert [k for k in keys if store.exists(k)] == ["u/2/y.wav"]
    assert store.delete_prefix("u/1/") == 0
    assert store.delete_prefix("nothing/") == 0
    assert store.get("u/2/y.wav") == b"u/2/y.wav"


def test_delete_prefix_many(store: BlobStore) -> None:
    for i in range(30):
        store.put(f"many/{i:03d}.wav", b"x", "audio/wav")
    store.put("manyother.wav", b"keep", "audio/wav")
    assert store.delete_prefix("many/") == 30
    assert stored_paths(store) == (
        {"blobs/manyother.wav"} if isinstance(store, LocalStore) else {"manyother.wav"}
    )


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "A B", "", "a/../../x", "x/", "a\n"])
def test_invalid_keys_write_nothing(store: BlobStore, key: str) -> None:
    before = stored_paths(store)
    with pytest.raises(ValueError):
        store.put(key, b"data", "audio/wav")
    with pytest.raises(ValueError):
        store.put(key, io.BytesIO(b"data"), "audio/wav")
    for op in (store.get, store.open, store.size, store.exists, store.delete):
        with pytest.raises(ValueError):
            op(key)
    with pytest.raises(ValueError):
        store.url(key, expires_in=60, base_url=BASE_URL)
    assert stored_paths(store) == before


@pytest.mark.parametrize("prefix", ["", "../", "/", "a//", "A/"])
def test_invalid_prefix_deletes_nothing(store: BlobStore, prefix: str) -> None:
    store.put("keep/me.wav", b"x", "audio/wav")
    with pytest.raises(ValueError):
        store.delete_prefix(prefix)
    assert store.exists("keep/me.wav")


def test_failed_put_keeps_previous_blob(store: BlobStore) -> None:
    store.put("atomic/a.wav", b"old content", "audio/wav")
    with pytest.raises(OSError, match="reader broke"):
        store.put("atomic/a.wav", NonSeekable(random_bytes(100_000), fail_after=20_000), "audio/wav")  # type: ignore[arg-type]
    assert store.get("atomic/a.wav") == b"old content"
    with pytest.raises(OSError, match="reader broke"):
        store.put("atomic/new.wav", NonSeekable(random_bytes(100_000), fail_after=20_000), "audio/wav")  # type: ignore[arg-type]
    assert not store.exists("atomic/new.wav")


def test_url_downloads_same_bytes(store: BlobStore, fetch: Fetch) -> None:
    data = random_bytes(3 * CHUNK_SIZE + 5)
    store.put("tts/out.mp3", data, "audio/mpeg")
    response = fetch(store.url("tts/out.mp3", expires_in=60, base_url=BASE_URL))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-length"] == str(len(data))
    assert "content-disposition" not in response.headers


def test_url_with_filename_is_an_attachment(store: BlobStore, fetch: Fetch) -> None:
    store.put("tts/out.wav", b"RIFFxxxxWAVE", "audio/wav")
    filename = 'Grüße "demo" take 1.wav'
    response = fetch(store.url("tts/out.wav", expires_in=60, base_url=BASE_URL, filename=filename))
    assert response.status_code == 200
    assert response.content == b"RIFFxxxxWAVE"
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["content-disposition"] == content_disposition(filename)
    assert (
        "filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22demo%22%20take%201.wav"
        in response.headers["content-disposition"]
    )


def test_url_expires(store: BlobStore, fetch: Fetch) -> None:
    store.put("tts/short.mp3", b"EXPIRED-CONTENT", "audio/mpeg")
    url = store.url("tts/short.mp3", expires_in=1, base_url=BASE_URL)
    time.sleep(2.2)
    response = fetch(url)
    if isinstance(store, LocalStore):
        assert response.status_code == 404
        assert response.json() == {"detail": files.NOT_FOUND_DETAIL}
    else:
        assert response.status_code == 403
    assert b"EXPIRED-CONTENT" not in response.content


def test_url_cannot_be_redirected_to_another_key(store: BlobStore, fetch: Fetch) -> None:
    store.put("users/1/mine.mp3", b"mine", "audio/mpeg")
    store.put("users/2/theirs.mp3", b"PRIVATE-AUDIO", "audio/mpeg")
    url = store.url("users/1/mine.mp3", expires_in=60, base_url=BASE_URL)
    if isinstance(store, LocalStore):
        # Re-point the token's payload at another key, keeping the old signature.
        header, _payload, signature = urlsplit(url).path.rsplit("/", 1)[1].split(".")
        other = sign_token({"k": "users/2/theirs.mp3", "ct": None, "fn": None}, "download", 60, "x" * 32)
        forged = f"{BASE_URL}/api/v1/files/{header}.{other.split('.')[1]}.{signature}"
        expected = 404
    else:
        forged = url.replace("/users/1/mine.mp3", "/users/2/theirs.mp3")
        expected = 403
    assert forged != url
    response = fetch(forged)
    assert response.status_code == expected
    assert b"PRIVATE-AUDIO" not in response.content
    assert fetch(url).content == b"mine"


# -- LocalStore and the files route ------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "blobs", SECRET)


def test_local_url_shape(local: LocalStore) -> None:
    local.put("a/b.mp3", b"x", "audio/mpeg")
    url = local.url("a/b.mp3", expires_in=60, base_url="https://voice.example.com/")
    assert url.startswith("https://voice.example.com/api/v1/files/")
    token = url.rsplit("/", 1)[1]
    # The key is signed, not encrypted, but never appears as a path the client could edit.
    assert "a/b.mp3" not in url
    assert local.resolve_token(token).key == "a/b.mp3"


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: "not-a-token", id="garbage"),
        pytest.param(
            lambda: sign_token({"k": "a/b.mp3"}, "download", 60, "another-secret-" * 3), id="other-secret"
        ),
        pytest.param(lambda: sign_token({"k": "a/b.mp3"}, "password-reset", 60, SECRET), id="other-purpose"),
        pytest.param(lambda: sign_token({"k": "../secret_key"}, "download", 60, SECRET), id="bad-key"),
        pytest.param(lambda: sign_token({"key": "a/b.mp3"}, "download", 60, SECRET), id="no-key"),
        pytest.param(lambda: sign_token({"k": "a/b.mp3"}, "download", -10, SECRET), id="expired"),
    ],
)
def test_files_route_refuses_bad_tokens(local: LocalStore, make_token: Callable[[], str]) -> None:
    local.put("a/b.mp3", b"secret audio", "audio/mpeg")
    with _files_app(local) as client:
        response = client.get(f"/api/v1/files/{make_token()}")
    assert response.status_code == 404
    assert response.json() == {"detail": files.NOT_FOUND_DETAIL}


def test_files_route_missing_blob_looks_like_bad_token(local: LocalStore) -> None:
    """A valid link to a deleted blob answers exactly like a forged one."""
    local.put("a/gone.mp3", b"x", "audio/mpeg")
    url = local.url("a/gone.mp3", expires_in=60, base_url=BASE_URL)
    local.delete("a/gone.mp3")
    with _files_app(local) as client:
        missing = client.get(url)
        forged = client.get(url[:-3] + "AAA")
    assert missing.status_code == forged.status_code == 404
    assert missing.json() == forged.json() == {"detail": files.NOT_FOUND_DETAIL}


def test_files_route_headers(local: LocalStore) -> None:
    local.put("x/report.json", b'{"a": 1}', "application/json")
    with _files_app(local) as client:
        response = client.get(local.url("x/report.json", expires_in=60, base_url=BASE_URL, filename="r.json"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == "8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == content_disposition("r.json")


def test_files_route_is_404_for_s3_deployments(tmp_path: Path) -> None:
    s3 = S3Store(
        "some-bucket", endpoint_url=f"http://127.0.0.1:{_closed_port()}", access_key="k", secret_key="s"
    )
    token = sign_token({"k": "a/b.mp3"}, "download", 60, SECRET)
    with _files_app(s3) as client:
        response = client.get(f"/api/v1/files/{token}")
    assert response.status_code == 404


def test_local_write_is_atomic_and_leaves_no_temp_files(local: LocalStore) -> None:
    local.put("v/a.wav", b"first version", "audio/wav")
    size, chunks = local.open_with_size("v/a.wav")
    # Replaced while a download is in progress: the download still gets the old file whole.
    local.put("v/a.wav", b"second, longer version", "audio/wav")
    assert (size, b"".join(chunks)) == (13, b"first version")
    assert local.get("v/a.wav") == b"second, longer version"
    assert sorted(p.name for p in (local.root / "v").iterdir()) == ["a.wav"]
    with pytest.raises(OSError):
        local.put("v/a.wav", NonSeekable(b"z" * 50_000, fail_after=10_000), "audio/wav")  # type: ignore[arg-type]
    assert sorted(p.name for p in (local.root / "v").iterdir()) == ["a.wav"]


def test_local_symlink_cannot_escape_root(local: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"do not serve")
    local.root.mkdir(parents=True)
    (local.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError):
        local.get("link/secret.txt")
    with pytest.raises(ValueError):
        local.put("link/new.wav", b"x", "audio/wav")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    url = local.url("link/secret.txt", expires_in=60, base_url=BASE_URL)
    with _files_app(local) as client:
        assert client.get(url).status_code == 404


def test_local_delete_prunes_empty_folders(local: LocalStore) -> None:
    local.put("users/7/voices/1/a.wav", b"x", "audio/wav")
    local.put("users/7/b.wav", b"x", "audio/wav")
    local.delete("users/7/voices/1/a.wav")
    assert not (local.root / "users/7/voices").exists()
    assert local.delete_prefix("users/7/") == 1
    assert list(local.root.iterdir()) == []


def test_local_check(tmp_path: Path) -> None:
    LocalStore(tmp_path / "new" / "blobs", SECRET).check()
    assert (tmp_path / "new" / "blobs").is_dir()
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(Unavailable, match="a-file"):
        LocalStore(tmp_path / "a-file", SECRET).check()


# -- S3Store -----------------------------------------------------------------------------


@pytest.mark.integration
def test_s3_public_url_is_presigned_for_the_public_host(s3_server: S3Server, s3_store: S3Store) -> None:
    s3_store.put("pub/a.mp3", b"public bytes", "audio/mpeg")
    public = s3_server.store(s3_store.bucket, public_url=f"http://localhost:{s3_server.port}")
    url = public.url("pub/a.mp3", expires_in=60, base_url=BASE_URL, filename="a.mp3")
    parts = urlsplit(url)
    assert (parts.hostname, parts.port) == ("localhost", s3_server.port)
    assert parts.path == f"/{s3_store.bucket}/pub/a.mp3"  # path-style addressing
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"public bytes"
    # The signature covers the host: rewriting it afterwards (what a naive proxy setup
    # would do) breaks the URL, which is why the public endpoint must be configured.
    rewritten = url.replace("//localhost:", "//127.0.0.1:")
    assert httpx.get(rewritten).status_code == 403
    # Without a public URL, the internal endpoint is used.
    assert urlsplit(s3_store.url("pub/a.mp3", expires_in=60, base_url=BASE_URL)).hostname == "127.0.0.1"


@pytest.mark.integration
def test_s3_creates_missing_bucket(s3_server: S3Server) -> None:
    for first_call in ("put", "check"):
        store = s3_server.store(f"auto-{uuid.uuid4().hex[:16]}")
        try:
            if first_call == "put":
                store.put("a.wav", b"x", "audio/wav")
            else:
                store.check()
                store.put("a.wav", b"x", "audio/wav")
            assert store.get("a.wav") == b"x"
        finally:
            _drop_bucket(store)


@pytest.mark.integration
def test_s3_check_passes_when_reachable(s3_store: S3Store) -> None:
    s3_store.check()


def test_s3_check_unavailable_on_closed_port() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    store = S3Store("chorus", endpoint_url=endpoint, access_key="k", secret_key="s")
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"127\.0\.0\.1"):
        store.check()
    assert time.monotonic() - started < 10
    with pytest.raises(Unavailable):
        store.get("a.wav")


@pytest.mark.integration
def test_s3_wrong_credentials_are_unavailable(s3_server: S3Server, s3_store: S3Store) -> None:
    bad = S3Store(
        s3_store.bucket,
        endpoint_url=s3_server.endpoint_url,
        access_key=s3_server.access_key,
        secret_key="wrong",
    )
    with pytest.raises(Unavailable):
        bad.check()


# -- factory and per-process cache -------------------------------------------------------


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith("CHORUS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CHORUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHORUS_SECRET_KEY", SECRET)
    get_settings.cache_clear()
    reset_store_cache()
    yield monkeypatch
    get_settings.cache_clear()
    reset_store_cache()


def test_create_store_default_is_local(clean_settings: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store = create_store(get_settings())
    assert isinstance(store, LocalStore)
    assert store.root == (tmp_path / "data" / "blobs").resolve()
    store.put("a.mp3", b"x", "audio/mpeg")
    token = store.url("a.mp3", expires_in=60, base_url=BASE_URL).rsplit("/", 1)[1]
    assert store.resolve_token(token).key == "a.mp3"  # signed with the configured secret


def test_create_store_s3(clean_settings: pytest.MonkeyPatch) -> None:
    clean_settings.setenv("CHORUS_STORAGE_URL", "s3://chorus-audio")
    clean_settings.setenv("CHORUS_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    clean_settings.setenv("CHORUS_S3_PUBLIC_URL", "https://files.example.com")
    clean_settings.setenv("CHORUS_S3_ACCESS_KEY_ID", "AK")
    clean_settings.setenv("CHORUS_S3_SECRET_ACCESS_KEY", "SK")
    store = create_store(get_settings())
    assert isinstance(store, S3Store)
    assert (store.bucket, store.endpoint_url, store.public_url) == (
        "chorus-audio",
        "http://127.0.0.1:9000",
        "https://files.example.com",
    )
    assert store.url("a.mp3", expires_in=60, base_url=BASE_URL).startswith(
        "https://files.example.com/chorus-audio/a.mp3?"
    )


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "s3://", "s3://bucket/sub/path", "file://host/abs", "redis://x", "blobs"]
)
def test_create_store_rejects_other_urls(clean_settings: pytest.MonkeyPatch, url: str) -> None:
    clean_settings.setenv("CHORUS_STORAGE_URL", url)
    with pytest.raises(ValueError):
        create_store(get_settings())


def test_get_store_is_cached_per_process(clean_settings: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first = get_store()
    assert get_store() is first
    clean_settings.setenv("CHORUS_STORAGE_URL", f"file://{tmp_path / 'elsewhere'}")
    assert get_store() is first  # settings are read once
    get_settings.cache_clear()
    reset_store_cache()
    second = get_store()
    assert second is not first
    assert isinstance(second, LocalStore) and second.root == (tmp_path / "elsewhere").resolve()


def test_get_store_per_settings(clean_settings: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a = Settings(data_dir=tmp_path / "a", secret_key=SECRET)
    a_again = Settings(data_dir=tmp_path / "a", secret_key=SECRET)
    b = Settings(data_dir=tmp_path / "b", secret_key=SECRET)
    other_secret = Settings(data_dir=tmp_path / "a", secret_key="another-secret-0123456789abcdef0123456789")
    assert get_store(a) is get_store(a_again)
    assert get_store(a) is not get_store(b)
    assert get_store(a) is not get_store(other_secret)  # links must be signed with the right key
    first = get_store(a)
    reset_store_cache()
    assert get_store(a) is not first


def test_files_route_uses_the_apps_settings(clean_settings: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Mounted in an app created with explicit settings, the route serves that app's store."""
    settings = Settings(data_dir=tmp_path / "app-data", secret_key="app-secret-0123456789abcdef0123456789")
    store = get_store(settings)
    store.put("tts/a.mp3", b"app audio", "audio/mpeg")
    app = FastAPI()
    app.state.settings = settings
    app.include_router(files.router)
    with TestClient(app, base_url=BASE_URL) as client:
        response = client.get(store.url("tts/a.mp3", expires_in=60, base_url=BASE_URL))
    assert response.status_code == 200
    assert response.content == b"app audio"
    assert (tmp_path / "app-data" / "blobs" / "tts" / "a.mp3").read_bytes() == b"app audio"
