"""Platform routes: liveness, readiness, metrics, and the JWT token exchange."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from pydantic import BaseModel

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.api.families import NATIVE, FamilyRouter
from app.core.db import ping_database
from app.core.errors import DomainError
from app.core.security import issue_jwt
from app.engines import registry
from app.jobs.queue import get_queue
from app.jobs.service import count_jobs_by_kind_and_status
from app.storage import get_store

router = FamilyRouter(family=NATIVE, tags=["platform"])

JOBS = Gauge("chorus_jobs", "Jobs by kind and status", ["kind", "status"])
MODEL_LOADS = Gauge("chorus_model_loads_total", "Times each model was loaded in this process", ["model"])
MODEL_UNLOADS = Gauge("chorus_model_unloads_total", "Times each model was unloaded for idleness", ["model"])
MODELS_LOADED = Gauge("chorus_model_loaded", "1 while the model is in memory", ["model"])
QUEUE_DEPTH = Gauge("chorus_queue_depth", "Jobs waiting in the queue")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, Any]


class Token(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


@router.get("/health", response_model=Health)
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down"}},
)
def ready(request: Request, settings: SettingsDep) -> JSONResponse:
    """Each dependency checked for real; 503 when any is down, saying which."""
    checks: dict[str, Any] = {}
    try:
        ping_database(settings)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    for name, probe in (("queue", get_queue(settings).check), ("storage", get_store(settings).check)):
        try:
            probe()
            checks[name] = "ok"
        except DomainError as exc:
            checks[name] = f"error: {exc.message}"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    # Which models are in memory now and for how long each has been idle (informational).
    checks["models"] = {
        "loaded": registry.loaded_models(),
        "idle_ttl_seconds": settings.model_idle_ttl_seconds,
    }
    ok = all(v == "ok" for k, v in checks.items() if k != "models")
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus metrics"}},
)
def metrics(session: SessionDep, settings: SettingsDep) -> Response:
    JOBS.clear()
    for (kind, status), count in count_jobs_by_kind_and_status(session).items():
        JOBS.labels(kind, status).set(count)
    try:
        QUEUE_DEPTH.set(get_queue(settings).depth())
    except Exception:
        QUEUE_DEPTH.set(-1)
    # Resident memory is prometheus-client's own process_resident_memory_bytes.
    loaded = registry.loaded_models()
    for name in set(registry.load_counts) | set(registry.unload_counts):
        MODEL_LOADS.labels(name).set(registry.load_counts.get(name, 0))
        MODEL_UNLOADS.labels(name).set(registry.unload_counts.get(name, 0))
        MODELS_LOADED.labels(name).set(1 if name in loaded else 0)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.post("/api/v1/auth/token", response_model=Token)
def create_token(principal: CurrentUser, settings: SettingsDep) -> dict[str, Any]:
    """Exchange an API key for a short-lived JWT (HS256, `sub` = user)."""
    token, ttl = issue_jwt(principal.user_id, settings)
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl}
