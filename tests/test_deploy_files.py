"""What can be checked of the deployment files without a Docker engine."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def _setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        if sub:  # nested tables are set field by field
            names |= {f"CHORUS_{name.upper()}__{s.upper()}" for s in sub}
        else:
            names.add(f"CHORUS_{name.upper()}")
    return names


def test_compose_has_the_services_the_app_needs() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "worker", "postgres", "redis", "seaweedfs", "s3-bucket", "worker-gpu"} <= set(services)
    for name in ("api", "worker", "postgres", "redis", "seaweedfs", "worker-gpu"):
        assert "healthcheck" in services[name], name
    api_deps = services["api"]["depends_on"]
    assert api_deps["postgres"]["condition"] == "service_healthy"
    assert api_deps["redis"]["condition"] == "service_healthy"
    assert api_deps["s3-bucket"]["condition"] == "service_completed_successfully"
    assert services["worker"]["command"] == ["chorus", "worker"]
    assert "ports" not in services["worker"] and "container_name" not in services["worker"]  # scalable
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    gpu_command = services["worker-gpu"]["command"]
    assert gpu_command[:2] == ["chorus", "worker"]
    gpu_queues = gpu_command[gpu_command.index("--queues") + 1].split(",")
    assert {"stt", "tts"} <= set(gpu_queues)  # the heavy kinds go where the GPU is
    assert services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert "--appendonly" in services["redis"]["command"]  # persistent
    assert {"postgres", "redis", "seaweedfs"} <= set(compose["volumes"])
    env = services["api"]["environment"]
    assert env["CHORUS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["CHORUS_STORAGE_URL"].startswith("s3://")
    known = _setting_names()
    for service in ("api", "worker", "worker-gpu"):
        for key in services[service]["environment"]:
            assert key in known, f"{service}: {key} is not a Chorus setting"


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(CHORUS_[A-Z0-9_]+)=", text, flags=re.M))
    known = _setting_names()
    assert documented - known == set(), "documented but unknown"
    missing = {n for n in known if "__" not in n and n not in documented}
    assert missing == set(), f"undocumented settings: {sorted(missing)}"


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "Dockerfile", "Dockerfile.gpu"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_run_as_non_root_with_a_healthcheck() -> None:
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (ROOT / name).read_text()
        assert re.search(r"^USER 10001", text, flags=re.M), name
        assert "HEALTHCHECK" in text, name
    assert "chorus migrate" in (ROOT / "Dockerfile").read_text()
