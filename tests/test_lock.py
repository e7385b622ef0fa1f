"""The installed environment is exactly requirements.lock, and the lock is pyproject.toml's.

Drift (a package upgraded by hand, a lock edited without reinstalling, a pin added to
pyproject.toml without `make lock`) fails here with the package named.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import lock_check  # noqa: E402


def test_installed_packages_are_exactly_the_lock() -> None:
    missing, wrong, extra = lock_check.drift()
    assert not missing, f"in the lock but not installed (run `make install`): {missing}"
    assert not wrong, f"installed at another version than the lock's: {wrong}"
    assert not extra, f"installed but not in the lock: {extra}"


def test_drift_check_reads_site_packages_even_after_setuptools_is_imported() -> None:
    """setuptools puts its vendored packages on sys.path; they are not what the lock installed."""
    import setuptools  # noqa: F401

    assert lock_check.drift()[1] == {}


def test_pip_check_finds_no_broken_requirement() -> None:
    assert lock_check.pip_check() == []


def test_every_pin_of_pyproject_is_in_both_locks() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = [project["dependencies"], *project["optional-dependencies"].values()]
    pins = {}
    for requirement in (r for group in groups for r in group):
        match = re.match(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;]+)$", requirement)
        if match:
            pins[lock_check.canonical(match.group(1))] = match.group(2)
    cpu = lock_check.locked(ROOT / "requirements.lock")
    gpu = lock_check.locked(ROOT / "requirements-gpu.lock")
    dev_only = {lock_check.canonical(r.split("==")[0]) for r in project["optional-dependencies"]["dev"]}
    for name, version in pins.items():
        # The CPU lock takes torch's local CPU build (2.13.0+cpu); PyPI's CUDA one is 2.13.0.
        in_lock = cpu.get(name, "")
        assert in_lock.split("+")[0] == version, f"{name}: pyproject {version}, lock {in_lock}"
        if name not in dev_only:
            assert gpu.get(name) == version, f"{name}: pyproject {version}, gpu lock {gpu.get(name)}"


def test_every_lock_entry_has_a_hash() -> None:
    for lock in ("requirements.lock", "requirements-gpu.lock"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text())
        pinned = [e for e in entries if re.match(r"^[A-Za-z0-9][^\n]*==", e)]
        assert len(pinned) > 100, lock
        unhashed = [e.split()[0] for e in pinned if "--hash=sha256:" not in e]
        assert unhashed == [], f"{lock}: {unhashed}"
