"""The global random generators (numpy's legacy ``np.random.*`` and Python's ``random``) as a
run found and left them.

A cell that draws (``np.random.standard_normal(4)``) or seeds (``np.random.seed(12345)``)
changes a state that lives outside the namespace and that every later draw depends on. A run
records, for each generator it changed, the state it left (:func:`changes`), and what it found:
nothing (the cell seeded the generator before anything else could draw), the hash of the state,
or :data:`ENTROPY`. A hit is only right when the generator is in what the run found
(:func:`matches`); it sets the state the run left (:func:`apply`), so later cells draw the same
numbers as after a real run.

**Fresh entropy.** Both modules seed their generator from the operating system when they are
imported, so an unseeded generator is in a new state in every process: a run that found one
could never be matched by hash. A state that is still that fresh entropy is recorded as
:data:`ENTROPY` and matches any other fresh one: a real run would draw numbers nobody can
predict, and the hit gives one real run's numbers. A state is fresh while this module can
vouch that nobody seeded the generator or could have kept a copy of its state since the OS
seeded it:

- it is the state found right after the module was imported (:func:`watch_imports` wraps the
  import of ``random`` and ``numpy.random``), or the state found when taskcache was loaded
  if the caller proved that no code could have seeded it before (:func:`trust`);
- or it is the state a run (or its hit) left that started from fresh entropy and whose code
  mentions no seeding (``seed``, ``setstate``, ``set_state``);
- and the generator has not been seen in any other state since (:func:`observe`, after each
  cell), nor has a cell named a way to copy or set its state (``getstate``/``setstate``,
  ``get_state``/``set_state``): ``st = random.getstate()`` then ``random.setstate(st)`` later
  brings back a state whose draws the user has seen.

Anything else is a seeded state: it matches only the same state, and never ENTROPY. When in
doubt a state is not fresh, which costs a miss, never a wrong hit.

**Where a run executes.** A ``@task`` call runs in the caller's thread, and records and matches
as a cell does. Outside the main thread (a pool's threads, Dask's) other threads draw from the
same generators meanwhile, so what such a run found is :data:`UNKNOWN`, which matches nothing.
A run in another process (a worker) records the state it found there; a call that a pool would
run (``map``, ``submit``) cannot know the state its worker will find, so only a run that seeded
every generator it changed serves it (``matches(..., known=False)``), and its hit leaves the
caller's generators alone, as a run on processes or Dask would.
"""

from __future__ import annotations

import importlib.abc
import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from taskcache.hashing import hash_value
from taskcache.records import RANDOM_STATE, ArtifactRecord, RunRecord

#: what a run found in a generator that was still fresh entropy (see the module docstring)
ENTROPY = "entropy"
#: what a run found in a generator other threads could draw from meanwhile: matches nothing
UNKNOWN = "unknown"

#: generator -> {"before": ENTROPY, the hash of the state found, or None when it did not
#: matter; "after": the state left, JSON-like; "fresh_after": True when that state is still
#: fresh entropy}
RandomRecord = dict[str, dict[str, Any]]

#: the module whose import seeds each generator from the operating system
_SEEDED_BY_IMPORT = {"random": "random", "numpy.random": "numpy"}
#: code that can copy a generator's state or set it back (a copy brings back draws seen before)
_COPIES = {"random": re.compile(r"getstate|setstate|_inst\b"),
           "numpy": re.compile(r"get_state|set_state|_rand\b|bit_generator")}
#: code that can seed a generator: the state a run leaves is fresh only if its code has none
_SEEDS = re.compile(r"seed|setstate|set_state")


def _numpy_state() -> Any:
    # the module itself, not ``np.random``: right after its import (see _ImportWatch) the
    # attribute is not on numpy yet
    module = sys.modules.get("numpy.random")
    if module is None:
        return None
    name, key, pos, has_gauss, gauss = module.get_state()
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

#: generator -> its state, while that state is fresh entropy (see the module docstring), as
#: :func:`_token` gives it
_fresh: dict[str, Any] = {}


def _token(name: str) -> Any:
    """The state of generator ``name`` in a form quick to take and compare (it is taken after
    every cell), or None when its module is not imported."""
    if name == "random":
        module = sys.modules.get("random")
        return None if module is None else module.getstate()
    module = sys.modules.get("numpy.random")
    if module is None:
        return None
    _, key, pos, has_gauss, gauss = module.get_state()
    return key.tobytes(), pos, has_gauss, gauss


