"""lifecycle/aliasing.py on real numpy and pandas values: what can be written back in place,
which sharing is found, and views rebuilt only over an anchor with the recorded layout."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskcache.lifecycle.aliasing import (
    can_restore_in_place,
    find_views,
    rebuild_views,
    restore_in_place,
)


class Plain:
    def __init__(self, v):
        self.v = v


class Slotted:
    __slots__ = ("v",)


def test_values_written_back_in_place_keep_their_identity():
    for target, value in [([1], [1, 2]), ({"a": 1}, {"b": 2}), ({1}, {2, 3}),
                          (bytearray(b"ab"), bytearray(b"xyz")), (np.zeros(3), np.ones(3)),
                          (pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [2.0, 3.0]})),
                          (pd.Series([1], name="a"), pd.Series([5, 6], name="b")), (Plain(1), Plain(2))]:
        same = target
        assert restore_in_place(target, value), type(target)
        assert same is target
        if isinstance(target, pd.DataFrame | pd.Series):
            assert target.equals(value) and getattr(target, "name", None) == getattr(value, "name", None)
        elif isinstance(target, np.ndarray):
            assert np.array_equal(target, value)
        elif isinstance(target, Plain):
            assert target.v == 2
        else:
            assert target == value


def test_what_cannot_be_written_back_is_left_alone():
    read_only = np.zeros(3)
    read_only.flags.writeable = False
    for target, value in [(read_only, np.ones(3)), (np.zeros(3), np.ones(4)),
                          (np.zeros(3), np.ones(3, dtype=np.int32)), ((1,), (2,)), ([1], (1,)),
                          (Slotted(), Slotted()), (1, 2)]:
        assert not can_restore_in_place(target, value)
        assert not restore_in_place(target, value)
    assert not read_only.any()


def test_views_are_found_and_rebuilt_over_the_anchor():
    x = np.arange(16.0).reshape(4, 4)
    sub = x[1:3, ::-2]
    records, problems = find_views({"x": x, "sub": sub, "other": np.ones(2)}, ["sub"], ["x"])
    assert problems == [] and set(records) == {"sub"} and records["sub"]["anchor"] == "x"
    fresh = x.copy()
    views = rebuild_views(records, {"x": fresh}, {"sub": sub.copy()})
    assert np.array_equal(views["sub"], sub) and np.shares_memory(views["sub"], fresh)
    # another memory order, or another shape: not the recorded window
    assert rebuild_views(records, {"x": np.asfortranarray(fresh)}, {}) is None
    assert rebuild_views(records, {"x": fresh.reshape(2, 8)}, {}) is None


def test_sharing_without_a_known_anchor_is_a_problem_not_a_wrong_view():
    base = np.arange(12.0).reshape(3, 4)
    a, b = base[:, ::2], base[:, 1:3]  # overlap; neither contains the other; base unnamed
    records, problems = find_views({"a": a, "b": b}, ["a", "b"], [])
    assert records == {} and problems and "shares memory with" in problems[0]
    frame = pd.DataFrame(base, copy=False)
    _, problems = find_views({"base": base, "frame": frame}, ["frame"], ["base"])
    assert problems == ["frame shares memory with base in a way a hit cannot rebuild"]
    # disjoint windows of one array do not alias: nothing to rebuild
    assert find_views({"a": base[0], "b": base[1]}, ["a", "b"], []) == ({}, [])
