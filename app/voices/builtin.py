"""The built-in voice catalogue in the database: synced at start, idempotently.

Rows are keyed by `builtin_key`; a voice that leaves the catalogue is soft-deleted, one that
comes back is restored, so ids stay stable across restarts and upgrades.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from app.core.config import Settings
from app.core.db import session_scope, utcnow
from app.voices.models import Voice

if TYPE_CHECKING:
    from app.engines.catalogue import BuiltinVoice

log = logging.getLogger(__name__)


def catalogue(settings: Settings) -> dict[str, BuiltinVoice]:
    """Every built-in voice by key: the derived catalogue plus Piper voices in the models folder.
    (What speaks one: `app.speech.speakers.synthesizer_for`.)"""
    from app.engines.catalogue import builtin_voices

    return {v.key: v for v in builtin_voices(settings.resolved_models_dir)}


def sync_builtin_voices(settings: Settings) -> int:
    """Insert or refresh a row per catalogue voice; returns how many exist afterwards."""
    specs = catalogue(settings)
    now = utcnow()
    with session_scope(settings) as session:
        rows = {v.builtin_key: v for v in session.scalars(select(Voice).where(Voice.kind == "builtin"))}
        for key, spec in specs.items():
            row = rows.get(key)
            if row is None:
                row = Voice(
                    kind="builtin",
                    builtin_key=key,
                    owner_id=None,
                    status="completed",
                    is_public=True,
                    engine=spec.backend,
                    # One timestamp per sync: listings sorted by creation keep catalogue order
                    # (ties go by id), so a release's voices list English first.
                    created_at=now,
                    processed_at=now,
                )
                session.add(row)
            row.name = spec.name
            row.description = spec.description
            row.language = spec.listed_language
            row.gender = spec.gender
            row.style = spec.style
            row.age_range = spec.age_range
            row.category = spec.category
            row.tags = list(spec.tags)
            row.engine = spec.backend
            row.extra = {**(row.extra or {}), "accent": spec.accent or None, "locale": spec.locale}
            row.deleted_at = None
        for builtin_key, row in rows.items():
            if builtin_key not in specs and row.deleted_at is None:
                row.deleted_at = now
    log.info("built-in voices synced: %d", len(specs))
    return len(specs)
