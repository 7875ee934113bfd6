"""The global random generators (numpy's legacy ``np.random.*`` and Python's ``random``) as a
run found and left them.

A cell that draws (``np.random.standard_normal(4)``) or seeds (``np.random.seed(12345)``)
changes a state that lives outside the namespace and that every later draw depends on. A run
records, for each generator it changed, the state it left (:func:`changes`), and, unless
the cell seeded the generator before anything else could draw, a hash of the state it
found. A hit is then only right when today's state is the one the run found
(:func:`matches`); it sets the state the run left (:func:`apply`), so later cells draw the
same numbers as after a real run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from taskcache.hashing import hash_value

#: generator -> {"before": hash of the state found, or None when it did not matter,
#: "after": the state left, JSON-like}
RandomRecord = dict[str, dict[str, Any]]


def _numpy_state() -> Any:
    np = sys.modules.get("numpy")
    if np is None:
        return None
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return [name, key.tolist(), int(pos), int(has_gauss), float(gauss)]


def _set_numpy(state: Any) -> None:
    import numpy as np

    name, key, pos, has_gauss, gauss = state
    np.random.set_state((name, np.array(key, dtype=np.uint32), pos, has_gauss, gauss))


def _python_state() -> Any:
    if "random" not in sys.modules:
        return None
    version, internal, gauss = sys.modules["random"].getstate()
    return [version, list(internal), gauss]


def _set_python(state: Any) -> None:
    import random

    version, internal, gauss = state
    random.setstate((version, tuple(internal), gauss))


_GENERATORS = {"numpy": (_numpy_state, _set_numpy), "random": (_python_state, _set_python)}


def snapshot() -> dict[str, Any]:
    """The state of each global generator whose module is imported."""
    states = {}
    for name, (read, _) in _GENERATORS.items():
        state = read()
        if state is not None:
            states[name] = state
    return states


def changes(before: dict[str, Any], after: dict[str, Any], seeded: Iterable[str] = ()) -> RandomRecord:
    """What a run did to the generators: for each one whose state changed, the state it
    left and the hash of the one it found (None for those in ``seeded``: the cell set
    their state before drawing, so the state it found does not matter)."""
    seeded = set(seeded)
    record: RandomRecord = {}
    for name, state in after.items():
        old = before.get(name)
        if old == state:
            continue
        found = None if name in seeded or old is None else hash_value(old)
        record[name] = {"before": found, "after": state}
    return record


def matches(record: RandomRecord | None) -> bool:
    """Whether each generator is in the state the run found (so its draws would be the
    ones the run made)."""
    if not record:
        return True
    now = snapshot()
    return all(
        entry["before"] is None or (name in now and hash_value(now[name]) == entry["before"])
        for name, entry in record.items()
    )


def apply(record: RandomRecord | None) -> None:
    """Leave each generator in the state the run left it."""
    for name, entry in (record or {}).items():
        _GENERATORS[name][1](entry["after"])
