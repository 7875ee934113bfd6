"""Keep a running run's lease alive while its body executes."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from taskcache.catalog import Catalog
from taskcache.records import Claim

log = logging.getLogger("taskcache")


class Heartbeat:
    """A daemon thread renewing ``claim``'s lease every ``interval`` seconds until exit.

    If renewal reports the lease lost (another process took the run over after this one
    stalled), it stops; completion is fenced by the lease token, so nothing is overwritten.
    """

    def __init__(self, catalog: Catalog, claim: Claim, *, lease: float, interval: float) -> None:
        self._catalog = catalog
        self._claim = claim
        self._lease = lease
        self._interval = max(0.01, min(interval, lease / 2))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"taskcache-heartbeat-{claim.run_id}",
                                        daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if not self._catalog.renew_lease(self._claim, self._lease):
                    log.warning("taskcache: run #%s lost its lease; its result will not be recorded",
                                self._claim.run_id)
                    return
            except Exception as exc:  # busy or full database, ...: try again next beat
                log.warning("taskcache: could not renew the lease of run #%s: %s", self._claim.run_id, exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
