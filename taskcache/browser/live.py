"""A periodic poller for live views: calls ``tick`` every ``interval`` seconds on a daemon
thread until stopped. The panel's tick reads a cheap change marker from the catalog and
refreshes only when something changed, so a run finishing in another kernel or script shows
up on its own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("taskcache")


class Poller:
    def __init__(self, tick: Callable[[], None], interval: float, name: str) -> None:
        self._tick = tick
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._tick()
            except Exception:  # a view refresh must never kill the kernel's thread
                log.debug("taskcache: live refresh failed", exc_info=True)
