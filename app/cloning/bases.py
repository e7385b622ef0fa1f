"""Where a clone starts: the base voice nearest the speaker, before any timbre transfer.

Two kinds of base:
- Piper joe (and operator-installed Piper voices of the sample's language): the CPU clone's
  original base; it reads only its own language;
- a blend of the voice bank (Kokoro-82M): the bank voices whose own speech is nearest the
  sample's, weighted by how near. Every bank voice is embedded once per process reading
  BANK_TEXT; the four nearest to the sample are blended with softmax(BLEND_SHARPNESS x cosine)
  weights. Measured on 19 LibriSpeech speakers (Resemblyzer / d-vector, held-out clip): the
  nearest voice alone 0.654 / 0.560, the blend of four 0.655 / 0.589 (the second judge prefers
  the blend), joe 0.531 / 0.411. A walk in the style space around the blend (15 steps, ~45 s)
  gained +0.018 on Resemblyzer and lost 0.028 on the d-vector judge: not kept.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any, cast

import numpy as np

from app.core.config import Settings
from app.engines import catalogue
from app.engines.base import SpeakerEmbedder
from app.engines.cache import load_once
from app.engines.speaker import cosine

BANK_TEXT = "The wide road shimmered in the hot sun. The lazy cow lay in the cool grass."
BLEND_SIZE = 4
BLEND_SHARPNESS = 20.0  # cosines of the nearest voices differ by ~0.01-0.05: weights 1 : 0.8 : 0.5
BankEmbeddings = dict[str, np.ndarray]
log = logging.getLogger(__name__)
_bank_lock = threading.Lock()


def bank_candidates(language: str | None) -> list[str]:
    """Bank voices a clone may start from: the English voices (the bank's largest, best-graded
    set; speaker identity carries across languages) plus those of the sample's language."""
    from app.engines.languages import language_family

    family = language_family(language) if language else "en"
    return [v.key for v in catalogue.KOKORO_VOICES if v.language in ("en", family)]


def bank_embeddings(settings: Settings, encoder: SpeakerEmbedder, keys: list[str]) -> BankEmbeddings:
    """Each bank voice reading BANK_TEXT, embedded: ~1-2 s per voice on 2 cores, so they are
    kept in memory and, where the voice packs' folder is writable, in a file beside them (both
    keyed by the model, the text and the encoder), computed once per installation."""
    from app.engines.tts.kokoro import SAMPLE_RATE, KokoroSynthesizer, get_kokoro_engine, voices_dir

    # Keyed as the file is: another encoder's embeddings are other numbers for the same voices.
    tag = _cache_tag(encoder)
    cache: BankEmbeddings = load_once(f"clone-bank-embeddings-{tag}", dict)
    missing = [k for k in keys if k not in cache]
    if not missing:
        return {k: cache[k] for k in keys}
    with _bank_lock:
        path = voices_dir(settings) / f"clone-bank-{tag}.npz"
        if not cache and path.is_file():
            try:
                with np.load(path) as stored:
                    cache.update({key: np.asarray(stored[key]) for key in stored.files})
            except (OSError, ValueError):
                log.warning("unreadable clone bank cache %s; recomputing", path)
        missing = [k for k in keys if k not in cache]
        if missing:
            engine = get_kokoro_engine(settings)
            for key in missing:
                audio = np.concatenate(list(KokoroSynthesizer(key, engine, ((key, 1.0),)).stream(BANK_TEXT)))
                cache[key] = encoder.embed(audio, SAMPLE_RATE)
            try:
                partial = path.with_suffix(".tmp.npz")
                np.savez(partial, **cast(dict[str, Any], cache))
                partial.replace(path)
            except OSError:  # a read-only install: memory only
                pass
    return {k: cache[k] for k in keys}


def _cache_tag(encoder: SpeakerEmbedder) -> str:
    from app.engines.speaker.encoder import JUDGING_LUFS
    from app.engines.tts.kokoro import MODEL_SHA256

    # The level the encoders hear at is part of what an embedding means (stored ones before it
    # was fixed are recomputed).
    encoder_name = f"{type(encoder).__module__}.{type(encoder).__qualname__}"
    text = f"{MODEL_SHA256}|{BANK_TEXT}|{encoder_name}|{JUDGING_LUFS}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def nearest_blend(target: np.ndarray, bank: BankEmbeddings) -> tuple[tuple[str, float], ...]:
    """The BLEND_SIZE bank voices nearest `target`, softmax-weighted by cosine (weights sum to 1)."""
    ranked = sorted(((cosine(emb, target), key) for key, emb in bank.items()), reverse=True)[:BLEND_SIZE]
    scores = np.array([s for s, _ in ranked])
    weights = np.exp(BLEND_SHARPNESS * (scores - scores.max()))
    weights /= weights.sum()
    return tuple((key, round(float(w), 4)) for (_, key), w in zip(ranked, weights, strict=True))
