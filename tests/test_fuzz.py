"""Schemathesis against the app's own OpenAPI: authenticated, bounded examples per route.

No 5xx for anything the schema allows (and for what it doesn't), responses match the
documented schemas, and every non-platform route refuses a request without credentials.
`bench/fuzz.sh` runs the same with many more examples.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from app.main import create_app
from tests.plugins.services import Account, AppHarness, _build_harness, make_settings

MAX_EXAMPLES = int(os.environ.get("CHORUS_FUZZ_EXAMPLES", "6"))
# Routes reachable without credentials by design.
PUBLIC_PATHS = {
    "/health",
    "/ready",
    "/metrics",
    "/api/v1/files/{token}",
    "/api/v1/voice/previews/{token}",  # a voice's preview_url: the signed link is the credential
    "/console",
    "/console/static/{name}",
}


@pytest.fixture(scope="module")
def fuzz_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppHarness]:
    settings = make_settings(
        Path(tmp_path_factory.mktemp("fuzz")), rate_limit_per_minute=100_000, warm_models=False
    )
    yield from _build_harness(settings)


def _operation_labels() -> list[str]:
    """Every documented operation, read from the app's schema at collection time."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        spec = create_app(make_settings(Path(tmp), warm_models=False), run_background=False).openapi()
    return [f"{method.upper()} {path}" for path, methods in spec["paths"].items() for method in methods]


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_harness: AppHarness) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_harness.client.app)


@pytest.fixture(scope="module")
def fuzz_account(fuzz_harness: AppHarness) -> Account:
    return fuzz_harness.make_user(credits=10_000_000)


@pytest.mark.parametrize("label", _operation_labels())
def test_no_server_errors(label: str, fuzz_schema: schemathesis.BaseSchema, fuzz_account: Account) -> None:
    """Generated requests (valid and not) never get a 5xx; documented responses keep their schema."""
    operation = fuzz_schema.find_operation_by_label(label)
    assert operation is not None, label

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers={"X-API-Key": fuzz_account.key})
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )
        if response.status_code < 300 and "json" in response.headers.get("content-type", ""):
            operation.validate_response(response)

    run()


def test_every_route_but_platform_ones_needs_credentials(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, warm_models=False), run_background=False)
    spec = app.openapi()
    with TestClient(app) as client:
        for path, methods in spec["paths"].items():
            if path in PUBLIC_PATHS:
                continue
            for method in methods:
                url = path.replace("{", "").replace("}", "")
                r = client.request(method.upper(), url)
                assert r.status_code == 401, f"{method.upper()} {path} answered {r.status_code} without a key"
