"""Typed request dependencies: settings, the request's unit of work, and the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.auth.service import INVALID_CREDENTIALS, Principal, authenticate_api_key, authenticate_bearer
from app.core.config import Settings
from app.core.db import Session, session_scope
from app.core.errors import Unauthorized
from app.storage import BlobStore, get_store


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, before the response
    is sent (scope="function"), then after-commit work such as enqueueing jobs runs."""
    with session_scope(settings) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key or JWT from /api/v1/auth/token")


def get_principal(
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    if api_key:
        return authenticate_api_key(session, settings, api_key)
    if bearer and bearer.credentials:
        return authenticate_bearer(session, settings, bearer.credentials)
    # Seed 002 sends `Authorization: <key>` with no scheme word.
    bare = (authorization or "").strip()
    if bare and " " not in bare:
        return authenticate_bearer(session, settings, bare)
    raise Unauthorized(INVALID_CREDENTIALS)


CurrentUser = Annotated[Principal, Depends(get_principal)]


def get_blob_store(settings: SettingsDep) -> BlobStore:
    return get_store(settings)


StoreDep = Annotated[BlobStore, Depends(get_blob_store)]
