"""`make lint` inside the suite, so CI holds every commit to it: ruff (lint and format), mypy over
app/ and scripts/, and the layout rules of scripts/check_architecture.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PATHS = ["app", "tests", "bench", "migrations", "scripts"]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)


def test_ruff_finds_nothing() -> None:
    result = _run(str(BIN / "ruff"), "check", *PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_ruff_formatted() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", *PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_layout_rules_hold() -> None:
    """No import circle in app/, no SQL in the families, no Any in engine signatures."""
    result = _run(sys.executable, "scripts/check_architecture.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_layout_check_catches_a_circle_and_sql() -> None:
    """The checker is not vacuous: a planted circle and a planted query are reported."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import check_architecture as check

    graph = {"app.a": {"app.b"}, "app.b": {"app.c"}, "app.c": {"app.a"}, "app.d": {"app.a"}}
    assert check.import_cycles(graph) == [["app.a", "app.b", "app.c"]]
    assert check.SQL_IN_FAMILIES.search("    row = session.get(Voice, 1)")
    assert check.SQL_IN_FAMILIES.search("from sqlalchemy import select")
    assert not check.SQL_IN_FAMILIES.search("    voice = voices.get_readable_voice(session, user, ref)")
