"""Typed request dependencies: settings, the request's unit of work, and the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Header, Request, WebSocket
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.auth.service import (
    INVALID_CREDENTIALS,
    Principal,
    authenticate_api_key,
    authenticate_bearer,
    remembered_key,
)
from app.core.config import Settings
from app.core.db import Session, session_scope
from app.core.errors import Unauthorized
from app.storage import BlobStore, existing_store, get_store


async def get_app_settings(request: Request) -> Settings:
    # async: nothing here waits, and a sync dependency costs every request a thread-pool hop.
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, before the response
    is sent (scope="function"), then after-commit work such as enqueueing jobs runs.

    async: opening the session waits on nothing (it connects on first use), so only the commit
    or rollback takes a worker thread (a sync dependency costs a thread-pool hop on entry and
    another on exit). Shielded: a client that hangs up cannot skip it."""
    scope = session_scope(settings)
    session = scope.__enter__()
    try:
        yield session
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(scope.__exit__, type(exc), exc, exc.__traceback__)
        raise
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(scope.__exit__, None, None, None)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key or JWT from /api/v1/auth/token")


async def get_principal(
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    token = bearer.credentials if bearer else None
    # The credential principal_from would read first; a key checked moments ago needs no thread.
    presented = api_key or token or (authorization or "").strip()
    if known := remembered_key(settings, presented):
        return known
    return await anyio.to_thread.run_sync(
        partial(principal_from, session, settings, api_key=api_key, bearer=token, bare=authorization)
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


async def get_blob_store(settings: SettingsDep) -> BlobStore:
    # The process's store once made (no thread hop); the first request makes it in a thread.
    store = existing_store(settings)
    return store if store is not None else await anyio.to_thread.run_sync(get_store, settings)


StoreDep = Annotated[BlobStore, Depends(get_blob_store)]
