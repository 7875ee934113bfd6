"""Progress of a sweep: counts the lifecycle keeps, and a bar a shell draws.

The lifecycle only calls the :class:`ProgressBar` interface. A terminal gets a text bar
(tqdm); the notebook shell registers its ipywidgets bar with :func:`set_progress_bar`
(``%load_ext taskcache`` does), so this layer never imports a widget library.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Counts", "ProgressBar", "SweepProgress", "open_progress", "set_progress_bar"]


@dataclass
class Counts:
    """Where a sweep of ``total`` calls stands; ``done`` includes hits and failures."""

    total: int
    title: str = ""
    done: int = 0
    hits: int = 0
    failed: int = 0
    running: int = 0
    started: float = field(default_factory=time.monotonic)

    def seconds_left(self) -> float | None:
        """Time left at the pace of the computed calls so far (hits excluded); None before
        the first one finishes."""
        computed = self.done - self.hits
        if computed <= 0 or self.done >= self.total:
            return None
        return (time.monotonic() - self.started) / computed * (self.total - self.done)

    def text(self) -> str:
        """``12/40 done · 20 hits · 1 failed · 2 running · 3 s left``"""
        parts = [f"{self.done}/{self.total} done", f"{self.hits} hits"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.running:
            parts.append(f"{self.running} running")
        left = self.seconds_left()
        if left is not None:
            parts.append(f"{left:.0f} s left")
        return " · ".join(parts)


class ProgressBar(Protocol):
    def update(self, counts: Counts) -> None:
        """Show ``counts`` (called from any thread, at most every few milliseconds)."""

    def close(self, counts: Counts) -> None:
        """The sweep ended (also on error or interruption)."""


class _TextBar:
    """tqdm on stderr."""

    def __init__(self, counts: Counts) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=counts.total, desc=counts.title or None, file=sys.stderr,
                         leave=False, dynamic_ncols=True)

    def update(self, counts: Counts) -> None:
        self._bar.set_postfix_str(f"hits={counts.hits} failed={counts.failed} "
                                  f"running={counts.running}", refresh=False)
        self._bar.update(counts.done - self._bar.n)  # redraws at most every 0.1 s

    def close(self, counts: Counts) -> None:
        self._bar.n = counts.done
        self._bar.close()


_factory: Callable[[Counts], ProgressBar] | None = None


def set_progress_bar(factory: Callable[[Counts], ProgressBar] | None) -> None:
    """Use ``factory(counts)`` for the bars of later sweeps (None: back to the text bar)."""
    global _factory
    _factory = factory


class SweepProgress:
    """Thread-safe counts of one sweep and, unless silenced, a bar showing them."""

    def __init__(self, total: int, *, title: str = "", show: bool = True) -> None:
        self.counts = Counts(total, title)
        self._lock = threading.Lock()
        self._bar: ProgressBar | None = None
        if show and total:
            self._bar = (_factory or _TextBar)(self.counts)

    def _change(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.counts, name, getattr(self.counts, name) + delta)
            if self._bar is not None:
                self._bar.update(self.counts)

    def hit(self) -> None:
        self._change(done=1, hits=1)

    def started(self) -> None:
        self._change(running=1)

    def finished(self, *, failed: bool) -> None:
        self._change(done=1, running=-1, failed=int(failed))

    def retrying(self) -> None:
        self._change(running=-1)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close(self.counts)
                self._bar = None


def open_progress(total: int, *, title: str = "", show: bool = True) -> SweepProgress:
    """A :class:`SweepProgress`; ``show=False`` counts without drawing."""
    return SweepProgress(total, title=title, show=show)
