"""Typed request dependencies: settings, the request's unit of work, and the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request, WebSocket
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
    return principal_from(
        session, settings, api_key=api_key, bearer=bearer.credentials if bearer else None, bare=authorization
    )


def principal_from(
    session: Session,
    settings: Settings,
    *,
    api_key: str | None = None,
    bearer: str | None = None,
    bare: str | None = None,
    query_key: str | None = None,
) -> Principal:
    """Who the credentials name: an X-API-Key, a Bearer key or JWT, a bare `Authorization: <key>`
    (seed 002 sends no scheme word), or a `?key=` (WebSockets: browsers cannot set headers)."""
    if api_key:
        return authenticate_api_key(session, settings, api_key)
    if bearer:
        return authenticate_bearer(session, settings, bearer)
    plain = (bare or "").strip()
    if plain and " " not in plain:
        return authenticate_bearer(session, settings, plain)
    if query_key:
        return authenticate_bearer(session, settings, query_key)
    raise Unauthorized(INVALID_CREDENTIALS)


def websocket_principal(session: Session, settings: Settings, websocket: WebSocket) -> Principal:
    """The same credentials as every HTTP route, read off a WebSocket's handshake."""
    authorization = (websocket.headers.get("authorization") or "").strip()
    scheme, _, credentials = authorization.partition(" ")
    return principal_from(
        session,
        settings,
        api_key=websocket.headers.get("x-api-key"),
        bearer=credentials.strip() if scheme.lower() == "bearer" else None,
        bare=authorization,
        query_key=websocket.query_params.get("key"),
    )


CurrentUser = Annotated[Principal, Depends(get_principal)]


def get_blob_store(settings: SettingsDep) -> BlobStore:
    return get_store(settings)


StoreDep = Annotated[BlobStore, Depends(get_blob_store)]
