"""How a hit keeps the aliasing a real run leaves behind.

Two things a stored copy alone would get wrong:

- **Objects changed in place.** A cell or function that mutates an object it was given
  (``items.append(3)``, ``df["b"] = 1``, ``model.fit(X)``) changes it for every other name
  holding it. A hit writes the stored state back *into the caller's object*
  (:func:`restore_in_place`) instead of binding a new one.
- **numpy views.** ``sub = x2[:2, :2]`` shares ``x2``'s memory: writing one changes the
  other. After a run, :func:`find_views` records each stored array (or numpy-backed Series)
  that shares memory with another named value as a window (offset, shape, strides) of one
  *anchor*: a contiguous array that contains it and whose state a hit knows (it is stored
  too, or it is an input, unchanged since its content is in the key). :func:`rebuild_views`
  makes the window again over the anchor at hit time.

Where this cannot be done faithfully (no anchor contains the shared memory, object arrays,
a DataFrame sharing a numpy array's memory), :func:`find_views` says so and the caller does
not cache the run: a miss costs time, a wrong aliasing costs trust. Arrays held inside
containers (a dict of arrays, an object's attribute) are not followed.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from typing import Any

#: one rebuilt view as stored (JSON-like): the anchor's name and layout, the window's layout
ViewRecord = dict[str, Any]


def can_restore_in_place(target: Any, value: Any) -> bool:
    """Whether :func:`restore_in_place` can make ``target`` hold ``value``'s state."""
    if type(target) is not type(value):
        return False
    if isinstance(target, list | dict | set | bytearray):
        return True
    np = sys.modules.get("numpy")
    if np is not None and isinstance(target, np.ndarray):
        return (target.shape == value.shape and target.dtype == value.dtype
                and bool(target.flags.writeable))
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(target, pd.DataFrame | pd.Series):
        return hasattr(target, "_update_inplace")
    return _plain_instance(target)


def restore_in_place(target: Any, value: Any) -> bool:
    """Give ``target`` the state of ``value`` (same type) without replacing the object, so
    every name holding it sees the change; False, and ``target`` untouched, where the type
    does not allow it (see :func:`can_restore_in_place`)."""
    if not can_restore_in_place(target, value):
        return False
    if isinstance(target, list | bytearray):
        target[:] = value
    elif isinstance(target, dict | set):
        target.clear()
        target.update(value)
    elif _plain_instance(target):
        target.__dict__.clear()
        target.__dict__.update(value.__dict__)
    elif hasattr(target, "_update_inplace"):  # pandas: what its own inplace=True does
        target._update_inplace(value)
        target.attrs = dict(value.attrs)
        if hasattr(target, "name"):
            target.name = value.name
    else:  # numpy, same shape and dtype
        target[...] = value
    return True


def _plain_instance(obj: Any) -> bool:
    """An instance of a user class whose state is its ``__dict__`` (no slots, no custom
    attribute access), e.g. a scikit-learn estimator after ``fit``."""
    cls = type(obj)
    return (
        hasattr(obj, "__dict__") and not hasattr(cls, "__slots__")
        and cls.__setattr__ is object.__setattr__ and cls.__getattribute__ is object.__getattribute__
        and cls.__module__ not in ("builtins", "types")
        and not isinstance(obj, type)
    )


# -- views -------------------------------------------------------------------------------------

def _memory(value: Any) -> Any:
    """The numpy array whose memory ``value`` is (an ndarray, or a numpy-backed Series), else
    None."""
    np = sys.modules.get("numpy")
    if np is None:
        return None
    if isinstance(value, np.ndarray):
        return value
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.Series):
        array = value.to_numpy(copy=False)
        return array if isinstance(array, np.ndarray) and not array.dtype.hasobject else None
    return None


def _owner(array: Any) -> int:
    """Identity of the object that owns ``array``'s memory (the end of its base chain)."""
    obj = array
    while getattr(obj, "base", None) is not None:
        obj = obj.base
    return id(obj)


def _frame_arrays(frame: Any) -> list[Any]:
    np = sys.modules["numpy"]
    arrays = []
    for _, column in frame.items():
        array = column.to_numpy(copy=False)
        if isinstance(array, np.ndarray):
            arrays.append(array)
    return arrays


def _pandas_shares_between_objects() -> bool:
    """Whether two pandas objects can alias observably (pandas before Copy-on-Write)."""
    pd = sys.modules.get("pandas")
    if pd is None:
        return False
    if int(pd.__version__.split(".")[0]) >= 3:  # Copy-on-Write is always on
        return False
    return pd.options.mode.copy_on_write is not True


