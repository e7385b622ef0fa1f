"""Install Kokoro v1.0's 54 voice packs from the npm registry, checksum-verified (run by `make install`
and both Dockerfiles; the server never fetches them).

The packs ship in the npm package kokoro-js@1.2.1 as `package/voices/<key>.bin` (float32, 510x1x256,
Apache-2.0). The tarball's sha256 is pinned here; each pack's sha256 is written to a manifest that
the server checks when it loads a voice (`app.engines.tts.kokoro`). Only the voices are kept.

Usage: python scripts/install_kokoro_voices.py [--dest DIR] [--tarball FILE]
  --dest     default: <sys.prefix>/share/chorus/kokoro/voices (the venv or image that runs Chorus)
  --tarball  a copy of kokoro-js-1.2.1.tgz already on disk (e.g. from `npm pack kokoro-js@1.2.1`)
Environment: NPM_REGISTRY (default https://registry.npmjs.org).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from app.engines.installed import engine_files

PACKAGE = "kokoro-js"
VERSION = "1.2.1"
TARBALL_SHA256 = "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860"
VOICE_COUNT = 54
VOICE_BYTES = 510 * 256 * 4
MANIFEST = "manifest.json"


def default_dest() -> Path:
    return engine_files("kokoro", "voices")


def installed(dest: Path) -> bool:
    """True when dest holds this version's manifest and every pack it lists, at the right size."""
    try:
        manifest = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    voices = manifest.get("voices") or {}
    return (
        manifest.get("tarball_sha256") == TARBALL_SHA256
        and len(voices) == VOICE_COUNT
        and all(
            (dest / f"{key}.bin").is_file() and (dest / f"{key}.bin").stat().st_size == VOICE_BYTES
            for key in voices
        )
    )


def download() -> bytes:
    registry = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    url = f"{registry}/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
    print(f"kokoro voices: downloading {url}", file=sys.stderr)
    with urllib.request.urlopen(url, timeout=300) as response:  # noqa: S310 (a fixed https URL)
        return bytes(response.read())


def extract(data: bytes, dest: Path) -> dict[str, str]:
    """Unpack the voices (sha256-checked tarball) into dest atomically; returns key -> sha256."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != TARBALL_SHA256:
        raise SystemExit(
            f"kokoro voices: {PACKAGE}-{VERSION}.tgz has sha256 {digest}, expected {TARBALL_SHA256}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".voices-", dir=dest.parent))
    voices: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) != 3 or parts[:2] != ["package", "voices"] or not parts[2].endswith(".bin"):
                continue
            key = parts[2][: -len(".bin")]
            if not member.isfile() or not key.replace("_", "").isalnum():
                raise SystemExit(f"kokoro voices: unexpected entry {member.name}")
            source = tar.extractfile(member)
            assert source is not None
            blob = source.read()
            if len(blob) != VOICE_BYTES:
                raise SystemExit(f"kokoro voices: {member.name} is {len(blob)} bytes, expected {VOICE_BYTES}")
            (staging / f"{key}.bin").write_bytes(blob)
            voices[key] = hashlib.sha256(blob).hexdigest()
    if len(voices) != VOICE_COUNT:
        raise SystemExit(f"kokoro voices: found {len(voices)} packs, expected {VOICE_COUNT}")
    manifest = {"package": f"{PACKAGE}@{VERSION}", "tarball_sha256": TARBALL_SHA256, "voices": voices}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    if dest.exists():
        old = dest.with_name(dest.name + ".old")
        if old.exists():
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        dest.rename(old)
        staging.rename(dest)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        staging.rename(dest)
    return voices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=default_dest())
    parser.add_argument("--tarball", type=Path)
    args = parser.parse_args()
    if installed(args.dest):
        print(f"kokoro voices: {VOICE_COUNT} packs already in {args.dest}", file=sys.stderr)
        return
    data = args.tarball.read_bytes() if args.tarball else download()
    voices = extract(data, args.dest)
    print(f"kokoro voices: {len(voices)} packs installed in {args.dest}", file=sys.stderr)


if __name__ == "__main__":
    main()
