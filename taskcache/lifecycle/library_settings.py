"""Library settings a run changes, applied again on a hit.

``np.set_printoptions(precision=4)``, ``pd.options.display.max_rows = 20`` and
``plt.rc("figure", figsize=(10, 6))`` change how every later cell shows its results, but
they live in numpy, pandas and matplotlib, not in the namespace: a hit that restored the
variables alone would leave the notebook printing differently from then on. So a run
compares these settings before and after (:func:`snapshot`, :func:`changes`), stores what
changed, and a hit applies it (:func:`apply`).

A library the run imported for the first time is compared with its defaults.
"""

from __future__ import annotations

import contextvars
import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

#: library -> {setting: value}
Settings = dict[str, dict[str, Any]]


def _numpy(module: Any) -> dict[str, Any]:
    return dict(module.get_printoptions())


def _numpy_defaults(module: Any) -> dict[str, Any]:
    # print options live in a context variable: an empty context shows their defaults
    return dict(contextvars.Context().run(module.get_printoptions))


def _set_numpy(module: Any, values: Mapping[str, Any]) -> None:
    module.set_printoptions(**values)


def _pandas_keys(module: Any) -> list[str]:
    from pandas._config import config

    deprecated = getattr(config, "_deprecated_options", {})
    return [key for key in config._registered_options if key not in deprecated]


def _pandas(module: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {key: module.get_option(key) for key in _pandas_keys(module)}


def _pandas_defaults(module: Any) -> dict[str, Any]:
    from pandas._config import config

    return {key: config._registered_options[key].defval for key in _pandas_keys(module)}


def _set_pandas(module: Any, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        module.set_option(key, value)


#: rcParams that choose the backend: set by the kernel, never replayed
_BACKEND_PARAMS = frozenset({"backend", "backend_fallback", "interactive"})


def _matplotlib(module: Any) -> dict[str, Any]:
    return {k: v for k, v in module.rcParams.items() if k not in _BACKEND_PARAMS}


def _matplotlib_defaults(module: Any) -> dict[str, Any]:
    # as at import, after the user's matplotlibrc
    return {k: v for k, v in module.rcParamsOrig.items() if k not in _BACKEND_PARAMS}


def _set_matplotlib(module: Any, values: Mapping[str, Any]) -> None:
    module.rcParams.update(values)


_Reader = Callable[[Any], dict[str, Any]]
_LIBRARIES: dict[str, tuple[_Reader, _Reader, Callable[[Any, Mapping[str, Any]], None]]] = {
    "numpy": (_numpy, _numpy_defaults, _set_numpy),
    "pandas": (_pandas, _pandas_defaults, _set_pandas),
    "matplotlib": (_matplotlib, _matplotlib_defaults, _set_matplotlib),
}


def snapshot() -> Settings:
    """The current settings of the libraries imported so far."""
    state: Settings = {}
    for name, (read, _, _) in _LIBRARIES.items():
        module = sys.modules.get(name)
        if module is not None:
            try:
                state[name] = read(module)
            except Exception:  # another version without these APIs: nothing to compare
                continue
    return state


def changes(before: Settings, after: Settings) -> Settings:
    """The settings that differ in ``after`` (a library missing from ``before`` was imported
    meanwhile: compared with its defaults)."""
    changed: Settings = {}
    for name, values in after.items():
        old = before.get(name)
        if old is None:
            try:
                old = _LIBRARIES[name][1](sys.modules[name])
            except Exception:
                old = {}
        diff = {key: value for key, value in values.items()
                if key not in old or not _equal(old[key], value)}
        if diff:
            changed[name] = diff
    return changed


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an array-valued comparison, say: count it as changed
        return False


def apply(settings: Settings | None) -> None:
    """Set what a run changed again (importing the library if needed). Raises what the
    library raises for a setting it no longer has."""
    for name, values in (settings or {}).items():
        module = importlib.import_module(name)
        _LIBRARIES[name][2](module, values)
