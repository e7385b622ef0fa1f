"""`GET /console` and its static files.

The files are package data under `static/`. Only names in the fixed allow-list are served,
so no part of a request ever becomes a file path. Every response carries a strict
Content-Security-Policy: scripts, styles and API calls from this origin only; media may come
from signed download URLs on any http(s) host (S3 presigned URLs) and from blob: URLs.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from app.core.errors import NotFound

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "media-src 'self' blob: http: https:",
        "manifest-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
}

# The only files served: public name -> media type.
STATIC_FILES: dict[str, str] = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


@cache
def _read(name: str) -> bytes:
    return files("app.console").joinpath("static", name).read_bytes()


def _serve(name: str, media_type: str) -> Response:
    return Response(_read(name), media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/console")
@router.get("/console/")
def console_page() -> Response:
    return _serve("index.html", "text/html; charset=utf-8")


@router.get("/console/static/{name}")
def console_static(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise NotFound("No such console file")
    return _serve(name, media_type)
