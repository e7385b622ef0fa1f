"""One way for tests to wait on a job or a server-side condition.

A wait bounds a hang; it is not a timing assertion. The bound is generous so that a 2-core
machine loaded by other work still finishes (CI saw clones take over 180 s under load).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

JOB_WAIT_S = float(os.environ.get("CHORUS_TEST_WAIT_S", "900"))


def wait_until(
    read: Callable[[], T],
    done: Callable[[T], object] = bool,
    timeout: float = JOB_WAIT_S,
    interval: float = 0.2,
) -> T:
    """Call `read` until `done(value)` holds; return that value. Fails naming the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout:.0f} s; last seen: {value!r}")
        time.sleep(interval)
