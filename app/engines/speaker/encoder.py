"""Speaker embeddings with Resemblyzer (GE2E d-vectors, weights shipped in the package).

Used to score clones against their reference and to check that built-in voices differ.
The model is small and CPU-only; forward passes run under torch.no_grad and do not
mutate the module, so one instance serves concurrent threads.
"""

from __future__ import annotations

import threading

import librosa
import numpy as np
from numpy.typing import NDArray

from app.audio import loudness_normalise
from app.engines.base import Audio

ENCODER_RATE = 16_000
# Both judges hear every clip at this loudness. Neither is level-invariant: Resemblyzer reads a
# power mel and raises quiet clips to -30 dBFS but leaves louder ones, the d-vector reads an
# unnormalised log mel. At the clips' own levels, one clone scored 0.65 or 0.78 against the same
# person by its output gain alone. At one level the same speaker scores higher and different
# speakers no higher (19 LibriSpeech speakers; docs/benchmarks.md "Judged at one loudness").
JUDGING_LUFS = -27.0


def at_judging_level(samples: NDArray[np.floating], rate: int) -> NDArray[np.float32]:
    """`samples` at the loudness speaker encoders hear (silence unchanged)."""
    return loudness_normalise(np.asarray(samples, dtype=np.float32).reshape(-1), rate, JUDGING_LUFS)


class SpeakerEncoder:
    """The SpeakerEmbedder (app.engines.base) of this server: resemblyzer.VoiceEncoder,
    embed(samples, rate) -> unit-norm 256-d vector."""

    def __init__(self, device: str = "cpu", *, torch_threads: int | None = 1) -> None:
        """torch_threads: torch's intra-op threads for this process (None leaves torch's default).

        One thread by default: the GE2E LSTM is tiny, and on a busy 2-core host torch's
        spinning worker threads made one 10 s embedding take 15 s instead of 0.2 s (measured).
        """
        import torch
        from resemblyzer import VoiceEncoder

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self._encoder = VoiceEncoder(device=device, verbose=False)
        self._warm_lock = threading.Lock()
        self.warmed = False

    @staticmethod
    def _prepare(samples: NDArray[np.floating], rate: int) -> Audio:
        from resemblyzer import preprocess_wav

        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if rate != ENCODER_RATE:
            x = librosa.resample(x, orig_sr=rate, target_sr=ENCODER_RATE)
        x = np.clip(x, -1.0, 1.0)
        # preprocess_wav: volume normalisation (up only) and VAD trimming of long silences.
        wav = preprocess_wav(x, source_sr=None)
        return wav if len(wav) >= ENCODER_RATE // 4 else x

    def embed(self, samples: NDArray[np.floating], rate: int) -> Audio:
        """One utterance embedding (float32, L2-normalised)."""
        x = np.asarray(samples).reshape(-1)
        if len(x) < rate * 0.1:
            raise ValueError("Audio too short for a speaker embedding (need at least 0.1 s)")
        emb = self._encoder.embed_utterance(self._prepare(at_judging_level(x, rate), rate))
        return (emb / (np.linalg.norm(emb) + 1e-12)).astype(np.float32)

    def warm(self) -> None:
        """First call is slow (numba JIT in librosa/resemblyzer helpers): pay it at start-up."""
        with self._warm_lock:
            if self.warmed:
                return
            rng = np.random.default_rng(0)
            self._encoder.embed_utterance(rng.uniform(-0.1, 0.1, ENCODER_RATE).astype(np.float32))
            self.embed(rng.uniform(-0.1, 0.1, ENCODER_RATE).astype(np.float32), ENCODER_RATE)
            self.warmed = True


def cosine(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    """Cosine similarity of two embeddings."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
