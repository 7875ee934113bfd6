"""Event hooks: ``taskcache.on("completed", fn)``; called after the change is committed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

EVENTS = ("running", "completed", "failed", "cancelled", "hit")

_log = logging.getLogger("taskcache")
_lock = threading.Lock()
_handlers: dict[str, list[Callable[[Any], None]]] = {name: [] for name in EVENTS}


def on(event: str, fn: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``fn(run_record)`` after each ``event``; returns a function that unsubscribes."""
    if event not in _handlers:
        raise ValueError(f"unknown event {event!r}; choose one of {', '.join(EVENTS)}")
    with _lock:
        _handlers[event].append(fn)

    def off() -> None:
        with _lock:
            if fn in _handlers[event]:
                _handlers[event].remove(fn)

    return off


def has_handlers(event: str) -> bool:
    """Whether anyone listens: lets the hit path skip building a payload nobody reads."""
    return bool(_handlers.get(event))


def emit(event: str, payload: Any) -> None:
    """Run the handlers of ``event``; a failing handler is logged, never raised."""
    with _lock:
        handlers = list(_handlers.get(event, ()))
    for fn in handlers:
        try:
            fn(payload)
        except Exception:  # a user's hook must not break the run lifecycle
            _log.exception("taskcache: %r handler %r failed", event, fn)
