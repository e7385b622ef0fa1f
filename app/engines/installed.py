"""Where `make install` and the images put what the engines load from files rather than from
Python packages (Kokoro's voice packs, the vocoder's ONNX export): a folder of the Python
environment that runs Chorus, so a venv or an image carries its own and two venvs never mix."""

from __future__ import annotations

import sys
from pathlib import Path


def engine_files(*parts: str) -> Path:
    """<sys.prefix>/share/chorus/<parts...>; `parts` are fixed names, never request values."""
    return Path(sys.prefix).joinpath("share", "chorus", *parts)