class _ImportWatch(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``random`` or ``numpy.random`` is first imported, wraps its
    loader's ``exec_module`` so the generator's state right after the module ran (seeded by
    the OS, seen by nobody yet) is known to be fresh."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> Any:
        generator = _SEEDED_BY_IMPORT.get(fullname)
        if generator is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            trust([generator])

        # on the loader instance (one per module file), so the module's __loader__ is unchanged
        loader.exec_module = exec_module
        return spec


_watch = _ImportWatch()


def watch_imports() -> None:
    """From now on, know the state each generator has right after its module is imported."""
    if _watch not in sys.meta_path:
        sys.meta_path.insert(0, _watch)


def unwatch() -> None:
    """Stop watching imports and forget which states are fresh (nothing observes them now)."""
    if _watch in sys.meta_path:
        sys.meta_path.remove(_watch)
    _fresh.clear()


def trust(generators: Iterable[str]) -> None:
    """Take the current state of ``generators`` (those imported) as fresh entropy. Only for a
    caller that knows nobody seeded them or copied their state since the OS seeded them."""
    for name in generators:
        state = _token(name)
        if state is not None:
            _fresh[name] = state


def is_fresh(name: str) -> bool:
    """Whether generator ``name`` is still fresh entropy; also true for one whose module is
    not imported yet while imports are watched (a real run would import it fresh)."""
    state = _token(name)
    if state is None:
        return _watch in sys.meta_path
    return name in _fresh and _fresh[name] == state


def fresh_generators() -> set[str]:
    """The generators that are fresh entropy now (see :func:`is_fresh`)."""
    return {name for name in _GENERATORS if is_fresh(name)}


def observe(source: str = "") -> None:
    """After code ran (``source``, a cell's text): a generator is no longer fresh when its
    state moved, or when the code names a way to copy or set its state."""
    for name in list(_fresh):
        if _COPIES[name].search(source) or _token(name) != _fresh[name]:
            del _fresh[name]


def snapshot() -> dict[str, Any]:
    """The state of each global generator whose module is imported."""
    states = {}
    for name, (read, _) in _GENERATORS.items():
        state = read()
        if state is not None:
            states[name] = state
    return states


def knowable() -> bool:
    """Whether code running now alone draws from the global generators while it runs: in
    the main thread; not in a pool's thread (see the module docstring)."""
    return threading.current_thread() is threading.main_thread()


def found() -> dict[str, str]:
    """What a run starting now finds in each generator: ENTROPY or the hash of its state
    (kept with the run, so ``why`` can tell fresh from seeded)."""
    states = snapshot()
    return {name: ENTROPY if is_fresh(name) else hash_value(states[name])
            for name in _GENERATORS if name in states or is_fresh(name)}


def changes(before: dict[str, Any], after: dict[str, Any], seeded: Iterable[str] = (),
            fresh: Iterable[str] = (), source: str = "", *, known: bool = True) -> RandomRecord:
    """What a run did to the generators: for each one whose state changed, the state it
    left and what it found: None for those in ``seeded`` (the code set their state before
    drawing, so the state it found does not matter), ENTROPY for those in ``fresh`` (fresh
    when the run started) or imported by the run, else the hash of the state; UNKNOWN
    instead of those two when not ``known`` (other threads may have drawn meanwhile: see
    :func:`knowable`). The state left by a run that found ENTROPY is fresh too when
    ``source`` (the code) mentions no seeding (see :func:`settle`)."""
    seeded, fresh = set(seeded), set(fresh)
    record: RandomRecord = {}
    for name, state in after.items():
        old = before.get(name)
        if old == state:
            continue
        if name in seeded:
            what = None
        elif not known:
            what = UNKNOWN
        elif old is None or name in fresh:
            what = ENTROPY
        else:
            what = hash_value(old)
        record[name] = {"before": what, "after": state}
        if what == ENTROPY and not _SEEDS.search(source):
            record[name]["fresh_after"] = True
    return record


def matches(record: RandomRecord | None, *, known: bool = True) -> bool:
    """Whether each generator is in what the run found (so its draws would be the ones the
    run made, or as unpredictable as they were). Not ``known``: the call would run where
    the generators' state cannot be known here (a pool worker), so only a run that seeded
    every generator it changed matches."""
    if not record:
        return True
    if not known:
        return all(entry["before"] is None for entry in record.values())
    now = snapshot()
    for name, entry in record.items():
        wanted = entry["before"]
        if wanted is None:
            continue
        if wanted == UNKNOWN:
            return False
        if wanted == ENTROPY:
            if not is_fresh(name):
                return False
        elif name not in now or hash_value(now[name]) != wanted:
            return False
    return True


def run_matches(run: RunRecord, load: Callable[[ArtifactRecord], Any], *,
                known: bool = True) -> bool:
    """:func:`matches` for a completed run of the catalog, whose record is read with
    ``load`` (the runner's ``load_artifact``) only when it has one (it drew or seeded)."""
    drawn = next((a for a in run.artifacts if a.name == RANDOM_STATE), None)
    return drawn is None or matches(load(drawn), known=known)


def apply(record: RandomRecord | None) -> None:
    """Leave each generator in the state the run left it."""
    for name, entry in (record or {}).items():
        _GENERATORS[name][1](entry["after"])
    settle(record)


def settle(record: RandomRecord | None) -> None:
    """After a run (or, from :func:`apply`, a hit) left the generators as in ``record``: take
    those whose state it marks ``fresh_after`` as fresh, and the others it changed as not."""
    for name, entry in (record or {}).items():
        if entry.get("fresh_after"):
            _fresh[name] = _token(name)
        else:
            _fresh.pop(name, None)
