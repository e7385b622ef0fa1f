"""A daemon thread that runs one chore every `interval` seconds until stopped (the reconciler,
the model janitor, a job's lease heartbeat, a transcribing worker's alive key); a failing pass is
logged and the next one runs as usual. As a context manager it runs for the `with` block."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicThread(threading.Thread):
    def __init__(self, name: str, interval: float, chore: Callable[[], object]) -> None:
        super().__init__(daemon=True, name=name)
        self.interval, self.chore = interval, chore
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.chore()
            except Exception:
                log.exception("%s pass failed", self.name)

    def stop(self) -> None:
        self._stop_event.set()

    def __enter__(self) -> PeriodicThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.join(timeout=5)
