"""Fixed-window rate limits per API key (per client address when none): Redis, or memory."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when the window ends

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_at - int(time.time()))


class RateLimiter(Protocol):
    # True when hit() waits on the network: callers on an event loop run it in a thread.
    blocking: bool

    def hit(self, identity: str) -> RateDecision: ...


def _window() -> tuple[int, int]:
    now = int(time.time())
    start = now - now % WINDOW_SECONDS
    return start, start + WINDOW_SECONDS


class MemoryRateLimiter:
    blocking = False

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def hit(self, identity: str) -> RateDecision:
        start, reset = _window()
        with self._lock:
            if len(self._counts) > 10_000:  # drop old windows
                self._counts = {k: v for k, v in self._counts.items() if k[1] == start}
            count = self._counts.get((identity, start), 0) + 1
            self._counts[(identity, start)] = count
        return RateDecision(count <= self.limit, self.limit, max(0, self.limit - count), reset)


class RedisRateLimiter:
    blocking = True
    RETRY_AFTER_FAILURE_SECONDS = 5.0

    def __init__(self, redis_url: str, limit: int) -> None:
        from redis import Redis

        self.redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        self.limit = limit
        self._fallback = MemoryRateLimiter(limit)
        self._down_until = 0.0

    def hit(self, identity: str) -> RateDecision:
        from redis.exceptions import RedisError

        # Redis down must not take the API down with it: limit per process meanwhile, and do not
        # make every request wait out a connect timeout before finding that out again.
        if time.monotonic() < self._down_until:
            return self._fallback.hit(identity)
        start, reset = _window()
        key = f"chorus:rl:{identity}:{start}"
        try:
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS + 5)
            count = int(pipe.execute()[0])
        except RedisError:
            self._down_until = time.monotonic() + self.RETRY_AFTER_FAILURE_SECONDS
            return self._fallback.hit(identity)
        return RateDecision(count <= self.limit, self.limit, max(0, self.limit - count), reset)
