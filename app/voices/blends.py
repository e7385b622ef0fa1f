"""Saved voice blends: a custom voice made of weighted Kokoro built-ins (free and instant).

The blend is stored like a cloned voice's artifact (`KokoroBlendArtifact` JSON under the voice's
prefix), so it speaks through every family by its voice id, like any custom voice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.core.db import on_rollback, utcnow
from app.core.errors import InvalidInput, NotFound
from app.engines.tts.kokoro import KokoroBlendArtifact, normalise_blend
from app.engines.voices import dump_artifact
from app.storage import BlobStore
from app.voices import service as voices
from app.voices.models import Voice

BLEND_ENGINE = KokoroBlendArtifact.engine


@dataclass(frozen=True)
class BlendPart:
    voice: str  # a built-in's key ("af_bella") or voice id
    weight: float


def _builtin_key(session: Session, user_id: int, ref: str) -> Voice:
    row = voices.find_builtin_voice(session, user_id, ref.strip().lower())
    if row is None:
        try:
            row = voices.get_readable_voice(session, user_id, ref)
        except NotFound:
            row = None
    if row is None or row.kind != voices.BUILTIN:
        raise InvalidInput(f"Voice '{ref[:60]}' is not a built-in voice that can be blended", param="voices")
    return row


def create_blend(
    session: Session,
    store: BlobStore,
    *,
    user_id: int,
    name: str,
    parts: Sequence[BlendPart],
    description: str | None = None,
) -> Voice:
    """Validate the parts (2-8 Kokoro built-ins of one language, positive weights), then create
    the voice, completed, with its artifact stored. Nothing is created when a part is refused."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("Voice name must be 1-200 characters", param="name")
    rows = [_builtin_key(session, user_id, part.voice) for part in parts]
    try:
        components = normalise_blend(
            [(row.builtin_key or "", part.weight) for row, part in zip(rows, parts, strict=True)]
        )
    except InvalidInput as exc:
        raise InvalidInput(exc.message, param="voices") from exc
    by_key = {row.builtin_key: row for row in rows}
    genders = {by_key[key].gender for key, _ in components}
    summary = ", ".join(f"{by_key[key].name} ({key}) {round(weight * 100)}%" for key, weight in components)
    voice = Voice(
        owner_id=user_id,
        kind="custom",
        name=name,
        description=description or f"Blend of {summary}",
        language=by_key[components[0][0]].language,
        gender=genders.pop() if len(genders) == 1 else "neutral",
        tags=["blend"],
        is_public=False,
        status="completed",
        engine=BLEND_ENGINE,
        processed_at=utcnow(),
    )
    session.add(voice)
    session.flush()
    key = f"{voices.voice_storage_prefix(voice)}artifact.json"
    on_rollback(session, lambda: store.delete(key))
    store.put(key, dump_artifact(KokoroBlendArtifact(voices=components)), "application/json")
    voice.artifact_key = key
    session.flush()
    return voice
