"""Voices as the OpenAI family names them: built-in names (alloy, nova, …) and voice ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.api.deps import SessionDep
from app.core.config import Settings
from app.core.errors import InvalidInput, NotFound
from app.engines.base import Synthesizer
from app.engines.catalogue import persona_map, persona_voice
from app.engines.languages import detect_language
from app.engines.tts.kokoro import blend_synthesizer, parse_blend
from app.speech.service import speakable_voice
from app.speech.speakers import synthesizer_for
from app.storage import BlobStore
from app.voices import service as voices
from app.voices.models import Voice

OPENAI_VOICE_NAMES: tuple[str, ...] = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)


def openai_voice_map() -> dict[str, str]:
    """OpenAI name -> built-in key, from the engine catalogue."""
    from app.engines.catalogue import OPENAI_VOICE_MAP

    return {name.lower(): key for name, key in OPENAI_VOICE_MAP.items()}


def _not_found(ref: str) -> InvalidInput:
    return InvalidInput(
        f"Voice '{ref}' not found. Use a built-in voice ({', '.join(OPENAI_VOICE_NAMES)}) "
        "or a voice id from GET /v1/audio/voices",
        param="voice",
    )


def voice_ref(value: Any) -> str:
    """The reference inside `voice`: a string or {"id": "..."}."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise InvalidInput('voice must be a voice name, a voice id, or {"id": "voice_..."}', param="voice")
    return str(value).strip()


@dataclass(frozen=True)
class Speaker:
    """What `voice` named: the voice row the speech is recorded against, what speaks, and the
    name refusals use."""

    voice: Voice
    synthesizer: Synthesizer
    name: str


def resolve_speaker(
    session: SessionDep, store: BlobStore, settings: Settings, user_id: int, value: Any, text: str
) -> Speaker:
    """`voice` for this text: an OpenAI persona speaks the text's language (a voice of that
    language and the persona's gender), "af_bella(2)+af_sky(1)" is a blend of Kokoro voices
    (recorded against its heaviest voice), anything else a voice id or name."""
    ref = voice_ref(value)
    try:
        parts = parse_blend(ref) if isinstance(value, str) else None
    except InvalidInput as exc:
        raise InvalidInput(exc.message, param="voice") from exc
    if parts is not None:
        lead = max(parts, key=lambda part: part[1])[0]
        row = voices.find_builtin_voice(session, user_id, lead)
        if row is None:
            raise InvalidInput(f"Voice '{lead}' is not available on this server", param="voice")
        return Speaker(row, blend_synthesizer(parts, settings, name=ref), ref)
    persona = persona_voice(ref, detect_language(text, "en")) if isinstance(value, str) else None
    voice = resolve_voice(session, user_id, value, key=persona)
    try:
        speaker = synthesizer_for(voice, store, settings)
    except InvalidInput as exc:  # e.g. a built-in that left the catalogue
        raise InvalidInput(exc.message, param="voice") from exc
    return Speaker(voice, speaker, ref.lower() if persona else voice.name)


def resolve_voice(session: SessionDep, user_id: int, value: Any, *, key: str | None = None) -> Voice:
    """A voice the caller may speak with (`key`: the built-in an OpenAI name already resolved
    to); every refusal is a 400 on `voice`."""
    ref = voice_ref(value)
    if len(ref) > 200:
        raise _not_found(ref[:40] + "…")
    key = key or openai_voice_map().get(ref.lower())
    if key is not None:
        row = voices.find_builtin_voice(session, user_id, key)
        if row is None:
            raise InvalidInput(f"Voice '{ref}' is not available on this server", param="voice")
        return row
    try:
        try:
            return speakable_voice(session, user_id, ref)
        except NotFound:
            # Seed 004: "pass any voice name or ID": the caller's own voice by name, then a built-in's.
            own = voices.find_own_voice_by_name(session, user_id, ref)
            if own is not None:
                return speakable_voice(session, user_id, own.id)
            row = voices.find_builtin_voice_by_name(session, user_id, ref)
            if row is None:
                raise _not_found(ref) from None
            return row
    except InvalidInput as exc:  # e.g. a clone that is still PENDING
        raise InvalidInput(exc.message, param="voice") from exc


def _unix(value: Any) -> int:
    return int(value.timestamp()) if value is not None else 0


def render_voice(voice: Voice, *, alias: str | None = None) -> dict[str, Any]:
    """OpenAI's audio.voice object plus what a client needs to choose one (an OpenAI name also
    carries `languages`: the built-in it speaks each language with)."""
    builtin = voice.kind == voices.BUILTIN
    return {
        "object": "audio.voice",
        "id": alias or voice.voice_id,
        "name": alias or voice.name,
        "type": "builtin" if builtin else "audio_sample",
        "created_at": _unix(voice.created_at),
        "voice_id": voice.voice_id,
        "display_name": voice.name,
        "language": voice.language,
        "gender": voice.gender,
        "status": voice.status,
        "accent": (voice.extra or {}).get("accent") if builtin else None,
        **({"languages": persona_map().get(alias, {})} if alias else {}),
    }


def list_usable_voices(session: SessionDep, user_id: int) -> list[dict[str, Any]]:
    """OpenAI names first (each an alias of a built-in), then every built-in, then the caller's own."""
    rows = voices.builtin_and_own_voices(session, user_id)
    by_key = {v.builtin_key: v for v in rows if v.kind == voices.BUILTIN}
    out = [render_voice(by_key[key], alias=name) for name, key in openai_voice_map().items() if key in by_key]
    out += [render_voice(v) for v in rows if v.kind == voices.BUILTIN]
    out += [render_voice(v) for v in rows if v.kind != voices.BUILTIN]
    return out
