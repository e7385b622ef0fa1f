"""Voice previews: short samples generated on demand, cached per (voice, text, format, speed,
pitch) in storage, and free."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.orm import Session

from app.audio import content_type, encode_audio, file_extension
from app.core.config import Settings
from app.core.errors import InvalidInput, NotFound, Unauthorized
from app.core.security import sign_token_until, verify_token
from app.engines.base import synthesize
from app.engines.languages import language_family
from app.speech.service import reading_language
from app.speech.speakers import synthesizer_for
from app.storage import BlobStore
from app.voices.models import Voice
from app.voices.service import get_voice_by_uuid, voice_storage_prefix

DEFAULT_PREVIEW_TEXT = "Hello! This is {name}. I can read your stories, messages and news aloud."
# A voice's default preview speaks its own language.
DEFAULT_PREVIEW_TEXTS = {
    "en": DEFAULT_PREVIEW_TEXT,
    "es": "¡Hola! Soy {name}. Puedo leer en voz alta tus historias, mensajes y noticias.",
    "fr": "Bonjour ! Je suis {name}. Je peux lire à voix haute vos histoires, vos messages et les nouvelles.",
    "hi": "नमस्ते! मेरा नाम {name} है। मैं आपकी कहानियाँ, संदेश और समाचार पढ़कर सुना सकती हूँ।",
    "it": "Ciao! Sono {name}. Posso leggere ad alta voce le tue storie, i tuoi messaggi e le notizie.",
    "ja": "こんにちは！{name}です。物語やメッセージ、ニュースを読み上げます。",
    "pt": "Olá! Eu sou {name}. Posso ler em voz alta suas histórias, mensagens e notícias.",
    "zh": "你好！我是{name}。我可以为你朗读故事、消息和新闻。",
}
MAX_PREVIEW_WORDS = 50
BATCH_WORKERS = 2
PREVIEW_LINK_PURPOSE = "voice-preview"
LINK_STEP_SECONDS = 60
PREVIEW_LINK_FORMAT = "mp3"


@dataclass(frozen=True)
class Preview:
    voice: Voice
    key: str
    duration: float
    format: str
    text: str


def preview_text(voice: Voice, text: str | None) -> str:
    default = DEFAULT_PREVIEW_TEXTS.get(language_family(voice.language or "en"), DEFAULT_PREVIEW_TEXT)
    text = (text or default.format(name=voice.name)).strip()
    if not text:
        raise InvalidInput("Preview text is empty", param="text")
    if len(text.split()) > MAX_PREVIEW_WORDS:
        raise InvalidInput(f"Preview text is limited to {MAX_PREVIEW_WORDS} words", param="text")
    return text


def _key(voice: Voice, text: str, fmt: str, speed: float, pitch: float) -> str:
    digest = hashlib.sha256(json.dumps([text, fmt, round(speed, 3), round(pitch, 3)]).encode()).hexdigest()[
        :32
    ]
    return f"{voice_storage_prefix(voice)}previews/{digest}.{file_extension(fmt)}"


def get_preview(
    store: BlobStore,
    settings: Settings,
    voice: Voice,
    *,
    text: str | None = None,
    fmt: str = "mp3",
    speed: float = 1.0,
    pitch: float = 0.0,
    generate: bool = True,
) -> Preview:
    """The cached preview, made now if missing (NotFound when not allowed to make it)."""
    if voice.status != "completed":
        raise InvalidInput(
            f"Voice {voice.voice_id} is {voice.status.upper()}; previews need a COMPLETED voice"
        )
    text = preview_text(voice, text)
    key = _key(voice, text, fmt, speed, pitch)
    meta_key = key.rsplit(".", 1)[0] + ".json"
    if store.exists(meta_key) and store.exists(key):
        meta = json.loads(store.get(meta_key))
        return Preview(voice, key, float(meta["duration"]), fmt, text)
    if not generate:
        raise NotFound("No preview exists for this voice and these settings")
    synthesizer = synthesizer_for(voice, store, settings)
    language = reading_language(
        text, declared=None, languages=synthesizer.languages, voice_name=voice.name, settings=settings
    )
    audio = synthesize(synthesizer, text, speed=speed, pitch=pitch, language=language)
    duration = round(len(audio) / synthesizer.sample_rate, 3)
    store.put(key, encode_audio(audio, synthesizer.sample_rate, fmt), content_type(fmt))
    store.put(meta_key, json.dumps({"duration": duration}).encode(), "application/json")
    return Preview(voice, key, duration, fmt, text)


def batch_previews(
    store: BlobStore,
    settings: Settings,
    voices: list[Voice],
    *,
    text: str,
    fmt: str,
    speed: float,
    pitch: float,
) -> list[Preview]:
    """Previews of several voices with the same text, synthesized concurrently."""

    def one(voice: Voice) -> Preview:
        return get_preview(store, settings, voice, text=text, fmt=fmt, speed=speed, pitch=pitch)

    with ThreadPoolExecutor(max_workers=BATCH_WORKERS, thread_name_prefix="preview") as pool:
        return list(pool.map(one, voices))


def preview_link(voice: Voice, settings: Settings, base_url: str) -> str | None:
    """`preview_url`: a signed, expiring link that plays the voice's default preview (made on the
    first play, cached after). The link is the credential, so an <audio> tag can play it.
    None while the voice cannot speak yet."""
    if voice.status != "completed" or voice.deleted_at is not None:
        return None
    # Every link to a voice made within the same minute is one token, valid at least the TTL:
    # signing twenty of them was a tenth of a voice listing's time.
    next_step = (int(time.time()) // LINK_STEP_SECONDS + 1) * LINK_STEP_SECONDS
    expires_at = next_step + settings.signed_url_ttl_seconds
    token = _preview_token(voice.uuid, expires_at, settings.secret)
    return f"{base_url.rstrip('/')}/api/v1/voice/previews/{token}"


@lru_cache(maxsize=4096)
def _preview_token(voice_uuid: str, expires_at: int, secret: str) -> str:
    return sign_token_until({"v": voice_uuid}, PREVIEW_LINK_PURPOSE, expires_at, secret)


def preview_from_link(
    session: Session, store: BlobStore, settings: Settings, token: str
) -> tuple[bytes, str]:
    """(audio, content type) of the preview a `preview_link` names; NotFound for any bad link."""
    try:
        claims = verify_token(token, PREVIEW_LINK_PURPOSE, settings.secret)
        voice = get_voice_by_uuid(session, str(claims.get("v", "")))
        preview = get_preview(store, settings, voice, fmt=PREVIEW_LINK_FORMAT)
    except (Unauthorized, InvalidInput) as exc:
        raise NotFound("Preview not found or link expired") from exc
    return store.get(preview.key), content_type(PREVIEW_LINK_FORMAT)