def find_views(
    values: Mapping[str, Any], stored: Collection[str], trusted: Collection[str],
    in_place: Collection[str] = (),
) -> tuple[dict[str, ViewRecord], list[str]]:
    """The view relations a hit must rebuild, and the names it cannot rebuild.

    ``values`` are the named values after the run (a namespace, or a function's arguments
    and result); ``stored`` the names whose values are stored; ``trusted`` the names whose
    state a hit knows without storing them (unchanged inputs); ``in_place`` the stored names
    a hit writes back into the caller's object (their relations survive by themselves).
    Returns ``({name: record}, problems)``: each problem is a sentence naming the values.
    """
    np = sys.modules.get("numpy")
    if np is None or not stored:
        return {}, []
    from numpy.lib.array_utils import byte_bounds

    members: dict[str, Any] = {}
    problems: list[str] = []
    pd = sys.modules.get("pandas")
    for name, value in values.items():
        array = _memory(value)
        if array is not None:
            members[name] = array
        elif pd is not None and name in stored and isinstance(value, pd.DataFrame):
            for i, array in enumerate(_frame_arrays(value)):  # never anchors, never rebuilt
                members[f"{name}\0{i}"] = array
    if len(members) < 2:
        return {}, []
    groups: dict[int, list[str]] = {}
    for name, array in members.items():
        groups.setdefault(_owner(array), []).append(name)
    bounds = {name: byte_bounds(members[name]) for name in members}

    def overlap(a: str, b: str) -> bool:
        (lo1, hi1), (lo2, hi2) = bounds[a], bounds[b]
        return lo1 < hi2 and lo2 < hi1 and bool(np.shares_memory(members[a], members[b]))

    def pandas_pair(a: str, b: str) -> bool:
        return _real(a) in values and _real(b) in values and not isinstance(
            values[_real(a)], np.ndarray) and not isinstance(values[_real(b)], np.ndarray)

    records: dict[str, ViewRecord] = {}
    for names in groups.values():
        if len(names) < 2:
            continue
        shared = {
            a: [b for b in names if _real(b) != _real(a) and overlap(a, b)
                and (_pandas_shares_between_objects() or not pandas_pair(a, b))]
            for a in names
        }
        needy = [a for a in names if _real(a) in stored and shared[a] and _real(a) not in in_place]
        if not needy:
            continue
        anchor = _choose_anchor(names, members, bounds, stored, trusted, in_place, values)
        for name in needy:
            record = None if anchor is None or name == anchor else _window(
                name, members[name], anchor, members[anchor], bounds, values)
            if name == anchor:
                outside = [b for b in shared[name] if _real(b) not in stored and _real(b) not in trusted]
                if outside:
                    problems.append(f"{name} shares memory with {_real(outside[0])}, which a hit "
                                    f"cannot restore with it")
                continue
            if record is None:
                others = ", ".join(sorted({_real(b) for b in shared[name]}))
                problems.append(f"{_real(name)} shares memory with {others} in a way a hit cannot "
                                f"rebuild")
            else:
                records[name] = record
    return records, sorted(set(problems))


def _real(member: str) -> str:
    return member.split("\0", 1)[0]


def _choose_anchor(
    names: list[str], members: Mapping[str, Any], bounds: Mapping[str, tuple[int, int]],
    stored: Collection[str], trusted: Collection[str], in_place: Collection[str],
    values: Mapping[str, Any],
) -> str | None:
    """The largest contiguous plain array of the group whose state a hit knows."""
    np = sys.modules["numpy"]
    candidates = [
        n for n in names
        if "\0" not in n and isinstance(values[n], np.ndarray)
        and (n in stored or n in trusted)
        and (members[n].flags.c_contiguous or members[n].flags.f_contiguous)
        and _simple_dtype(members[n].dtype)
    ]
    if not candidates:
        return None
    # the widest memory; then one the hit does not replace (input, in place), then by name
    return min(candidates, key=lambda n: (bounds[n][0] - bounds[n][1], n in stored and n not in in_place, n))


def _simple_dtype(dtype: Any) -> bool:
    np = sys.modules["numpy"]
    return not dtype.hasobject and np.dtype(dtype.str) == dtype


def _window(
    name: str, array: Any, anchor: str, base: Any, bounds: Mapping[str, tuple[int, int]],
    values: Mapping[str, Any],
) -> ViewRecord | None:
    (lo, hi), (base_lo, base_hi) = bounds[name], bounds[anchor]
    if "\0" in name or not _simple_dtype(array.dtype) or lo < base_lo or hi > base_hi:
        return None
    kind = "ndarray" if isinstance(values[name], sys.modules["numpy"].ndarray) else "series"
    return {
        "kind": kind, "anchor": anchor,
        "anchor_shape": list(base.shape), "anchor_strides": list(base.strides),
        "anchor_dtype": base.dtype.str,
        "offset": array.__array_interface__["data"][0] - base.__array_interface__["data"][0],
        "shape": list(array.shape), "strides": list(array.strides), "dtype": array.dtype.str,
    }


def rebuild_views(records: Mapping[str, ViewRecord], anchors: Mapping[str, Any],
                  loaded: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{name: view}`` over the anchors as they will be after the hit (``anchors``:
    name -> the object that name will hold), each checked to have the layout recorded at the
    run; None when an anchor differs (e.g. an input now stored in another memory order):
    the caller then runs the code instead."""
    if not records:
        return {}
    import numpy as np

    views: dict[str, Any] = {}
    for name, record in records.items():
        base = anchors.get(record["anchor"])
        if not (isinstance(base, np.ndarray) and base.dtype.str == record["anchor_dtype"]
                and list(base.shape) == record["anchor_shape"]
                and all(size < 2 or a == b for size, a, b in  # a length-1 axis has any stride
                        zip(base.shape, base.strides, record["anchor_strides"], strict=True))
                and (base.flags.c_contiguous or base.flags.f_contiguous)):
            return None
        view = np.ndarray(tuple(record["shape"]), np.dtype(record["dtype"]), buffer=base,
                          offset=record["offset"], strides=tuple(record["strides"]))
        if not base.flags.writeable:
            view.flags.writeable = False
        if record["kind"] == "series":
            import pandas as pd

            stored = loaded[name]
            view = pd.Series(view, index=stored.index, name=stored.name, copy=False)
        views[name] = view
    return views
