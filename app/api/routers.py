"""Every router the app mounts, in order (the order decides which route takes a path first)."""

from __future__ import annotations

from fastapi import FastAPI

from app.api import credits, files, platform
from app.api.clone.routes import router as clone_router
from app.api.envelope.routes import router as envelope_router
from app.api.native.analytics import router as analytics_router
from app.api.native.collections import router as collections_router
from app.api.native.routes import router as native_router
from app.api.openai.routes import build_router as build_openai_router
from app.api.voiceai.routes import router as voiceai_router
from app.console.routes import router as console_router


def include_routers(app: FastAPI) -> None:
    app.include_router(platform.router)
    app.include_router(files.router)
    app.include_router(credits.router)
    app.include_router(credits.user_credits_router)
    app.include_router(native_router)
    app.include_router(collections_router)
    app.include_router(analytics_router)
    app.include_router(voiceai_router)  # before clone: /api/v1/tts/voices is voice.ai's
    app.include_router(clone_router)
    app.include_router(envelope_router)
    app.include_router(console_router)
    # The OpenAI family answers for every path under /v1, and under /api/v1 for /audio/….
    app.include_router(build_openai_router(owns=("/",)), prefix="/v1")
    app.include_router(build_openai_router(owns=("/audio/",)), prefix="/api/v1", include_in_schema=False)
