"""Blobs in an S3-compatible bucket (AWS, SeaweedFS, MinIO, R2...), downloaded via presigned URLs.

Path-style addressing everywhere: S3-compatible servers rarely have wildcard DNS for
virtual-hosted buckets. Downloads never pass through this server: clients get a presigned
GET, signed for the public endpoint when one is configured (the signature covers the host,
so rewriting the host of a URL signed for the internal endpoint would break it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.core.errors import NotFound, Unavailable
from app.storage.base import CHUNK_SIZE, content_disposition, validate_key, validate_prefix

# SigV4 presigned URLs cannot outlive a week.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# Error codes S3 servers use for "no such object/bucket" (HEAD answers carry only the status).
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_ALREADY_THERE = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}
_DELETE_BATCH = 1000


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


class S3Store:
    """BlobStore on an S3 bucket; the bucket is created on first use when missing."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        public_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        if not bucket:
            raise ValueError("S3 bucket name is empty")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.public_url = public_url
        self.region = region
        self._credentials = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
        # Checksums only when an operation demands them: many S3-compatible servers reject
        # the aws-chunked trailing checksums newer botocore sends by default.
        base = {
            "signature_version": "s3v4",
            "s3": {"addressing_style": "path"},
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
        self._client: Any = self._make_client(
            endpoint_url,
            Config(
                **base, connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
            ),
        )
        # /ready must answer quickly even when the server is a black hole.
        self._check_client: Any = self._make_client(
            endpoint_url,
            Config(**base, connect_timeout=3, read_timeout=3, retries={"total_max_attempts": 1}),
        )
        self._presign_client: Any = (
            self._make_client(public_url, Config(**base)) if public_url else self._client
        )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    def _make_client(self, endpoint_url: str | None, config: Config) -> Any:
        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=self.region, config=config, **self._credentials
        )

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """Missing objects become NotFound; an unreachable or failing server becomes Unavailable."""
        try:
            yield
        except ClientError as exc:
            if key is not None and _code(exc) in _MISSING:
                raise NotFound(f"Blob not found: {key}") from exc
            if _status(exc) >= 500 or _status(exc) in (401, 403):
                raise Unavailable(f"S3 storage error ({_code(exc)}): {exc}") from exc
            raise
        except BotoCoreError as exc:
            raise Unavailable(f"S3 storage at {self.endpoint_url or 'AWS'} unreachable: {exc}") from exc

    # -- bucket --------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet (once per store; safe to call often)."""
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            with self._errors():
                self._ensure_with(self._client)
            self._bucket_ready = True

    def _ensure_with(self, client: Any) -> None:
        try:
            client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            client.create_bucket(**kwargs)
        except ClientError as exc:
            # Another process won the race to create it.
            if _code(exc) not in _ALREADY_THERE:
                raise

    # -- BlobStore -----------------------------------------------------------------------

    def put(self, key: str, data: bytes | BinaryIO, content_type: str) -> None:
        validate_key(key)
        self.ensure_bucket()
        with self._errors():
            if isinstance(data, bytes | bytearray | memoryview):
                self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=bytes(data), ContentType=content_type
                )
            else:
                # Streams (multipart above 8 MiB) without reading everything into memory.
                self._client.upload_fileobj(data, self.bucket, key, ExtraArgs={"ContentType": content_type})

    def get(self, key: str) -> bytes:
        validate_key(key)
        self.ensure_bucket()
        with self._errors(key):
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def open(self, key: str) -> Iterator[bytes]:
        validate_key(key)
        self.ensure_bucket()
        with self._errors(key):
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
        return _stream(body)

    def size(self, key: str) -> int:
        validate_key(key)
        self.ensure_bucket()
        with self._errors(key):
            return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        self.ensure_bucket()
        with self._errors():
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        self.ensure_bucket()
        count = 0
        batch: list[str] = []
        for key in self.iter_keys(prefix):
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                count += self._delete_batch(batch)
                batch = []
        if batch:
            count += self._delete_batch(batch)
        return count

    def url(self, key: str, *, expires_in: int, base_url: str, filename: str | None = None) -> str:
        """Presigned GET; `base_url` is not used (the URL points at the bucket, not at us)."""
        validate_key(key)
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        return str(
            self._presign_client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=max(1, min(expires_in, MAX_PRESIGN_SECONDS))
            )
        )

    def check(self) -> None:
        where = self.endpoint_url or "AWS"
        try:
            self._ensure_with(self._check_client)
        except BotoCoreError as exc:
            raise Unavailable(f"S3 storage at {where} unreachable: {exc}") from exc
        except ClientError as exc:
            raise Unavailable(f"S3 bucket {self.bucket!r} at {where} unusable ({_code(exc)}): {exc}") from exc
        self._bucket_ready = True

    # -- extras --------------------------------------------------------------------------

    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Keys starting with `prefix`, in lexicographic order."""
        validate_prefix(prefix)
        self.ensure_bucket()
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]

    def _delete_batch(self, keys: list[str]) -> int:
        with self._errors():
            response = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise Unavailable(
                f"S3 refused to delete {len(errors)} object(s), e.g. {first.get('Key')}: "
                f"{first.get('Code')} {first.get('Message')}"
            )
        return len(keys)


def _stream(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()
