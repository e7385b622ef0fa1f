"""Which processor the engines run on (`CHORUS_DEVICE=auto|cpu|cuda`).

auto: a CUDA GPU when this process can use one (onnxruntime's CUDA provider for Piper and Kokoro,
CTranslate2's CUDA build for Whisper), else the CPU. cuda: the same, but a host without a usable
GPU says so in the log and runs on the CPU rather than not at all. cpu: never the GPU. The GPU
lock (requirements-gpu.lock) installs the CUDA builds; the CPU lock has none, so everything
here falls back to the CPU on a machine like CI's.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import onnxruntime

log = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


@lru_cache(maxsize=8)
def _warn_once(what: str) -> None:
    log.warning("CHORUS_DEVICE=cuda but %s: running on the CPU", what)


def onnx_providers(device: str) -> list[str]:
    """onnxruntime execution providers, best first (the CPU is always the last resort)."""
    if device == "cpu":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER in onnxruntime.get_available_providers():
        return [CUDA_PROVIDER, CPU_PROVIDER]
    if device == "cuda":
        _warn_once("onnxruntime has no CUDA provider here")
    return [CPU_PROVIDER]


def shared_cpu_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    """Session options for an engine that shares the cores with Whisper, WORLD and other
    requests: no busy-waiting between ops, and (when `threads` is given) that many threads for
    an op and one for the graph. Every other setting is onnxruntime's default (all graph
    optimisations)."""
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def whisper_device(device: str) -> tuple[str, str]:
    """CTranslate2 (device, compute type) for Whisper: float16 on a GPU, int8 on the CPU."""
    if device != "cpu":
        try:
            import ctranslate2

            if ctranslate2.get_cuda_device_count() > 0:
                return "cuda", "float16"
        except Exception:  # a CPU-only build, or a driver that does not answer
            pass
        if device == "cuda":
            _warn_once("CTranslate2 sees no CUDA device")
    return "cpu", "int8"
