"""The `chorus` command as an operator uses it, and `chorus serve` on the embedded default."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import get_settings
from app.core.db import dispose_engines
from tests.plugins.waiting import JOB_WAIT_S


@pytest.fixture
def operator_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHORUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHORUS_ENV", "test")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    dispose_engines()


def test_operator_commands(operator_env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0

    created = runner.invoke(cli, ["users", "create", "alice", "--admin"])
    assert created.exit_code == 0 and "alice" in created.output
    duplicate = runner.invoke(cli, ["users", "create", "alice"])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output

    made = runner.invoke(cli, ["keys", "create", "alice"])
    assert made.exit_code == 0
    key = made.output.strip().splitlines()[-1]
    assert re.fullmatch(r"ap_[A-Za-z0-9_-]{40,}", key)

    listed = runner.invoke(cli, ["keys", "list", "alice"])
    assert listed.exit_code == 0 and key[:11] in listed.output and key not in listed.output

    granted = runner.invoke(cli, ["credits", "grant", "alice", "500"])
    assert granted.exit_code == 0
    runner.invoke(cli, ["credits", "grant", "alice", "250", "--permanent"])
    shown = runner.invoke(cli, ["credits", "show", "alice"])
    assert shown.exit_code == 0 and "750" in shown.output and "250" in shown.output

    assert runner.invoke(cli, ["credits", "grant", "bob", "5"]).exit_code == 1
    assert runner.invoke(cli, ["keys", "revoke", key[:11]]).exit_code == 0
    again = runner.invoke(cli, ["keys", "revoke", key[:11]])
    assert again.exit_code == 1 and "No active key" in again.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_on_a_fresh_data_dir_prints_an_admin_key_that_works(tmp_path: Path) -> None:
    """What the README promises: `make serve`, then curl /api/v1/credits with the printed key."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env.update({"CHORUS_DATA_DIR": str(tmp_path / "data"), "CHORUS_PORT": str(port)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        key, lines = None, []
        deadline = time.monotonic() + JOB_WAIT_S
        assert proc.stdout is not None
        while time.monotonic() < deadline and key is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if re.fullmatch(r"ap_[A-Za-z0-9_-]{40,}", line.strip()):
                key = line.strip()
        assert key, "no admin key printed:\n" + "".join(lines)
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/credits", headers={"X-API-Key": key})
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert r.status_code == 200
        assert r.json()["credits"] == get_settings().starter_credits
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert (tmp_path / "data" / "chorus.db").exists()
    assert (tmp_path / "data" / "secret_key").exists()
