"""Library objects whose pickled form is missing or says too little to hash them by: regex
match objects, numpy ufuncs, ``np.vectorize`` and array ``flags`` (registered by type name in
the package's ``__init__``, so neither numpy nor re is imported for them)."""

from __future__ import annotations

import sys
from typing import Any

from taskcache.hashing.core import Unhashable

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
