"""Compare the installed environment with requirements.lock, the project's lock of exact versions,
and run `pip check` on it.

Used by the suite (tests/test_lock.py) so drift is a clear failure, and by `make install`
(`--prune`) to remove what a previous lock installed and this one no longer names.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
# Installed by the venv itself or by `pip install -e .`, not by the lock.
NOT_LOCKED = {"pip", "chorus"}
# resemblyzer is locked with --no-deps: it declares `typing` (in the standard library since 3.5) and
# `webrtcvad` (needs a compiler; webrtcvad-wheels provides the same module). Nothing else is excused.
EXCUSED_PIP_CHECK = {
    "resemblyzer 0.1.4 requires typing, which is not installed.",
    "resemblyzer 0.1.4 requires webrtcvad, which is not installed.",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path = LOCK) -> dict[str, str]:
    """name -> exact version, for every package the lock pins."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    """What the environment's site-packages hold. Only there: once setuptools is imported it puts
    its vendored copies (packaging, more-itertools...) on sys.path, with their own versions."""
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions(path=paths)}


def drift(lock: Path = LOCK) -> tuple[dict[str, str], dict[str, tuple[str, str]], dict[str, str]]:
    """(missing, wrong version (locked, installed), not in the lock)."""
    want, have = locked(lock), installed()
    missing = {name: v for name, v in want.items() if name not in have}
    wrong = {name: (v, have[name]) for name, v in want.items() if name in have and have[name] != v}
    extra = {name: v for name, v in have.items() if name not in want and name not in NOT_LOCKED}
    return missing, wrong, extra


def pip_check() -> list[str]:
    """`pip check`'s complaints, less the excused ones."""
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
    return [line for line in lines if line and line not in EXCUSED_PIP_CHECK and "No broken" not in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prune", action="store_true", help="uninstall packages the lock does not name")
    args = parser.parse_args()
    missing, wrong, extra = drift()
    if args.prune and extra:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", *sorted(extra)], check=True)
        missing, wrong, extra = drift()
    for name, version in sorted(missing.items()):
        print(f"missing: {name}=={version}")
    for name, (want, have) in sorted(wrong.items()):
        print(f"wrong version: {name} is {have}, the lock says {want}")
    for name, version in sorted(extra.items()):
        print(f"not in the lock: {name}=={version}")
    broken = pip_check()
    for line in broken:
        print(f"pip check: {line}")
    return 1 if (missing or wrong or extra or broken) else 0


if __name__ == "__main__":
    sys.exit(main())
