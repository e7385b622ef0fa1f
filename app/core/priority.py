"""Heavy compute yields the CPU to request handling.

On a small machine a Whisper decode or a clone job keeps every core busy; at equal priority the
event loop waits its turn behind it and cheap requests (list voices, status polls) see their tail
latency grow with the load. Linux keeps a nice value per thread, lets a thread raise its own
without privileges, and gives it to every thread that thread creates. So a worker process lowers
its main thread before it starts anything, and an engine whose compute threads live inside a
native library (CTranslate2 for Whisper) is built from a lowered thread: its pool inherits it.
Elsewhere (not Linux, or nice 0) these are no-ops.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def thread_nice() -> int | None:
    """The calling thread's nice value (None where threads have none of their own)."""
    if not sys.platform.startswith("linux"):
        return None
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def lower_current_thread(nice: int) -> None:
    """Raise the calling thread's nice value to `nice` (never lowers it: that needs privileges)."""
    current = thread_nice() if nice > 0 else None
    if current is None or current >= nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(nice, 19))
    except OSError as exc:  # a sandbox may forbid it; running at normal priority is still correct
        log.warning("could not lower thread priority to nice %s: %s", nice, exc)


def call_lowered(fn: Callable[[], T], nice: int) -> T:
    """Run `fn` on a new thread lowered to `nice` and return its result (or raise its error).

    For constructors of native engines: their worker threads, created inside, inherit the nice
    value, while the calling thread (an API thread) keeps its own.
    """
    if nice <= 0 or thread_nice() is None:
        return fn()
    box: dict[str, object] = {}

    def target() -> None:
        lower_current_thread(nice)
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="chorus-lowered-init", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
