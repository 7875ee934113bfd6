"""Process-wide library state that a cell reads and changes without naming it: numpy's print
options and legacy global random generator, Python's ``random``, pandas options, matplotlib
rcParams (only those whose module is imported; more with :func:`register_state`).

A plain notebook carries such state from cell to cell: ``np.set_printoptions(precision=4)``
in the first cell changes how every later array prints, ``np.random.seed(0)`` fixes every
later draw. A ``%%task`` cell treats each registered state as an implicit input and output:

- a **setting** (print options, options, rcParams) is part of the key: the same code under
  other settings is a miss;
- a **generator** is an input only of a run that consumed it, i.e. changed it without first
  reseeding it (a seed call is seen through the module's reset functions, wrapped while the
  run executes); a hit of such a run requires the generator to be in the state the run
  started from, otherwise the cell runs again;
- what a run changed (the changed keys of a setting, the whole state of a generator it drew
  from or reseeded) is stored with the run and put back on a hit.

``@task`` functions do not use this: their key is their arguments and code, as documented.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from taskcache.hashing import hash_value

__all__ = ["ProcessState", "register_state", "unregister_state", "registered_states", "RunStates",
           "settings_key", "check", "restore"]


@dataclass(frozen=True)
class ProcessState:
    """One process-wide state.

    ``get()`` returns its value: for a setting, a ``{key: value}`` dict; for a generator,
    any value that compares and hashes by content. ``set(value)`` puts back what ``get``
    returned (a setting receives only the changed keys). ``resets`` names module functions
    (``"numpy.random.seed"``) that replace a generator's state without reading it.
    ``initial()``, for a setting, returns its value right after its module is imported, so
    a cell that imports the module stores only what it changed from there."""

    name: str
    module: str
    get: Callable[[], Any]
    set: Callable[[Any], None]
    generator: bool = False
    resets: tuple[str, ...] = ()
    initial: Callable[[], Mapping[str, Any]] | None = None


_STATES: dict[str, ProcessState] = {}
# settings: name -> (the value last hashed, its hash); the hit path hashes only on change
_MEMO: dict[str, tuple[dict[str, Any], str]] = {}


def register_state(
    name: str, module: str, get: Callable[[], Any], set: Callable[[Any], None], *,
    generator: bool = False, resets: tuple[str, ...] = (),
    initial: Callable[[], Mapping[str, Any]] | None = None,
) -> None:
    """Make ``%%task`` cells key, store and restore a process-wide state (see ProcessState);
    it counts only while ``module`` is in ``sys.modules``. Replaces a state of that name."""
    _STATES[name] = ProcessState(name, module, get, set, generator, tuple(resets), initial)
    _MEMO.pop(name, None)


def unregister_state(name: str) -> None:
    """Stop keying, storing and restoring the state ``name`` (KeyError if unknown)."""
    del _STATES[name]
    _MEMO.pop(name, None)


def registered_states() -> list[ProcessState]:
    return list(_STATES.values())


def _present() -> Iterator[ProcessState]:
    modules = sys.modules
    for state in _STATES.values():
        if state.module in modules:
            yield state


def _snapshot(value: Any) -> Any:
    """``value`` with its built-in containers copied, so that a list option changed in place
    (``rcParams["figure.figsize"][0] = 5``) differs from the snapshot taken before."""
    kind = type(value)
    if kind is dict:
        return {k: _snapshot(v) for k, v in value.items()}
    if kind in (list, tuple):
        return kind(_snapshot(v) for v in value)
    if kind is set:
        return set(value)
    return value


def _value(state: ProcessState) -> Any:
    return _snapshot(state.get())


def _setting_hash(state: ProcessState, value: dict[str, Any]) -> str:
    memo = _MEMO.get(state.name)
    if memo is not None and _same(memo[0], value):
        return memo[1]
    digest = hash_value(value, name=state.name)
    _MEMO[state.name] = (value, digest)
    return digest


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal with the same value types (1 == 1.0 == True would hide a change)."""
    try:
        return a == b and all(type(v) is type(b[k]) for k, v in a.items())
    except Exception:  # an option value with a strange __eq__: hash it again
        return False


def settings_key() -> dict[str, str]:
    """``{name: hash}`` of the settings whose module is imported: part of a cell's key.
    Raises FingerprintError naming the state when a value cannot be hashed."""
    return {s.name: _setting_hash(s, _value(s)) for s in _present() if not s.generator}


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    missing = object()
    return {k: v for k, v in after.items()
            if not (type(before.get(k, missing)) is type(v) and _equal(before.get(k), v))}


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


