"""Start-up work shared by `chorus serve` and the app's lifespan."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.core.config import Settings
from app.core.db import session_scope
from app.engines.cache import ModelJanitor
from app.jobs.queue import get_queue, stop_queue
from app.jobs.reconciler import ReconcilerThread, reconcile

log = logging.getLogger("chorus")


def ensure_first_admin(settings: Settings) -> str | None:
    """Create the first admin with starter credits on an empty database; returns its key once."""
    from app.auth.service import ensure_first_admin as _ensure

    with session_scope(settings) as session:
        return _ensure(session, settings)


@dataclass
class BackgroundHandles:
    reconciler: ReconcilerThread
    janitor: ModelJanitor


def start_background(settings: Settings) -> BackgroundHandles:
    from app.voices.builtin import sync_builtin_voices

    sync_builtin_voices(settings)
    if settings.warm_models:
        from app.engines import registry

        registry.warm_up(settings)
    get_queue(settings)  # create the in-process pool (embedded) or Redis client now
    try:
        # No grace for pending jobs at start: those a stopped process left (or lost) run now, and
        # one another process is enqueueing at this moment runs once (claiming it is atomic).
        reconcile(settings, pending_grace_seconds=0.0)
    except Exception:
        log.exception("start-up reconcile failed")
    thread = ReconcilerThread(settings, settings.reconcile_interval_seconds)
    thread.start()
    janitor = model_janitor(settings)
    janitor.start()
    return BackgroundHandles(reconciler=thread, janitor=janitor)


def model_janitor(settings: Settings) -> ModelJanitor:
    """Drops models idle for `model_idle_ttl_seconds` (checked every quarter of it, at most 60 s)."""
    ttl = settings.model_idle_ttl_seconds
    return ModelJanitor(ttl, min(60.0, max(1.0, ttl / 4)) if ttl > 0 else 3600.0)


def stop_background(handles: BackgroundHandles, settings: Settings) -> None:
    handles.reconciler.stop()
    handles.janitor.stop()
    stop_queue(settings)  # running in-process jobs go back to pending for the next start
