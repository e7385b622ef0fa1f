"""`GET /api/v1/files/{token}`: downloads for LocalStore blobs, authorised by the signed token.

The token (see LocalStore.url) is the only credential: a JWT signed with the server secret
naming one key and expiring, so it cannot be guessed or altered. Every failure (forged,
expired, wrong purpose, blob gone) is the same 404, so a caller learns nothing about which
keys exist. S3 deployments hand out presigned bucket URLs instead and never come here.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse

from app.core.errors import NotFound
from app.storage import BlobStore, LocalStore, get_store
from app.storage.base import content_disposition

router = APIRouter(tags=["platform"])

NOT_FOUND_DETAIL = "File not found or link expired"


def download_store(request: Request) -> BlobStore:
    """The store of the app serving the request: built from the settings the app was created
    with (app.state.settings), else from the process settings. Override it in tests."""
    return get_store(getattr(request.app.state, "settings", None))


@router.get(
    "/api/v1/files/{token}",
    summary="Download a file through a signed, expiring link",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {"description": NOT_FOUND_DETAIL}},
)
def download_file(token: str, store: BlobStore = Depends(download_store)) -> StreamingResponse:
    """Stream the blob named in `token`."""
    if not isinstance(store, LocalStore):
        raise HTTPException(status_code=404, detail=NOT_FOUND_DETAIL)
    try:
        grant = store.resolve_token(token)
        size, chunks = store.open_with_size(grant.key)
    except (NotFound, ValueError) as exc:
        raise HTTPException(status_code=404, detail=NOT_FOUND_DETAIL) from exc
    headers = {
        "Content-Length": str(size),
        # The type comes from the key's extension; never let a browser guess another one.
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private",
    }
    if grant.filename:
        headers["Content-Disposition"] = content_disposition(grant.filename)
    return StreamingResponse(chunks, media_type=grant.content_type, headers=headers)
