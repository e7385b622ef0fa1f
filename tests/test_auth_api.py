"""Auth through HTTP: API keys (X-API-Key and Bearer), JWTs, revocation, stored hashes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa

from app.auth import service as auth
from app.core.db import session_scope
from tests.plugins.services import AppHarness, _build_harness, make_settings


def test_keys_use_the_ap_prefix_and_only_a_hash_is_stored(embedded: AppHarness) -> None:
    account = embedded.make_user()
    assert account.key.startswith("ap_") and len(account.key) > 40
    with session_scope(embedded.settings) as session:
        rows = session.execute(sa.text("SELECT prefix, key_hash FROM api_keys")).all()
    assert rows and all(account.key not in (prefix, digest) for prefix, digest in rows)
    assert rows[0].prefix == account.key[:11]


def test_x_api_key_and_bearer_key_and_jwt_all_authenticate(embedded: AppHarness) -> None:
    account = embedded.make_user(credits=1234)
    c = embedded.client
    assert c.get("/api/v1/credits", headers={"X-API-Key": account.key}).json()["credits"] == 1234
    assert c.get("/api/v1/credits", headers={"Authorization": f"Bearer {account.key}"}).status_code == 200
    token = c.post("/api/v1/auth/token", headers=account.headers).json()
    assert token["token_type"] == "bearer" and token["expires_in"] > 0
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["sub"] == str(account.user_id)
    r = c.get("/api/v1/credits", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 200 and r.json()["credits"] == 1234


def test_unknown_and_revoked_keys_get_the_same_401(embedded: AppHarness) -> None:
    account = embedded.make_user()
    c = embedded.client
    unknown = c.get("/api/v1/voice/voice-profiles", headers={"X-API-Key": "ap_" + "z" * 43})
    # Used first, so this process remembers the key: revoking it here still ends it at once.
    assert c.get("/api/v1/voice/voice-profiles", headers=account.headers).status_code == 200
    with session_scope(embedded.settings) as session:
        auth.revoke_api_key(session, account.key[:11])
    revoked = c.get("/api/v1/voice/voice-profiles", headers=account.headers)
    missing = c.get("/api/v1/voice/voice-profiles")
    assert unknown.status_code == revoked.status_code == missing.status_code == 401
    assert unknown.json() == revoked.json() == {"detail": "Invalid or missing API key"}


def test_expired_or_forged_jwt_is_refused(embedded: AppHarness) -> None:
    account = embedded.make_user()
    now = int(time.time())
    expired = jwt.encode(
        {"sub": str(account.user_id), "exp": now - 10, "typ": "access"},
        embedded.settings.secret,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": str(account.user_id), "exp": now + 600, "typ": "access"},
        "wrong-secret" * 4,
        algorithm="HS256",
    )
    for token in (expired, forged, "not-a-token"):
        r = embedded.client.get("/api/v1/credits", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token


def test_credits_route_reports_the_breakdown(embedded: AppHarness) -> None:
    from app.billing import service as billing

    account = embedded.make_user(credits=300)
    with session_scope(embedded.settings) as session:
        billing.grant(session, account.user_id, 200, permanent=True)
    body = embedded.client.get("/api/v1/credits", headers=account.headers).json()
    assert body == {
        "success": True,
        "credits": 500,
        "breakdown": {"regular": 300, "permanent": 200, "held": 0, "resetAt": None},
    }


@pytest.mark.parametrize("cache_seconds", [0.5, 0.0], ids=["cached", "uncached"])
def test_a_key_revoked_by_another_process_stops_within_the_auth_cache_time(
    tmp_path: Path, cache_seconds: float
) -> None:
    """`chorus keys revoke` runs in its own process: the API trusts a key it checked for at most
    auth_cache_seconds (0: not at all), then asks the database again and refuses it."""
    for harness in _build_harness(make_settings(tmp_path / "data", auth_cache_seconds=cache_seconds)):
        account = harness.make_user()
        c, path = harness.client, "/api/v1/voice/voice-profiles"
        assert c.get(path, headers=account.headers).status_code == 200
        # What the other process does: the row changes, this process's memory is not told.
        with session_scope(harness.settings) as session:
            session.execute(sa.text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP"))
        if cache_seconds:
            time.sleep(cache_seconds + 0.1)
        r = c.get(path, headers=account.headers)
        assert r.status_code == 401 and r.json() == {"detail": "Invalid or missing API key"}


def test_a_keys_last_use_is_recorded_to_the_minute(tmp_path: Path) -> None:
    """`chorus keys list` shows when each key was last used: set by its first request, then at
    most once a minute (not a write per request). Uncached, so each request looks the key up."""
    for harness in _build_harness(make_settings(tmp_path / "data", auth_cache_seconds=0)):
        account = harness.make_user()

        def last_used(harness: AppHarness = harness, user_id: int = account.user_id) -> datetime | None:
            with session_scope(harness.settings) as session:
                return auth.list_api_keys(session, user_id)[0].last_used_at

        assert last_used() is None
        before = datetime.now(UTC)
        assert harness.client.get("/api/v1/credits", headers=account.headers).status_code == 200
        first = last_used()
        assert first is not None and before - timedelta(seconds=1) <= first <= datetime.now(UTC)
        assert harness.client.get("/api/v1/credits", headers=account.headers).status_code == 200
        assert last_used() == first
        with session_scope(harness.settings) as session:  # a minute later, the next use is recorded
            session.execute(
                sa.text("UPDATE api_keys SET last_used_at = :t"), {"t": first - timedelta(minutes=2)}
            )
        assert harness.client.get("/api/v1/credits", headers=account.headers).status_code == 200
        latest = last_used()
        assert latest is not None and latest >= before - timedelta(seconds=1)


def test_a_failed_last_use_write_does_not_fail_the_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last-use write is bookkeeping in a transaction of its own: when it fails (the
    database refusing a write), the request the key authenticates is still served."""
    for harness in _build_harness(make_settings(tmp_path / "data", auth_cache_seconds=0)):
        account = harness.make_user(credits=77)

        def refused(*args: object, **kwargs: object) -> None:
            raise sa.exc.OperationalError("UPDATE api_keys", {}, Exception("database is locked"))

        monkeypatch.setattr(auth, "session_scope", refused)
        r = harness.client.get("/api/v1/credits", headers=account.headers)
        assert r.status_code == 200 and r.json()["credits"] == 77
