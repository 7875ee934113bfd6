"""Keep the leases of this process's running runs alive while it works on them."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence

from taskcache.catalog import Catalog
from taskcache.records import Claim

log = logging.getLogger("taskcache")


class LeaseKeeper:
    """One daemon thread per runner renewing the leases of every claim it holds, all in one
    transaction, every ``interval`` seconds (at most half the lease).

    A run is held from its claim until it is recorded (``with keeper.holding(claims):``),
    including while it waits in a sweep's queue; held twice, it stays held until both
    holds end. A claim whose lease was lost (another process took the run over after this
    one stalled) is dropped with a warning; completion is fenced by the lease token, so
    nothing is overwritten. If this process dies, nothing renews its leases and other
    processes take its runs over once they expire.
    """

    def __init__(self, catalog: Catalog, *, lease: float, interval: float) -> None:
        self._catalog = catalog
        self._lease = lease
        self._interval = max(0.01, min(interval, lease / 2))
        self._lock = threading.Lock()
        self._held: dict[int, tuple[Claim, int]] = {}  # run id -> (claim, holds)
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @contextlib.contextmanager
    def holding(self, claims: Sequence[Claim]) -> Iterator[None]:
        """Keep the leases of ``claims`` alive in the body."""
        self.hold(claims)
        try:
            yield
        finally:
            self.release(claims)

    def hold(self, claims: Sequence[Claim]) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's runs are not its own
                self._held.clear()
                self._thread = None
                self._pid = os.getpid()
            for claim in claims:
                _, holds = self._held.get(claim.run_id, (claim, 0))
                self._held[claim.run_id] = (claim, holds + 1)
            if self._thread is None and self._held:
                self._thread = threading.Thread(target=self._beat, name="taskcache-heartbeat",
                                                daemon=True)
                self._thread.start()

    def release(self, claims: Sequence[Claim]) -> None:
        with self._lock:
            for claim in claims:
                found = self._held.get(claim.run_id)
                if found is None:
                    continue
                if found[1] > 1:
                    self._held[claim.run_id] = (found[0], found[1] - 1)
                else:
                    del self._held[claim.run_id]

    def _beat(self) -> None:
        while True:
            with self._lock:
                self._wake.wait(self._interval)
                if not self._held:  # nothing to renew: the next hold starts a new thread
                    self._thread = None
                    return
                claims = [claim for claim, _ in self._held.values()]
            try:
                renewed, lost = self._catalog.renew_leases(claims, self._lease)
            except Exception as exc:  # busy or full database, ...: try again next beat
                log.warning("taskcache: could not renew the lease of %s: %s", _runs(claims), exc)
                continue
            with self._lock:  # lost or finished: nothing more to renew
                for claim in claims:
                    found = self._held.get(claim.run_id)
                    if claim.run_id not in renewed and found is not None and found[0] == claim:
                        del self._held[claim.run_id]
            for claim in claims:
                if claim.run_id in lost:
                    log.warning("taskcache: run #%s lost its lease; its result will not be "
                                "recorded", claim.run_id)


def _runs(claims: Sequence[Claim]) -> str:
    shown = ", ".join(f"#{claim.run_id}" for claim in claims[:5])
    return f"run {shown}" if len(claims) == 1 else f"runs {shown}" + (
        f" and {len(claims) - 5} more" if len(claims) > 5 else "")
