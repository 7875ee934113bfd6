"""Library objects whose pickled form is missing or says too little to hash them by: regex
match objects, numpy ufuncs, ``np.vectorize``, array ``flags`` and closed files (registered by
type name in the package's ``__init__``, so neither numpy nor re is imported for them)."""

from __future__ import annotations

import sys
from typing import Any

from taskcache.fileio import closed_file_state, file_layers
from taskcache.hashing.core import Unhashable

#: the classes of the file objects ``open()`` makes (text, buffered, raw)
FILE_TYPES = ("_io.TextIOWrapper", "_io.BufferedReader", "_io.BufferedWriter",
              "_io.BufferedRandom", "_io.FileIO")

#: the flags an ndarray's ``.flags`` reports (a live view of its array's flags)
_ARRAY_FLAGS = ("C_CONTIGUOUS", "F_CONTIGUOUS", "OWNDATA", "WRITEABLE", "ALIGNED", "WRITEBACKIFCOPY")


def match_content(match: Any) -> tuple:
    """A ``re.Match`` by its pattern, the string searched, the bounds and what matched."""
    return (match.re, match.string, match.pos, match.endpos, match.regs, match.lastindex)


def ufunc_content(ufunc: Any) -> str:
    """A ufunc by its import name (``numpy.add``). A ufunc made by ``np.frompyfunc`` has only
    a display name and no reachable Python function: it cannot be hashed (pickle would record
    the name only, so two different ones would look equal)."""
    module = getattr(ufunc, "__module__", None) or "numpy"
    owner = sys.modules.get(module)
    if owner is not None and getattr(owner, ufunc.__name__, None) is ufunc:
        return f"{module}.{ufunc.__name__}"
    raise Unhashable(ufunc, f"the ufunc {ufunc.__name__!r} is not importable by name (made by "
                            f"np.frompyfunc?): hash the function it wraps instead")


def vectorize_content(vectorized: Any) -> tuple:
    """``np.vectorize(f, ...)`` by ``f`` (its code, as any function) and its options."""
    excluded = sorted(vectorized.excluded, key=repr)
    return (vectorized.pyfunc, vectorized.otypes, excluded, vectorized.signature, vectorized.cache)


def flags_content(flags: Any) -> dict[str, bool]:
    """An ndarray's ``.flags`` by the flags it reports now."""
    return {name: bool(flags[name]) for name in _ARRAY_FLAGS}


def file_content(file: Any) -> dict[str, Any]:
    """A closed file object (``f`` after ``with open(path) as f:``) by all it still shows:
    name, mode, encoding, the newlines it read... An open one cannot be hashed: what it
    reads or writes next depends on its position, its buffer and the file's content then."""
    state = closed_file_state(file)
    if state is None:
        layers = file_layers(file)
        what = ("an open file" if layers is not None else
                "a file object detached from its buffer or not made by open()")
        raise Unhashable(file, f"{what}: its position and buffer are state no hash describes")
    return state