@dataclass
class RunStates:
    """What one run did to the registered states: ``watch()`` around the execution, then
    ``stored()`` is what to store with the run (``{name: item}``)."""

    before: dict[str, Any] = field(default_factory=dict)
    clean_reset: dict[str, bool] = field(default_factory=dict)  # generator -> reseeded unread

    @classmethod
    def capture(cls) -> RunStates:
        return cls({s.name: _value(s) for s in _present()})

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Wrap the reset functions of the generators present, for the run's duration."""
        patched: list[tuple[Any, str, Any]] = []
        try:
            for state in _present():
                if state.generator and state.name in self.before:
                    for dotted in state.resets:
                        owner_name, attr = dotted.rsplit(".", 1)
                        owner = sys.modules.get(owner_name)
                        original = getattr(owner, attr, None)
                        if original is not None:
                            setattr(owner, attr, self._reset_wrapper(state, original))
                            patched.append((owner, attr, original))
            yield
        finally:
            for owner, attr, original in reversed(patched):
                setattr(owner, attr, original)

    def _reset_wrapper(self, state: ProcessState, original: Any) -> Any:
        def reset(*args: Any, **kwargs: Any) -> Any:
            if state.name not in self.clean_reset:  # the first reset decides
                self.clean_reset[state.name] = _equal(_value(state), self.before[state.name])
            return original(*args, **kwargs)

        reset.__wrapped__ = original  # type: ignore[attr-defined]
        return reset

    def stored(self) -> dict[str, Any]:
        """The items to store: a setting's changed keys ``{"set": {...}}``; a generator's
        state ``{"state": value, "depends": hash of the state it started from, or None}``.
        Raises FingerprintError if a generator's starting state cannot be hashed."""
        items: dict[str, Any] = {}
        for state in _present():
            after = _value(state)
            if state.name not in self.before:  # imported by the run
                if state.generator:  # nothing here could have read it before: no dependency
                    items[state.name] = {"state": after, "depends": None}
                else:
                    start = state.initial() if state.initial is not None else {}
                    changes = _changed(start, after)
                    if changes:
                        items[state.name] = {"set": changes}
                continue
            before = self.before[state.name]
            if state.generator:
                reset = state.name in self.clean_reset
                if reset or not _equal(before, after):
                    depends = None if self.clean_reset.get(state.name) else hash_value(before, name=state.name)
                    items[state.name] = {"state": after, "depends": depends}
            else:
                changes = _changed(before, after)
                if changes:
                    items[state.name] = {"set": changes}
        return items


def check(items: Mapping[str, Any]) -> str | None:
    """Why stored ``items`` cannot be restored here (a generator the run drew from is in
    another state now, or a state is no longer registered); None when they can."""
    for name, item in items.items():
        state = _STATES.get(name)
        if state is None:
            return f"process state {name!r} is not registered in this process"
        depends = item.get("depends") if state.generator else None
        if depends is None:
            continue
        if state.module not in sys.modules:
            return f"{name} is not in the state the stored run drew from"
        if hash_value(_value(state), name=name) != depends:
            return f"{name} is not in the state the stored run drew from"
    return None


def restore(items: Mapping[str, Any]) -> None:
    """Put back what a run left in each state (importing a module the run imported)."""
    for name, item in items.items():
        state = _STATES[name]
        if state.module not in sys.modules:
            importlib.import_module(state.module)
        if state.generator:
            state.set(item["state"])
        else:
            state.set(item["set"])


# -- the built-in states -------------------------------------------------------------------

def _numpy_printoptions() -> dict[str, Any]:
    import numpy as np

    return np.get_printoptions()


def _set_numpy_printoptions(changes: dict[str, Any]) -> None:
    import numpy as np

    np.set_printoptions(**changes)


def _numpy_random() -> tuple:
    import numpy as np

    kind, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return (kind, tuple(key.tolist()), int(pos), int(has_gauss), float(gauss))


def _set_numpy_random(value: Any) -> None:
    import numpy as np

    kind, key, pos, has_gauss, gauss = value
    np.random.set_state((kind, np.array(key, dtype=np.uint32), pos, has_gauss, gauss))


def _python_random() -> Any:
    import random

    return random.getstate()


def _set_python_random(value: Any) -> None:
    import random

    version, words, gauss = value
    random.setstate((version, tuple(words), gauss))


def _pandas_flat(tree: Mapping[str, Any], prefix: str = "", out: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    out = {} if out is None else out
    for key, value in tree.items():
        if isinstance(value, dict):
            _pandas_flat(value, f"{prefix}{key}.", out)
        else:
            out[prefix + key] = value
    return out


def _pandas_options() -> dict[str, Any]:
    from pandas._config import config  # the options' own store: one dict walk, no lookups

    return _pandas_flat(config._global_config)


def _pandas_defaults() -> dict[str, Any]:
    from pandas._config import config

    return {key: option.defval for key, option in config._registered_options.items()}


def _set_pandas_options(changes: dict[str, Any]) -> None:
    import pandas as pd

    for key, value in changes.items():
        pd.set_option(key, value)


#: rcParams keys left alone: the backend is chosen by matplotlib and IPython, lazily
_RC_SKIP = frozenset({"backend", "backend_fallback"})


def _rc_dict(params: Any) -> dict[str, Any]:
    return {k: v for k, v in dict.items(params) if k not in _RC_SKIP}


def _rcparams() -> dict[str, Any]:
    import matplotlib

    return _rc_dict(matplotlib.rcParams)


def _rcparams_initial() -> dict[str, Any]:
    import matplotlib

    return _rc_dict(matplotlib.rcParamsOrig)


def _set_rcparams(changes: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.rcParams.update(changes)


register_state("numpy.printoptions", "numpy", _numpy_printoptions, _set_numpy_printoptions)
register_state("numpy.random", "numpy.random", _numpy_random, _set_numpy_random, generator=True,
               resets=("numpy.random.seed", "numpy.random.set_state"))
register_state("random", "random", _python_random, _set_python_random, generator=True,
               resets=("random.seed", "random.setstate"))
register_state("pandas.options", "pandas", _pandas_options, _set_pandas_options,
               initial=_pandas_defaults)
register_state("matplotlib.rcParams", "matplotlib", _rcparams, _set_rcparams,
               initial=_rcparams_initial)
